// "My chats" in the sidebar: open chats first, then by priority, unread, most recent.

import { $, clock, h, mount } from "/static/shared/dom.js";
import { label } from "/static/shared/labels.js";
import { select } from "../chats.js";
import { S, t } from "../state.js";
import { systemText } from "../system-texts.js";
import { initial } from "./customer.js";

const RANK = { urgent: 0, high: 1, normal: 2 };

/** What an attachment-only message says in the chat list: "[图片]", "[文件] bill.pdf". */
function filesPreview(m) {
  const first = m.attachments?.[0];
  if (!first) return "";
  return String(first.content_type).startsWith("image/") ? t("preview_image") : `${t("preview_file")} ${first.name}`;
}

export function orderedChats() {
  const lastSeq = (c) => {
    let max = 0;
    for (const m of c.messages.values()) max = Math.max(max, m.seq);
    return max;
  };
  return [...S.chats.values()].sort((a, b) => {
    const openA = a.status === "assigned" ? 0 : 1;
    const openB = b.status === "assigned" ? 0 : 1;
    return openA - openB || (RANK[a.priority] ?? 2) - (RANK[b.priority] ?? 2) || (b.unread > 0) - (a.unread > 0) || lastSeq(b) - lastSeq(a);
  });
}

function lastMessage(chat) {
  let best = null;
  for (const m of chat.messages.values()) if (!best || m.seq > best.seq) best = m;
  return best;
}

export function renderChatList() {
  const list = $("chat-list");
  const chats = orderedChats();
  const open = chats.filter((c) => c.status === "assigned").length;
  $("chats-count").textContent = open ? String(open) : "";
  if (!chats.length) {
    mount(list, h("li", { class: "empty", text: t("no_chats") }));
    return;
  }
  mount(list, chats.map((chat) => h("li", {}, chatItem(chat))));
}

function chatItem(chat) {
  const last = lastMessage(chat);
  const said = last && (systemText(last, t, S.lang) ?? (last.text || filesPreview(last)));
  const preview = chat.typing ? t("typing_short") : last ? `${last.sender?.role === "agent" ? `${t("you")}: ` : ""}${said}` : "";
  const selected = S.selected === chat.cid;
  return h(
    "button",
    {
      type: "button",
      class: [
        "chat-item",
        selected && "selected",
        `prio-${chat.priority}`,
        chat.status !== "assigned" && "ended",
        chat.fresh && (chat.priority === "urgent" ? "flash-urgent" : "flash"),
        chat.typing && "is-typing",
      ],
      dataset: { cid: chat.cid },
      attrs: { "aria-current": selected ? "true" : "false" },
      onclick: () => select(chat.cid),
    },
    h("span", { class: "avatar", text: initial(chat.user?.name || chat.user?.id) }),
    h(
      "span",
      { class: "ci-main" },
      h(
        "span",
        { class: "ci-top" },
        h("span", { class: "ci-name", text: chat.user?.name || chat.user?.id }),
        chat.priority !== "normal" && h("span", { class: `prio prio-${chat.priority}`, text: label("priority", chat.priority, S.lang) }),
        last && h("time", { class: "ci-time", text: clock(last.ts) }),
      ),
      h(
        "span",
        { class: "ci-sub" },
        h("span", { class: "ci-topic", text: label("topic", chat.topic, S.lang) }),
        chat.status !== "assigned" && h("span", { class: "chip conv-closed", text: label("conv", chat.status === "gone" ? "closed" : "resolved", S.lang) }),
      ),
      h("span", { class: "ci-preview", text: preview }),
    ),
    chat.unread > 0 && h("span", { class: "unread", text: String(chat.unread), attrs: { "aria-label": `${chat.unread} unread` } }),
  );
}
