// What a screen reader hears: one polite live region, told about state changes and the answer in
// whole sentences, a few at a time — never token by token (the answer itself is not live).

const SENTENCES_EVERY_MS = 2000;
const SENTENCE_END = /[.!?:](?=\s)|\n\n/g;

const region = () => document.getElementById("announcer");

export function announce(text) {
  const live = region();
  if (!live || !text) return;
  // The same words twice in a row are announced again only if the region changes in between.
  live.textContent = "";
  requestAnimationFrame(() => { live.textContent = text; });
}

// Reads a streamed answer out in complete sentences, at most every SENTENCES_EVERY_MS.
export class AnswerAnnouncer {
  constructor() {
    this.spoken = 0;
    this.last = 0;
  }

  update(text) {
    if (Date.now() - this.last < SENTENCES_EVERY_MS) return;
    let end = -1;
    for (const match of text.slice(this.spoken).matchAll(SENTENCE_END)) end = this.spoken + match.index + match[0].length;
    if (end <= this.spoken) return;
    this.say(text.slice(this.spoken, end));
    this.spoken = end;
  }

  finish(text) {
    this.say(text.slice(this.spoken));
    this.spoken = text.length;
  }

  say(text) {
    const plain = text.replace(/\[\s*\d{1,3}(?:\s*,\s*\d{1,3})*\s*\]/g, "").replace(/[*_`#>|~]+/g, "").trim();
    if (!plain) return;
    this.last = Date.now();
    announce(plain);
  }
}
