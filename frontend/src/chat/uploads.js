// Attachments: pick, drop or paste; each file uploads at once (POST /media/) with a
// progress bar, and the message carries the ids of those that were accepted.
import { csrfToken, duration, el } from "./dom.js";
import { mediaElement } from "./renderer.js";

export class Uploads {
  /**
   * @param {object} opts
   * @param {object} opts.page  page data (vision, max_files)
   * @param {(text: string, isError?: boolean) => void} opts.setStatus
   * @param {() => void} opts.onChange  called whenever an upload starts, ends or is removed
   */
  constructor({ tray, fileInput, attachButton, dropZone, pasteTarget, page, setStatus, onChange }) {
    this.tray = tray;
    this.page = page;
    this.setStatus = setStatus;
    this.onChange = onChange;
    this.entries = []; // {file, chip, attachment, error, done}

    if (page.vision) attachButton.hidden = false;
    attachButton.addEventListener("click", () => fileInput.click());
    fileInput.addEventListener("change", () => {
      this.add(fileInput.files);
      fileInput.value = "";
    });
    dropZone.addEventListener("dragover", (e) => {
      e.preventDefault();
      dropZone.classList.add("dropping");
    });
    dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dropping"));
    dropZone.addEventListener("drop", (e) => {
      e.preventDefault();
      dropZone.classList.remove("dropping");
      if (e.dataTransfer && e.dataTransfer.files.length) this.add(e.dataTransfer.files);
    });
    pasteTarget.addEventListener("paste", (e) => {
      const pasted = e.clipboardData ? Array.from(e.clipboardData.files) : [];
      if (pasted.length) {
        e.preventDefault();
        this.add(pasted);
      }
    });
  }

  /** Whether any file is still uploading. */
  busy() {
    return this.entries.some((u) => !u.done);
  }

  /** The attachments the server accepted, in the order they were added. */
  ready() {
    return this.entries.filter((u) => u.attachment).map((u) => u.attachment);
  }

  clear() {
    this.entries.length = 0;
    this.tray.replaceChildren();
  }

  add(fileList) {
    if (!this.page.vision) {
      this.setStatus("This model cannot see images or videos; start a conversation with a vision model.", true);
      return;
    }
    for (const file of fileList) {
      if (this.entries.length >= this.page.max_files) {
        this.setStatus("At most " + this.page.max_files + " files per message.", true);
        break;
      }
      this.upload(file);
    }
  }

  upload(file) {
    const entry = { file: file, attachment: null, error: null, done: false };
    const chip = el("li", "chip uploading");
    const name = el("span", "name", file.name);
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", "Uploading " + file.name);
    const remove = el("button", "remove", "×");
    remove.type = "button";
    remove.setAttribute("aria-label", "Remove " + file.name);
    chip.append(name, bar, remove);
    this.tray.append(chip);
    entry.chip = chip;
    this.entries.push(entry);
    this.onChange();

    const xhr = new XMLHttpRequest();
    remove.addEventListener("click", () => {
      if (!entry.done) xhr.abort();
      this.entries.splice(this.entries.indexOf(entry), 1);
      chip.remove();
      this.onChange();
    });
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) bar.value = Math.round((e.loaded / e.total) * 100);
    });
    xhr.addEventListener("load", () => {
      entry.done = true;
      chip.classList.remove("uploading");
      bar.remove();
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch (err) {
        body = null;
      }
      if (xhr.status === 201 && body) {
        entry.attachment = body;
        chip.classList.add("ready");
        const thumb = el("span", "thumb");
        thumb.append(mediaElement(body, true));
        if (body.kind === "video" && body.duration_s != null) thumb.append(el("span", "duration", duration(body.duration_s)));
        chip.insertBefore(thumb, name);
      } else {
        entry.error = (body && body.error && body.error.message) || "upload failed (" + xhr.status + ")";
        chip.classList.add("failed");
        const why = el("span", "why", entry.error);
        why.setAttribute("role", "alert");
        chip.insertBefore(why, remove);
      }
      this.onChange();
    });
    xhr.addEventListener("error", () => {
      entry.done = true;
      entry.error = "network error";
      chip.classList.add("failed");
      this.onChange();
    });
    xhr.open("POST", "/media/");
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    const data = new FormData();
    data.append("file", file);
    xhr.send(data);
  }
}
