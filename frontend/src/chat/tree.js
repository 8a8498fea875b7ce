// The message tree of the open conversation. Edits and regenerations make siblings;
// the page shows one path, from a first message down to the current leaf, as the
// server does (playground/chat/tree.py).

export class MessageTree {
  /** ``messages``: every stored message (any branch), oldest first. */
  constructor(messages, leafId) {
    this.nodes = new Map(); // id -> {id, parent_id, role, content, attachments, stored}
    this.children = new Map(); // parent id ("" for first messages) -> [ids], oldest first
    for (const m of messages) this.add({ ...m, stored: m });
    this.leaf = leafId && this.nodes.has(leafId) ? leafId : this.descend(null);
  }

  add(node) {
    if (this.nodes.has(node.id)) return;
    this.nodes.set(node.id, node);
    const key = node.parent_id || "";
    if (!this.children.has(key)) this.children.set(key, []);
    this.children.get(key).push(node.id);
  }

  /** Drop a message (and nothing else): a turn the server did not keep. */
  remove(id) {
    const node = this.nodes.get(id);
    if (!node) return;
    this.nodes.delete(id);
    const key = node.parent_id || "";
    this.children.set(key, (this.children.get(key) || []).filter((other) => other !== id));
  }

  /** The ids from a first message down to ``leafId`` (inclusive). */
  path(leafId = this.leaf) {
    const ids = [];
    let id = leafId;
    while (id && this.nodes.has(id)) {
      ids.push(id);
      id = this.nodes.get(id).parent_id;
    }
    return ids.reverse();
  }

  /** The versions of ``id``: it and its siblings, oldest first. */
  siblings(id) {
    const node = this.nodes.get(id);
    return node ? this.children.get(node.parent_id || "") || [id] : [];
  }

  /** Where a branch continues below ``id`` (null: from the newest first message):
   * always the newest child, as the server picks it. */
  descend(id) {
    let current = id;
    for (;;) {
      const below = this.children.get(current || "");
      if (!below || !below.length) return current;
      current = below[below.length - 1];
    }
  }
}
