// Chat page entry point (bundled by esbuild into static/build/chat.js): wires the
// socket, the message list, the composer, the uploads and the sidebar together.
import "./chat.css";
import { Composer } from "./composer.js";
import { Conversation } from "./conversation.js";
import { pageData, statusLine } from "./dom.js";
import { placeIcons } from "./icons.js";
import { lightbox } from "./lightbox.js";
import { ChatSocket } from "./protocol.js";
import { MessageList } from "./renderer.js";
import { shortcuts } from "./shortcuts.js";
import { Sidebar } from "./sidebar.js";
import { Uploads } from "./uploads.js";

const page = pageData();
const $ = (id) => document.getElementById(id);

placeIcons(document);
const sidebar = new Sidebar({
  layout: $("layout"),
  nav: $("sidebar"),
  toggle: $("drawer-toggle"),
  close: $("drawer-close"),
  backdrop: $("backdrop"),
  search: $("conversation-search"),
  list: $("conversation-list"),
});
let conversation = null;

shortcuts({
  stop: () => {
    if (sidebar.isOpen()) {
      sidebar.close(true);
      return true;
    }
    return conversation ? conversation.stop() : false;
  },
  newConversation: () => $("new-conversation").click(),
  focusSearch: () => sidebar.focusSearch(),
});

if (page.conversation_id) {
  const setStatus = statusLine($("status"));
  const composer = new Composer({
    form: $("composer"),
    prompt: $("prompt"),
    sendButton: $("send"),
    stopButton: $("stop"),
    thinkingToggle: $("thinking-toggle"),
    thinkingBox: $("thinking"),
    presetSelect: $("preset"),
    counter: $("counter"),
    page,
  });
  const uploads = new Uploads({
    tray: $("tray"),
    fileInput: $("file-input"),
    attachButton: $("attach"),
    dropZone: $("composer"),
    pasteTarget: $("prompt"),
    page,
    setStatus,
    onChange: () => conversation.refreshSend(),
  });
  const socket = new ChatSocket({
    onEvent: (ev) => conversation.onEvent(ev),
    unfinished: () => conversation.unfinished(),
    onStatus: setStatus,
    onLostFrames: () => conversation.lostFrames(),
  });
  const messages = new MessageList({
    list: $("messages"),
    scroller: $("scroller"),
    jumpButton: $("jump-latest"),
    speaker: (model) => page.model_labels[model || page.model] || model || "Assistant",
  });
  conversation = new Conversation({ page, messages, composer, uploads, sidebar, socket, setStatus });
  composer.onSend((text) => conversation.send(text));
  composer.onStop(() => conversation.stop());
  lightbox($("lightbox"), $("messages"));
  conversation.load(page.messages);
  composer.count();
  messages.toBottom();
  socket.connect();
}
