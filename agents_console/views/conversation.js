// The chat pane around the transcript: who and what the chat is about, the risk alert strip,
// the closed bar (with the rating) and the transfer / resolve buttons.

import { $, h, mount } from "/static/shared/dom.js";
import { label } from "/static/shared/labels.js";
import { removeChat } from "../chats.js";
import { transferDialog } from "../dialogs/transfer.js";
import { S, selectedChat, stars, t } from "../state.js";
import { renderNotice, setMode } from "./composer.js";
import { initial } from "./customer.js";
import { toast } from "./notifications.js";
import { renderTranscript, renderTyping } from "./transcript.js";

export function renderConversation() {
  const chat = selectedChat();
  $("empty-state").hidden = Boolean(chat);
  $("conv").hidden = !chat;
  if (!chat) return;
  renderHead(chat);
  renderAlert(chat.alert);
  const active = chat.status === "assigned";
  $("btn-transfer").disabled = !active;
  $("btn-resolve").disabled = !active;
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
  mount(
    $("conv-meta"),
    h("span", { class: "tag", text: label("topic", chat.topic, S.lang) }),
    h("span", { class: `prio prio-${chat.priority}`, text: label("priority", chat.priority, S.lang) }),
    chat.user?.lang && h("span", { class: "tag", text: chat.user.lang === "en" ? "EN" : "中文" }),
    h("span", { class: "muted mono small", text: chat.cid }),
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

async function resolveChat() {
  const chat = selectedChat();
  if (!chat || chat.status !== "assigned") return;
  $("btn-resolve").disabled = true;
  try {
    await S.client.request({ type: "chat.resolve", conversation_id: chat.cid });
  } catch (e) {
    toast(t("error", { msg: e.message }), "error");
    $("btn-resolve").disabled = false;
  }
}

export function wireConversation() {
  $("btn-transfer").addEventListener("click", transferDialog);
  $("btn-resolve").addEventListener("click", resolveChat);
}
