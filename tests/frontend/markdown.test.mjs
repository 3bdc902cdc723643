// The page's Markdown parser: what model output becomes, hostile input above all.
import assert from "node:assert/strict";
import { test } from "node:test";

import { parseBlocks, parseInline, safeUrl } from "../../frontend/js/markdown.js";

const nodes = (text) => parseBlocks(text).map((block) => block.node);
const links = (tree) => JSON.stringify(tree).match(/"href":"[^"]*"/g) || [];

test("only absolute http(s) and mailto URLs survive, however they are disguised", () => {
  for (const url of ["javascript:alert(1)", " JaVaScRiPt:alert(1)", "java\tscript:alert(1)", "\u0001javascript:x",
    "data:text/html,<b>x</b>", "vbscript:x", "//evil.example", "/relative", "file:///etc/passwd"]) {
    assert.equal(safeUrl(url), null, url);
  }
  assert.equal(safeUrl("https://example.com/a b"), "https://example.com/a%20b");
  assert.equal(safeUrl("mailto:a@example.com"), "mailto:a@example.com");
});

test("a link to a script keeps its text and loses its target", () => {
  const tree = nodes("[click](javascript:alert(1)) and ![img](javascript:x) and <javascript:alert(1)>");
  assert.deepEqual(links(tree), []);
  assert.match(JSON.stringify(tree), /"click"/);
});

test("raw HTML is text, never markup", () => {
  const tree = nodes('<script>alert(1)</script> <img src=x onerror="alert(2)">');
  assert.deepEqual(tree, [{ type: "paragraph", children: [{ type: "text", value: '<script>alert(1)</script> <img src=x onerror="alert(2)">' }] }]);
});

test("citation markers become their numbers; a link's text is not a marker", () => {
  const inline = parseInline("Otters eat fish [1] and crabs [2, 3]. See [1](https://x.example).");
  assert.deepEqual(inline.filter((n) => n.type === "cite").map((n) => n.numbers), [[1], [2, 3]]);
  assert.equal(inline.find((n) => n.type === "link").href, "https://x.example/");
});

test("emphasis, code, lists, quotes, tables and fences", () => {
  const [paragraph, list, quote, table, code] = nodes(
    "**bold** *em* `a*b*` snake_case_word ~~gone~~\n\n- one\n- two\n  1. nested\n\n> quoted\n\n| a | b |\n|:-|-:|\n| 1 | 2 |\n\n```py\nx = '<b>'\n```",
  );
  assert.deepEqual(paragraph.children.map((n) => n.type), ["strong", "text", "em", "text", "code", "text", "del"]);
  assert.equal(paragraph.children[3].value, " ");
  assert.equal(paragraph.children[4].value, "a*b*");
  assert.equal(paragraph.children[5].value, " snake_case_word ");
  assert.equal(list.items.length, 2);
  assert.equal(list.items[1][1].type, "list");
  assert.equal(list.items[1][1].ordered, true);
  assert.equal(quote.type, "quote");
  assert.deepEqual(table.align, ["left", "right"]);
  assert.deepEqual(code, { type: "code", lang: "py", text: "x = '<b>'" });
});

test("an unclosed fence while streaming holds the rest as code", () => {
  assert.deepEqual(nodes("```\nlet x"), [{ type: "code", lang: "", text: "let x" }]);
});

test("each block keeps the source it came from, so unchanged blocks are not rebuilt", () => {
  const blocks = parseBlocks("First paragraph.\n\nSecond, still stream");
  assert.deepEqual(blocks.map((b) => b.raw), ["First paragraph.", "Second, still stream"]);
});
