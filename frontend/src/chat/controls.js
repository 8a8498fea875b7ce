// The conversation's controls, kept on the conversation (PATCH /c/<id>/) so a reload
// keeps them: the model (a picker that shows which models a worker serves right now),
// the system prompt, thinking and the preset (the composer's), and the sampling panel
// (the preset's numbers, each changeable; the server checks them). Before the first
// message there is no conversation yet: the choices travel with that message.
import { api } from "./api.js";
import { el } from "./dom.js";

const MODEL_KEY = "playground.model"; // the model a new conversation starts on
const STATUS_EVERY_MS = 15_000;

const FIELDS = [
  { name: "temperature", label: "Temperature", min: 0, max: 2, step: 0.05 },
  { name: "top_p", label: "Top P", min: 0.01, max: 1, step: 0.01 },
  { name: "top_k", label: "Top K", min: 0, max: 1_000_000, step: 1 },
  { name: "presence_penalty", label: "Presence penalty", min: -2, max: 2, step: 0.1 },
  { name: "max_tokens", label: "Max tokens", min: 1, step: 1 },
];

export class Controls {
  constructor({ page, composer, uploads, conversation, elements, setStatus }) {
    this.page = page;
    this.composer = composer;
    this.uploads = uploads;
    this.conversation = conversation;
    this.e = elements;
    this.setStatus = setStatus;
    const stored = page.conversation || {};
    this.settings = {
      system_prompt: stored.system_prompt || "",
      preset: stored.preset || "",
      thinking: stored.thinking == null ? null : stored.thinking,
      params: { ...(stored.params || {}) },
    };
    if (!page.conversation_id) {
      const remembered = localStorage.getItem(MODEL_KEY);
      if (remembered && this.spec(remembered) && this.spec(remembered).served) page.model = remembered;
    }
    this.buildPicker();
    this.buildSampling();
    this.e.systemPrompt.value = this.settings.system_prompt;
    this.applyModel(page.model, true);
    this.e.picker.addEventListener("change", () => this.switchModel(this.e.picker.value));
    this.e.systemSave.addEventListener("click", () => this.saveSystemPrompt());
    this.e.samplingReset.addEventListener("click", () => this.resetSampling());
    this.e.presetSelect.addEventListener("change", () => {
      this.settings.preset = this.e.presetSelect.value;
      this.settings.thinking = this.page.thinking_mode ? this.e.thinkingBox.checked : this.settings.thinking;
      this.showSampling();
      this.save({ preset: this.settings.preset, thinking: this.settings.thinking }, this.e.samplingStatus);
    });
    this.e.thinkingBox.addEventListener("change", () => {
      this.settings.thinking = this.e.thinkingBox.checked;
      this.save({ thinking: this.settings.thinking }, this.e.samplingStatus);
    });
    conversation.hooks.frameOptions = () => this.frameOptions();
    this.timer = setInterval(() => this.refreshStatus(), STATUS_EVERY_MS);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) this.refreshStatus();
    });
  }

  spec(name) {
    return this.page.models.find((m) => m.name === name);
  }

  /** What the first message of a new conversation carries (later: the stored ones). */
  frameOptions() {
    if (this.page.conversation_id) return {};
    const options = { model: this.page.model, system_prompt: this.e.systemPrompt.value };
    if (Object.keys(this.settings.params).length) options.params = this.settings.params;
    return options;
  }

  buildPicker() {
    const picker = this.e.picker;
    picker.replaceChildren();
    for (const m of this.page.models) {
      const option = new Option(m.display_name + (m.served ? "" : " (offline: no worker)"), m.name);
      // A model no worker serves cannot be picked (except the conversation's own).
      option.disabled = !m.served && m.name !== this.page.model;
      picker.append(option);
    }
    picker.value = this.page.model;
    this.showStatus();
  }

  showStatus() {
    const m = this.spec(this.page.model);
    const status = this.e.modelStatus;
    if (!m) {
      status.textContent = "";
      return;
    }
    status.textContent = m.served ? (m.workers > 1 ? m.workers + " workers online" : "online") : "offline";
    status.className = "model-status " + (m.served ? "online" : "offline");
    status.title = m.served
      ? m.display_name + " is served by " + m.workers + " worker(s)" + (m.backend ? " (" + m.backend + ")" : "")
      : "No worker serves " + m.display_name + " right now; pick another model";
  }

  /** Live worker status, from the workers' heartbeats (GET /models/). */
  async refreshStatus() {
    try {
      const { models } = await api("GET", "/models/");
      this.page.models = models;
      const keep = this.e.picker === document.activeElement;
      if (!keep) this.buildPicker();
      else this.showStatus();
    } catch (err) {
      // Keep the last known status; the next poll tries again.
    }
  }

  /** Show ``name``'s controls: thinking only for models that think, its presets, the
   * attach button for models that see, its sampling values. */
  applyModel(name, initial) {
    const m = this.spec(name);
    if (!m) return;
    const page = this.page;
    page.model = name;
    page.thinking_mode = m.thinking || "";
    page.presets = Object.entries(m.presets || {}).map(([key, p]) => ({ name: key, label: p.label }));
    page.vision = (m.modalities || []).includes("image");
    page.context_length = m.context_length;
    if (!(this.settings.preset in (m.presets || {}))) this.settings.preset = "";
    const box = this.e.thinkingBox;
    this.e.thinkingToggle.hidden = !page.thinking_mode;
    box.checked = page.thinking_mode
      ? this.settings.thinking == null
        ? page.thinking_mode === "on"
        : this.settings.thinking
      : false;
    const select = this.e.presetSelect;
    select.replaceChildren(new Option("Model default sampling", ""));
    for (const p of page.presets) select.append(new Option(p.label, p.name));
    select.value = this.settings.preset;
    select.hidden = !page.presets.length;
    this.e.attachButton.hidden = !page.vision;
    this.e.picker.value = name;
    this.showStatus();
    this.showSampling();
    if (!initial) this.composer.count();
  }

  async switchModel(name) {
    const before = this.page.model;
    if (!this.page.conversation_id) {
      localStorage.setItem(MODEL_KEY, name);
      this.applyModel(name);
      return;
    }
    this.applyModel(name);
    const saved = await this.save({ model: name }, this.e.samplingStatus);
    if (!saved) {
      this.applyModel(before); // refused (no worker any more): back to the one that was
      this.setStatus(saved === false ? this.lastError : "", true);
      return;
    }
    localStorage.setItem(MODEL_KEY, name);
    this.setStatus("Switched to " + this.spec(name).display_name + "; the next reply uses it.");
  }

  async saveSystemPrompt() {
    this.settings.system_prompt = this.e.systemPrompt.value;
    if (!this.page.conversation_id) {
      this.e.systemStatus.textContent = "Kept for this conversation's first message.";
      return;
    }
    if (await this.save({ system_prompt: this.settings.system_prompt }, this.e.systemStatus)) {
      this.e.systemStatus.textContent = "Saved. The next reply follows it.";
    }
  }

  /** PATCH the conversation (nothing to do before it exists); false if refused. */
  async save(fields, statusNode) {
    if (!this.page.conversation_id) return true;
    statusNode.classList.remove("error");
    statusNode.textContent = "Saving…";
    try {
      const { conversation } = await api("PATCH", "/c/" + this.page.conversation_id + "/", fields);
      this.settings.preset = conversation.preset;
      this.settings.params = { ...conversation.params };
      statusNode.textContent = "Saved";
      return true;
    } catch (err) {
      this.lastError = err.message;
      statusNode.textContent = err.message;
      statusNode.classList.add("error");
      this.markInvalid(err.field);
      return false;
    }
  }

  buildSampling() {
    this.inputs = {};
    const box = this.e.samplingFields;
    for (const f of FIELDS) {
      const id = "sampling-" + f.name;
      const row = el("div", "field");
      const label = el("label", null, f.label);
      label.htmlFor = id;
      const input = el("input");
      input.type = "number";
      input.id = id;
      input.name = f.name;
      input.step = String(f.step);
      input.min = String(f.min);
      if (f.max != null) input.max = String(f.max);
      input.addEventListener("change", () => this.changeSampling());
      row.append(label, input);
      box.append(row);
      this.inputs[f.name] = input;
    }
  }

  /** The numbers a reply would use now: the preset's (or the model's), with the
   * conversation's own values over them. */
  base() {
    const m = this.spec(this.page.model);
    return (m && m.sampling && m.sampling[this.settings.preset]) || {};
  }

  showSampling() {
    const base = this.base();
    const m = this.spec(this.page.model);
    const preset = this.settings.preset && m && m.presets[this.settings.preset];
    this.e.samplingSource.textContent =
      (preset ? "Preset: " + preset.label : "The model's default sampling") +
      (Object.keys(this.settings.params).length ? ", with your changes." : ".");
    if (m) this.inputs.max_tokens.max = String(m.max_output_tokens);
    for (const f of FIELDS) {
      const input = this.inputs[f.name];
      const own = this.settings.params[f.name];
      input.value = own != null ? own : base[f.name] != null ? base[f.name] : "";
      input.classList.toggle("changed", own != null);
      input.removeAttribute("aria-invalid");
    }
  }

  markInvalid(field) {
    for (const [name, input] of Object.entries(this.inputs)) {
      if (name === field) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }
  }

  /** Values that differ from the preset become the conversation's own. */
  async changeSampling() {
    const base = this.base();
    const params = {};
    for (const f of FIELDS) {
      const raw = this.inputs[f.name].value.trim();
      if (raw === "") continue;
      const value = Number(raw);
      if (value !== base[f.name]) params[f.name] = Number.isFinite(value) ? value : raw;
    }
    const before = this.settings.params;
    this.settings.params = params;
    if (!this.page.conversation_id) {
      this.showSampling();
      return;
    }
    if (await this.save({ params }, this.e.samplingStatus)) {
      this.showSampling();
      this.e.samplingStatus.textContent = "Saved";
    } else {
      this.settings.params = before;
    }
  }

  async resetSampling() {
    this.settings.params = {};
    if (await this.save({ params: {} }, this.e.samplingStatus)) this.showSampling();
  }

  /** The conversation now exists (its first message was stored). */
  created() {
    localStorage.setItem(MODEL_KEY, this.page.model);
    this.e.systemSave.hidden = false;
  }
}
