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
  const thinkingBox = document.getElementById("thinking");
  const presetSelect = document.getElementById("preset");

  if (page.thinking_mode) {
    document.getElementById("thinking-toggle").hidden = false;
    thinkingBox.checked = page.thinking_mode === "on";
  }
  if (page.presets.length) {
    presetSelect.hidden = false;
    presetSelect.append(new Option("Model default sampling", ""));
    for (const p of page.presets) presetSelect.append(new Option(p.label, p.name));
    presetSelect.addEventListener("change", function () {
      // A preset belongs to a mode: choosing one sets the thinking toggle to match.
      if (presetSelect.value) thinkingBox.checked = presetSelect.value.startsWith("thinking");
    });
  }

  const gens = new Map(); // generation_id -> {bubble, lastSeq, done}
  let pending = null; // bubble waiting for "accepted"
  let current = null; // generation_id being streamed in this conversation
  let socket = null;
  let retryMs = 250;

  function setStatus(text, isError) {
    statusEl.textContent = text || "";
    statusEl.classList.toggle("error", Boolean(isError));
  }

  function mediaElement(a, thumbnail) {
    if (a.kind === "image") {
      const img = document.createElement("img");
      img.src = a.url;
      img.alt = a.filename;
      return img;
    }
    const video = document.createElement("video");
    video.src = a.url; // served with HTTP Range, so the player can seek
    video.preload = "metadata";
    video.muted = true;
    if (a.thumbnail_url) video.poster = a.thumbnail_url; // the worker's poster frame
    if (!thumbnail) video.controls = true;
    return video;
  }

  function duration(seconds) {
    const s = Math.round(seconds);
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  function mediaStrip(attachments) {
    const strip = document.createElement("div");
    strip.className = "media";
    for (const a of attachments) {
      const figure = document.createElement("figure");
      figure.append(mediaElement(a, false));
      if (a.kind === "video" && a.duration_s != null) {
        const caption = document.createElement("figcaption");
        caption.textContent = duration(a.duration_s);
        figure.append(caption);
      }
      strip.append(figure);
    }
    return strip;
  }

  function bubble(role, text, reasoning, attachments) {
    const li = document.createElement("li");
    li.className = "msg " + role;
    if (role === "assistant") {
      // Reasoning lives in its own collapsible block, apart from the answer.
      const details = document.createElement("details");
      details.className = "reasoning";
      details.hidden = !reasoning;
      const summary = document.createElement("summary");
      summary.textContent = "Thinking…";
      const rbody = document.createElement("div");
      rbody.className = "rbody";
      rbody.textContent = reasoning || "";
      details.append(summary, rbody);
      li.append(details);
    }
    if (attachments && attachments.length) li.append(mediaStrip(attachments));
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

  function thoughtFor(li, ms) {
    const summary = li.querySelector(".reasoning summary");
    if (summary && ms != null) summary.textContent = "Thought for " + (ms / 1000).toFixed(1) + " s";
  }

  function finishBubble(li, finishReason, errorMessage, reasoningMs) {
    li.classList.remove("streaming");
    const details = li.querySelector(".reasoning");
    if (details && !details.hidden) {
      const gen = gens.get(li.dataset.generationId);
      const ms = reasoningMs != null ? reasoningMs : gen && gen.reasoningStart ? (gen.contentStart || Date.now()) - gen.reasoningStart : null;
      thoughtFor(li, ms);
    }
    const notes = {
      cancelled: "Stopped",
      length: "Stopped at the token limit",
      loop: "Stopped: the model kept repeating itself",
      error: "Failed",
    };
    const meta = li.querySelector(".meta");
    meta.textContent = notes[finishReason] ? notes[finishReason] + (errorMessage ? ": " + errorMessage : "") : "";
    if (finishReason === "error") li.classList.add("failed");
  }

  async function postFeedback(messageId, payload) {
    let response;
    try {
      response = await fetch("/c/" + page.conversation_id + "/messages/" + messageId + "/feedback/", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify(payload),
      });
    } catch (err) {
      throw new Error("Not saved: network error");
    }
    const body = await response.json().catch(() => null);
    if (response.ok && body) return body;
    if (response.redirected) throw new Error("Not saved: log in again"); // to the login page
    throw new Error("Not saved: " + ((body && body.error && body.error.message) || "error " + response.status));
  }

  function thumbButton(icon, label) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "thumb";
    button.textContent = icon;
    button.setAttribute("aria-label", label);
    return button;
  }

  // Thumbs up/down under a finished reply; after a choice, an optional comment.
  function feedbackBar(li, messageId, saved) {
    const bar = document.createElement("div");
    bar.className = "feedback";
    const thumbs = { up: thumbButton("👍", "Good response"), down: thumbButton("👎", "Bad response") };
    const note = document.createElement("span");
    note.className = "fb-status";
    note.setAttribute("role", "status");
    const box = document.createElement("details");
    box.className = "fb-comment";
    const summary = document.createElement("summary");
    const comment = document.createElement("textarea");
    comment.rows = 2;
    comment.maxLength = page.max_comment_chars;
    comment.placeholder = "What was good or bad about it? (optional)";
    comment.setAttribute("aria-label", "Comment on this response");
    comment.value = saved ? saved.comment : "";
    const sendComment = document.createElement("button");
    sendComment.type = "button";
    sendComment.textContent = "Send";
    sendComment.setAttribute("aria-label", "Send feedback");
    box.append(summary, comment, sendComment);
    bar.append(thumbs.up, thumbs.down, note, box);
    li.append(bar);
    const buttons = [thumbs.up, thumbs.down, sendComment];
    let value = null;

    function show(state) {
      value = state ? state.value : null;
      for (const choice of ["up", "down"]) thumbs[choice].setAttribute("aria-pressed", String(value === choice));
      summary.textContent = state && state.comment ? "Edit comment" : "Add a comment";
      box.hidden = !value;
    }

    async function save(payload) {
      for (const b of buttons) b.disabled = true;
      note.classList.remove("error");
      note.textContent = "Saving…";
      try {
        const state = await postFeedback(messageId, payload);
        show(state);
        note.textContent = state.value ? "Thanks" : "";
        return state;
      } catch (err) {
        note.textContent = err.message;
        note.classList.add("error");
        return null;
      } finally {
        for (const b of buttons) b.disabled = false;
      }
    }

    for (const choice of ["up", "down"]) {
      thumbs[choice].addEventListener("click", async function () {
        // Pressing the chosen thumb again takes the verdict (and its comment) back.
        const state = await save({ value: value === choice ? null : choice });
        if (!state) return;
        if (state.value) box.open = true;
        else comment.value = "";
      });
    }
    sendComment.addEventListener("click", async function () {
      const state = await save({ value: value, comment: comment.value });
      if (!state) return;
      comment.value = state.comment;
      box.open = false;
    });
    show(saved);
  }

  function track(generationId, li, lastSeq) {
    li.dataset.generationId = generationId;
    li.classList.add("streaming");
    gens.set(generationId, { bubble: li, lastSeq: lastSeq, done: false });
    current = generationId;
    setBusy(true);
  }

  const outbox = []; // frames typed before the socket (re)opened

  function send(frame) {
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      outbox.push(frame);
      setStatus("Connecting…");
      return true;
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
    if (ev.type === "queued") {
      if (gen && !gen.done && current === ev.generation_id) {
        setStatus(ev.position > 0 ? "Queued (" + ev.position + " ahead)" : "Queued (next)");
      }
      return;
    }
    if (ev.type === "started") {
      if (gen && ev.seq > gen.lastSeq) gen.lastSeq = ev.seq;
      if (gen && current === ev.generation_id) setStatus("");
      return;
    }
    if (ev.type === "delta") {
      if (!gen || ev.seq <= gen.lastSeq) return; // already shown (resume overlap)
      gen.lastSeq = ev.seq;
      setStatus("");
      if (ev.kind === "reasoning") {
        const details = gen.bubble.querySelector(".reasoning");
        details.hidden = false;
        if (!gen.reasoningStart) {
          gen.reasoningStart = Date.now();
          details.open = true;
        }
        details.querySelector(".rbody").textContent += ev.text;
      } else {
        if (gen.reasoningStart && !gen.contentStart) {
          gen.contentStart = Date.now();
          thoughtFor(gen.bubble, gen.contentStart - gen.reasoningStart);
          gen.bubble.querySelector(".reasoning").open = false;
        }
        gen.bubble.querySelector(".body").textContent += ev.text;
      }
      gen.bubble.scrollIntoView({ block: "end" });
    } else if (ev.type === "done") {
      if (!gen || gen.done) return;
      gen.lastSeq = ev.seq;
      gen.done = true;
      // "done" carries the stored text: it repairs anything a broken stream lost.
      if (typeof ev.content === "string") {
        const body = gen.bubble.querySelector(".body");
        if (body.textContent !== ev.content) body.textContent = ev.content;
      }
      if (!gen.error && ev.error && ev.error.message) gen.error = ev.error.message;
      if (ev.error && ev.error.code === "context_length_exceeded") {
        // Refused before generating, and not kept: take the turn back off the page.
        const asked = gen.bubble.previousElementSibling;
        if (asked && asked.classList.contains("user")) asked.remove();
        gen.bubble.remove();
        gens.delete(ev.generation_id);
        if (current === ev.generation_id) {
          current = null;
          setBusy(false);
        }
        setStatus(ev.error.message, true);
        return;
      }
      finishBubble(gen.bubble, ev.finish_reason, gen.error);
      feedbackBar(gen.bubble, ev.generation_id, null);
      if (current === ev.generation_id) {
        current = null;
        setBusy(false);
      }
      setStatus("");
    } else if (ev.type === "error") {
      if (gen) {
        if (ev.code === "stream_unavailable") {
          setStatus(ev.message, true); // transient: the stream resumes by itself
          return;
        }
        gen.error = ev.message;
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
      while (outbox.length) send(outbox.shift());
    };
    socket.onmessage = function (msg) {
      onEvent(JSON.parse(msg.data));
    };
    socket.onclose = function (e) {
      if (e.code === 4401) {
        window.location.href = "/accounts/login/?next=" + encodeURIComponent(window.location.pathname);
        return;
      }
      if (pending && !outbox.length) {
        // The generate frame went out on the socket that died before "accepted":
        // the page cannot know whether it was stored, so stop waiting for it.
        pending.remove();
        pending = null;
        setBusy(current !== null);
      }
      setStatus("Connection lost. Reconnecting…", true);
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 5000);
    };
  }

  // --- attachments: pick, drop or paste; each uploads with a progress bar -------------
  const tray = document.getElementById("tray");
  const fileInput = document.getElementById("file-input");
  const attachButton = document.getElementById("attach");
  const uploads = []; // {file, chip, attachment, error, done}

  function csrfToken() {
    const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function refreshSend() {
    const busy = uploads.some((u) => !u.done);
    sendBtn.disabled = busy || Boolean(current) || Boolean(pending);
  }

  function addFiles(fileList) {
    if (!page.vision) {
      setStatus("This model cannot see images or videos; start a conversation with a vision model.", true);
      return;
    }
    for (const file of fileList) {
      if (uploads.length >= page.max_files) {
        setStatus("At most " + page.max_files + " files per message.", true);
        break;
      }
      upload(file);
    }
  }

  function upload(file) {
    const entry = { file: file, attachment: null, error: null, done: false };
    const chip = document.createElement("li");
    chip.className = "chip uploading";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = file.name;
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", "Uploading " + file.name);
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove";
    remove.textContent = "×";
    remove.setAttribute("aria-label", "Remove " + file.name);
    chip.append(name, bar, remove);
    tray.append(chip);
    entry.chip = chip;
    uploads.push(entry);
    refreshSend();

    const xhr = new XMLHttpRequest();
    remove.addEventListener("click", function () {
      if (!entry.done) xhr.abort();
      uploads.splice(uploads.indexOf(entry), 1);
      chip.remove();
      refreshSend();
    });
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) bar.value = Math.round((e.loaded / e.total) * 100);
    });
    xhr.addEventListener("load", function () {
      entry.done = true;
      chip.classList.remove("uploading");
      bar.remove();
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch (err) {
        body = null;
      }
      if (xhr.status === 201 && body) {
        entry.attachment = body;
        chip.classList.add("ready");
        const thumb = document.createElement("span");
        thumb.className = "thumb";
        thumb.append(mediaElement(body, true));
        if (body.kind === "video" && body.duration_s != null) {
          const label = document.createElement("span");
          label.className = "duration";
          label.textContent = duration(body.duration_s);
          thumb.append(label);
        }
        chip.insertBefore(thumb, name);
      } else {
        entry.error = (body && body.error && body.error.message) || "upload failed (" + xhr.status + ")";
        chip.classList.add("failed");
        const why = document.createElement("span");
        why.className = "why";
        why.setAttribute("role", "alert");
        why.textContent = entry.error;
        chip.insertBefore(why, remove);
      }
      refreshSend();
    });
    xhr.addEventListener("error", function () {
      entry.done = true;
      entry.error = "network error";
      chip.classList.add("failed");
      refreshSend();
    });
    xhr.open("POST", "/media/");
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    const data = new FormData();
    data.append("file", file);
    xhr.send(data);
  }

  if (page.vision) attachButton.hidden = false;
  attachButton.addEventListener("click", function () {
    fileInput.click();
  });
  fileInput.addEventListener("change", function () {
    addFiles(fileInput.files);
    fileInput.value = "";
  });
  form.addEventListener("dragover", function (e) {
    e.preventDefault();
    form.classList.add("dropping");
  });
  form.addEventListener("dragleave", function () {
    form.classList.remove("dropping");
  });
  form.addEventListener("drop", function (e) {
    e.preventDefault();
    form.classList.remove("dropping");
    if (e.dataTransfer && e.dataTransfer.files.length) addFiles(e.dataTransfer.files);
  });
  prompt.addEventListener("paste", function (e) {
    const pasted = e.clipboardData ? Array.from(e.clipboardData.files) : [];
    if (pasted.length) {
      e.preventDefault();
      addFiles(pasted);
    }
  });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    const text = prompt.value;
    if (!text.trim() || current || pending || uploads.some((u) => !u.done)) return;
    const ready = uploads.filter((u) => u.attachment).map((u) => u.attachment);
    const userBubble = bubble("user", text, "", ready);
    const reply = bubble("assistant", "");
    reply.classList.add("streaming");
    const frame = { type: "generate", conversation_id: page.conversation_id, content: text };
    if (page.thinking_mode) frame.thinking = thinkingBox.checked;
    if (presetSelect.value) frame.preset = presetSelect.value;
    if (ready.length) frame.attachments = ready.map((a) => a.id);
    if (!send(frame)) {
      userBubble.remove();
      reply.remove();
      return;
    }
    pending = reply;
    setBusy(true);
    prompt.value = "";
    uploads.length = 0;
    tray.replaceChildren();
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
    const li = bubble(m.role, m.content, m.reasoning, m.attachments);
    if (m.role !== "assistant") continue;
    if (m.status === "queued" || m.status === "running") {
      // Text is stored at the end, so an unfinished reply is replayed from seq 0.
      li.querySelector(".body").textContent = "";
      li.querySelector(".rbody").textContent = "";
      track(m.id, li, 0);
    } else {
      finishBubble(li, m.finish_reason, m.error_message, m.reasoning_ms);
      feedbackBar(li, m.id, m.feedback);
    }
  }
  connect();
})();
