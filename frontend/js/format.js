// Small wording helpers shared by the views.

export function seconds(ms) {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}

export function plural(count, one, many = `${one}s`) {
  return `${count} ${count === 1 ? one : many}`;
}

export function clockTime(date) {
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

// What a document is called: its title, else its path.
export function documentName({ title, source_key: sourceKey }) {
  return title || documentPath(sourceKey) || "document";
}

// The document's path as its owner gave it: the source key without "tenants/<tenant>/".
export function documentPath(sourceKey) {
  return (sourceKey || "").split("/").slice(2).join("/") || sourceKey || "";
}

// The tag's element with a class and text, for the many small labels the views build.
export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
