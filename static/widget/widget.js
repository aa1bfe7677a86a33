// The users' web chat: topic choice, the help bot, the human queue, the agent's chat,
// notifications, the identity-check code box and the satisfaction rating. Every piece of user, agent or bot text is put
// in the page as text (see ../shared/dom.js); only help-article links become elements.
//
// This module wires the page together and starts it; the state and frame handling live in
// state.js, auth.js, connection.js and chats.js, each view in views/, the panels in dialogs/.
// Views and handlers import each other's functions (a few import cycles): that is safe
// because no module calls into another while it loads, only later, from events and frames.

import { configureAttachments } from "/static/shared/attachments.js";
import { $ } from "/static/shared/dom.js";
import { connect } from "./connection.js";
import { wirePanels } from "./dialogs/panels.js";
import { initPush } from "./push.js";
import { persist, state, t } from "./state.js";
import { renderConnection } from "./views/banners.js";
import { renderChat, showView, wireChat } from "./views/chat.js";
import { wireComposer } from "./views/composer.js";
import { renderHeader } from "./views/header.js";
import { renderHome, wireHome } from "./views/home.js";
import { renderFeed, wireNotifications } from "./views/notifications.js";
import { markRead } from "./views/transcript.js";
import { renderVerify } from "./views/verify.js";

function applyLang() {
  document.documentElement.lang = state.lang === "en" ? "en" : "zh-CN";
  document.title = t("title");
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-aria]")) el.setAttribute("aria-label", t(el.dataset.i18nAria));
  for (const el of document.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  $("btn-lang").textContent = state.lang === "en" ? "中文" : "EN";
  $("btn-lang").setAttribute("aria-label", state.lang === "en" ? "切换到中文" : "Switch to English");
  if (state.client) renderConnection(state.client.state);
  if (state.view === "home") renderHome();
  else renderChat();
  renderHeader();
  renderVerify();
  if (!$("panel-notif").hidden) renderFeed();
}

function switchLang() {
  state.lang = state.lang === "en" ? "zh" : "en";
  persist();
  applyLang();
  // notifications and the agent's view follow the user's language from now on
  state.client?.send({ type: "user.lang", lang: state.lang });
}

function wire() {
  $("btn-lang").addEventListener("click", switchLang);
  wireHome();
  wireChat();
  wireNotifications();
  wirePanels();
  wireComposer();
  document.addEventListener("visibilitychange", markRead);
  window.addEventListener("focus", markRead);
}

configureAttachments({ token: () => state.token, lang: () => state.lang });
wire();
applyLang();
showView("home");
connect().then(initPush);
