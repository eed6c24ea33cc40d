// citeqa chat page: streams answers from /v1/chat/completions, keeps the conversation, and opens
// each citation's quoted span highlighted in its document (GET /v1/documents/{id}).
// No build step, no external assets; all untrusted text goes through textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const STORE_KEY = "citeqa.conversation";
const KEY_KEY = "citeqa.apiKey";
// What the server appends to the answer text for text-only clients; the page renders it from data instead.
const APPENDIX = /\n\n(References:|See also \(|Note: )/;

const state = { turns: [], busy: false, docs: new Map() };
const HINT = document.getElementById("hint");

function authHeaders(extra = {}) {
  const key = $("api-key").value.trim();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function errorMessage(resp) {
  try {
    const body = await resp.json();
    if (body && body.error && body.error.message) return body.error.message;
  } catch (_) { /* not JSON */ }
  return `${resp.status} ${resp.statusText}`;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---- models ------------------------------------------------------------------------------
async function loadModels() {
  const select = $("model");
  const current = select.value;
  const resp = await fetch("/v1/models", { headers: authHeaders() });
  if (!resp.ok) {
    if (resp.status === 401) $("key-box").open = true;
    select.replaceChildren(el("option", "", "extractive"));
    return;
  }
  const body = await resp.json();
  select.replaceChildren(...body.data.map((m) => { const o = el("option", "", m.id); o.value = m.id; return o; }));
  if (current && body.data.some((m) => m.id === current)) select.value = current;
}

// ---- rendering ---------------------------------------------------------------------------
function citeButton(n, citation) {
  const button = el("button", "cite", `[${n}]`);
  button.type = "button";
  button.dataset.n = String(n);
  if (citation) {
    button.title = `${citation.title}: "${citation.quote}"`;
    button.addEventListener("click", () => openCitation(citation, button));
  }
  return button;
}

// Text with [n] markers turned into buttons that open the cited span.
function renderMarked(container, text, byNumber) {
  const parts = text.split(/\[(\d+)\]/);
  parts.forEach((part, i) => {
    if (i % 2 === 0) container.appendChild(document.createTextNode(part));
    else container.appendChild(citeButton(Number(part), byNumber.get(Number(part))));
  });
}

function citationLabel(c) {
  return [c.title, c.source, c.published_at || "undated"].filter(Boolean).join(" · ");
}

function referenceList(citations, className, title) {
  const wrap = el("div");
  wrap.appendChild(el("div", "refs-title", title));
  const list = el("ol", `refs ${className}`);
  for (const c of citations) {
    const item = el("li");
    item.appendChild(citeButton(c.n, c));
    const body = el("span", "ref-body");
    body.appendChild(el("span", "ref-label", citationLabel(c)));
    body.appendChild(el("span", "ref-quote", ` “${c.quote}”`));
    body.addEventListener("click", () => openCitation(c, item.querySelector(".cite")));
    item.appendChild(body);
    list.appendChild(item);
  }
  wrap.appendChild(list);
  return wrap;
}

function renderAnswer(bubble, answer, content) {
  bubble.classList.remove("streaming");
  bubble.replaceChildren();
  if (!answer) {  // a server that sent no structured answer: show the text as is
    bubble.appendChild(el("div", "answer-text", content));
    return;
  }
  const byNumber = new Map(answer.citations.map((c) => [c.n, c]));
  if (answer.refused) {
    bubble.classList.add("refused");
    bubble.appendChild(el("div", "badge", "Not answered by the documents"));
    bubble.appendChild(el("div", "answer-text", answer.text));
    if (answer.see_also.length) {
      bubble.appendChild(referenceList(answer.see_also, "see-also", "Closest passages (not an answer)"));
    }
  } else if (answer.has_conflict) {
    bubble.classList.add("conflict");
    bubble.appendChild(el("div", "badge", "Sources disagree"));
    bubble.appendChild(el("div", "answer-text", "The sources give different accounts:"));
    const sides = el("div", "sides");
    for (const side of answer.conflicts) {
      const card = el("div", "side");
      card.appendChild(el("div", "side-head", [side.source || side.title, side.published_at || "undated"].join(" · ")));
      const statement = el("div", "answer-text");
      for (const n of side.citations) {
        const c = byNumber.get(n);
        if (!c) continue;
        statement.appendChild(document.createTextNode(`${c.quote} `));
        statement.appendChild(citeButton(n, c));
        statement.appendChild(document.createTextNode(" "));
      }
      card.appendChild(statement);
      sides.appendChild(card);
    }
    bubble.appendChild(sides);
  } else {
    const text = el("div", "answer-text");
    renderMarked(text, answer.text, byNumber);
    bubble.appendChild(text);
  }
  if (answer.notice) bubble.appendChild(el("div", "notice", answer.notice));
  if (answer.citations.length) bubble.appendChild(referenceList(answer.citations, "cited", "References"));
}

function addBubble(role) {
  HINT.remove();
  const bubble = el("li", `msg ${role}`);
  $("messages").appendChild(bubble);
  bubble.scrollIntoView({ block: "end" });
  return bubble;
}

function showError(bubble, message) {
  bubble.classList.remove("streaming");
  bubble.classList.add("error");
  bubble.replaceChildren(el("div", "answer-text", `Error: ${message}`));
}

// ---- the document viewer ------------------------------------------------------------------
async function fetchDocument(docId) {
  if (!state.docs.has(docId)) {
    const resp = await fetch(`/v1/documents/${encodeURIComponent(docId)}`, { headers: authHeaders() });
    if (!resp.ok) throw new Error(await errorMessage(resp));
    state.docs.set(docId, await resp.json());
  }
  return state.docs.get(docId);
}

async function openCitation(citation, button) {
  document.querySelectorAll(".cite.active").forEach((b) => b.classList.remove("active"));
  if (button) button.classList.add("active");
  const viewer = $("viewer");
  viewer.hidden = false;
  $("doc-title").textContent = citation.title;
  $("doc-meta").textContent = "loading…";
  $("doc-check").textContent = "";
  const textBox = $("doc-text");
  let doc;
  try {
    doc = await fetchDocument(citation.doc_id);
  } catch (err) {
    $("doc-meta").textContent = `Cannot open the document: ${err.message}`;
    textBox.replaceChildren();
    return;
  }
  const meta = $("doc-meta");
  meta.replaceChildren(document.createTextNode(
    `${doc.source || "source not named"} · ${doc.published_at || "undated"} · characters ${citation.start}–${citation.end}`));
  if (doc.url) {
    meta.appendChild(document.createTextNode(" · "));
    const link = el("a", "", "original");
    link.href = doc.url;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    meta.appendChild(link);
  }
  const span = doc.text.slice(citation.start, citation.end);
  const check = $("doc-check");
  check.className = span === citation.quote ? "check" : "check bad";
  check.textContent = span === citation.quote
    ? "✓ The quote matches the document text exactly."
    : "✗ The quote does not match the document text at these offsets (the document changed since).";
  const mark = el("mark", "", span);
  mark.id = "cited-span";
  textBox.replaceChildren(
    document.createTextNode(doc.text.slice(0, citation.start)), mark, document.createTextNode(doc.text.slice(citation.end)));
  mark.scrollIntoView({ block: "center" });
}

// ---- asking ------------------------------------------------------------------------------
function conversationMessages() {
  const messages = [];
  for (const turn of state.turns) {
    messages.push({ role: "user", content: turn.question });
    if (turn.content) messages.push({ role: "assistant", content: turn.content });
  }
  return messages;
}

// Reads server-sent events; calls onChunk with each parsed chunk until [DONE].
async function readStream(resp, onChunk) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        onChunk(JSON.parse(data));
      }
    }
  }
}

async function ask(question) {
  const turn = { question, content: "", answer: null };
  addBubble("user").textContent = question;
  const bubble = addBubble("assistant");
  bubble.classList.add("streaming");
  const live = el("div", "answer-text");
  bubble.appendChild(live);
  const messages = [...conversationMessages(), { role: "user", content: question }];
  let resp;
  try {
    resp = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: authHeaders({ "Content-Type": "application/json" }),
      body: JSON.stringify({ model: $("model").value || "extractive", messages, stream: true }),
    });
  } catch (err) {
    showError(bubble, err.message);
    return;
  }
  if (!resp.ok) {
    if (resp.status === 401) $("key-box").open = true;
    showError(bubble, await errorMessage(resp));
    return;
  }
  await readStream(resp, (chunk) => {
    if (chunk.citeqa) turn.answer = chunk.citeqa;
    const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
    if (delta && delta.content) {
      turn.content += delta.content;
      const cut = turn.content.search(APPENDIX);
      live.textContent = cut >= 0 ? turn.content.slice(0, cut) : turn.content;
      bubble.scrollIntoView({ block: "end" });
    }
  });
  renderAnswer(bubble, turn.answer, turn.content);
  bubble.scrollIntoView({ block: "end" });
  state.turns.push(turn);
  sessionStorage.setItem(STORE_KEY, JSON.stringify(state.turns));
}

function restore() {
  try {
    state.turns = JSON.parse(sessionStorage.getItem(STORE_KEY) || "[]");
  } catch (_) {
    state.turns = [];
  }
  for (const turn of state.turns) {
    addBubble("user").textContent = turn.question;
    renderAnswer(addBubble("assistant"), turn.answer, turn.content);
  }
}

function init() {
  $("api-key").value = localStorage.getItem(KEY_KEY) || "";
  $("api-key").addEventListener("change", () => {
    localStorage.setItem(KEY_KEY, $("api-key").value.trim());
    state.docs.clear();
    loadModels();
  });
  $("ask-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const question = $("question").value.trim();
    if (!question || state.busy) return;
    state.busy = true;
    $("send").disabled = true;
    $("question").value = "";
    try {
      await ask(question);
    } finally {
      state.busy = false;
      $("send").disabled = false;
      $("question").focus();
    }
  });
  $("question").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("ask-form").requestSubmit();
    }
  });
  $("new-chat").addEventListener("click", () => {
    state.turns = [];
    sessionStorage.removeItem(STORE_KEY);
    $("messages").replaceChildren(HINT);
    $("viewer").hidden = true;
  });
  $("close-viewer").addEventListener("click", () => { $("viewer").hidden = true; });
  restore();
  loadModels();
}

init();
