// Messages on the page: one <li> per message, with a speaker label, its media, the
// reasoning and the answer. Text (the model's and the user's) is rendered as Markdown
// and sanitised (markdown.js). The view follows a streaming reply only while the
// reader is at the bottom; scrolled up, it stays put and offers a "Latest" button.
import { duration, el } from "./dom.js";
import { StreamingMarkdown, handleCopyButtons } from "./markdown.js";

// How close to the end (px) still counts as "at the bottom".
const BOTTOM_SLACK = 48;

export function mediaElement(a, thumbnail) {
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

function mediaStrip(attachments) {
  const strip = el("div", "media");
  for (const a of attachments) {
    const figure = document.createElement("figure");
    if (a.kind === "image") {
      // A button, so the picture opens larger (the lightbox) by mouse or keyboard.
      const open = el("button", "image-open");
      open.type = "button";
      open.setAttribute("aria-label", "Open image " + a.filename);
      open.append(mediaElement(a, false));
      figure.append(open);
    } else {
      figure.append(mediaElement(a, false));
    }
    if (a.kind === "video" && a.duration_s != null) figure.append(el("figcaption", null, duration(a.duration_s)));
    strip.append(figure);
  }
  return strip;
}

const FINISH_NOTES = {
  cancelled: "Stopped",
  length: "Stopped at the token limit",
  loop: "Stopped: the model kept repeating itself",
  error: "Failed",
};

export class MessageList {
  /**
   * @param {object} opts
   * @param {HTMLOListElement} opts.list  the messages
   * @param {HTMLElement} opts.scroller  the element that scrolls them
   * @param {HTMLButtonElement} opts.jumpButton  "Latest", shown while the reader is scrolled up
   * @param {(model: string) => string} opts.speaker  the label of a reply's model
   */
  constructor({ list, scroller, jumpButton, speaker }) {
    this.list = list;
    this.scroller = scroller;
    this.jumpButton = jumpButton;
    this.speaker = speaker;
    this.texts = new WeakMap(); // li -> {body, reasoning}: StreamingMarkdown
    this.atBottom = true;
    handleCopyButtons(list);
    scroller.addEventListener("scroll", () => {
      this.atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight <= BOTTOM_SLACK;
      if (this.atBottom) jumpButton.hidden = true;
    });
    jumpButton.addEventListener("click", () => this.toBottom());
  }

  /** Add a message at the end. */
  add(role, text, reasoning, attachments, model) {
    const li = el("li", "msg " + role);
    li.append(el("div", "speaker", role === "user" ? "You" : this.speaker(model)));
    const texts = {};
    const onRender = () => this.stick();
    if (role === "assistant") {
      // Reasoning lives in its own collapsible block, apart from the answer.
      const details = el("details", "reasoning");
      details.hidden = !reasoning;
      const rbody = el("div", "rbody markdown");
      texts.reasoning = new StreamingMarkdown(rbody, reasoning, onRender);
      details.append(el("summary", null, "Thinking…"), rbody);
      li.append(details);
    }
    if (attachments && attachments.length) li.append(mediaStrip(attachments));
    const body = el("div", "body markdown");
    texts.body = new StreamingMarkdown(body, text, onRender);
    this.texts.set(li, texts);
    li.append(body, el("div", "meta"));
    this.list.append(li);
    this.stick();
    return li;
  }

  /** Follow the end only if the reader is there; otherwise offer the way back. */
  stick() {
    if (this.atBottom) this.scroller.scrollTop = this.scroller.scrollHeight;
    else this.jumpButton.hidden = false;
  }

  /** Jump to the end and follow it again (after the user sends, or presses "Latest"). */
  toBottom() {
    this.atBottom = true;
    this.jumpButton.hidden = true;
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  /** Empty an unfinished reply that will be replayed from the start. */
  clear(li) {
    const texts = this.texts.get(li);
    texts.body.set("");
    texts.reasoning.set("");
  }

  appendReasoning(li, text) {
    this.texts.get(li).reasoning.append(text);
  }

  appendContent(li, text) {
    this.texts.get(li).body.append(text);
  }

  /** The final text, rendered whole once: the stored text repairs anything a broken
   * stream lost, and the whole render settles what block-by-block rendering could not. */
  setContent(li, content, reasoning) {
    const texts = this.texts.get(li);
    texts.body.set(content);
    if (typeof reasoning === "string" && texts.reasoning) texts.reasoning.set(reasoning);
  }

  /** Show the reasoning block (first reasoning text of a stream), open or as it was. */
  showReasoning(li, open) {
    const details = li.querySelector(".reasoning");
    details.hidden = false;
    if (open != null) details.open = open;
  }

  hasReasoning(li) {
    const details = li.querySelector(".reasoning");
    return Boolean(details && !details.hidden);
  }

  thoughtFor(li, ms) {
    const summary = li.querySelector(".reasoning summary");
    if (summary && ms != null) summary.textContent = "Thought for " + (ms / 1000).toFixed(1) + " s";
  }

  closeReasoning(li) {
    li.querySelector(".reasoning").open = false;
  }

  /** A reply is over: say why it ended, unless it simply finished. */
  finish(li, finishReason, errorMessage, reasoningMs) {
    li.classList.remove("streaming");
    if (this.hasReasoning(li)) this.thoughtFor(li, reasoningMs);
    const note = FINISH_NOTES[finishReason];
    li.querySelector(".meta").textContent = note ? note + (errorMessage ? ": " + errorMessage : "") : "";
    if (finishReason === "error") li.classList.add("failed");
  }
}
