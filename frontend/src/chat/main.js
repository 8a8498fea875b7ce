// Chat page entry point (bundled by esbuild into static/build/chat.js): wires the
// socket, the message list, the composer, the uploads and the sidebar together.
import { Composer } from "./composer.js";
import { Conversation } from "./conversation.js";
import { pageData, statusLine } from "./dom.js";
import { ChatSocket } from "./protocol.js";
import { MessageList } from "./renderer.js";
import { Sidebar } from "./sidebar.js";
import { Uploads } from "./uploads.js";

const page = pageData();
const $ = (id) => document.getElementById(id);

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
    page,
  });
  let conversation = null;
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
  conversation = new Conversation({
    page,
    messages: new MessageList($("messages")),
    composer,
    uploads,
    sidebar: new Sidebar(document.querySelector(".sidebar")),
    socket,
    setStatus,
  });
  composer.onSend((text) => conversation.send(text));
  composer.onStop(() => conversation.stop());
  conversation.load(page.messages);
  socket.connect();
}
