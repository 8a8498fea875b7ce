// SVG icons (lucide), so no button depends on an emoji font being installed.
import {
  ArrowDown,
  Check,
  ChevronLeft,
  ChevronRight,
  Copy,
  Download,
  Ellipsis,
  Menu,
  Pencil,
  Pin,
  PinOff,
  RefreshCw,
  ScrollText,
  Share2,
  SlidersHorizontal,
  Trash2,
  Paperclip,
  SendHorizontal,
  Square,
  SquarePen,
  ThumbsDown,
  ThumbsUp,
  X,
  createElement,
} from "lucide";

const ICONS = {
  "arrow-down": ArrowDown,
  check: Check,
  copy: Copy,
  menu: Menu,
  paperclip: Paperclip,
  send: SendHorizontal,
  stop: Square,
  "new-chat": SquarePen,
  "thumbs-down": ThumbsDown,
  "thumbs-up": ThumbsUp,
  x: X,
  // Branches, conversation management and controls.
  "chevron-left": ChevronLeft,
  "chevron-right": ChevronRight,
  download: Download,
  edit: Pencil,
  more: Ellipsis,
  pin: Pin,
  "pin-off": PinOff,
  regenerate: RefreshCw,
  share: Share2,
  sliders: SlidersHorizontal,
  system: ScrollText,
  trash: Trash2,
};

/** An <svg> for ``name``, hidden from assistive technology (its button has the label). */
export function icon(name) {
  const svg = createElement(ICONS[name], { "aria-hidden": "true", focusable: "false", class: "icon", width: 18, height: 18 });
  return svg;
}

/** Fill every ``[data-icon]`` element of the server-rendered page with its icon. */
export function placeIcons(root) {
  for (const node of root.querySelectorAll("[data-icon]")) {
    if (!node.querySelector("svg.icon")) node.prepend(icon(node.dataset.icon));
  }
}
