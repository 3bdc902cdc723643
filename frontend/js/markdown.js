// Markdown for model output, safe by construction: the text is parsed into a small tree and the
// tree is built into DOM nodes one element at a time (createElement, textContent) — never parsed
// as HTML — so nothing a model writes can become markup, a script or an event handler. Raw HTML
// shows as the text it is; links keep only absolute http(s) and mailto targets; images become
// links (the page loads no remote images); "[n]" citation markers become buttons.
//
// The subset: paragraphs, ATX headings, fenced code, block quotes, nested lists, rules, GFM
// tables; code spans, strong, emphasis, strikethrough, links, autolinks, bare URLs, escapes.

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE = /^ {0,3}> ?/;
const LIST_ITEM = /^( {0,3})([-*+]|\d{1,9}[.)])(?:([ \t]+)|$)/;
const TABLE_DIVIDER = /^ {0,3}\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$/;
const BLANK = /^[ \t]*$/;

const isBlank = (line) => BLANK.test(line);
const indentOf = (line) => line.match(/^ */)[0].length;

function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || LIST_ITEM.test(line);
}

// Blocks, each with the source it came from (raw), so that a view re-renders only what changed.
export function parseBlocks(source) {
  const lines = String(source).replace(/\r\n?/g, "\n").replace(/\t/g, "    ").split("\n");
  return blocksOf(lines);
}

function blocksOf(lines) {
  const blocks = [];
  let i = 0;
  while (i < lines.length) {
    if (isBlank(lines[i])) { i += 1; continue; }
    const start = i;
    const [node, next] = block(lines, i);
    i = next;
    blocks.push({ raw: lines.slice(start, i).join("\n"), node });
  }
  return blocks;
}

function block(lines, i) {
  const line = lines[i];
  let match;
  if ((match = FENCE.exec(line))) {
    const fence = match[1];
    const body = [];
    let j = i + 1;
    for (; j < lines.length; j += 1) {
      const closing = lines[j].trim();
      if (closing.startsWith(fence[0].repeat(fence.length)) && /^([`~])\1*$/.test(closing)) { j += 1; break; }
      body.push(lines[j]);
    }
    return [{ type: "code", lang: match[2], text: body.join("\n") }, j];
  }
  if ((match = HEADING.exec(line))) {
    return [withInline({ type: "heading", level: match[1].length }, match[2] || ""), i + 1];
  }
  if (RULE.test(line)) return [{ type: "rule" }, i + 1];
  if (QUOTE.test(line)) {
    const inner = [];
    let j = i;
    for (; j < lines.length && !isBlank(lines[j]); j += 1) inner.push(lines[j].replace(QUOTE, ""));
    return [{ type: "quote", children: blocksOf(inner).map((b) => b.node) }, j];
  }
  if (LIST_ITEM.test(line)) return list(lines, i);
  if (line.includes("|") && i + 1 < lines.length && TABLE_DIVIDER.test(lines[i + 1]) && lines[i + 1].includes("-")) {
    return table(lines, i);
  }
  const text = [line];
  let j = i + 1;
  for (; j < lines.length && !isBlank(lines[j]) && !startsBlock(lines[j]); j += 1) text.push(lines[j]);
  return [withInline({ type: "paragraph" }, text.map((l) => l.trim()).join("\n")), j];
}

function list(lines, i) {
  const first = LIST_ITEM.exec(lines[i]);
  const ordered = /\d/.test(first[2]);
  const node = { type: "list", ordered, start: ordered ? parseInt(first[2], 10) : 1, items: [] };
  let j = i;
  while (j < lines.length) {
    const match = LIST_ITEM.exec(lines[j]);
    if (!match || /\d/.test(match[2]) !== ordered) break;
    const contentIndent = match[1].length + match[2].length + Math.min((match[3] || " ").length, 4);
    const itemLines = [lines[j].slice(match[0].length)];
    j += 1;
    while (j < lines.length) {
      const line = lines[j];
      if (isBlank(line)) {
        let k = j;
        while (k < lines.length && isBlank(lines[k])) k += 1;
        if (k < lines.length && indentOf(lines[k]) >= contentIndent) {
          itemLines.push(...lines.slice(j, k).map(() => ""));
          j = k;
          continue;
        }
        break;
      }
      if (indentOf(line) >= contentIndent) itemLines.push(line.slice(contentIndent));
      else if (startsBlock(line)) break;
      else itemLines.push(line); // a lazy continuation of the item's paragraph
      j += 1;
    }
    node.items.push(blocksOf(itemLines).map((b) => b.node));
    let k = j;
    while (k < lines.length && isBlank(lines[k])) k += 1;
    const following = k < lines.length ? LIST_ITEM.exec(lines[k]) : null;
    if (!following || /\d/.test(following[2]) !== ordered) break;
    j = k;
  }
  return [node, j];
}

function cells(line) {
  let row = line.trim();
  if (row.startsWith("|")) row = row.slice(1);
  if (row.endsWith("|") && !row.endsWith("\\|")) row = row.slice(0, -1);
  return row.split(/(?<!\\)\|/).map((cell) => cell.trim().replace(/\\\|/g, "|"));
}

function table(lines, i) {
  const header = cells(lines[i]);
  const align = cells(lines[i + 1]).map((spec) =>
    spec.startsWith(":") && spec.endsWith(":") ? "center" : spec.endsWith(":") ? "right" : spec.startsWith(":") ? "left" : "",
  );
  const rows = [];
  let j = i + 2;
  for (; j < lines.length && !isBlank(lines[j]) && lines[j].includes("|"); j += 1) rows.push(cells(lines[j]));
  const width = header.length;
  const fit = (row) => Array.from({ length: width }, (_, n) => withInline({ type: "cell" }, row[n] ?? ""));
  return [{ type: "table", align: align.slice(0, width), header: fit(header), rows: rows.map(fit) }, j];
}

// A block's inline content is parsed when first read: a view that keeps the unchanged blocks of a
// growing answer parses only the changed ones.
function withInline(node, text) {
  let children = null;
  return Object.defineProperty(node, "children", { enumerable: true, get: () => (children ??= parseInline(text)) });
}

// Inline.

// Sticky patterns, tried where the scan stands (no copy of the rest of the text per character);
// a span's closing delimiter is looked for within 500 characters ({0,500}?): an unclosed "*"
// must not make every later one scan to the end of the block (quadratic on a long answer).
const INLINE_RULES = [
  ["escape", /\\([!-/:-@[-`{-~])/y],
  ["code", /(`+)([^`]|[^`][\s\S]{0,500}?[^`])\1(?!`)/y],
  ["image", /!\[([^\]]*)\]\(\s*<?((?:[^\s()<>]|\([^\s()<>]*\))*)>?(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/y],
  ["link", /\[((?:[^[\]]|\[[^[\]]*\])*)\]\(\s*<?((?:[^\s()<>]|\([^\s()<>]*\))*)>?(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/y],
  ["cite", /\[\s*(\d{1,3}(?:\s*,\s*\d{1,3})*)\s*\]/y],
  ["autolink", /<((?:https?:\/\/|mailto:)[^\s<>]+)>/iy],
  ["url", /https?:\/\/[^\s<>"']*[^\s<>"'.,;:!?)\]*_~]/iy],
  ["strong", /(\*\*|__)(?=\S)([\s\S]{0,500}?\S)\1/y],
  ["del", /~~(?=\S)([\s\S]{0,500}?\S)~~/y],
  ["em", /(\*|_)(?=[^\s*_])([\s\S]{0,500}?[^\s\\])\1(?!\1)/y],
];
const SPECIAL = /[\\`![<*_~\nh]/g;

export function parseInline(text) {
  const nodes = [];
  let plain = "";
  const flush = () => { if (plain) nodes.push({ type: "text", value: plain }); plain = ""; };
  let i = 0;
  while (i < text.length) {
    SPECIAL.lastIndex = i;
    const found = SPECIAL.exec(text);
    if (!found) { plain += text.slice(i); break; }
    plain += text.slice(i, found.index);
    i = found.index;
    const before = i > 0 ? text[i - 1] : "";
    if (text[i] === "\n") {
      plain = plain.replace(/[ \t]+$/, "");
      flush();
      nodes.push({ type: "break" });
      i += 1;
      continue;
    }
    const rule = INLINE_RULES.find(([name, pattern]) => {
      if (name === "url" && /\w/.test(before)) return false; // "xhttp://" is not a link
      if ((name === "strong" || name === "em") && text[i] === "_" && /\w/.test(before)) return false; // snake_case
      pattern.lastIndex = i;
      return pattern.test(text);
    });
    if (!rule) { plain += text[i]; i += 1; continue; }
    const [name, pattern] = rule;
    pattern.lastIndex = i;
    const match = pattern.exec(text);
    const node = inlineNode(name, match);
    if (node.type === "text") plain += node.value;
    else { flush(); nodes.push(node); }
    i += match[0].length;
  }
  flush();
  return nodes;
}

function inlineNode(name, match) {
  switch (name) {
    case "escape": return { type: "text", value: match[1] };
    case "code": {
      const value = match[2].replace(/\n/g, " ");
      return { type: "code", value: /^ .*[^ ].* $/.test(value) ? value.slice(1, -1) : value };
    }
    case "image": {
      const href = safeUrl(match[2]);
      const alt = match[1] || "image";
      return href ? { type: "link", href, children: [{ type: "text", value: alt }] } : { type: "text", value: alt };
    }
    case "link": {
      const href = safeUrl(match[2]);
      const children = parseInline(match[1]);
      return href ? { type: "link", href, children } : { type: "span", children };
    }
    case "cite": return { type: "cite", numbers: match[1].split(",").map((n) => parseInt(n, 10)) };
    case "autolink":
    case "url": {
      const target = name === "url" ? match[0] : match[1];
      const href = safeUrl(target);
      return href ? { type: "link", href, children: [{ type: "text", value: target }] } : { type: "text", value: match[0] };
    }
    case "strong": return { type: "strong", children: parseInline(match[2]) };
    case "del": return { type: "del", children: parseInline(match[1]) };
    case "em": return { type: "em", children: parseInline(match[2]) };
    default: return { type: "text", value: match[0] };
  }
}

// An absolute http(s) or mailto URL, as the browser will read it, or null. Browsers drop tabs,
// newlines and leading control characters from URLs ("java\tscript:" is javascript:), so the
// check runs on what the URL parser makes of the text, not on the text.
export function safeUrl(text) {
  let url;
  try {
    url = new URL(String(text).trim());
  } catch {
    return null;
  }
  return ["http:", "https:", "mailto:"].includes(url.protocol) ? url.href : null;
}

// DOM.

// Builds one block's element; `cite(number)` makes the element of one citation marker.
function renderBlock(node, cite) {
  const build = (tag, children) => {
    const element = document.createElement(tag);
    for (const child of children) element.appendChild(child);
    return element;
  };
  const inline = (nodes) => nodes.map((n) => renderInline(n, cite));
  switch (node.type) {
    case "heading": return build(`h${Math.min(node.level + 2, 6)}`, inline(node.children));
    case "code": {
      const code = document.createElement("code");
      code.textContent = node.text;
      if (/^[\w+-]{1,20}$/.test(node.lang)) code.dataset.lang = node.lang;
      return build("pre", [code]);
    }
    case "rule": return document.createElement("hr");
    case "quote": return build("blockquote", node.children.map((child) => renderBlock(child, cite)));
    case "list": {
      const list = build(node.ordered ? "ol" : "ul", node.items.map((item) => build("li", item.map((child) => renderBlock(child, cite)))));
      if (node.ordered && node.start !== 1) list.start = node.start;
      return list;
    }
    case "table": {
      const row = (contents, tag) => build("tr", contents.map((content, n) => {
        const cell = build(tag, inline(content.children));
        if (node.align[n]) cell.classList.add(`align-${node.align[n]}`);
        return cell;
      }));
      const table = build("table", [build("thead", [row(node.header, "th")]), build("tbody", node.rows.map((r) => row(r, "td")))]);
      const scroller = build("div", [table]); // a wide table scrolls on its own, not the page
      scroller.className = "table-scroll";
      return scroller;
    }
    default: return build("p", inline(node.children));
  }
}

function renderInline(node, cite) {
  const build = (tag, children) => {
    const element = document.createElement(tag);
    for (const child of children) element.appendChild(renderInline(child, cite));
    return element;
  };
  switch (node.type) {
    case "text": return document.createTextNode(node.value);
    case "break": return document.createElement("br");
    case "code": {
      const code = document.createElement("code");
      code.textContent = node.value;
      return code;
    }
    case "strong": return build("strong", node.children);
    case "em": return build("em", node.children);
    case "del": return build("del", node.children);
    case "span": return build("span", node.children);
    case "link": {
      const link = build("a", node.children);
      link.href = node.href;
      link.target = "_blank";
      link.rel = "noopener noreferrer nofollow";
      return link;
    }
    case "cite": {
      const group = document.createElement("span");
      group.className = "cites";
      for (const number of node.numbers) group.appendChild(cite(number));
      return group;
    }
    default: return document.createTextNode("");
  }
}

// A container that shows Markdown as it grows: the blocks whose source did not change keep
// their elements (text selection survives, the DOM is not rebuilt per token); only the changed
// ones, in practice the last, are built again.
export class MarkdownView {
  constructor(container, cite) {
    this.container = container;
    this.cite = cite;
    this.rendered = [];
  }

  render(source) {
    const blocks = parseBlocks(source);
    blocks.forEach((block, n) => {
      const old = this.rendered[n];
      if (old && old.raw === block.raw) return;
      const element = renderBlock(block.node, this.cite);
      if (old) this.container.replaceChild(element, old.element);
      else this.container.appendChild(element);
      this.rendered[n] = { raw: block.raw, element };
    });
    for (const stale of this.rendered.splice(blocks.length)) stale.element.remove();
  }

  // Builds every block again (after the citations arrive, so the markers can name their sources).
  refresh(source) {
    for (const old of this.rendered) old.element.remove();
    this.rendered = [];
    this.render(source);
  }
}
