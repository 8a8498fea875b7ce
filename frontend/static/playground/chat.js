// Chat page: one WebSocket per tab, generate/stop/resume per docs/protocol.md.
// Model output is only ever inserted with textContent, never as HTML.
(function () {
  "use strict";
  const page = JSON.parse(document.getElementById("page-data").textContent);
  const list = document.getElementById("messages");
  const form = document.getElementById("composer");
  const prompt = document.getElementById("prompt");
  const sendBtn = document.getElementById("send");
  const stopBtn = document.getElementById("stop");
  const statusEl = document.getElementById("status");

  const gens = new Map(); // generation_id -> {bubble, lastSeq, done}
  let pending = null; // bubble waiting for "accepted"
  let current = null; // generation_id being streamed in this conversation
  let socket = null;
  let retryMs = 250;

  function setStatus(text, isError) {
    statusEl.textContent = text || "";
    statusEl.classList.toggle("error", Boolean(isError));
  }

  function bubble(role, text) {
    const li = document.createElement("li");
    li.className = "msg " + role;
    const body = document.createElement("div");
    body.className = "body";
    body.textContent = text || "";
    const meta = document.createElement("div");
    meta.className = "meta";
    li.append(body, meta);
    list.append(li);
    li.scrollIntoView({ block: "end" });
    return li;
  }

  function setBusy(busy) {
    sendBtn.disabled = busy;
    stopBtn.hidden = !busy;
  }

  function finishBubble(li, finishReason, errorMessage) {
    li.classList.remove("streaming");
    const notes = { cancelled: "Stopped", length: "Stopped at the token limit", error: "Failed" };
    const meta = li.querySelector(".meta");
    meta.textContent = notes[finishReason] ? notes[finishReason] + (errorMessage ? ": " + errorMessage : "") : "";
    if (finishReason === "error") li.classList.add("failed");
  }

  function track(generationId, li, lastSeq) {
    li.dataset.generationId = generationId;
    li.classList.add("streaming");
    gens.set(generationId, { bubble: li, lastSeq: lastSeq, done: false });
    current = generationId;
    setBusy(true);
  }

  function send(frame) {
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      setStatus("Not connected. Reconnecting…", true);
      return false;
    }
    socket.send(JSON.stringify(frame));
    return true;
  }

  function onEvent(ev) {
    if (ev.type === "accepted") {
      if (!pending) return;
      track(ev.generation_id, pending, 0);
      pending = null;
      setStatus(ev.queue_position > 0 ? "Queued (" + ev.queue_position + " ahead)" : "");
      return;
    }
    const gen = ev.generation_id ? gens.get(ev.generation_id) : null;
    if (ev.type === "delta") {
      if (!gen || ev.seq <= gen.lastSeq) return; // already shown (resume overlap)
      gen.lastSeq = ev.seq;
      setStatus("");
      if (ev.kind === "content") gen.bubble.querySelector(".body").textContent += ev.text;
      gen.bubble.scrollIntoView({ block: "end" });
    } else if (ev.type === "done") {
      if (!gen || gen.done) return;
      gen.lastSeq = ev.seq;
      gen.done = true;
      finishBubble(gen.bubble, ev.finish_reason, gen.error);
      if (current === ev.generation_id) {
        current = null;
        setBusy(false);
      }
      setStatus("");
    } else if (ev.type === "error") {
      if (gen) {
        gen.error = ev.message;
        if (ev.code === "log_expired") window.location.reload();
        return;
      }
      if (pending) {
        pending.remove();
        pending = null;
        setBusy(false);
      }
      setStatus(ev.message, true);
    }
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + "/ws/chat/");
    socket.onopen = function () {
      retryMs = 250;
      setStatus("");
      for (const [id, gen] of gens) {
        if (!gen.done) send({ type: "resume", generation_id: id, after_seq: gen.lastSeq });
      }
    };
    socket.onmessage = function (msg) {
      onEvent(JSON.parse(msg.data));
    };
    socket.onclose = function (e) {
      if (e.code === 4401) {
        window.location.href = "/accounts/login/?next=" + encodeURIComponent(window.location.pathname);
        return;
      }
      if (pending) {
        pending.remove();
        pending = null;
        setBusy(current !== null);
      }
      setStatus("Connection lost. Reconnecting…", true);
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 5000);
    };
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    const text = prompt.value;
    if (!text.trim() || current || pending) return;
    const userBubble = bubble("user", text);
    const reply = bubble("assistant", "");
    reply.classList.add("streaming");
    if (!send({ type: "generate", conversation_id: page.conversation_id, content: text })) {
      userBubble.remove();
      reply.remove();
      return;
    }
    pending = reply;
    setBusy(true);
    prompt.value = "";
    const title = document.querySelector(".conversations li.current a");
    if (title && title.textContent === "Untitled") title.textContent = text.trim().split("\n")[0].slice(0, 80);
  });

  prompt.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      form.requestSubmit();
    }
  });

  stopBtn.addEventListener("click", function () {
    if (current) {
      send({ type: "stop", generation_id: current });
      setStatus("Stopping…");
    }
  });

  for (const m of page.messages) {
    const li = bubble(m.role, m.content);
    if (m.role !== "assistant") continue;
    if (m.status === "queued" || m.status === "running") {
      // Text is stored at the end, so an unfinished reply is replayed from seq 0.
      li.querySelector(".body").textContent = "";
      track(m.id, li, 0);
    } else {
      finishBubble(li, m.finish_reason, m.error_message);
    }
  }
  connect();
})();
