// The chat view and moving between views: the transcript with its chrome (queue card,
// escalate / end buttons, the card of an ended chat), opening, escalating, ending a chat
// and starting a new one.

import { $, h, mount } from "/static/shared/dom.js";
import { OPEN, currentConv, persist, state, t } from "../state.js";
import { toast } from "./banners.js";
import { leaveTray } from "./composer.js";
import { renderHeader } from "./header.js";
import { renderHome } from "./home.js";
import { hideSecretNotice } from "./composer.js";
import { mailChoice } from "./mail-choice.js";
import { renderClosedCard } from "./rating.js";
import { clearTranscript, fillTranscript, hideTyping, markRead, scrollToBottom } from "./transcript.js";

export function showView(view) {
  state.view = view;
  $("app").dataset.view = view;
  $("view-home").hidden = view !== "home";
  $("view-chat").hidden = view !== "chat";
  if (view === "home") renderHome();
  else renderChat();
  renderHeader();
}

export function openChat(cid) {
  state.current = cid;
  persist();
  showView("chat");
}

export function newChat() {
  const c = currentConv();
  if (c && !OPEN.has(c.status)) state.client.forget(c.cid);
  state.current = null;
  persist();
  showView("home");
}

export function renderChat() {
  const c = currentConv();
  hideSecretNotice();
  clearTranscript();
  hideTyping();
  if (!c) {
    renderChatChrome();
    return;
  }
  fillTranscript(c);
  renderChatChrome();
  scrollToBottom();
  markRead();
}

/** Everything around the transcript that follows the chat's status. */
export function renderChatChrome() {
  const c = currentConv();
  renderHeader();
  const open = c && OPEN.has(c.status);
  $("btn-escalate").hidden = !(c && c.status === "bot");
  $("btn-end").hidden = !open;
  $("composer").hidden = !open;
  $("input").disabled = !open;
  $("btn-attach").disabled = !open;
  leaveTray();
  if (!open) $("attach-tray").hidden = true;
  renderQueueCard(c);
  const closed = $("closed-card");
  if (c && !open) {
    closed.hidden = false;
    renderClosedCard(c);
  } else {
    closed.hidden = true;
  }
}

/** Waiting for an agent: the place in the queue and an estimate. */
function renderQueueCard(c) {
  const card = $("queue-card");
  if (!c || c.status !== "queued") {
    card.hidden = true;
    return;
  }
  card.hidden = false;
  const q = c.queue;
  let line1 = t("queue_waiting");
  let line2 = "";
  if (q && q.notice && q.urgent) {
    // an urgent security chat: the truth (who is on it, or that nobody is online yet),
    // never "you are next" or a waiting time
    mount(
      card,
      h("div", { class: ["queue-spinner", "urgent"], attrs: { "aria-hidden": "true" } }),
      h("div", {}, h("div", { class: ["queue-line", "queue-urgent"], id: "queue-line", text: q.notice })),
    );
    return;
  }
  if (q && q.staffed === false && q.notice) {
    // nobody who can help is online: said plainly, with no waiting time, and the choice
    // to leave a message (the chat stays; the answer comes in the app and by push)
    const left = q.message_left
      ? h("div", { class: "queue-note", id: "queue-left", text: t("queue_left") })
      : h("button", { class: ["btn", "escalate"], id: "btn-leave-message", text: t("leave_message"), onclick: leaveMessage });
    mount(
      card,
      h("div", { class: ["queue-spinner", "unstaffed"], attrs: { "aria-hidden": "true" } }),
      h(
        "div",
        {},
        h("div", { class: ["queue-line", "queue-unstaffed"], id: "queue-line", text: q.notice }),
        h("div", { class: "queue-actions" }, left, mailChoice(c, () => renderQueueCard(c))),
      ),
    );
    return;
  }
  if (q && q.position) {
    line1 = q.position <= 1 ? t("queue_next") : q.position === 2 ? t("queue_pos_one") : t("queue_pos", { n: q.position - 1 });
    const min = Math.ceil((q.eta_s || 0) / 60);
    line2 = q.eta_s == null ? "" : min <= 1 ? t("queue_eta_short") : t("queue_eta", { m: min });
  }
  mount(
    card,
    h("div", { class: "queue-spinner", attrs: { "aria-hidden": "true" } }),
    h(
      "div",
      {},
      h("div", { class: "queue-line", id: "queue-line", text: line1 }),
      line2 && h("div", { class: "queue-eta", text: line2 }),
      h("div", { class: "queue-note", text: t("queue_note") }),
      mailChoice(c, () => renderQueueCard(c)),
    ),
  );
}

async function leaveMessage() {
  const c = currentConv();
  if (!c) return;
  try {
    await state.client.request({ type: "chat.leave_message", conversation_id: c.cid }, { retry: true });
    c.queue = { ...(c.queue || {}), message_left: true };
    renderChatChrome();
    $("input").focus();
  } catch (e) {
    toast(e.message || t("error_generic"));
  }
}

async function escalate() {
  const c = currentConv();
  if (!c) return;
  $("btn-escalate").disabled = true;
  try {
    const ack = await state.client.request({ type: "chat.escalate", conversation_id: c.cid }, { retry: true });
    if (c.status === "bot") c.status = ack.status || "queued";
    renderChatChrome();
  } catch (e) {
    toast(e.message || t("error_generic"));
  } finally {
    $("btn-escalate").disabled = false;
  }
}

async function endChat() {
  const c = currentConv();
  if (!c) return;
  try {
    await state.client.request({ type: "chat.close", conversation_id: c.cid }, { retry: true });
    c.status = "closed";
    renderChat();
  } catch (e) {
    toast(e.message || t("error_generic"));
  }
}

export function wireChat() {
  $("btn-escalate").addEventListener("click", escalate);
  $("btn-end").addEventListener("click", endChat);
  $("btn-new").addEventListener("click", newChat);
  $("btn-home").addEventListener("click", () => showView("home"));
}
