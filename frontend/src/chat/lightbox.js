// Images open larger in a modal <dialog>: Esc, the close button or a click outside the
// picture closes it, and focus returns to the image that opened it.

export function lightbox(dialog, root) {
  const img = dialog.querySelector("img");
  let opener = null;

  function open(source, trigger) {
    img.src = source.currentSrc || source.src;
    img.alt = source.alt;
    dialog.setAttribute("aria-label", source.alt ? "Image: " + source.alt : "Image");
    opener = trigger;
    dialog.showModal();
  }

  root.addEventListener("click", (e) => {
    const button = e.target.closest(".image-open");
    if (button) {
      open(button.querySelector("img"), button);
      return;
    }
    const inline = e.target.closest(".markdown img");
    if (inline) open(inline, null);
  });
  dialog.addEventListener("click", (e) => {
    if (e.target === dialog || e.target.closest(".lightbox-close")) dialog.close();
  });
  dialog.addEventListener("close", () => {
    img.removeAttribute("src");
    if (opener) opener.focus();
  });
}
