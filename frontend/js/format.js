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

// What a document is called: its title, else its file name without the tenant's prefix.
export function documentName({ title, source_key: sourceKey }) {
  if (title) return title;
  return (sourceKey || "").split("/").slice(2).join("/") || sourceKey || "document";
}

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
