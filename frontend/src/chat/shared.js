// A shared conversation's page (/s/<token>/): the server writes each message as plain
// text; this renders it as the chat page does (Markdown, code, math, sanitised).
import "./chat.css";
import "./manage.css";
import { handleCopyButtons, renderMarkdown } from "./markdown.js";

const root = document.querySelector(".shared");
for (const node of root.querySelectorAll(".markdown")) {
  node.replaceChildren(renderMarkdown(node.textContent));
}
handleCopyButtons(root);
