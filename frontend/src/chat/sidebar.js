// The conversation list on the left.

export class Sidebar {
  constructor(nav) {
    this.nav = nav;
  }

  /** The open conversation's entry takes its title from the first message, as the server does. */
  titleFromFirstMessage(text) {
    const title = this.nav.querySelector(".conversations li.current a");
    if (title && title.textContent === "Untitled") title.textContent = text.trim().split("\n")[0].slice(0, 80);
  }
}
