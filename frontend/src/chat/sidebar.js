// The conversation list on the left; on a narrow screen, a drawer opened by the menu
// button and closed by Esc, the backdrop, the close button or choosing a conversation.

const NARROW = "(max-width: 760px)";

export class Sidebar {
  constructor({ layout, nav, toggle, close, backdrop, search, list }) {
    this.layout = layout;
    this.nav = nav;
    this.toggleButton = toggle;
    this.backdrop = backdrop;
    this.search = search;
    this.list = list;
    this.narrow = window.matchMedia(NARROW);
    toggle.addEventListener("click", () => (this.isOpen() ? this.close() : this.open()));
    close.addEventListener("click", () => this.close(true));
    backdrop.addEventListener("click", () => this.close(true));
    nav.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && this.isOpen()) {
        e.stopPropagation();
        this.close(true);
      }
    });
    this.narrow.addEventListener("change", () => this.close());
    // The search box itself is conversations.js's: full-text search on the server.
  }

  /** Whether the list is a drawer (narrow screen) rather than a column. */
  isDrawer() {
    return this.narrow.matches && !this.layout.classList.contains("no-conversation");
  }

  isOpen() {
    return this.layout.classList.contains("drawer-open");
  }

  open() {
    if (!this.isDrawer()) return;
    this.layout.classList.add("drawer-open");
    this.backdrop.hidden = false;
    this.toggleButton.setAttribute("aria-expanded", "true");
    const current = this.nav.querySelector("[aria-current=page]") || this.nav.querySelector("button, a, input, select");
    if (current) current.focus();
  }

  close(returnFocus) {
    if (!this.isOpen()) return;
    this.layout.classList.remove("drawer-open");
    this.backdrop.hidden = true;
    this.toggleButton.setAttribute("aria-expanded", "false");
    if (returnFocus) this.toggleButton.focus();
  }

  /** Put the cursor in the search box (opening the drawer first on a narrow screen). */
  focusSearch() {
    if (this.isDrawer() && !this.isOpen()) this.open();
    this.search.focus();
    this.search.select();
  }

  /** The open conversation takes its title from the first message, as the server does. */
  titleFromFirstMessage(text, attachments) {
    const lines = text.trim().split("\n");
    const title = lines[0] ? lines[0].slice(0, 80) : attachments + " attachment(s)";
    const link = this.list.querySelector("[aria-current=page]");
    if (link && link.textContent === "Untitled") link.textContent = title;
    const heading = document.getElementById("conversation-title");
    if (heading && heading.textContent === "New conversation") heading.textContent = title;
  }
}
