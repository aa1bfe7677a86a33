// The transcript of the selected chat: messages in seq order, private notes between them,
// the agent's own messages still on their way, read receipts and the typing line.

import { attachmentsEl, fresh } from "/static/shared/attachments.js";
import { $, clock, h, linkifyHelp } from "/static/shared/dom.js";
import { openArticle } from "../dialogs/readers.js";
import { isTagged, taggedBy, tagFeedback } from "../feedback.js";
import { S, selectedChat, t } from "../state.js";
import { systemText } from "../system-texts.js";
import { retry } from "./composer.js";

const NEAR_BOTTOM_PX = 120;

/** Transcript order: messages by seq; a note goes after the last message older than it. */
export function transcriptItems(chat) {
  const msgs = [...chat.messages.values()].sort((a, b) => a.seq - b.seq);
  const items = msgs.map((m) => ({ sort: m.seq, el: () => messageEl(m) }));
  const notes = [...chat.notes.values()].sort((a, b) => Date.parse(a.ts) - Date.parse(b.ts));
  notes.forEach((n, i) => {
    const ts = Date.parse(n.ts);
    let after = 0;
    for (const m of msgs) if (Date.parse(m.ts) <= ts) after = m.seq;
    const sort = after + 0.5 + i / 1000;
    const handover = Boolean(n.note_id) && n.note_id === chat.handover?.note_id;
    items.push({ sort, el: () => noteEl(n, sort, handover) });
  });
  return items.sort((a, b) => a.sort - b.sort);
}

export function renderTranscript(keepScroll) {
  const chat = selectedChat();
  const box = $("transcript");
  if (!chat) return;
  const near = isNearBottom();
  box.replaceChildren();
  for (const item of transcriptItems(chat)) box.appendChild(item.el());
  for (const [cmid, p] of chat.pending) box.appendChild(pendingEl(cmid, p));
  refreshReceipts(chat);
  if (!keepScroll || near) box.scrollTop = box.scrollHeight;
  markRead(chat);
}

/** Put one element in its place by `sort`, before any message still on its way. */
export function insertItem(el, sort) {
  const box = $("transcript");
  if (box.querySelector(`[data-seq="${sort}"]`)) return;
  const near = isNearBottom();
  el.dataset.sort = sort;
  let before = null;
  for (let node = box.lastElementChild; node; node = node.previousElementSibling) {
    if (node.dataset.pending || Number(node.dataset.sort) > sort) before = node;
    else break;
  }
  box.insertBefore(el, before);
  const chat = selectedChat();
  if (chat) refreshReceipts(chat);
  if (near) box.scrollTop = box.scrollHeight;
}

function isNearBottom() {
  const box = $("transcript");
  return box.scrollHeight - box.scrollTop - box.clientHeight < NEAR_BOTTOM_PX;
}

export function messageEl(m) {
  const role = m.sender?.role || "system";
  if (role === "system") {
    const own = systemText(m, t, S.lang);
    return h(
      "div",
      { class: "msg system", dataset: { seq: m.seq, sort: m.seq, kind: m.system?.kind || "" } },
      h("span", { text: own ?? m.text, title: own ? t("sys_customer_saw", { text: m.text }) : null }),
      h("time", { text: clock(m.ts) }),
    );
  }
  const mine = role === "agent";
  const name = role === "bot" ? t("bot") : m.sender?.id === S.me?.id ? t("you") : m.sender?.name || m.sender?.id;
  const trusted = role === "bot" || role === "agent"; // only these may carry article links
  const bubble = !m.text
    ? null
    : trusted
      ? h("div", { class: "bubble" }, linkifyHelp(m.text, openArticle, (slug) => `📄 ${slug}`))
      : h("div", { class: "bubble", text: m.text });
  return h(
    "div",
    { class: ["msg", role, mine && "mine"], dataset: { seq: m.seq, sort: m.seq, role } },
    h("div", { class: "msg-name", text: name }),
    bubble,
    attachmentsEl(m.attachments, { extra: downloadLink }),
    h(
      "div",
      { class: "msg-meta" },
      h("time", { text: clock(m.ts), dateTime: m.ts }),
      mine && h("span", { class: "receipt" }),
      role === "user" && m.message_id && feedbackButton(m),
    ),
  );
}

/** ⚑ on a customer's message: tag it as feedback for the product team. */
function feedbackButton(m) {
  const chat = selectedChat();
  const done = isTagged(chat, m.message_id);
  const label = done ? t("tagged_feedback") : t("tag_feedback");
  return h("button", {
    type: "button",
    class: ["msg-feedback", done && "on"],
    dataset: { messageId: m.message_id, taggedBy: taggedBy(chat, m.message_id) || "" },
    text: "⚑",
    title: label,
    disabled: done,
    attrs: { "aria-label": label },
    onclick: async (ev) => {
      const button = ev.currentTarget;
      if (!chat || !(await tagFeedback(chat, m.message_id))) return;
      button.replaceWith(feedbackButton(m));
    },
  });
}

/** Under an image: a link that downloads it (the file itself, named as it was sent). */
function downloadLink(att) {
  if (!String(att.content_type).startsWith("image/")) return null;
  const link = h("a", {
    class: "att-download",
    href: att.url,
    download: att.name || "",
    rel: "noopener",
    text: `⬇ ${t("download")}`,
    onclick: async (ev) => {
      if (link.dataset.fresh) return;
      ev.preventDefault();
      await fresh(att);
      link.href = att.url;
      link.dataset.fresh = "1";
      link.click();
      delete link.dataset.fresh;
    },
  });
  return link;
}

/** A private note; `handover`: the one left with the last transfer (also on top). */
function noteEl(n, sort, handover = false) {
  return h(
    "div",
    { class: ["note", handover && "handover-note"], dataset: { note: n.note_id, sort } },
    h(
      "div",
      { class: "note-head" },
      h("span", { class: "note-badge", text: `🔒 ${handover ? t("handover_badge") : t("internal")}` }),
      h("span", { text: n.agent?.name || "" }),
      h("time", { text: clock(n.ts) }),
    ),
    h("div", { class: "note-text", text: n.text }),
  );
}

// --- the agent's messages on their way (keyed by client_msg_id) ---------------------------

function pendingEl(cmid, p) {
  const el = h(
    "div",
    { class: ["msg", "agent", "mine", "pending", p.failed && "failed"], dataset: { pending: cmid } },
    h("div", { class: "msg-name", text: t("you") }),
    p.text && h("div", { class: "bubble", text: p.text }),
    attachmentsEl(p.attachments),
    h("div", { class: "msg-meta" }, h("span", { text: p.failed ? t("failed") : t("sending") })),
  );
  if (p.failed) el.addEventListener("click", () => retry(cmid));
  return el;
}

const findPending = (cmid) => document.querySelector(`[data-pending="${CSS.escape(cmid)}"]`);

export function appendPending(cmid, p) {
  const box = $("transcript");
  box.appendChild(pendingEl(cmid, p));
  box.scrollTop = box.scrollHeight;
}

/** Show a pending message's new state (failed, or sending again). */
export function repaintPending(cmid, p) {
  findPending(cmid)?.replaceWith(pendingEl(cmid, p));
}

export function removePending(cmid) {
  findPending(cmid)?.remove();
}

// --- receipts, typing, read marks ----------------------------------------------------------

export function refreshReceipts(chat) {
  for (const el of $("transcript").querySelectorAll(".msg.mine[data-seq]")) {
    const read = Number(el.dataset.seq) <= chat.userRead;
    el.classList.toggle("is-read", read);
    const r = el.querySelector(".receipt");
    if (r) {
      r.textContent = read ? "✓✓" : "✓";
      r.title = read ? t("read") : t("delivered");
    }
  }
}

export function renderTyping() {
  const chat = selectedChat();
  const show = Boolean(chat?.typing && chat.status === "assigned");
  $("typing").hidden = !show;
  if (show) $("typing-text").textContent = t("typing", { name: chat.user?.name || chat.user?.id });
}

/** Tell the customer what the agent has seen, when the chat is on screen. */
export function markRead(chat) {
  if (!chat || chat.status !== "assigned" || S.selected !== chat.cid) return;
  if (document.visibilityState !== "visible" || S.view !== "work") return;
  let max = 0;
  for (const m of chat.messages.values()) if (m.sender?.role !== "agent" && m.seq > max) max = m.seq;
  if (max <= chat.readSent) return;
  chat.readSent = max;
  S.client.send({ type: "read", conversation_id: chat.cid, seq: max }, { queue: false });
}
