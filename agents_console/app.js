// The agents' console: login, status, queue, chats, transcript, reply box with canned
// answers, notes, transfer, resolve, the customer panel and (for supervisors) the
// supervisor view. Every text from users or agents is rendered as text (/static/shared/dom.js).
//
// This module wires the page together and starts it; the state and frame handling live in
// state.js, connection.js and chats.js, each view in views/, each dialog in dialogs/.
// Views and handlers import each other's functions (a few import cycles): that is safe
// because no module calls into another while it loads, only later, from events and frames.

import { configureAttachments, isLightboxOpen } from "/static/shared/attachments.js";
import { $, duration } from "/static/shared/dom.js";
import { select } from "./chats.js";
import { connect, disconnect } from "./connection.js";
import { cannedDialog } from "./dialogs/canned.js";
import { isDialogOpen } from "./dialogs/dialog.js";
import { customer, supervisor } from "./panels.js";
import { unlock } from "./sound.js";
import { S, clearSession, selectedChat, t, toggleLang, token } from "./state.js";
import { orderedChats, renderChatList } from "./views/chat-list.js";
import { setMode, wireComposer } from "./views/composer.js";
import { renderConversation, wireConversation } from "./views/conversation.js";
import { renderConnection, renderHeader, wireHeader } from "./views/header.js";
import { showLogin, wireLogin } from "./views/login.js";
import { askNotificationPermission, renderUrgentBanner, updateTitle } from "./views/notifications.js";
import { renderQueue } from "./views/queue.js";
import { wireSearch } from "./views/search.js";
import { markRead } from "./views/transcript.js";

function startSession() {
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  connect({ onUnauthorized: () => logout() });
  renderAll();
}

function logout() {
  disconnect();
  clearSession();
  S.chats.clear();
  S.selected = null;
  S.queue = [];
  supervisor.hide();
  showLogin();
}

function renderAll() {
  renderHeader();
  renderConnection(S.client?.state || "connecting");
  renderQueue();
  renderChatList();
  renderConversation();
  renderUrgentBanner();
  customer.render();
  if (S.view === "supervisor") supervisor.render();
}

function applyLang() {
  document.documentElement.lang = S.lang === "en" ? "en" : "zh-CN";
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const b of document.querySelectorAll("[data-lang-toggle]")) b.textContent = S.lang === "en" ? "中文" : "English";
  if (!$("app-view").hidden) renderAll();
  updateTitle();
}

/** Ctrl/⌘-K canned answers, Alt-↑/↓ previous/next chat, Alt-N reply/note. */
function onShortcut(ev) {
  if ($("app-view").hidden || isDialogOpen() || isLightboxOpen()) return;
  if ((ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === "k") {
    ev.preventDefault();
    cannedDialog();
  } else if (ev.altKey && (ev.key === "ArrowDown" || ev.key === "ArrowUp")) {
    ev.preventDefault();
    const list = orderedChats();
    if (!list.length) return;
    const i = list.findIndex((c) => c.cid === S.selected);
    const next = list[(i + (ev.key === "ArrowDown" ? 1 : list.length - 1)) % list.length];
    select(next.cid);
  } else if (ev.altKey && ev.key.toLowerCase() === "n") {
    ev.preventDefault();
    const chat = selectedChat();
    if (chat) setMode(chat.mode === "note" ? "reply" : "note");
    $("reply").focus();
  }
}

function onVisible() {
  const chat = selectedChat();
  if (chat && document.visibilityState === "visible") {
    chat.unread = 0;
    renderChatList();
    updateTitle();
    markRead(chat);
  }
}

/** Waiting times ([data-since]) tick every second. */
function tickClocks() {
  const now = Date.now();
  for (const el of document.querySelectorAll("[data-since]")) {
    const since = Date.parse(el.dataset.since);
    if (Number.isFinite(since)) el.textContent = duration((now - since) / 1000);
  }
}

function wire() {
  wireLogin(startSession);
  $("btn-logout").addEventListener("click", logout);
  for (const b of document.querySelectorAll("[data-lang-toggle]")) {
    b.addEventListener("click", () => {
      toggleLang();
      applyLang();
    });
  }
  wireHeader();
  wireComposer();
  wireConversation();
  wireSearch();
  document.addEventListener("keydown", onShortcut);
  document.addEventListener("visibilitychange", onVisible);
  // after a reload there was no login click: the first gesture unlocks sound
  for (const type of ["pointerdown", "keydown"]) document.addEventListener(type, unlock, { once: true, capture: true });
  // browser notifications for when the tab is hidden: asked once, on the first click
  document.addEventListener("pointerdown", askNotificationPermission, { once: true, capture: true });
  document.body.addEventListener("animationend", (ev) => {
    if (ev.animationName === "urgent-flash") document.body.classList.remove("urgent-flash");
  });
}

setInterval(tickClocks, 1000);
configureAttachments({ token, lang: () => S.lang });
wire();
applyLang();
if (S.session?.token) startSession();
else showLogin();
