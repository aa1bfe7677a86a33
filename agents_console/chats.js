// The agent's chats: what one chat holds, the frames that change a chat, and selecting or
// dropping one. The views render from S.chats.

import { $ } from "/static/shared/dom.js";
import { label } from "/static/shared/labels.js";
import { markTagged } from "./feedback.js";
import { customer } from "./panels.js";
import { S, selectedChat, stars, t } from "./state.js";
import { renderChatList } from "./views/chat-list.js";
import { setNotice, stopTyping } from "./views/composer.js";
import { renderConversation } from "./views/conversation.js";
import { alertSound, notifyHidden, renderUrgentBanner, toast, updateTitle } from "./views/notifications.js";
import {
  insertItem,
  markRead,
  messageEl,
  refreshReceipts,
  removePending,
  renderTranscript,
  renderTyping,
} from "./views/transcript.js";

const FLASH_MS = 15000;
const TYPING_SHOWN_MS = 6000;

function newChat(f) {
  return {
    cid: f.conversation_id,
    user: f.user,
    topic: f.topic,
    priority: f.priority,
    alert: f.alert,
    status: "assigned", // assigned | closed (resolved here or left by the user) | gone
    messages: new Map(), // seq -> message
    notes: new Map(), // note_id -> note
    pending: new Map(), // client_msg_id -> {text, failed}
    unread: 0,
    userRead: 0,
    typing: false,
    typingTimer: null,
    fresh: false,
    rating: null,
    draft: "",
    notice: null, // above the reply box: a refused message, or a secret hidden
    mode: "reply",
    readSent: 0,
    stale: false,
    closedBy: null,
    handover: null, // {from, note, note_id, ts}: what the previous agent left, shown first
  };
}

const rerender = (chat) => {
  if (S.selected === chat.cid) renderConversation();
};

// --- frames ------------------------------------------------------------------------------

export function onAssigned(f) {
  let chat = S.chats.get(f.conversation_id);
  const isNew = !chat || chat.status !== "assigned";
  if (!chat) {
    chat = newChat(f);
    S.chats.set(chat.cid, chat);
  }
  Object.assign(chat, {
    user: f.user,
    topic: f.topic,
    priority: f.priority,
    alert: f.alert,
    handover: f.handover || null,
    channel: f.channel || null,
    replyByEmail: !!f.reply_by_email,
    status: "assigned",
    stale: false,
    closedBy: null,
  });
  for (const m of f.history || []) chat.messages.set(m.seq, m);
  for (const n of f.notes || []) chat.notes.set(n.note_id, n);
  for (const tag of f.feedback || []) markTagged(chat, tag);
  for (const m of f.history || []) if (m.client_msg_id) chat.pending.delete(m.client_msg_id);
  if (isNew && !f.resumed) announce(chat);
  const current = selectedChat();
  if (!current || current.status === "gone") select(chat.cid, { auto: true });
  if (chat.fresh && chat.priority !== "urgent") {
    // the flash fades by itself; an urgent chat stays flagged until the agent opens it
    setTimeout(() => {
      chat.fresh = false;
      renderChatList();
      updateTitle();
    }, FLASH_MS);
  }
  renderChatList();
  renderUrgentBanner();
  updateTitle();
  rerender(chat);
}

function announce(chat) {
  chat.fresh = true;
  chat.unread = [...chat.messages.values()].filter((m) => m.sender?.role === "user").length || 1;
  const urgent = chat.priority === "urgent";
  alertSound(urgent ? "urgent" : "chat");
  const what = `${chat.user?.name || chat.user?.id} · ${label("topic", chat.topic, S.lang)}`;
  toast(`${urgent ? t("new_urgent") : t("new_chat")}: ${what}`, urgent ? "urgent" : "info");
  const first = [...chat.messages.values()].find((m) => m.sender?.role === "user");
  notifyHidden(`${urgent ? t("new_urgent") : t("new_chat")}: ${what}`, first?.text || "", `chat:${chat.cid}`, () => select(chat.cid));
}

export function onMessage(m) {
  const chat = S.chats.get(m.conversation_id);
  if (!chat) return;
  chat.messages.set(m.seq, m);
  if (m.client_msg_id && chat.pending.delete(m.client_msg_id)) removePending(m.client_msg_id);
  if (m.sender?.role === "user") {
    chat.typing = false;
    const watching = S.selected === chat.cid && S.view === "work" && document.visibilityState === "visible";
    if (!watching) {
      chat.unread += 1;
      alertSound("message");
      const body = m.text || (m.attachments?.length ? t("preview_file") : "");
      notifyHidden(chat.user?.name || chat.user?.id || t("new_message"), body, `msg:${chat.cid}`, () => select(chat.cid));
    }
  }
  if (S.selected === chat.cid) {
    insertItem(messageEl(m), m.seq);
    renderTyping();
    markRead(chat);
  }
  renderChatList();
  updateTitle();
}

/** A code, card number or password in the agent's own message or note was hidden before it
 * was stored: say so above the reply box (in the console's language). */
export function onSecurityWarning(f) {
  setNotice(S.chats.get(f.conversation_id), { kind: "masked" });
}

export function onNote(n) {
  const chat = S.chats.get(n.conversation_id);
  if (!chat) return;
  chat.notes.set(n.note_id, n);
  if (S.selected === chat.cid) renderTranscript(true);
}

export function onTyping(f) {
  const chat = S.chats.get(f.conversation_id);
  if (!chat || f.from?.role !== "user") return;
  chat.typing = Boolean(f.state);
  clearTimeout(chat.typingTimer);
  if (chat.typing) {
    // a "stopped typing" can be lost with the customer's connection
    chat.typingTimer = setTimeout(() => {
      chat.typing = false;
      renderTyping();
      renderChatList();
    }, TYPING_SHOWN_MS);
  }
  renderTyping();
  renderChatList();
}

export function onRead(f) {
  const chat = S.chats.get(f.conversation_id);
  if (!chat || f.by?.role !== "user") return;
  chat.userRead = Math.max(chat.userRead, f.seq || 0);
  if (S.selected === chat.cid) refreshReceipts(chat);
}

export function onClosed(f) {
  const chat = S.chats.get(f.conversation_id);
  if (!chat) return;
  chat.status = "closed";
  chat.closedBy = f.by;
  chat.typing = false;
  if (f.by === "user") toast(`${chat.user?.name || ""}: ${t("closed_by_user")}`, "info");
  renderChatList();
  rerender(chat);
  updateTitle();
}

export function onTransferred(f) {
  const chat = S.chats.get(f.conversation_id);
  if (!chat) return;
  chat.status = "gone";
  const why = { urgent_escalation: t("urgent_escalated"), taken: t("taken_away"), taken_over: t("taken_over_away") }[f.reason] || t("transferred_away");
  toast(`${chat.user?.name || ""}: ${why}`, f.reason === "urgent_escalation" ? "urgent" : "info");
  removeChat(chat.cid);
}

export function onRated(f) {
  const chat = S.chats.get(f.conversation_id);
  toast(`${chat?.user?.name || ""} ${t("rated", { stars: stars(f.score) })}`, "info");
  if (!chat) return;
  chat.rating = { score: f.score, comment: f.comment };
  rerender(chat);
  renderChatList();
}

export function onCustomerLang(f) {
  const chat = S.chats.get(f.conversation_id);
  if (!chat?.user) return;
  chat.user = { ...chat.user, lang: f.lang };
  rerender(chat);
}

/** One of the customer's sockets opened or closed: the header of their chats says so. */
export function onCustomerPresence(f) {
  let shown = false;
  for (const chat of S.chats.values()) {
    if (chat.user?.id !== f.user_id) continue;
    chat.user = { ...chat.user, online: f.online, last_seen: f.last_seen };
    shown ||= S.selected === chat.cid;
  }
  if (shown) renderConversation();
}

/** The customer's account was unfrozen: the alert strips of their chats say so. */
export function markUnfrozen(userId) {
  for (const chat of S.chats.values()) {
    if (chat.alert && chat.user?.id === userId) chat.alert = { ...chat.alert, unfrozen: true };
  }
  renderConversation();
}

// --- after a reconnect ---------------------------------------------------------------------

/** On welcome: every chat we hold as ours must be announced again by the hub. */
export function expectResumedChats() {
  for (const chat of S.chats.values()) chat.stale = chat.status === "assigned";
  S.sweepAfterWelcome = true;
}

/** resume_agent sends every assigned chat, then the queue: whatever was not re-sent is gone. */
export function dropUnresumedChats() {
  if (!S.sweepAfterWelcome) return;
  S.sweepAfterWelcome = false;
  for (const chat of S.chats.values()) {
    if (chat.stale) {
      chat.stale = false;
      chat.status = "gone";
    }
  }
  renderChatList();
  if (S.selected) renderConversation();
}

// --- selection -----------------------------------------------------------------------------

export function select(cid, { auto = false } = {}) {
  const prev = selectedChat();
  if (prev) prev.draft = $("reply").value;
  S.selected = cid;
  const chat = S.chats.get(cid);
  if (chat) {
    chat.unread = 0;
    if (!auto) chat.fresh = false;
  }
  stopTyping(prev);
  renderChatList();
  renderConversation();
  renderUrgentBanner();
  updateTitle();
  if (chat) {
    customer.show(chat.user, chat.cid);
    $("reply").value = chat.draft || "";
    if (chat.status === "assigned" && !auto) $("reply").focus();
  } else {
    customer.clear();
  }
}

export function removeChat(cid) {
  S.chats.delete(cid);
  S.client?.forget(cid);
  if (S.selected === cid) {
    const next = [...S.chats.values()].find((c) => c.status === "assigned");
    S.selected = null;
    if (next) select(next.cid);
    else renderConversation();
  }
  renderChatList();
  renderUrgentBanner();
  updateTitle();
}
