// Messages on the page: one <li> per message, with its media, reasoning and answer.
// Model output is only ever inserted with textContent, never as HTML.
import { duration, el } from "./dom.js";

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
    figure.append(mediaElement(a, false));
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
  constructor(list) {
    this.list = list;
  }

  /** Add a message at the end and bring it into view. */
  add(role, text, reasoning, attachments) {
    const li = el("li", "msg " + role);
    if (role === "assistant") {
      // Reasoning lives in its own collapsible block, apart from the answer.
      const details = el("details", "reasoning");
      details.hidden = !reasoning;
      details.append(el("summary", null, "Thinking…"), el("div", "rbody", reasoning || ""));
      li.append(details);
    }
    if (attachments && attachments.length) li.append(mediaStrip(attachments));
    li.append(el("div", "body", text || ""), el("div", "meta"));
    this.list.append(li);
    li.scrollIntoView({ block: "end" });
    return li;
  }

  /** Empty an unfinished reply that will be replayed from the start. */
  clear(li) {
    li.querySelector(".body").textContent = "";
    li.querySelector(".rbody").textContent = "";
  }

  appendReasoning(li, text) {
    li.querySelector(".rbody").textContent += text;
  }

  appendContent(li, text) {
    li.querySelector(".body").textContent += text;
  }

  /** Replace the answer with the stored text (it repairs anything a broken stream lost). */
  setContent(li, text) {
    const body = li.querySelector(".body");
    if (body.textContent !== text) body.textContent = text;
  }

  follow(li) {
    li.scrollIntoView({ block: "end" });
  }

  /** Open the reasoning block (first reasoning text of a stream). */
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
