// Arena page (an ES module; no inline script): start a battle over HTTP, follow both
// answers on /ws/arena/ with docs/protocol.md's `resume` frames, vote, then show the names.
// Model output and prompts are only ever inserted with textContent, never as HTML.

const data = JSON.parse(document.getElementById("arena-data").textContent);
const form = document.getElementById("arena-form");
const promptBox = document.getElementById("arena-prompt");
const pairSelect = document.getElementById("arena-pair");
const chooseBox = document.getElementById("arena-choose");
const modelSelects = { a: document.getElementById("arena-model-a"), b: document.getElementById("arena-model-b") };
const sendButton = document.getElementById("arena-send");
const statusLine = document.getElementById("arena-status");
const section = document.getElementById("arena-battle");
const promptShown = document.getElementById("arena-prompt-shown");
const voteButtons = Array.from(document.querySelectorAll("#arena-vote button"));
const result = document.getElementById("arena-result");

const TERMINAL = new Set(["done", "cancelled", "error", "gone"]);
const NOTES = {
  cancelled: "Stopped",
  length: "Stopped at the length limit",
  loop: "Stopped: the model kept repeating itself",
  error: "Failed",
};
const VOTE_WORDS = { a: "A is better", b: "B is better", tie: "a tie", both_bad: "both are bad" };

function sideView(key) {
  const el = document.getElementById("arena-side-" + key);
  return {
    key: key,
    el: el,
    body: el.querySelector(".body"),
    meta: el.querySelector(".meta"),
    name: el.querySelector(".model-name"),
    reasoning: el.querySelector(".reasoning"),
    rbody: el.querySelector(".rbody"),
    generationId: null,
    lastSeq: 0,
    following: false,
    done: true,
    error: null,
  };
}

const sides = { a: sideView("a"), b: sideView("b") };
let battle = null;
let socket = null;
let retryMs = 250;

function setStatus(text, isError) {
  statusLine.textContent = text || "";
  statusLine.classList.toggle("error", Boolean(isError));
}

function csrfToken() {
  const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

// JSON in and out; a refusal becomes an Error with the server's message.
async function call(url, body) {
  const options = { headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    options.method = "POST";
    options.headers["Content-Type"] = "application/json";
    options.headers["X-CSRFToken"] = csrfToken();
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, options);
  } catch (err) {
    throw new Error("Network error: check your connection and try again.");
  }
  const answer = await response.json().catch(() => null);
  if (response.ok && answer) return answer;
  const message = answer && answer.error ? answer.error.message : "The server answered " + response.status + ".";
  const error = new Error(message);
  error.status = response.status;
  throw error;
}

// --- the socket: the chat protocol's resume frames, one per answer ----------------------

function send(frame) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
}

// client_ref names the side: a refused resume (an answer the server no longer has: a
// prompt too long for the model is not kept) comes back without a generation_id.
function resume(view) {
  send({ type: "resume", generation_id: view.generationId, after_seq: view.lastSeq, client_ref: "side-" + view.key });
}

function connect() {
  const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
  socket = new WebSocket(scheme + window.location.host + "/ws/arena/");
  socket.addEventListener("open", function () {
    retryMs = 250;
    for (const view of Object.values(sides)) if (view.following && !view.done) resume(view);
  });
  socket.addEventListener("message", function (message) {
    onEvent(JSON.parse(message.data));
  });
  socket.addEventListener("close", function (event) {
    if (event.code === 4401) {
      window.location.href = "/accounts/login/?next=" + encodeURIComponent(window.location.pathname);
      return;
    }
    if (!Object.values(sides).some((view) => view.following && !view.done)) {
      socket = null; // nothing to follow: reconnect when a battle needs it
      return;
    }
    setStatus("Connection lost. Reconnecting…", true);
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 5000);
  });
}

function follow(view) {
  view.following = true;
  view.done = false;
  view.el.classList.add("streaming");
  if (!socket) connect();
  else resume(view); // sent now if open, else by the "open" handler
}

function viewOf(generationId) {
  return Object.values(sides).find((view) => view.generationId === generationId) || null;
}

function onEvent(event) {
  const view = event.generation_id ? viewOf(event.generation_id) : null;
  if (!view) {
    const refused = event.type === "error" && sides[String(event.client_ref).replace("side-", "")];
    if (refused && event.client_ref.startsWith("side-")) {
      refused.done = true; // the stored battle says what became of it
      refused.el.classList.remove("streaming");
      if (Object.values(sides).every((v) => v.done)) refresh(0);
    } else if (event.type === "error") {
      setStatus(event.message, true);
    }
    return;
  }
  if (event.type === "queued") {
    view.meta.textContent = event.position > 0 ? "Queued (" + event.position + " ahead)" : "Queued (next)";
    return;
  }
  if (event.type === "error") {
    if (event.code === "stream_unavailable") setStatus(event.message, true); // it carries on
    else view.error = event.message;
    return;
  }
  if (event.seq !== undefined && event.seq <= view.lastSeq) return; // already shown
  if (event.seq !== undefined) view.lastSeq = event.seq;
  if (event.type === "started") {
    view.meta.textContent = "";
    setStatus("");
  } else if (event.type === "delta") {
    if (event.kind === "reasoning") {
      view.reasoning.hidden = false;
      view.rbody.textContent += event.text;
    } else {
      view.body.textContent += event.text;
    }
    view.meta.textContent = "";
  } else if (event.type === "done") {
    view.done = true;
    // `done` carries the stored text: it repairs anything a broken stream lost.
    if (typeof event.content === "string" && view.body.textContent !== event.content) view.body.textContent = event.content;
    finishSide(view, event.finish_reason, view.error || (event.error && event.error.message));
    if (Object.values(sides).every((v) => v.done)) refresh(0);
  }
}

// --- showing a battle ------------------------------------------------------------------

function finishSide(view, finishReason, errorMessage) {
  view.el.classList.remove("streaming");
  view.el.classList.toggle("failed", finishReason === "error");
  const note = NOTES[finishReason];
  view.meta.textContent = note ? note + (errorMessage ? ": " + errorMessage : "") : "";
}

function show(found, follows) {
  battle = found;
  section.hidden = false;
  form.hidden = true;
  promptShown.textContent = found.prompt;
  for (const side of found.sides) {
    const view = sides[side.side];
    view.generationId = side.generation_id;
    view.name.textContent = side.label || "";
    if (side.status === "gone") finishSide(view, "error", "this answer was not kept (the prompt did not fit the model)");
    if (!follows) continue;
    if (TERMINAL.has(side.status)) {
      view.done = true;
      view.body.textContent = side.content;
      view.rbody.textContent = side.reasoning;
      view.reasoning.hidden = !side.reasoning;
      if (side.status !== "gone") finishSide(view, side.finish_reason, side.error_message);
    } else {
      // Text is stored at the end: an unfinished answer is replayed from its first event.
      view.body.textContent = "";
      view.rbody.textContent = "";
      view.lastSeq = 0;
      follow(view);
    }
  }
  const open = found.state === "ready";
  for (const button of voteButtons) {
    button.disabled = !open;
    button.setAttribute("aria-pressed", String(found.vote === button.dataset.vote));
  }
  for (const view of Object.values(sides)) {
    view.el.classList.toggle("winner", found.vote === view.key);
  }
  if (found.state === "running") {
    result.textContent = "Both models are answering…";
  } else if (found.state === "ready") {
    result.textContent = "Which answer is better?";
  } else if (found.state === "invalid") {
    result.textContent = found.problem + " This battle cannot be voted on.";
  } else if (found.state === "voted") {
    result.textContent = "You voted: " + VOTE_WORDS[found.vote] + ". " + reveal(found);
  }
}

function reveal(found) {
  if (!found.blind) return "";
  const [a, b] = found.sides;
  return "Model A was " + a.label + "; model B was " + b.label + ".";
}

// After both answers end: the stored battle says whether it can be voted on. The record
// may land a moment after `done`, so "running" is asked again a few times.
async function refresh(attempt) {
  try {
    const found = await call("/arena/battles/" + battle.id + "/");
    if (found.state === "running" && attempt < 10) {
      setTimeout(() => refresh(attempt + 1), 500);
      return;
    }
    show(found, false);
  } catch (err) {
    setStatus(err.message, true);
  }
}

for (const button of voteButtons) {
  button.addEventListener("click", async function () {
    for (const b of voteButtons) b.disabled = true;
    setStatus("Saving your vote…");
    try {
      show(await call("/arena/battles/" + battle.id + "/vote/", { vote: button.dataset.vote }), false);
      setStatus("");
    } catch (err) {
      setStatus(err.message, true);
      if (err.status === 409) refresh(0);
      else for (const b of voteButtons) b.disabled = false;
    }
  });
}

// --- starting a battle -----------------------------------------------------------------

for (const key of ["a", "b"]) {
  for (const model of data.models) modelSelects[key].append(new Option(model.label, model.name));
}
if (data.models.length > 1) modelSelects.b.selectedIndex = 1;

function refreshForm() {
  const choosing = pairSelect.value === "choose";
  chooseBox.hidden = !choosing;
  const ready = choosing ? data.models.length >= 2 : data.random_ready;
  sendButton.disabled = !ready;
  if (!ready) setStatus("The arena needs two models online; none are paired right now. Try again later.", true);
  else setStatus("");
}

pairSelect.addEventListener("change", refreshForm);

form.addEventListener("submit", async function (event) {
  event.preventDefault();
  const text = promptBox.value;
  if (!text.trim() || sendButton.disabled) return;
  const body = { prompt: text };
  if (pairSelect.value === "choose") {
    body.model_a = modelSelects.a.value;
    body.model_b = modelSelects.b.value;
  }
  sendButton.disabled = true;
  setStatus("Starting…");
  try {
    const found = await call("/arena/battles/", body);
    window.history.pushState({}, "", "/arena/b/" + found.id + "/");
    setStatus("");
    show(found, true);
  } catch (err) {
    setStatus(err.message, true); // the prompt stays in the box
    sendButton.disabled = false;
  }
});

promptBox.addEventListener("keydown", function (event) {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    form.requestSubmit();
  }
});

window.addEventListener("popstate", function () {
  window.location.reload();
});

if (data.battle) show(data.battle, true);
else refreshForm();
