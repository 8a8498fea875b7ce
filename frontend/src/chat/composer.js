// The message box and its controls: Enter sends, Shift+Enter breaks the line; the
// thinking toggle and the sampling preset go with each message.

export class Composer {
  constructor({ form, prompt, sendButton, stopButton, thinkingToggle, thinkingBox, presetSelect, page }) {
    this.form = form;
    this.prompt = prompt;
    this.sendButton = sendButton;
    this.stopButton = stopButton;
    this.thinkingBox = thinkingBox;
    this.presetSelect = presetSelect;
    this.page = page;

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
      if (e.key === "Enter" && !e.shiftKey) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
  }

  /** Call ``handler(text)`` when the user sends. */
  onSend(handler) {
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
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
  }

  setBusy(busy) {
    this.sendButton.disabled = busy;
    this.stopButton.hidden = !busy;
  }

  /** Send stays disabled while a file uploads or a reply is on its way. */
  setSendable(sendable) {
    this.sendButton.disabled = !sendable;
  }
}
