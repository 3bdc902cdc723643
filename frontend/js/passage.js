// The side panel that shows the passage a citation marker points at: the document, where in it
// (heading path, page, chunk), the passage's text, and its rank among the passages found.

import { documentName, documentPath, element } from "./format.js";

export class PassagePanel {
  // `onOpen`: called as the panel opens (the page closes its other panel).
  constructor(root, { onOpen = () => {} } = {}) {
    this.root = root;
    this.onOpen = onOpen;
    this.returnFocus = null;
    root.querySelector(".close").addEventListener("click", () => this.close());
    root.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.close();
    });
  }

  open(citation, opener) {
    const part = (name) => this.root.querySelector(`.${name}`);
    part("passage-number").textContent = `Source ${citation.index}`;
    part("passage-title").textContent = documentName(citation);
    part("passage-path").textContent = documentPath(citation.source_key);
    const where = [
      ...(citation.heading_path || []),
      citation.page ? `page ${citation.page}` : null,
      `passage ${citation.chunk + 1}`,
    ].filter(Boolean);
    part("passage-where").replaceChildren(...where.map((step) => element("li", "", step)));
    const text = citation.text || "";
    part("passage-text").replaceChildren(
      ...(text ? text.split(/\n{2,}/).map((paragraph) => element("p", "", paragraph)) : [element("p", "muted", "This answer did not include the passage's text.")]),
    );
    part("passage-rank").textContent = `Ranked ${ordinal(citation.index)} of the passages found for the question and given to the model.`;
    this.returnFocus = { opener, turn: opener.closest(".turn"), index: citation.index };
    this.onOpen();
    this.root.hidden = false;
    document.body.classList.add("panel-open");
    part("passage-title").focus();
  }

  close({ returnFocus = true } = {}) {
    if (this.root.hidden) return;
    this.root.hidden = true;
    document.body.classList.remove("panel-open");
    if (returnFocus && this.returnFocus) {
      // The marker may have been built again since (the answer re-renders): focus its successor.
      const { opener, turn, index } = this.returnFocus;
      (opener.isConnected ? opener : turn?.querySelector(`button.cite[data-index="${index}"]`))?.focus();
    }
    this.returnFocus = null;
  }
}

function ordinal(n) {
  const suffix = n % 100 >= 11 && n % 100 <= 13 ? "th" : { 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th";
  return `${n}${suffix}`;
}
