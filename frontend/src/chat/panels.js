// Drop-down panels made of <details>: Esc or a click elsewhere closes them, and a
// menu closes once one of its items is chosen.

/** Make every ``details`` matched by ``selector`` (now or later) behave as a panel. */
export function panels(root, selector) {
  document.addEventListener("click", (e) => {
    for (const open of root.querySelectorAll(selector + "[open]")) {
      if (!open.contains(e.target)) open.open = false;
      else if (open.querySelector(".menu") && e.target.closest(".menu a, .menu button")) open.open = false;
    }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    const open = [...root.querySelectorAll(selector + "[open]")].find((d) => d.contains(document.activeElement));
    if (!open) return;
    e.preventDefault(); // Esc here closes the panel, not the reply being written
    open.open = false;
    open.querySelector("summary").focus();
  });
}
