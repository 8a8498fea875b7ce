// The message box and its controls: Enter sends, Shift+Enter breaks the line; the
// thinking toggle and the sampling preset go with each message. A live counter warns
// before the text is too long, and text the server refuses comes back into the box.

// Rough characters per token, only for the warning (the worker counts exactly).
const CHARS_PER_TOKEN = 4;

const number = new Intl.NumberFormat("en-US");

export class Composer {
  constructor({ form, prompt, sendButton, stopButton, thinkingToggle, thinkingBox, presetSelect, counter, page }) {
    this.form = form;
    this.prompt = prompt;
    this.sendButton = sendButton;
    this.stopButton = stopButton;
    this.thinkingBox = thinkingBox;
    this.presetSelect = presetSelect;
    this.counter = counter;
    this.page = page;
    this.busy = false;
    this.blocked = false; // uploads in progress
    this.earlierChars = 0; // text of the conversation so far, for the context estimate

    if (page.thinking_mode) {
      thinkingToggle.hidden = false;
      thinkingBox.checked = page.thinking_mode === "on";
    }
    if (page.presets.length) {
      presetSelect.hidden = false;
      presetSelect.append(new Option("Model default sampling", ""));
      for (const p of page.presets) presetSelect.append(new Option(p.label, p.name));
      presetSelect.addEventListener("change", () => {
        // A preset belongs to a mode: choosing one sets the thinking toggle to match.
        if (presetSelect.value) thinkingBox.checked = presetSelect.value.startsWith("thinking");
      });
    }
    prompt.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
    prompt.addEventListener("input", () => this.count());
  }

  /** Call ``handler(text)`` when the user sends. */
  onSend(handler) {
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (this.tooLong()) {
        this.prompt.focus();
        return;
      }
      handler(this.prompt.value);
    });
  }

  onStop(handler) {
    this.stopButton.addEventListener("click", handler);
  }

  /** Options sent with the message: thinking and preset, where the model has them. */
  options() {
    const options = {};
    if (this.page.thinking_mode) options.thinking = this.thinkingBox.checked;
    if (this.presetSelect.value) options.preset = this.presetSelect.value;
    return options;
  }

  clear() {
    this.prompt.value = "";
    this.count();
  }

  /** Put refused text back, unless the user has started typing something else. */
  restore(text) {
    if (!this.prompt.value.trim()) this.prompt.value = text;
    this.count();
    this.prompt.focus();
  }

  tooLong() {
    return this.prompt.value.length > this.page.max_prompt_chars;
  }

  /** The live counter: characters against the hard limit, and (roughly) the whole
   * conversation against the model's context. */
  count() {
    const chars = this.prompt.value.length;
    const limit = this.page.max_prompt_chars;
    const tokens = Math.round((this.earlierChars + chars) / CHARS_PER_TOKEN);
    const context = this.page.context_length;
    let text = "";
    let level = "";
    if (chars > limit) {
      text = number.format(chars) + " / " + number.format(limit) + " characters: too long by " + number.format(chars - limit);
      level = "over";
    } else if (context && tokens > context) {
      text = "About " + number.format(tokens) + " tokens; this model reads at most " + number.format(context);
      level = "over";
    } else if (chars > limit * 0.8 || (context && tokens > context * 0.8)) {
      text = number.format(chars) + " / " + number.format(limit) + " characters";
      level = "near";
    }
    this.counter.textContent = text;
    this.counter.className = "counter" + (level ? " " + level : "");
    this.refresh();
  }

  setBusy(busy) {
    this.busy = busy;
    this.stopButton.hidden = !busy;
    this.refresh();
  }

  /** Send stays disabled while a file uploads, a reply is on its way, or the text is too long. */
  setBlocked(blocked) {
    this.blocked = blocked;
    this.refresh();
  }

  refresh() {
    this.sendButton.disabled = this.busy || this.blocked || this.tooLong();
  }
}
