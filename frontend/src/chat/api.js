// JSON requests to the conversation endpoints (docs/protocol.md, "Conversation
// endpoints"): the session cookie and the CSRF token go with every change.
import { csrfToken } from "./dom.js";

export class ApiError extends Error {
  constructor(message, status, field) {
    super(message);
    this.status = status;
    this.field = field || null; // the request field at fault, when the server names one
  }
}

/** ``method`` ``url`` with an optional JSON body; the parsed answer, or an ApiError
 * carrying the server's message. ``keepalive``: the request outlives the page (a choice
 * saved just before a reload or a link is followed). */
export async function api(method, url, body, { keepalive = false } = {}) {
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin", keepalive };
  if (method !== "GET") init.headers["X-CSRFToken"] = csrfToken();
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    throw new ApiError("Network error: not saved", 0);
  }
  const data = await response.json().catch(() => null);
  if (response.ok && data) return data;
  const error = data && data.error;
  if (response.status === 401) throw new ApiError("Your session has ended; log in again", 401);
  throw new ApiError((error && error.message) || "Error " + response.status, response.status, error && error.field);
}

/** "14:05" today, "Mon" this week, "Mar 3" this year, else "Mar 3, 2024". */
export function shortDate(iso) {
  const date = new Date(iso);
  const now = new Date();
  if (date.toDateString() === now.toDateString()) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  const days = (now - date) / 86_400_000;
  if (days < 6) return date.toLocaleDateString([], { weekday: "short" });
  const options = { month: "short", day: "numeric" };
  if (date.getFullYear() !== now.getFullYear()) options.year = "numeric";
  return date.toLocaleDateString([], options);
}
