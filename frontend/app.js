// Strata chat: sends a question to <apiBaseUrl>/chat/completions (stream: true) and renders the
// answer token by token as the SSE chunks arrive; the last chunk carries the citations.
"use strict";

const KEY_STORAGE = "strata.apiKey";
const SAME_ORIGIN_BASE_URL = "/v1";

// Deployed, the page sits on CloudFront and config.json (written at deploy time) names the API, so
// one build serves every stage. The local stack serves the page from the gateway itself and has no
// config.json: the API is then on the page's own origin.
const config = loadConfig();

async function loadConfig() {
  try {
    const response = await fetch("config.json", { cache: "no-cache" });
    if (response.ok) return await response.json();
  } catch (error) {
    // unreachable or not JSON: same origin
  }
  return {};
}

async function apiUrl(path) {
  const base = (await config).apiBaseUrl || SAME_ORIGIN_BASE_URL;
  return `${base.replace(/\/+$/, "")}${path}`;
}

// The local stack prints a link with the key in the fragment: it never reaches a server log.
const fragmentKey = new URLSearchParams(location.hash.slice(1)).get("key");
if (fragmentKey) {
  localStorage.setItem(KEY_STORAGE, fragmentKey);
  history.replaceState(null, "", location.pathname);
}

const keyForm = document.getElementById("key-form");
const keyInput = document.getElementById("key");
const askForm = document.getElementById("ask");
const questionInput = document.getElementById("question");
const sendButton = document.getElementById("send");
const conversation = document.getElementById("conversation");

function apiKey() { return localStorage.getItem(KEY_STORAGE) || ""; }
function showKeyForm(show) { keyForm.hidden = !show; }
showKeyForm(!apiKey());

keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  localStorage.setItem(KEY_STORAGE, keyInput.value.trim());
  keyInput.value = "";
  showKeyForm(false);
});

askForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const question = questionInput.value.trim();
  if (!question) return;
  questionInput.value = "";
  sendButton.disabled = true;
  try {
    await ask(question, addTurn(question));
  } finally {
    sendButton.disabled = false;
    questionInput.focus();
  }
});

function addTurn(question) {
  const node = document.getElementById("turn").content.firstElementChild.cloneNode(true);
  node.querySelector(".question").textContent = question;
  node.querySelector(".status").textContent = "Searching your documents…";
  conversation.appendChild(node);
  node.scrollIntoView({ behavior: "smooth", block: "end" });
  return node;
}

async function ask(question, turn) {
  const text = turn.querySelector(".text");
  const status = turn.querySelector(".status");
  const fail = (message) => {
    status.textContent = message;
    status.classList.add("error");
    turn.classList.add("done");
  };
  let response;
  try {
    response = await fetch(await apiUrl("/chat/completions"), {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${apiKey()}` },
      body: JSON.stringify({ model: "default", stream: true, messages: [{ role: "user", content: question }] }),
    });
  } catch (error) {
    return fail("The service cannot be reached right now. Please try again in a moment.");
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    if (response.status === 401) showKeyForm(true);
    return fail(body.error?.message || `Request failed (${response.status}).`);
  }
  status.textContent = "";
  for await (const chunk of sseChunks(response.body)) {
    if (chunk.error) return fail(chunk.error.message || "The answer was interrupted.");
    for (const choice of chunk.choices || []) {
      if (choice.delta?.content) text.textContent += choice.delta.content;
    }
    if (chunk.strata) renderCitations(turn, chunk.strata.citations || []);
  }
  turn.classList.add("done");
}

async function* sseChunks(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        yield JSON.parse(data);
      }
    }
  }
}

function renderCitations(turn, citations) {
  const list = turn.querySelector(".citations");
  list.replaceChildren(...citations.map((citation) => {
    const item = document.createElement("li");
    const where = citation.page ? `, page ${citation.page}` : "";
    item.textContent = `${citation.title} (${citation.source_key}${where}) `;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = `score ${citation.score.toFixed(2)}`;
    item.appendChild(score);
    return item;
  }));
}
