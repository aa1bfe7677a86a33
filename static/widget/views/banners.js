// The strips at the top of the web chat: the connection banner, the red banner of a
// critical security alert, and the toast.

import { $, h, mount } from "/static/shared/dom.js";
import { persist, securityChat, state, t } from "../state.js";
import { openChat } from "./chat.js";
import { renderBell } from "./notifications.js";

const TOAST_MS = 3500;

export function renderConnection(s) {
  const banner = $("conn-banner");
  const down = s === "reconnecting" || s === "connecting";
  banner.hidden = !down;
  banner.classList.toggle("soft", s === "connecting");
  mount(banner, s === "connecting" ? t("connecting") : t("reconnecting"));
  $("app").classList.toggle("is-offline", s === "reconnecting");
  for (const el of document.querySelectorAll(".msg.pending .msg-state")) {
    el.textContent = s === "open" ? t("sending") : t("offline_hint");
  }
}

// --- the security alert banner ----------------------------------------------------------

export function showAlert(n) {
  state.lastAlert = n;
  const box = $("alert-banner");
  box.hidden = false;
  box.dataset.seq = n.seq;
  const security = securityChat();
  mount(
    box,
    h("span", { class: "alert-icon", text: "⚠", attrs: { "aria-hidden": "true" } }),
    h("div", { class: "alert-text" }, h("strong", { text: n.title }), h("div", { text: n.body })),
    security &&
      h("button", {
        type: "button",
        class: "alert-close",
        text: t("open_security_chat"),
        onclick: () => openChat(securityChat().cid),
      }),
    h("button", { type: "button", class: "alert-close", text: t("dismiss"), onclick: () => dismissAlert(n) }),
  );
}

function dismissAlert(n) {
  $("alert-banner").hidden = true;
  state.acked = Math.max(state.acked, n.seq);
  state.client.send({ type: "notifications.ack", up_to: state.acked });
  renderBell();
  persist();
}

/** Paint the banner again if it is up (a security chat to offer has just opened). */
export function refreshAlert() {
  if (state.lastAlert && !$("alert-banner").hidden) showAlert(state.lastAlert);
}

/** A later "account unfrozen" ends the freeze the banner warned about. */
export function hideAlertIfOver(n) {
  const banner = $("alert-banner");
  const unfrozen = n.kind === "security.alert" && n.data?.alert === "account_unfrozen";
  if (unfrozen && !banner.hidden && n.seq > Number(banner.dataset.seq || 0)) banner.hidden = true;
}

// --- toast ---------------------------------------------------------------------------------

let toastTimer = null;

export function toast(text) {
  if (!text) return;
  const el = $("toast");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    el.hidden = true;
  }, TOAST_MS);
}
