// The chat WebSocket (docs/protocol.md): one per tab. Frames sent before the socket is
// open wait in an outbox; after every (re)connect the unfinished generations resume
// from the last seq shown, so nothing is lost or repeated.

const CLOSE_UNAUTHENTICATED = 4401;

export class ChatSocket {
  /**
   * @param {object} hooks
   * @param {(event: object) => void} hooks.onEvent  every server event, parsed
   * @param {() => Array<[string, number]>} hooks.unfinished  [generation_id, last seq shown]
   * @param {(text: string, isError?: boolean) => void} hooks.onStatus
   * @param {() => void} hooks.onLostFrames  the socket died after a frame went out unanswered
   */
  constructor(hooks) {
    this.hooks = hooks;
    this.socket = null;
    this.outbox = [];
    this.retryMs = 250;
  }

  connect() {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + window.location.host + "/ws/chat/");
    this.socket = socket;
    socket.onopen = () => {
      this.retryMs = 250;
      this.hooks.onStatus("");
      for (const [id, lastSeq] of this.hooks.unfinished()) this.resume(id, lastSeq);
      while (this.outbox.length) this.send(this.outbox.shift());
    };
    socket.onmessage = (msg) => this.hooks.onEvent(JSON.parse(msg.data));
    socket.onclose = (e) => {
      if (e.code === CLOSE_UNAUTHENTICATED) {
        window.location.href = "/accounts/login/?next=" + encodeURIComponent(window.location.pathname);
        return;
      }
      if (!this.outbox.length) this.hooks.onLostFrames();
      this.hooks.onStatus("Connection lost. Reconnecting…", true);
      setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 5000);
    };
  }

  /** Send a frame now, or as soon as the socket is open. */
  send(frame) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) {
      this.outbox.push(frame);
      this.hooks.onStatus("Connecting…");
      return;
    }
    this.socket.send(JSON.stringify(frame));
  }

  generate(frame) {
    this.send({ type: "generate", ...frame });
  }

  stop(generationId) {
    this.send({ type: "stop", generation_id: generationId });
  }

  resume(generationId, afterSeq) {
    this.send({ type: "resume", generation_id: generationId, after_seq: afterSeq });
  }
}
