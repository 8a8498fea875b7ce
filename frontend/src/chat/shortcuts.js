// Keyboard shortcuts: Esc stops the reply being written, Ctrl/Cmd+Shift+O starts a new
// conversation, "/" goes to the conversation search (when not typing somewhere).

function typing(target) {
  return target.closest("input, textarea, select, [contenteditable=''], [contenteditable=true]") !== null;
}

export function shortcuts({ stop, newConversation, focusSearch }) {
  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.isComposing) return;
    if (e.key === "Escape") {
      // A dialog or the drawer takes Esc for itself first.
      if (document.querySelector("dialog[open]")) return;
      if (stop && stop()) e.preventDefault();
      return;
    }
    if ((e.ctrlKey || e.metaKey) && e.shiftKey && !e.altKey && e.key.toLowerCase() === "o") {
      e.preventDefault();
      newConversation();
      return;
    }
    if (e.key === "/" && !e.ctrlKey && !e.metaKey && !e.altKey && !typing(e.target)) {
      e.preventDefault();
      focusSearch();
    }
  });
}
