// One conversation's replies in flight: which generation is streaming into which
// message, the last seq shown for each (for resume), and what each event does.
import { feedbackBar } from "./feedback.js";

export class Conversation {
  constructor({ page, messages, composer, uploads, sidebar, socket, setStatus }) {
    this.page = page;
    this.messages = messages;
    this.composer = composer;
    this.uploads = uploads;
    this.sidebar = sidebar;
    this.socket = socket;
    this.setStatus = setStatus;
    this.gens = new Map(); // generation_id -> {bubble, lastSeq, done, reasoningStart, contentStart, error}
    this.pending = null; // reply bubble waiting for "accepted"
    this.current = null; // generation_id being streamed in this conversation
    // Set by the branches, conversation list and controls (branches.js, controls.js):
    // what a frame carries besides the message, and what follows its answer.
    this.hooks = {
      frameOptions: () => ({}),
      accepted: () => {},
      refused: () => {},
      forgotten: () => {},
      busyChanged: () => {},
    };
  }

  /** Show the stored messages; follow the replies that are still being written. */
  load(stored) {
    for (const m of stored) {
      this.composer.earlierChars += m.content.length;
      this.renderStored(m);
    }
  }

  /** One stored message, added at the end of the list; returns its element. */
  renderStored(m) {
    const li = this.messages.add(m.role, m.content, m.reasoning, m.attachments, m.model);
    li.dataset.messageId = m.id;
    if (m.role !== "assistant") return li;
    if (m.status === "queued" || m.status === "running") {
      // Text is stored at the end, so an unfinished reply is replayed from seq 0.
      this.messages.clear(li);
      this.track(m.id, li, 0);
    } else {
      this.messages.finish(li, m.finish_reason, m.error_message, m.reasoning_ms);
      feedbackBar(li, this.page, m.id, m.feedback);
    }
    return li;
  }

  /** [generation_id, last seq] of every reply not yet done: resumed on (re)connect. */
  unfinished() {
    return [...this.gens].filter(([, gen]) => !gen.done).map(([id, gen]) => [id, gen.lastSeq]);
  }

  track(generationId, li, lastSeq) {
    li.dataset.generationId = generationId;
    li.classList.add("streaming");
    this.gens.set(generationId, { bubble: li, lastSeq: lastSeq, done: false });
    this.current = generationId;
    this.composer.setBusy(true);
    this.hooks.busyChanged();
  }

  busy() {
    return Boolean(this.current) || Boolean(this.pending);
  }

  refreshSend() {
    this.composer.setBlocked(this.uploads.busy());
  }

  send(text) {
    const ready = this.uploads.ready();
    // A message may be only attachments; an upload still running holds it back.
    if ((!text.trim() && !ready.length) || this.busy() || this.uploads.busy()) return;
    const frame = { type: "generate", conversation_id: this.page.conversation_id, content: text };
    if (ready.length) frame.attachments = ready.map((a) => a.id);
    this.start(frame, { kind: "generate", text, attachments: ready });
    this.composer.clear();
    this.uploads.clear();
    this.sidebar.titleFromFirstMessage(text, ready.length);
  }

  /** Send a frame that starts a reply (``generate``, ``edit`` or ``regenerate``): the
   * user's message (none for a regeneration) and the reply appear at the end of the
   * list at once, and wait for "accepted". */
  start(frame, info) {
    if (this.busy()) return false;
    this.messages.toBottom();
    const text = info.text || "";
    const asked = info.kind === "regenerate" ? null : this.messages.add("user", text, "", info.attachments);
    const reply = this.messages.add("assistant", "", "", null, this.page.model);
    reply.classList.add("streaming");
    reply.dataset.asked = info.kind === "generate" ? text : "";
    this.sent = (this.sent || 0) + 1;
    // The server echoes client_ref on "accepted" or a refusal.
    const full = { ...this.composer.options(), ...this.hooks.frameOptions(), ...frame, client_ref: "m" + this.sent };
    this.pendingRef = full.client_ref;
    this.pendingInfo = { ...info, asked, reply };
    this.socket.send(full);
    this.pending = reply;
    this.pendingAsked = asked;
    this.composer.setBusy(true);
    this.composer.earlierChars += text.length;
    this.hooks.busyChanged();
    return true;
  }

  /** Take a turn back off the page and return its text to the composer. */
  takeBack(reply, asked) {
    if (asked && asked.classList.contains("user")) asked.remove();
    reply.remove();
    const text = reply.dataset.asked || "";
    this.composer.earlierChars -= text.length;
    if (text) this.composer.restore(text);
  }

  /** Stop the reply being written; false when there is none. */
  stop() {
    if (!this.current) return false;
    this.socket.stop(this.current);
    this.setStatus("Stopping…");
    return true;
  }

  /** The socket died after a generate frame went out but before "accepted": the page
   * cannot know whether it was stored, so it stops waiting for it. */
  lostFrames() {
    if (!this.pending) return;
    this.pending.remove(); // the question stays: it may have been stored (a reload tells)
    this.pending = null;
    this.composer.setBusy(this.current !== null);
    this.hooks.busyChanged();
  }

  settle(generationId) {
    if (this.current === generationId) {
      this.current = null;
      this.composer.setBusy(false);
    }
    this.hooks.busyChanged();
  }

  onEvent(ev) {
    if (ev.type === "accepted") {
      if (!this.pending) return;
      const reply = this.pending;
      reply.dataset.messageId = ev.generation_id;
      if (this.pendingAsked) this.pendingAsked.dataset.messageId = ev.user_message_id;
      this.pending = null;
      this.track(ev.generation_id, reply, 0);
      this.setStatus(ev.queue_position > 0 ? "Queued (" + ev.queue_position + " ahead)" : "");
      this.hooks.accepted(ev, this.pendingInfo);
      return;
    }
    const gen = ev.generation_id ? this.gens.get(ev.generation_id) : null;
    if (ev.type === "queued") {
      if (gen && !gen.done && this.current === ev.generation_id) {
        this.setStatus(ev.position > 0 ? "Queued (" + ev.position + " ahead)" : "Queued (next)");
      }
    } else if (ev.type === "started") {
      if (gen && ev.seq > gen.lastSeq) gen.lastSeq = ev.seq;
      if (gen && this.current === ev.generation_id) this.setStatus("");
    } else if (ev.type === "delta") {
      this.onDelta(gen, ev);
    } else if (ev.type === "done") {
      this.onDone(gen, ev);
    } else if (ev.type === "error") {
      this.onError(gen, ev);
    }
  }

  onDelta(gen, ev) {
    if (!gen || ev.seq <= gen.lastSeq) return; // already shown (resume overlap)
    gen.lastSeq = ev.seq;
    this.setStatus("");
    const li = gen.bubble;
    if (ev.kind === "reasoning") {
      if (!gen.reasoningStart) {
        gen.reasoningStart = Date.now();
        this.messages.showReasoning(li, true);
      } else {
        this.messages.showReasoning(li);
      }
      this.messages.appendReasoning(li, ev.text);
    } else {
      if (gen.reasoningStart && !gen.contentStart) {
        gen.contentStart = Date.now();
        this.messages.thoughtFor(li, gen.contentStart - gen.reasoningStart);
        this.messages.closeReasoning(li);
      }
      this.messages.appendContent(li, ev.text);
    }
  }

  onDone(gen, ev) {
    if (!gen || gen.done) return;
    gen.lastSeq = ev.seq;
    gen.done = true;
    // "done" carries the stored text: it repairs anything a broken stream lost.
    if (typeof ev.content === "string") this.messages.setContent(gen.bubble, ev.content, ev.reasoning);
    if (!gen.error && ev.error && ev.error.message) gen.error = ev.error.message;
    if (ev.error && ev.error.code === "context_length_exceeded") {
      // Refused before generating, and not kept: take the turn back off the page, and
      // its text back into the composer.
      this.takeBack(gen.bubble, gen.bubble.previousElementSibling);
      this.gens.delete(ev.generation_id);
      this.settle(ev.generation_id);
      this.setStatus(ev.error.message, true);
      this.hooks.forgotten(ev.generation_id);
      return;
    }
    const ms = gen.reasoningStart ? (gen.contentStart || Date.now()) - gen.reasoningStart : null;
    this.messages.finish(gen.bubble, ev.finish_reason, gen.error, ms);
    feedbackBar(gen.bubble, this.page, ev.generation_id, null);
    this.settle(ev.generation_id);
    this.setStatus("");
  }

  onError(gen, ev) {
    if (gen) {
      if (ev.code === "stream_unavailable") {
        this.setStatus(ev.message, true); // transient: the stream resumes by itself
        return;
      }
      gen.error = ev.message;
      return;
    }
    if (this.pending && (ev.client_ref == null || ev.client_ref === this.pendingRef)) {
      // The generate frame was refused (too long, over a quota...): nothing was stored.
      this.takeBack(this.pending, this.pendingAsked);
      this.pending = null;
      this.composer.setBusy(false);
      this.hooks.refused(this.pendingInfo, ev);
    }
    this.setStatus(ev.message, true);
  }
}
