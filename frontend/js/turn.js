// One question and its answer on the page: the state it is in (searching, waiting for the first
// token, streaming, done, stopped, failed), the answer as Markdown with citation markers, and,
// once it is complete, its sources, confidence, notes, timings and feedback.

import { announce, AnswerAnnouncer } from "./announce.js";
import { clockTime, documentName, documentPath, element, plural, seconds } from "./format.js";
import { MarkdownView } from "./markdown.js";
import { confidence, notes, sourcesByDocument } from "./trust.js";

const TICK_MS = 100;
const FOLLOW_WITHIN_PX = 120;
const RENDER_EVERY_MS = 50;
// A model waking from zero is asked again by itself this many times (minutes, at its Retry-After);
// then the reader decides.
const MAX_AUTO_RETRIES = 10;

const STATE_TEXT = {
  searching: "Searching your documents…",
  waiting: "Waiting for the first token…",
  streaming: "Answering…",
  failed: "Not answered",
};

export class TurnView {
  // `actions`: {retry(view) → false when another answer is streaming, openPassage(citation, button),
  // rate(view, rating, comment), copy(view)}
  constructor(turn, actions) {
    this.turn = turn;
    this.actions = actions;
    this.root = document.getElementById("turn-template").content.firstElementChild.cloneNode(true);
    this.part = (name) => this.root.querySelector(`.${name}`);
    this.part("question").textContent = turn.question;
    this.part("confidence-tip").id = `confidence-${turn.id}`;
    this.part("confidence-badge").setAttribute("aria-describedby", `confidence-${turn.id}`);
    this.answer = new MarkdownView(this.part("answer"), (number) => this.citeButton(number));
    this.announcer = new AnswerAnnouncer();
    this.timer = null;
    this.countdownTimer = null;
    this.scheduled = false; // a render waits for its time (delay), then for its frame
    this.delay = this.frame = null;
    this.renderedAt = -Infinity;
    this.autoRetries = 0;
    this.wire();
  }

  wire() {
    this.part("copy").addEventListener("click", () => this.actions.copy(this));
    for (const button of this.root.querySelectorAll(".rate")) {
      button.addEventListener("click", () => this.choose(Number(button.dataset.rating)));
    }
    this.part("comment").addEventListener("submit", (event) => {
      event.preventDefault();
      this.actions.rate(this, this.turn.feedback?.rating, this.part("comment-text").value.trim());
    });
    this.part("retry").addEventListener("click", () => this.retry());
    this.part("cancel-retry").addEventListener("click", () => {
      this.cancelCountdown();
      this.part("retry").focus(); // the button that had focus is gone
    });
    const badge = this.part("confidence-badge");
    // The explanation shows on hover and while the badge has focus; Escape hides it.
    const explain = (shown) => badge.setAttribute("aria-expanded", String(shown));
    badge.addEventListener("focus", () => explain(true));
    badge.addEventListener("blur", () => explain(false));
    badge.addEventListener("click", () => explain(badge.getAttribute("aria-expanded") !== "true"));
    badge.addEventListener("keydown", (event) => {
      if (event.key === "Escape") explain(false);
    });
  }

  retry() {
    if (!this.actions.retry(this)) this.part("countdown").textContent = "Another answer is still coming: retry once it is done.";
  }

  // The view leaves the page (a new chat): nothing of it may run on.
  dispose() {
    this.cancelCountdown();
    clearInterval(this.timer);
    this.cancelRender();
  }

  // A turn read back from the browser's storage, shown as it ended.
  restore() {
    const { turn } = this;
    this.answer.render(turn.answer);
    if (turn.state === "done") this.done();
    else if (turn.state === "stopped") this.stopped({ restored: true });
    else this.failed(turn.error || { kind: "unavailable", message: "The answer was not completed." }, { restored: true });
  }

  // Streaming.

  start() {
    this.cancelCountdown();
    // Retry is about to be hidden: the focus it holds goes to the turn, not to the page's top.
    if (this.part("notice").contains(document.activeElement)) this.part("state-line").focus();
    this.setState("searching");
    this.answer.render("");
    this.part("answer").setAttribute("aria-busy", "true");
    for (const name of ["notice", "sources", "foot"]) this.part(name).hidden = true;
    this.part("notes").replaceChildren();
    this.started = performance.now();
    this.firstTokenAt = null;
    this.stageNote = "";
    this.announcer = new AnswerAnnouncer();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.tick(), TICK_MS);
    announce(STATE_TEXT.searching);
  }

  progress({ stage, sources }) {
    if (stage !== "generating" || this.firstTokenAt !== null) return;
    this.stageNote = sources ? `${plural(sources, "passage")} found · ` : "No passages found · ";
    this.setState("waiting");
  }

  append(text) {
    if (this.firstTokenAt === null) {
      this.firstTokenAt = performance.now();
      this.setState("streaming");
    }
    this.turn.answer += text;
    this.scheduleRender();
  }

  // One render per frame at most, and at most one every RENDER_EVERY_MS however many tokens
  // arrive (layout and paint are most of the page's work while it streams); the first token is
  // shown at the next frame. The page follows the answer's end if the reader was there (not if
  // they scrolled up to read).
  scheduleRender() {
    if (this.scheduled) return;
    this.scheduled = true;
    const inFrame = () => {
      this.frame = requestAnimationFrame(() => {
        this.scheduled = false;
        this.renderedAt = performance.now();
        const scroller = document.scrollingElement;
        const atEnd = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < FOLLOW_WITHIN_PX;
        this.answer.render(this.turn.answer);
        if (atEnd) scroller.scrollTop = scroller.scrollHeight;
        this.announcer.update(this.turn.answer);
      });
    };
    const wait = this.renderedAt + RENDER_EVERY_MS - performance.now();
    if (wait > 0) this.delay = setTimeout(inFrame, wait);
    else inFrame();
  }

  cancelRender() {
    clearTimeout(this.delay);
    cancelAnimationFrame(this.frame);
    this.scheduled = false;
  }

  flush() {
    this.cancelRender();
    this.answer.render(this.turn.answer);
  }

  tick() {
    const elapsed = performance.now() - this.started;
    const state = this.root.dataset.state;
    if (state === "searching" || state === "waiting") this.part("elapsed").textContent = seconds(elapsed);
  }

  measure() {
    const now = performance.now();
    this.turn.timings = {
      firstTokenMs: this.firstTokenAt === null ? null : Math.round(this.firstTokenAt - this.started),
      totalMs: Math.round(now - this.started),
    };
  }

  setState(state, text = STATE_TEXT[state]) {
    this.root.dataset.state = state;
    this.part("state-text").textContent = state === "waiting" ? `${this.stageNote}${text}` : text;
    if (state !== "searching" && state !== "waiting") this.part("elapsed").textContent = "";
  }

  stopTimers() {
    clearInterval(this.timer);
    this.timer = null;
    this.part("answer").setAttribute("aria-busy", "false");
  }

  // Endings.

  complete() {
    this.autoRetries = 0;
    this.measure();
    this.stopTimers();
    this.answer.refresh(this.turn.answer); // the markers now name their sources
    this.announcer.finish(this.turn.answer);
    this.done();
  }

  done() {
    const { turn } = this;
    const { firstTokenMs, totalMs } = turn.timings || {};
    const timing = totalMs != null
      ? `Done in ${seconds(totalMs)}${firstTokenMs != null ? ` · first token ${seconds(firstTokenMs)}` : ""}`
      : "Done";
    this.setState("done", timing);
    if (turn.strata?.cache_hit) this.part("state-text").textContent += " · from cache";
    this.showNotes(notes(turn.strata, turn.finishReason));
    this.showSources();
    this.showConfidence();
    this.showFeedback();
    this.part("foot").hidden = false;
  }

  stopped({ restored = false } = {}) {
    if (!restored) {
      this.measure();
      this.flush();
    }
    this.stopTimers();
    this.setState("stopped", this.turn.answer ? "Stopped · the answer is incomplete" : "Stopped before the answer began");
    this.showNotes([]);
    this.part("foot").hidden = !this.turn.requestId;
    this.showFeedback();
    this.showNotice("You stopped this answer.", { retry: "Ask again" });
    if (!restored) announce("Stopped.");
  }

  // `error`: an ApiError, or {kind, message, retryAfterS, limits} as stored.
  failed(error, { restored = false } = {}) {
    if (!restored) {
      this.measure();
      this.flush();
    }
    this.stopTimers();
    const partial = Boolean(this.turn.answer);
    const label = { waking: "Waiting for the model to start", limited: "Rate limited" }[error.kind];
    this.setState("failed", partial ? "Incomplete: the answer was cut off" : label || STATE_TEXT.failed);
    if (restored) {
      this.showNotice(describeError(error, partial, { restored }).text, { retry: "Ask again", error: true });
      return;
    }
    const { text, retry, countdownS, autoRetry } = describeError(error, partial);
    this.showNotice(text, { retry, error: true });
    if (countdownS) this.countdown(countdownS, { autoRetry: autoRetry && this.autoRetries < MAX_AUTO_RETRIES });
    announce(text);
  }

  // Waits `seconds`, showing how long is left; then retries (autoRetry) or allows a retry.
  countdown(secondsLeft, { autoRetry }) {
    const retry = this.part("retry");
    const until = Date.now() + secondsLeft * 1000;
    const left = this.part("countdown");
    this.part("cancel-retry").hidden = !autoRetry;
    retry.disabled = !autoRetry;
    const tick = () => {
      const remaining = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      left.textContent = autoRetry
        ? `Retrying in ${remaining} s.`
        : `You can ask again in ${remaining} s (at ${clockTime(new Date(until))}).`;
      if (remaining > 0) return;
      if (autoRetry && !this.actions.retry(this)) {
        left.textContent = "Retrying once the answer being written is done.";
        return; // the interval goes on until it can
      }
      this.cancelCountdown();
      if (autoRetry) this.autoRetries += 1;
      else left.textContent = "You can ask again now.";
    };
    clearInterval(this.countdownTimer);
    this.countdownTimer = setInterval(tick, 250);
    tick();
  }

  cancelCountdown() {
    clearInterval(this.countdownTimer);
    this.countdownTimer = null;
    this.part("retry").disabled = false;
    this.part("cancel-retry").hidden = true;
    this.part("countdown").textContent = "";
  }

  // Parts shown at the end.

  showNotice(text, { retry = "Retry", error = false } = {}) {
    const notice = this.part("notice");
    notice.classList.toggle("error", error);
    this.part("notice-text").textContent = text;
    this.part("retry").textContent = retry;
    notice.hidden = false;
  }

  showNotes(lines) {
    this.part("notes").replaceChildren(...lines.map((line) => element("li", "", line)));
  }

  citeButton(number) {
    const citation = this.turn.strata?.citations?.find((c) => c.index === number);
    const button = element("button", "cite", String(number));
    button.type = "button";
    button.dataset.index = String(number);
    button.setAttribute("aria-label", citation ? `Source ${number}: ${documentName(citation)}` : `Source ${number}`);
    button.addEventListener("click", () => {
      const found = this.turn.strata?.citations?.find((c) => c.index === number);
      if (found) this.actions.openPassage(found, button);
    });
    return button;
  }

  showSources() {
    const { cited, uncited } = sourcesByDocument(this.turn.strata?.citations);
    const list = (documents) => documents.map((document) => {
      const item = element("li", "source");
      const name = element("span", "source-name", documentName(document));
      const path = element("span", "source-path", documentPath(document.source_key));
      const passages = element("span", "passages");
      for (const passage of document.passages) {
        const button = this.citeButton(passage.index);
        const where = [passage.heading_path?.join(" › "), passage.page ? `page ${passage.page}` : ""].filter(Boolean).join(", ");
        if (where) button.title = where;
        passages.appendChild(button);
      }
      item.append(passages, name);
      if (path.textContent && path.textContent !== name.textContent) item.append(path);
      return item;
    });
    this.part("source-list").replaceChildren(...list(cited));
    this.part("uncited-list").replaceChildren(...list(uncited));
    this.part("uncited").hidden = uncited.length === 0;
    this.part("uncited-count").textContent = plural(uncited.reduce((n, d) => n + d.passages.length, 0), "passage");
    this.part("cited-heading").hidden = cited.length === 0;
    this.part("sources").hidden = cited.length + uncited.length === 0;
  }

  showConfidence() {
    const { level, label, percent, explanation } = confidence(this.turn.strata);
    const badge = this.part("confidence");
    badge.dataset.level = level;
    this.part("confidence-label").textContent = percent == null ? label : `${label} · ${percent}%`;
    this.part("confidence-tip").textContent = explanation;
  }

  // Feedback.

  showFeedback() {
    const ready = Boolean(this.turn.requestId);
    this.part("rating").hidden = !ready;
    const rating = this.turn.feedback?.rating ?? null;
    for (const button of this.root.querySelectorAll(".rate")) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.rating) === rating));
    }
    if (this.turn.feedback?.comment) this.part("comment-text").value = this.turn.feedback.comment;
    this.part("comment").hidden = rating === null;
    this.feedbackStatus(this.turn.feedback?.sent ? "Feedback saved. Thank you." : "");
  }

  choose(rating) {
    this.actions.rate(this, rating, this.part("comment-text").value.trim());
  }

  feedbackStatus(text, { error = false } = {}) {
    const status = this.part("feedback-status");
    status.textContent = text;
    status.classList.toggle("error", error);
  }
}

// What the page says for an error, whether and when it offers a retry.
export function describeError(error, partial = false, { restored = false } = {}) {
  const message = error.message || "";
  switch (error.kind) {
    case "waking":
      if (restored) return { text: "The model was starting up when this was asked; it may be up now." };
      return {
        text: "The model is starting up (it sleeps when idle); your question is kept and will be sent again.",
        retry: "Retry now",
        countdownS: Math.max(1, error.retryAfterS ?? 30),
        autoRetry: true,
      };
    case "limited": {
      const [kind, over] = Object.entries(error.limits || {}).find(([, l]) => l.remaining === 0) || [];
      const what = over ? ` (${plural(over.limit, kind.replace(/s$/, ""))} per minute)` : "";
      return {
        text: error.code === "insufficient_quota"
          ? `Today's token quota is used up. ${message}`
          : `You have reached the rate limit${what}. Your question is kept.`,
        retry: "Ask again",
        countdownS: Math.max(1, error.retryAfterS ?? 60),
        autoRetry: false,
      };
    }
    case "auth":
      return { text: "Your API key or sign-in was refused. Enter a valid key or sign in again, then ask again.", retry: "Ask again" };
    case "forbidden":
      return { text: `This key may not do that: ${message}`, retry: "Ask again" };
    case "invalid":
      return { text: message || "The request was refused.", retry: "Ask again" };
    default: {
      const what = error.code === "network_error"
        ? "The AI service cannot be reached right now."
        : partial
          ? "The answer was cut off before it was complete."
          : "The AI service is unavailable right now.";
      const cause = ["stream_broken", "network_error"].includes(error.code) || !message ? "" : ` (${message})`;
      return { text: `${what} Your question is kept: try again.${cause}`, retry: "Retry" };
    }
  }
}
