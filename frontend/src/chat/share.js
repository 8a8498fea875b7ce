// "Share…": a read-only link to the branch on screen, which the owner can copy and
// revoke (a revoked link answers 404; sharing again makes a new one).
import { api } from "./api.js";

export function shareDialog({ page, dialog, open, url, copy, revoke, close, status }) {
  const say = (text, isError) => {
    status.textContent = text;
    status.classList.toggle("error", Boolean(isError));
  };
  open.addEventListener("click", async () => {
    open.closest("details").open = false;
    url.value = "";
    revoke.disabled = true;
    say("Making the link…");
    dialog.showModal();
    try {
      const answer = await api("POST", "/c/" + page.conversation_id + "/share/");
      url.value = answer.url;
      revoke.disabled = false;
      say("");
      url.select();
    } catch (err) {
      say(err.message, true);
    }
  });
  copy.addEventListener("click", async () => {
    if (!url.value) return;
    try {
      await navigator.clipboard.writeText(url.value);
    } catch (err) {
      url.select(); // no clipboard permission: the link is selected for Ctrl+C
      say("Press Ctrl+C to copy the selected link.");
      return;
    }
    say("Link copied.");
  });
  revoke.addEventListener("click", async () => {
    try {
      await api("DELETE", "/c/" + page.conversation_id + "/share/");
    } catch (err) {
      say(err.message, true);
      return;
    }
    url.value = "";
    revoke.disabled = true;
    say("Link revoked: it no longer opens. Share again for a new one.");
  });
  close.addEventListener("click", () => dialog.close());
}
