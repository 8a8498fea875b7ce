// Chat page entry point (bundled by esbuild into static/build/chat.js): wires the
// socket, the message list, the composer, the uploads and the sidebar together.
import "./chat.css";
import "./manage.css";
import { Branches } from "./branches.js";
import { Composer } from "./composer.js";
import { Controls } from "./controls.js";
import { Conversation } from "./conversation.js";
import { ConversationList } from "./conversations.js";
import { pageData, statusLine } from "./dom.js";
import { placeIcons } from "./icons.js";
import { lightbox } from "./lightbox.js";
import { ChatSocket } from "./protocol.js";
import { panels } from "./panels.js";
import { MessageList } from "./renderer.js";
import { shareDialog } from "./share.js";
import { shortcuts } from "./shortcuts.js";
import { Sidebar } from "./sidebar.js";
import { Uploads } from "./uploads.js";

const page = pageData();
const $ = (id) => document.getElementById(id);

placeIcons(document);
panels(document, ".panel-toggle, .entry-menu");
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

// "New conversation" opens an empty one, stored only when its first message is sent.
$("new-conversation").addEventListener("click", () => {
  if (page.conversation_id || (conversation && conversation.busy())) {
    window.location.assign("/");
    return;
  }
  sidebar.close();
  $("prompt").focus();
});

{
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
  const branches = new Branches({ page, conversation, messages, list: $("messages"), socket, composer, setStatus });
  const heading = $("conversation-title");
  const list = new ConversationList({
    page,
    list: $("conversation-list"),
    search: $("conversation-search"),
    searchStatus: $("search-status"),
    toast: { box: $("toast"), text: $("toast-text"), undo: $("toast-undo") },
    sidebar,
    onCurrentChanged: (c) => {
      heading.textContent = c.title;
      document.title = c.title + " · Qwen 3.5 Playground";
    },
  });
  const controls = new Controls({
    page,
    composer,
    uploads,
    conversation,
    setStatus,
    elements: {
      picker: $("model-picker"),
      modelStatus: $("model-status"),
      systemPrompt: $("system-prompt"),
      systemSave: $("system-save"),
      systemStatus: $("system-status"),
      samplingFields: $("sampling-fields").querySelector(".fields"),
      samplingSource: $("sampling-source"),
      samplingStatus: $("sampling-status"),
      samplingReset: $("sampling-reset"),
      presetSelect: $("preset"),
      thinkingToggle: $("thinking-toggle"),
      thinkingBox: $("thinking"),
      attachButton: $("attach"),
    },
  });
  shareDialog({
    page,
    dialog: $("share-dialog"),
    open: $("share-open"),
    url: $("share-url"),
    copy: $("share-copy"),
    revoke: $("share-revoke"),
    close: $("share-close"),
    status: $("share-status"),
  });
  // The first message stored a new conversation: the page becomes its page.
  const accepted = conversation.hooks.accepted;
  conversation.hooks.accepted = (ev, info) => {
    accepted(ev, info);
    if (!ev.created) return;
    page.conversation_id = ev.conversation_id;
    history.replaceState(null, "", "/c/" + ev.conversation_id + "/");
    heading.textContent = ev.title || "New conversation";
    document.title = heading.textContent + " · Qwen 3.5 Playground";
    $("welcome")?.remove();
    $("conv-menu").hidden = false;
    $("export-md").href = "/c/" + ev.conversation_id + "/export.md";
    $("export-json").href = "/c/" + ev.conversation_id + "/export.json";
    controls.created();
    const label = page.model_labels[page.model] || page.model;
    list.added({ id: ev.conversation_id, title: ev.title, model: page.model, model_label: label, updated_at: new Date().toISOString(), pinned: false });
  };
  branches.render();
  composer.count();
  messages.toBottom();
  socket.connect();
}
