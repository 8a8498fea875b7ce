// The conversation list: each entry with its model and date, pinned ones first; rename,
// pin and delete (with Undo) from an entry's menu; full-text search on the server
// (titles and message text) from the search box.
import { api, shortDate } from "./api.js";
import { el } from "./dom.js";
import { icon } from "./icons.js";

const UNDO_KEY = "playground.undo"; // a delete made just before leaving the page
const SEARCH_DELAY_MS = 200;
const MARK_START = "\u0002";
const MARK_END = "\u0003";

/** A search snippet with its matches in <mark>, built from text nodes (never HTML). */
function snippetNode(snippet) {
  const node = el("span", "snippet");
  const parts = snippet.split(MARK_START);
  node.append(document.createTextNode(parts[0]));
  for (const part of parts.slice(1)) {
    const [hit, rest] = part.split(MARK_END);
    node.append(el("mark", null, hit), document.createTextNode(rest || ""));
  }
  return node;
}

function menuButton(name, text) {
  const button = el("button", "secondary");
  button.type = "button";
  button.append(icon(name), document.createTextNode(text));
  return button;
}

export class ConversationList {
  constructor({ page, list, search, searchStatus, toast, sidebar, onCurrentChanged }) {
    this.page = page;
    this.list = list;
    this.search = search;
    this.searchStatus = searchStatus;
    this.toast = toast;
    this.sidebar = sidebar;
    this.onCurrentChanged = onCurrentChanged || (() => {});
    this.items = page.conversations || [];
    this.query = "";
    this.timer = null;
    search.addEventListener("input", () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.find(search.value.trim()), SEARCH_DELAY_MS);
    });
    search.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && search.value) {
        e.preventDefault();
        e.stopPropagation();
        search.value = "";
        this.find("");
      }
    });
    toast.undo.addEventListener("click", () => this.undo());
    this.render(this.items);
    this.offerPendingUndo();
  }

  render(items, searching) {
    this.list.replaceChildren();
    if (!items.length) {
      this.list.append(el("li", "muted empty-list", searching ? "No conversations match." : "No conversations yet."));
      return;
    }
    for (const c of items) this.list.append(this.entry(c));
  }

  entry(c) {
    const li = el("li", "conversation" + (c.pinned ? " pinned" : ""));
    li.dataset.id = c.id;
    const current = c.id === this.page.conversation_id;
    if (current) li.classList.add("current");
    const link = el("a");
    link.href = "/c/" + c.id + "/";
    if (current) link.setAttribute("aria-current", "page");
    const title = el("span", "title", c.title || "Untitled");
    const meta = el("span", "meta");
    if (c.pinned) {
      const pin = icon("pin");
      pin.setAttribute("aria-hidden", "false");
      pin.setAttribute("role", "img");
      pin.setAttribute("aria-label", "Pinned");
      meta.append(pin);
    }
    // The date first: model names are long, and the date tells same-titled chats apart.
    const time = el("time", null, shortDate(c.updated_at));
    time.dateTime = c.updated_at;
    time.title = new Date(c.updated_at).toLocaleString();
    meta.append(time, document.createTextNode(" · " + c.model_label));
    link.append(title, meta);
    if (c.snippet) link.append(snippetNode(c.snippet));
    li.append(link, this.menu(c, li));
    return li;
  }

  menu(c, li) {
    const menu = el("details", "entry-menu");
    const summary = el("summary");
    summary.append(icon("more"));
    summary.setAttribute("aria-label", "Actions for " + (c.title || "Untitled"));
    const panel = el("div", "menu");
    const rename = menuButton("edit", "Rename");
    const pin = menuButton(c.pinned ? "pin-off" : "pin", c.pinned ? "Unpin" : "Pin");
    const remove = menuButton("trash", "Delete");
    remove.classList.add("danger");
    rename.addEventListener("click", () => {
      menu.open = false;
      this.rename(c, li);
    });
    pin.addEventListener("click", () => {
      menu.open = false;
      this.change(c, { pinned: !c.pinned });
    });
    remove.addEventListener("click", () => {
      menu.open = false;
      this.remove(c);
    });
    panel.append(rename, pin, remove);
    menu.append(summary, panel);
    return menu;
  }

  /** Rename in place: Enter saves, Esc cancels. */
  rename(c, li) {
    const link = li.querySelector("a");
    const form = el("form", "rename");
    const input = el("input");
    input.value = c.title;
    input.maxLength = 200;
    input.setAttribute("aria-label", "New title");
    form.append(input);
    link.hidden = true;
    li.insertBefore(form, link);
    input.focus();
    input.select();
    let done = false;
    const finish = async (save) => {
      if (done) return;
      done = true;
      const title = input.value.trim();
      if (save && title && title !== c.title) {
        const saved = await this.change(c, { title });
        if (!saved) {
          done = false;
          input.focus();
          return;
        }
      }
      form.remove();
      link.hidden = false;
      link.focus();
    };
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      finish(true);
    });
    input.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.preventDefault();
        e.stopPropagation();
        finish(false);
      }
    });
    input.addEventListener("blur", () => finish(true));
  }

  /** PATCH the conversation, then show the list as it now is. */
  async change(c, fields) {
    try {
      const { conversation } = await api("PATCH", "/c/" + c.id + "/", fields);
      Object.assign(c, conversation);
      if (c.id === this.page.conversation_id) this.onCurrentChanged(conversation);
      await this.refresh();
      return true;
    } catch (err) {
      this.searchStatus.textContent = err.message;
      return false;
    }
  }

  async remove(c) {
    let answer;
    try {
      answer = await api("DELETE", "/c/" + c.id + "/");
    } catch (err) {
      this.searchStatus.textContent = err.message;
      return;
    }
    const deleted = { id: c.id, title: c.title, until: answer.undo_until };
    if (c.id === this.page.conversation_id) {
      // The open conversation is gone: go to a new one, and offer Undo there.
      sessionStorage.setItem(UNDO_KEY, JSON.stringify(deleted));
      window.location.assign("/");
      return;
    }
    this.items = this.items.filter((other) => other.id !== c.id);
    this.render(this.items);
    this.offerUndo(deleted);
  }

  offerPendingUndo() {
    const saved = sessionStorage.getItem(UNDO_KEY);
    sessionStorage.removeItem(UNDO_KEY);
    if (saved) this.offerUndo(JSON.parse(saved));
  }

  /** "Deleted “title”. Undo" for as long as the server keeps it (at most 10 s). */
  offerUndo(deleted) {
    const left = new Date(deleted.until) - Date.now();
    if (left <= 1000) return;
    this.deleted = deleted;
    this.toast.text.textContent = "Deleted “" + (deleted.title || "Untitled") + "”.";
    this.toast.box.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => (this.toast.box.hidden = true), Math.min(left - 500, 10_000));
  }

  async undo() {
    const deleted = this.deleted;
    this.toast.box.hidden = true;
    if (!deleted) return;
    try {
      await api("POST", "/c/" + deleted.id + "/restore/");
    } catch (err) {
      this.searchStatus.textContent = "Could not restore it: " + err.message;
      return;
    }
    this.deleted = null;
    this.searchStatus.textContent = "Restored “" + (deleted.title || "Untitled") + "”.";
    await this.refresh();
  }

  /** Search on the server; an empty box shows the whole list again. */
  async find(query) {
    this.query = query;
    if (!query) {
      this.searchStatus.textContent = "";
      await this.refresh();
      return;
    }
    try {
      const { conversations } = await api("GET", "/conversations/?q=" + encodeURIComponent(query));
      if (query !== this.query) return; // a later search is on its way
      this.render(conversations, true);
      const n = conversations.length;
      this.searchStatus.textContent = n ? n + (n === 1 ? " conversation matches" : " conversations match") : "";
    } catch (err) {
      this.searchStatus.textContent = err.message;
    }
  }

  async refresh() {
    if (this.query) return this.find(this.query);
    try {
      const { conversations } = await api("GET", "/conversations/");
      this.items = conversations;
      this.render(conversations);
    } catch (err) {
      this.searchStatus.textContent = err.message;
    }
  }

  /** A conversation just stored by its first message: at the top, as the current one. */
  added(c) {
    this.items = [c, ...this.items.filter((other) => other.id !== c.id)];
    if (!this.query) this.render(this.items);
    this.refresh(); // and then in the server's order (pinned ones first)
  }
}
