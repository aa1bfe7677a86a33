// The chat pane around the transcript: who and what the chat is about, the risk alert strip,
// the closed bar (with the rating) and the transfer / resolve buttons.

import { $, clock, dateTime, h, mount } from "/static/shared/dom.js";
import { label } from "/static/shared/labels.js";
import { removeChat } from "../chats.js";
import { resolveDialog } from "../dialogs/resolve.js";
import { transferDialog } from "../dialogs/transfer.js";
import { isTagged, tagChatDialog } from "../feedback.js";
import { S, selectedChat, stars, t } from "../state.js";
import { renderNotice, setMode } from "./composer.js";
import { initial } from "./customer.js";
import { renderTranscript, renderTyping } from "./transcript.js";

export function renderConversation() {
  const chat = selectedChat();
  $("empty-state").hidden = Boolean(chat);
  $("conv").hidden = !chat;
  if (!chat) return;
  renderHead(chat);
  renderAlert(chat.alert);
  renderHandover(chat);
  const active = chat.status === "assigned";
  $("btn-transfer").disabled = !active;
  $("btn-resolve").disabled = !active;
  renderMenu(chat);
  $("composer").hidden = !active;
  renderClosedBar(chat, active);
  setMode(chat.mode);
  renderNotice();
  renderTranscript(false);
  renderTyping();
}

function renderHead(chat) {
  $("conv-avatar").textContent = initial(chat.user?.name || chat.user?.id);
  $("conv-avatar").className = `avatar prio-${chat.priority}`;
  $("conv-name").textContent = chat.user?.name || chat.user?.id;
  renderPresence(chat.user);
  const details = t("conv_details", { id: shortId(chat.cid), user: chat.user?.id || "" });
  mount(
    $("conv-meta"),
    h("span", { class: "tag", text: label("topic", chat.topic, S.lang) }),
    h("span", { class: `prio prio-${chat.priority}`, text: label("priority", chat.priority, S.lang) }),
    chat.channel && h("span", { class: "tag", id: "conv-channel", text: t(`channel_${chat.channel}`) }),
    chat.replyByEmail && chat.channel !== "email" && h("span", { class: "tag", id: "conv-reply-email", text: t("reply_by_email") }),
    chat.user?.lang && h("span", { class: "tag", text: chat.user.lang === "en" ? "EN" : "中文" }),
    h("span", { class: "conv-details", id: "conv-details", title: details, text: "ⓘ", attrs: { tabindex: "0", "aria-label": details } }),
  );
}

/** "#1a2b3c4d": enough to tell chats apart when talking about one, never the whole id. */
export const shortId = (cid) => `#${String(cid).slice(0, 8)}`;

/** Online, or offline since when: live from `customer.presence`. */
function renderPresence(user) {
  const el = $("conv-presence");
  if (user?.online == null) {
    el.hidden = true;
    return;
  }
  el.hidden = false;
  el.className = `presence ${user.online ? "online" : "offline"}`;
  el.dataset.online = user.online ? "true" : "false";
  let text = t("presence_online");
  if (!user.online) {
    const seen = user.last_seen ? Date.parse(user.last_seen) : NaN;
    const today = Number.isFinite(seen) && new Date(seen).toDateString() === new Date().toDateString();
    text = Number.isFinite(seen) ? t("presence_seen", { when: today ? clock(user.last_seen) : dateTime(user.last_seen, S.lang) }) : t("presence_offline");
  }
  el.textContent = text;
}

/** What the previous agent left when transferring the chat: on top, before the transcript. */
function renderHandover(chat) {
  const box = $("handover");
  const ho = chat.handover;
  box.hidden = !ho?.note;
  if (!ho?.note) return;
  mount(
    box,
    h("div", { class: "ho-head" }, h("strong", { text: `↪ ${t("handover_from", { name: ho.from?.name || ho.from?.id || "" })}` }), ho.ts && h("time", { text: clock(ho.ts) })),
    h("div", { class: "ho-note", text: ho.note }),
  );
}

/** The security alert that opened the chat (a frozen account), until it is unfrozen. */
function renderAlert(a) {
  const alertBox = $("conv-alert");
  if (!a) {
    alertBox.hidden = true;
    return;
  }
  alertBox.hidden = false;
  alertBox.classList.toggle("resolved", Boolean(a.unfrozen));
  mount(
    alertBox,
    h("strong", { text: `⚠ ${t("alert_in_chat")}: ${label("alert", a.alert, S.lang) || ""}` }),
    a.unfrozen
      ? h("span", { class: "tag ok", text: t("alert_unfrozen") })
      : a.severity && h("span", { class: "tag danger", text: label("severity", a.severity, S.lang) }),
    a.details && h("span", { class: "small", text: alertDetails(a.details) }),
  );
}

/** What the risk monitor saw, in words: its reason and how many payments, not raw JSON. */
function alertDetails(details) {
  if (typeof details === "string") return details;
  const parts = [];
  if (details.reason) parts.push(details.reason);
  const ids = details.transaction_ids || [];
  if (ids.length) parts.push(t("alert_payments", { n: ids.length }));
  if (details.by) parts.push(t("alert_by", { name: details.by }));
  return parts.join(" · ");
}

function renderClosedBar(chat, active) {
  const bar = $("closed-bar");
  bar.hidden = active;
  if (active) return;
  const why = chat.status === "gone" ? t("closed_gone") : chat.closedBy === "user" ? t("closed_by_user") : t("closed_by_agent");
  mount(
    bar,
    h("span", { text: why }),
    chat.rating && h("span", { class: "rating", text: t("rated", { stars: stars(chat.rating.score) }) }),
    chat.rating?.comment && h("span", { class: "muted", text: `“${chat.rating.comment}”` }),
    h("button", { type: "button", class: "btn ghost small", text: t("dismiss"), onclick: () => removeChat(chat.cid) }),
  );
}

/** Below 1280 px the customer panel is a drawer over the chat, opened from the header. */
export function toggleCustomer(open = !document.body.classList.contains("customer-open")) {
  document.body.classList.toggle("customer-open", open);
  $("btn-customer").setAttribute("aria-expanded", open ? "true" : "false");
}

/** The chat's ⋯ menu: the whole chat as feedback for the product team. */
function renderMenu(chat) {
  const b = $("btn-feedback-chat");
  const done = isTagged(chat);
  b.disabled = done;
  b.classList.toggle("on", done);
  b.textContent = done ? t("tagged_feedback") : t("tag_chat_feedback");
}

function tagChat() {
  const chat = selectedChat();
  $("conv-menu").open = false;
  if (!chat) return;
  tagChatDialog(chat, () => {
    if (selectedChat() === chat) renderMenu(chat);
  });
}

export function wireConversation() {
  $("btn-feedback-chat").addEventListener("click", tagChat);
  $("btn-transfer").addEventListener("click", transferDialog);
  $("btn-resolve").addEventListener("click", resolveDialog);
  $("btn-customer").addEventListener("click", () => toggleCustomer());
}
