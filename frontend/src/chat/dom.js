// Small shared helpers: the page's data block, the CSRF token, the status line.

/** What the server put in the page (json_script, never executed). */
export function pageData() {
  return JSON.parse(document.getElementById("page-data").textContent);
}

export function csrfToken() {
  const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

/** "m:ss" for a video's length. */
export function duration(seconds) {
  const s = Math.round(seconds);
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

/** The line under the conversation header that says what is going on. */
export function statusLine(node) {
  return function setStatus(text, isError) {
    node.textContent = text || "";
    node.classList.toggle("error", Boolean(isError));
  };
}
