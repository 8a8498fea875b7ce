// Branches: regenerate a reply, edit an earlier message, and move between the versions
// with "‹ 2/3 ›". Each message keeps one element; switching branches puts the elements
// of the chosen path in the list (a reply still streaming on a branch out of sight keeps
// streaming into its own element). The branch on screen is saved on the conversation
// (PATCH current_leaf), so a reload shows it, and the model is given only that path.
import { api } from "./api.js";
import { el } from "./dom.js";
import { icon } from "./icons.js";
import { MessageTree } from "./tree.js";

function toolButton(name, label, text, title) {
  const button = el("button", "tool");
  button.type = "button";
  button.append(icon(name));
  if (text) button.append(document.createTextNode(text));
  button.setAttribute("aria-label", label);
  button.title = title || label;
  return button;
}

export class Branches {
  constructor({ page, conversation, messages, list, socket, composer, setStatus }) {
    this.page = page;
    this.conversation = conversation;
    this.messages = messages;
    this.list = list;
    this.socket = socket;
    this.composer = composer;
    this.setStatus = setStatus;
    this.tree = new MessageTree(page.messages, page.current_leaf_id);
    this.items = new Map(); // message id -> its <li>
    Object.assign(conversation.hooks, {
      accepted: (ev, info) => this.accepted(ev, info),
      refused: (info) => this.refused(info),
      forgotten: (generationId) => this.forgotten(generationId),
      busyChanged: () => this.refreshTools(),
    });
  }

  /** Show the path to the current leaf; follow its unfinished replies. */
  render() {
    const ids = this.tree.path();
    const shown = ids.map((id) => this.itemFor(id));
    this.list.replaceChildren(...shown);
    this.composer.earlierChars = ids.reduce((n, id) => n + (this.content(id) || "").length, 0);
    this.composer.count();
    this.refreshTools();
    this.messages.toBottom();
  }

  itemFor(id) {
    let li = this.items.get(id);
    if (!li) {
      const node = this.tree.nodes.get(id);
      li = this.conversation.renderStored(node.stored);
      if (this.conversation.gens.has(id) && this.socket.socket && this.socket.socket.readyState === WebSocket.OPEN) {
        this.socket.resume(id, 0); // an unfinished reply on a branch shown for the first time
      }
      this.items.set(id, li);
      this.decorate(li, id);
    }
    return li;
  }

  content(id) {
    const node = this.tree.nodes.get(id);
    return node ? (node.stored ? node.stored.content : node.content) : "";
  }

  /** The tools under a message: the version switcher, and Edit or Regenerate. */
  decorate(li, id) {
    const node = this.tree.nodes.get(id);
    const tools = el("div", "msg-tools");
    tools.dataset.for = id;
    const nav = el("span", "versions");
    const prev = toolButton("chevron-left", "Previous version");
    const count = el("span", "version-count");
    const next = toolButton("chevron-right", "Next version");
    prev.addEventListener("click", () => this.step(id, -1));
    next.addEventListener("click", () => this.step(id, 1));
    nav.append(prev, count, next);
    tools.append(nav);
    if (node.role === "user") {
      const edit = toolButton("edit", "Edit", "Edit", "Edit this message and send it again");
      edit.classList.add("edit");
      edit.addEventListener("click", () => this.startEdit(li, id));
      tools.append(edit);
    } else {
      const again = toolButton("regenerate", "Regenerate response", "Regenerate");
      again.classList.add("regenerate");
      again.addEventListener("click", () => this.regenerate(id));
      tools.append(again);
    }
    // Above the thumbs (added when a reply finishes), below the text.
    const meta = li.querySelector(".meta");
    meta.after(tools);
  }

  /** Version numbers and what can be pressed now (nothing starts while a reply streams). */
  refreshTools() {
    const busy = this.conversation.busy();
    for (const tools of this.list.querySelectorAll(".msg-tools")) {
      const id = tools.dataset.for;
      const versions = this.tree.siblings(id);
      const at = versions.indexOf(id);
      const nav = tools.querySelector(".versions");
      nav.hidden = versions.length < 2;
      nav.querySelector(".version-count").textContent = at + 1 + "/" + versions.length;
      nav.setAttribute("aria-label", "Version " + (at + 1) + " of " + versions.length);
      const [prev, next] = nav.querySelectorAll("button");
      // While a frame waits for "accepted" its messages are not in the tree yet: stay.
      const waiting = Boolean(this.conversation.pending);
      prev.disabled = waiting || at <= 0;
      next.disabled = waiting || at >= versions.length - 1;
      for (const action of tools.querySelectorAll(".edit, .regenerate")) action.disabled = busy;
      const regenerate = tools.querySelector(".regenerate");
      if (regenerate && this.conversation.gens.has(id) && !this.conversation.gens.get(id).done) regenerate.disabled = true;
    }
  }

  /** Show the previous or next version of ``id`` and where its branch continues. */
  step(id, delta) {
    const versions = this.tree.siblings(id);
    const target = versions[versions.indexOf(id) + delta];
    if (!target) return;
    this.show(this.tree.descend(target));
    // Keep the switched message in view rather than jumping to the end.
    const li = this.items.get(target);
    if (li) li.scrollIntoView({ block: "nearest" });
  }

  /** Make ``leafId`` the branch on screen, here and on the server. */
  async show(leafId) {
    this.tree.leaf = leafId;
    this.render();
    if (!this.page.conversation_id || !leafId) return;
    // One after another, so a quick second switch cannot land before the first.
    const url = "/c/" + this.page.conversation_id + "/";
    this.saving = (this.saving || Promise.resolve()).then(async () => {
      try {
        await api("PATCH", url, { current_leaf: leafId }, { keepalive: true });
      } catch (err) {
        this.setStatus("The branch on screen was not saved: " + err.message, true);
      }
    });
    await this.saving;
  }

  /** A started reply's ids: add it (and a new user message) to the tree as the leaf. */
  accepted(ev, info) {
    if (!info) return;
    if (info.kind !== "regenerate") {
      this.tree.add({
        id: ev.user_message_id,
        parent_id: ev.parent_id,
        role: "user",
        content: info.text,
        attachments: info.attachments || [],
        stored: null,
      });
      this.items.set(ev.user_message_id, info.asked);
      this.decorate(info.asked, ev.user_message_id);
    }
    this.tree.add({ id: ev.generation_id, parent_id: ev.user_message_id, role: "assistant", stored: null });
    this.items.set(ev.generation_id, info.reply);
    this.decorate(info.reply, ev.generation_id);
    this.tree.leaf = ev.generation_id;
    this.refreshTools();
  }

  /** The server did not keep a turn (too long for the context): the branch goes back to
   * where it continues without it, as on the server. */
  forgotten(generationId) {
    const reply = this.tree.nodes.get(generationId);
    if (!reply) return;
    this.tree.remove(generationId);
    this.items.delete(generationId);
    let kept = reply.parent_id;
    const asked = this.tree.nodes.get(kept);
    if (asked && !(this.tree.children.get(kept) || []).length) {
      this.tree.remove(kept);
      this.items.delete(kept);
      kept = asked.parent_id;
    }
    this.tree.leaf = this.tree.descend(kept || null);
    this.render();
  }

  /** A refused edit or regeneration stored nothing: back to the branch as it was (an
   * edit's text back in its box). */
  refused(info) {
    if (info && info.previousLeaf !== undefined) this.tree.leaf = info.previousLeaf;
    this.render();
    if (info && info.kind === "edit") {
      const li = this.items.get(info.editOf);
      if (li && li.isConnected) this.startEdit(li, info.editOf, info.text);
    }
  }

  regenerate(replyId) {
    const reply = this.tree.nodes.get(replyId);
    if (!reply || this.conversation.busy()) return;
    const previousLeaf = this.tree.leaf;
    this.tree.leaf = reply.parent_id;
    this.render();
    this.conversation.start(
      { type: "regenerate", message_id: reply.parent_id },
      { kind: "regenerate", previousLeaf },
    );
  }

  /** Edit in place: the message becomes a box with Send and Cancel. */
  startEdit(li, id, text) {
    if (this.conversation.busy() || li.querySelector(".edit-box")) return;
    const node = this.tree.nodes.get(id);
    const form = el("form", "edit-box");
    const box = el("textarea");
    box.value = text != null ? text : this.content(id);
    box.rows = Math.min(12, Math.max(2, box.value.split("\n").length));
    box.setAttribute("aria-label", "New version of the message");
    const send = el("button", null, "Send");
    send.type = "submit";
    const cancel = el("button", "secondary", "Cancel");
    cancel.type = "button";
    const row = el("div", "edit-actions");
    row.append(cancel, send);
    form.append(box, row);
    li.classList.add("editing");
    li.append(form);
    box.focus();
    const close = () => {
      form.remove();
      li.classList.remove("editing");
    };
    cancel.addEventListener("click", close);
    box.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.preventDefault();
        e.stopPropagation(); // Esc here cancels the edit, not a reply
        close();
      } else if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const text = box.value;
      const attachments = node.stored ? node.stored.attachments : node.attachments || [];
      if ((!text.trim() && !attachments.length) || this.conversation.busy()) return;
      if (text.length > this.page.max_prompt_chars) {
        this.setStatus("The message is longer than " + this.page.max_prompt_chars + " characters.", true);
        return;
      }
      close();
      // The new version replaces the old one on screen, after the same earlier messages.
      const previousLeaf = this.tree.leaf;
      this.tree.leaf = node.parent_id;
      this.render();
      this.conversation.start(
        { type: "edit", conversation_id: this.page.conversation_id, message_id: id, content: text },
        { kind: "edit", text, attachments, previousLeaf, editOf: id },
      );
    });
  }
}
