// The conversation, kept in this browser (localStorage) for whoever the credentials name, so that
// a reload shows it again, and sent back as context: the earlier questions and their answers.

const STORAGE = "strata.conversation";
const CONTEXT_TURNS = 8; // the API fits what it can into the model's window; this bounds the body
const CONTEXT_CHARS = 24_000;
const KEPT_TURNS = 100;

export class Conversation {
  // `owner`: who the stored credentials are (auth.identity()); another owner's turns are not shown.
  constructor(owner) {
    this.owner = owner;
    this.turns = load(owner);
  }

  add(question, model) {
    const turn = { id: crypto.randomUUID(), question, model, state: "pending", answer: "", strata: null, timings: {}, feedback: null };
    this.turns.push(turn);
    this.turns.splice(0, Math.max(0, this.turns.length - KEPT_TURNS));
    this.save();
    return turn;
  }

  has(turn) {
    return this.turns.includes(turn);
  }

  // The messages for a question asked in `turn`: the answered turns before it, newest last.
  messagesFor(turn) {
    const earlier = [];
    let chars = turn.question.length;
    const before = this.has(turn) ? this.turns.slice(0, this.turns.indexOf(turn)) : [];
    for (const past of before.reverse()) {
      if (past.state !== "done" || !past.answer) continue;
      chars += past.question.length + past.answer.length;
      if (earlier.length >= CONTEXT_TURNS * 2 || chars > CONTEXT_CHARS) break;
      earlier.unshift({ role: "user", content: past.question }, { role: "assistant", content: past.answer });
    }
    return [...earlier, { role: "user", content: turn.question }];
  }

  adopt(owner) {
    this.owner = owner;
    this.save();
  }

  clear() {
    this.turns = [];
    this.save();
  }

  // When the browser's quota is reached, the oldest turns go first, then the passages' texts
  // (the largest part of a turn); the newest turns are always the ones kept.
  save() {
    let turns = this.turns;
    for (;;) {
      try {
        localStorage.setItem(STORAGE, JSON.stringify({ owner: this.owner, turns }));
        return;
      } catch {
        if (turns.length > 1) turns = turns.slice(Math.ceil(turns.length / 2));
        else if (turns.length === 1 && turns[0].strata?.citations?.some((c) => c.text)) turns = [withoutPassages(turns[0])];
        else return; // storage disabled: the conversation still works, it is just not kept
      }
    }
  }
}

function withoutPassages(turn) {
  return { ...turn, strata: { ...turn.strata, citations: turn.strata.citations.map((c) => ({ ...c, text: "" })) } };
}

function load(owner) {
  try {
    const stored = JSON.parse(localStorage.getItem(STORAGE));
    if (!stored || stored.owner !== owner) return [];
    // An answer that was still coming when the page closed is incomplete: say so, offer retry.
    for (const turn of stored.turns) {
      if (!["done", "stopped", "failed"].includes(turn.state)) {
        turn.state = "failed";
        turn.error = { kind: "unavailable", message: "The page was closed before the answer was complete." };
      }
    }
    return stored.turns;
  } catch {
    return [];
  }
}
