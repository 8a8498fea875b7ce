// Markdown to safe DOM: markdown-it (raw HTML off) with KaTeX math and highlight.js,
// then DOMPurify over the result, for model output and user text alike.
//
// While a reply streams, StreamingMarkdown renders only the last, unfinished top-level
// block on each animation frame: every block before it is final (a later block has
// started), so it is rendered once and frozen. The cost of a frame is the size of that
// last block, not of the whole answer. When the reply is done the whole text is
// rendered once more, which settles what a block-by-block view cannot know
// (reference links defined further down, a math block with blank lines).
import { katex } from "@mdit/plugin-katex";
import DOMPurify from "dompurify";
import hljs from "highlight.js/lib/common";
import MarkdownIt from "markdown-it";
import { icon } from "./icons.js";

// While streaming, a growing code block is highlighted only up to this size; past it the
// block shows plain until it is finished (highlighting is the costly part of a frame).
const LIVE_HIGHLIGHT_CHARS = 4000;
// A paragraph growing past this many characters is cut at its last line break, so a
// reply that never starts a new block still costs each frame only its last lines.
const LIVE_PARAGRAPH_CHARS = 8000;
let rendering = "whole"; // or "live"

const md = new MarkdownIt({
  html: false, // raw HTML in the text is shown as text
  linkify: true,
  breaks: true,
  highlight(code, lang) {
    if (rendering === "live" && code.length > LIVE_HIGHLIGHT_CHARS) return "";
    if (lang && hljs.getLanguage(lang)) {
      try {
        return hljs.highlight(code, { language: lang, ignoreIllegals: true }).value;
      } catch (err) {
        return "";
      }
    }
    return ""; // markdown-it escapes it
  },
});
md.use(katex, { delimiters: "all", throwOnError: false, maxSize: 20, maxExpand: 500, logger: () => "ignore" });

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  // Links open in a new tab, without giving the new page a handle on this one.
  if (node.tagName === "A" && node.hasAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

const PURIFY = { RETURN_DOM_FRAGMENT: true, ADD_ATTR: ["target"], FORBID_TAGS: ["style", "form", "input", "button"] };

function sanitize(html) {
  return DOMPurify.sanitize(html, PURIFY);
}

/** Code blocks get a header with the language and a copy button; tables scroll on
 * their own instead of widening the page. Runs on sanitised DOM. */
function decorate(root) {
  for (const pre of root.querySelectorAll("pre")) {
    const code = pre.querySelector("code");
    const block = document.createElement("div");
    block.className = "code-block";
    const head = document.createElement("div");
    head.className = "code-head";
    const lang = document.createElement("span");
    lang.className = "code-lang";
    const match = code && /language-([\w+#-]+)/.exec(code.className);
    lang.textContent = match ? match[1] : "text";
    if (code) code.classList.add("hljs");
    const copy = document.createElement("button");
    copy.type = "button";
    copy.className = "copy-code";
    const label = document.createElement("span");
    label.textContent = "Copy";
    copy.append(icon("copy"), label);
    copy.setAttribute("aria-label", "Copy code");
    head.append(lang, copy);
    pre.replaceWith(block);
    block.append(head, pre);
  }
  for (const table of root.querySelectorAll("table")) {
    const wrap = document.createElement("div");
    wrap.className = "table-wrap";
    table.replaceWith(wrap);
    wrap.append(table);
  }
  return root;
}

/** The whole text rendered at once, as sanitised DOM. */
export function renderMarkdown(text) {
  return decorate(sanitize(md.render(text)));
}

function renderTokens(tokens, mode) {
  rendering = mode;
  try {
    return decorate(sanitize(md.renderer.render(tokens, md.options, {})));
  } finally {
    rendering = "whole";
  }
}

/** Character offset of the start of line ``line`` in ``text``. */
function lineOffset(text, line) {
  let offset = 0;
  for (let i = 0; i < line; i++) {
    const next = text.indexOf("\n", offset);
    if (next < 0) return text.length;
    offset = next + 1;
  }
  return offset;
}

/** Markdown text that grows while it streams into ``container``. */
export class StreamingMarkdown {
  constructor(container, text, onRender) {
    this.container = container;
    this.onRender = onRender || (() => {});
    this.text = "";
    this.frozenUpTo = 0; // characters of text already rendered into frozen blocks
    this.live = null; // the element holding the last, unfinished block
    this.scheduled = 0;
    this.parsedChars = 0; // characters handed to the parser so far (for tests and bench)
    this.set(text || "");
  }

  /** Replace everything: the whole text rendered at once (stored or final text). */
  set(text) {
    this.cancel();
    this.text = text.replace(/\r\n?/g, "\n");
    this.frozenUpTo = 0;
    this.live = null;
    this.parsedChars += this.text.length;
    this.container.replaceChildren(renderMarkdown(this.text));
    this.container.dataset.parsedChars = String(this.parsedChars);
    this.onRender();
  }

  append(text) {
    this.text += text.replace(/\r\n?/g, "\n");
    if (!this.scheduled) this.scheduled = requestAnimationFrame(() => this.flush());
  }

  cancel() {
    if (this.scheduled) cancelAnimationFrame(this.scheduled);
    this.scheduled = 0;
  }

  /** Render what arrived since the last frame: freeze finished blocks, redo the last. */
  flush() {
    this.scheduled = 0;
    if (!this.live) {
      // The first streamed frame: whatever was rendered whole becomes the live part.
      this.container.replaceChildren();
      this.live = document.createElement("div");
      this.live.className = "md-live";
      this.container.append(this.live);
    }
    const tail = this.text.slice(this.frozenUpTo);
    this.parsedChars += tail.length;
    let tokens = md.parse(tail, {});
    let split = -1; // index of the token that opens the last top-level block
    let splitLine = 0;
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i];
      if (t.level === 0 && t.nesting >= 0 && t.map) {
        split = i;
        splitLine = t.map[0];
      }
    }
    if (split > 0 && splitLine > 0) {
      this.freeze(renderTokens(tokens.slice(0, split), "whole"), lineOffset(tail, splitLine));
      tokens = tokens.slice(split);
    }
    const last = tokens[0];
    const lines = last && last.map ? last.map[1] - last.map[0] : 0;
    const liveText = this.text.slice(this.frozenUpTo);
    if (last && last.type === "paragraph_open" && lines > 1 && liveText.length > LIVE_PARAGRAPH_CHARS) {
      // Freeze all but the paragraph's last line (rendered on its own; the final
      // render joins them again).
      const cut = lineOffset(liveText, lines - 1);
      this.parsedChars += cut;
      this.freeze(renderMarkdown(liveText.slice(0, cut)), cut);
      this.live.replaceChildren(renderMarkdown(liveText.slice(cut)));
    } else {
      this.live.replaceChildren(renderTokens(tokens, "live"));
    }
    this.container.dataset.parsedChars = String(this.parsedChars);
    this.onRender();
  }

  /** Put a rendered, finished part before the live block; it is never rendered again. */
  freeze(fragment, chars) {
    const frozen = document.createElement("div");
    frozen.className = "md-frozen";
    frozen.append(fragment);
    this.live.before(frozen);
    this.frozenUpTo += chars;
  }
}

/** One click handler for every copy button inside ``root``. */
export function handleCopyButtons(root) {
  root.addEventListener("click", async (e) => {
    const button = e.target.closest("button.copy-code");
    if (!button) return;
    const code = button.closest(".code-block").querySelector("pre");
    const text = code ? code.textContent : "";
    let copied = false;
    try {
      await navigator.clipboard.writeText(text);
      copied = true;
    } catch (err) {
      // No async clipboard (plain HTTP on another host): the old way, from a hidden textarea.
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "visually-hidden";
      document.body.append(area);
      area.select();
      copied = document.execCommand("copy");
      area.remove();
    }
    const label = button.querySelector("span");
    label.textContent = copied ? "Copied" : "Copy failed";
    setTimeout(() => (label.textContent = "Copy"), 1500);
  });
}
