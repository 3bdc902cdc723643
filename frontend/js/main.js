// The chat page: ask → stream the answer into its turn → keep it in the conversation; the
// header holds the model, the documents panel and the credentials.

import { announce } from "./announce.js";
import { ApiError, apiJson } from "./api.js";
import {
  completeSignIn,
  forgetCredentials,
  identity,
  saveKey,
  signedIn,
  startSignIn,
  storedKey,
  takeKeyFromAddress,
} from "./auth.js";
import { answerEvents } from "./chat.js";
import { loadConfig } from "./config.js";
import { Conversation } from "./conversation.js";
import { DocumentsPanel } from "./documents.js";
import { PassagePanel } from "./passage.js";
import { TurnView } from "./turn.js";

const MODEL_STORAGE = "strata.model";

const $ = (id) => document.getElementById(id);
const views = new Map(); // turn id → TurnView
const passages = new PassagePanel($("passage"), { onOpen: () => documents.close({ returnFocus: false }) });
const documents = new DocumentsPanel($("documents"), $("documents-toggle"), {
  onOpen: () => passages.close({ returnFocus: false }),
});
let conversation = null;
let active = null; // {controller, view} of the answer being streamed

const actions = {
  retry: (view) => {
    if (active) return false;
    ask(view);
    return true;
  },
  openPassage: (citation, button) => passages.open(citation, button),
  copy: (view) => copyAnswer(view),
  rate: (view, rating, comment) => rate(view, rating, comment),
};

// Asking.

// While an answer streams the button is Stop; the second click of a double click on Ask is not.
$("send").addEventListener("click", (event) => {
  if (!active) return;
  event.preventDefault();
  if (event.detail <= 1) stop();
});

$("ask").addEventListener("submit", (event) => {
  event.preventDefault();
  if (active) return; // Enter in the box while an answer streams does nothing
  const question = $("question").value.trim();
  if (!question) return;
  $("question").value = "";
  resizeComposer();
  ask(addView(conversation.add(question, currentModel())));
});

$("question").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("ask").requestSubmit();
  }
});
$("question").addEventListener("input", resizeComposer);

// Escape stops the answer, unless it is closing a panel, a dialog or a tooltip.
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape" || !active || event.defaultPrevented) return;
  if (event.target.closest?.(".panel, dialog, .confidence")) return;
  stop();
});

function stop() {
  active?.controller.abort();
}

function resizeComposer() {
  const input = $("question");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
}

async function ask(view) {
  const { turn } = view;
  if (active || !conversation.has(turn)) return;
  const controller = new AbortController();
  active = { controller, view };
  setBusy(true);
  Object.assign(turn, { state: "pending", answer: "", strata: null, error: null, requestId: null, feedback: null });
  Object.assign(turn, { finishReason: null, model: currentModel() });
  view.start();
  scrollToEnd();
  try {
    const messages = conversation.messagesFor(turn);
    for await (const event of answerEvents({ model: turn.model, messages, signal: controller.signal })) {
      if (event.type === "opened") turn.requestId = event.requestId;
      else if (event.type === "progress") view.progress(event);
      else if (event.type === "delta") view.append(event.text);
      else if (event.type === "final") {
        turn.strata = event.strata;
        turn.finishReason = event.finishReason;
        turn.requestId = event.strata.request_id || turn.requestId;
      }
    }
    turn.state = "done";
    view.complete();
  } catch (error) {
    if (controller.signal.aborted) {
      turn.state = "stopped";
      view.stopped();
    } else {
      const failure = error instanceof ApiError ? error : ApiError.network();
      turn.state = "failed";
      turn.error = { kind: failure.kind, message: failure.message, code: failure.code };
      if (failure.kind === "auth") showKeyDialog();
      view.failed(failure);
    }
  } finally {
    conversation.save();
    active = null;
    setBusy(false);
  }
}

function setBusy(busy) {
  const send = $("send");
  send.textContent = busy ? "Stop" : "Ask";
  send.classList.toggle("stop", busy);
  send.setAttribute("aria-label", busy ? "Stop the answer" : "Ask");
}

function addView(turn) {
  const view = new TurnView(turn, actions);
  views.set(turn.id, view);
  $("conversation").appendChild(view.root);
  $("empty").hidden = true;
  return view;
}

function scrollToEnd() {
  document.scrollingElement.scrollTop = document.scrollingElement.scrollHeight;
}

// Answers.

async function copyAnswer(view) {
  try {
    await navigator.clipboard.writeText(view.turn.answer);
    view.feedbackStatus("Answer copied.");
  } catch {
    view.feedbackStatus("Copying is not allowed here: select the text instead.", { error: true });
  }
}

async function rate(view, rating, comment) {
  const { turn } = view;
  if (!turn.requestId || !rating) return;
  try {
    await apiJson("/feedback", {
      method: "POST",
      body: { request_id: turn.requestId, rating, ...(comment ? { comment } : {}) },
    });
    turn.feedback = { rating, comment: comment || "", sent: true };
    conversation.save();
    view.showFeedback();
  } catch (error) {
    view.feedbackStatus(`Feedback not saved: ${error.message}`, { error: true });
  }
}

// Models.

function currentModel() {
  return $("model").value || "default";
}

async function loadModels() {
  const select = $("model");
  const saved = localStorage.getItem(MODEL_STORAGE) || "default";
  let aliases = ["default"];
  try {
    aliases = (await apiJson("/models")).data.map((m) => m.id);
  } catch {
    // the page still works with the default model
  }
  select.replaceChildren(...aliases.map((alias) => new Option(alias, alias)));
  select.value = aliases.includes(saved) ? saved : aliases.includes("default") ? "default" : aliases[0];
}

$("model").addEventListener("change", () => localStorage.setItem(MODEL_STORAGE, currentModel()));

// Credentials: each identity has its own conversation.

function showKeyDialog() {
  const dialog = $("key-dialog");
  if (!dialog.open) dialog.showModal();
  $("key").focus();
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("key").value.trim();
  if (!key) return;
  saveKey(key);
  $("key").value = "";
  $("key-dialog").close();
  if (identity() !== conversation.owner) {
    // A key that was refused never owned anything: its questions go on under the new key.
    if (conversation.turns.some((turn) => turn.error?.kind === "auth")) conversation.adopt(identity());
    else showConversation();
  }
  loadModels();
  documents.refresh();
  announce("API key saved.");
});
$("key-cancel").addEventListener("click", () => $("key-dialog").close());
$("sign-in").addEventListener("click", () => startSignIn().catch((error) => showSignInError(error)));
$("account").addEventListener("click", showKeyDialog);
$("forget").addEventListener("click", () => {
  conversation.clear();
  forgetCredentials();
  location.reload();
});

function showSignInError(error) {
  $("sign-in-error").textContent = `Sign-in failed: ${error.message}`;
  $("sign-in-error").hidden = false;
  showKeyDialog();
}

// The conversation of whoever the credentials name, as it was left.
function showConversation() {
  stop();
  for (const view of views.values()) view.dispose();
  views.clear();
  $("conversation").replaceChildren();
  conversation = new Conversation(identity());
  for (const turn of conversation.turns) addView(turn).restore();
  $("empty").hidden = conversation.turns.length > 0;
}

$("new-chat").addEventListener("click", () => {
  conversation.clear();
  showConversation();
  $("question").focus();
  announce("New chat.");
});

// Start.

async function start() {
  takeKeyFromAddress();
  const config = await loadConfig();
  $("sign-in").hidden = !config.signIn;
  try {
    await completeSignIn();
  } catch (error) {
    showSignInError(error);
  }
  showConversation();
  scrollToEnd();
  if (!storedKey() && !signedIn()) showKeyDialog();
  else {
    loadModels();
    documents.refresh(); // the header's count; it polls on only while something is indexing
  }
  $("question").focus();
}

start();
