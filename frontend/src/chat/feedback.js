// Thumbs up/down under a finished reply; after a choice, an optional comment.
import { csrfToken, el } from "./dom.js";
import { icon } from "./icons.js";

async function postFeedback(conversationId, messageId, payload) {
  let response;
  try {
    response = await fetch("/c/" + conversationId + "/messages/" + messageId + "/feedback/", {
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

function thumbButton(name, label) {
  const button = el("button", "thumb");
  button.append(icon(name));
  button.type = "button";
  button.setAttribute("aria-label", label);
  return button;
}

export function feedbackBar(li, page, messageId, saved) {
  const bar = el("div", "feedback");
  const thumbs = { up: thumbButton("thumbs-up", "Good response"), down: thumbButton("thumbs-down", "Bad response") };
  const note = el("span", "fb-status");
  note.setAttribute("role", "status");
  const box = el("details", "fb-comment");
  const summary = document.createElement("summary");
  const comment = document.createElement("textarea");
  comment.rows = 2;
  comment.maxLength = page.max_comment_chars;
  comment.placeholder = "What was good or bad about it? (optional)";
  comment.setAttribute("aria-label", "Comment on this response");
  comment.value = saved ? saved.comment : "";
  const sendComment = el("button", null, "Send");
  sendComment.type = "button";
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
      const state = await postFeedback(page.conversation_id, messageId, payload);
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
