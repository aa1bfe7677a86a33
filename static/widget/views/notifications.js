// Notifications: the bell with its unread count, the feed panel, and what a new
// notification does (a toast, or the red banner for a critical security alert).
// Unread means newer than `state.acked`, which every device of the user shares.

import { $, clock, h, money, mount } from "/static/shared/dom.js";
import { label } from "/static/shared/labels.js";
import { openPanel } from "../dialogs/panels.js";
import { FEED_LIMIT, persist, state, t } from "../state.js";
import { hideAlertIfOver, showAlert, toast } from "./banners.js";
import { campaignExtras, campaignOf, isDismissed } from "./campaigns.js";
import { maintenanceNotice } from "./maintenance.js";

// notifications replayed right after (re)connecting are not toasted one by one
const QUIET_AFTER_WELCOME_MS = 1500;

const isFeedOpen = () => !$("panel-notif").hidden;

export function onNotification(n) {
  if (!state.feed.some((x) => x.seq === n.seq)) {
    state.feed.unshift(n);
    state.feed.sort((a, b) => b.seq - a.seq);
    state.feed.length = Math.min(state.feed.length, FEED_LIMIT);
  }
  const fresh = n.seq > state.acked;
  hideAlertIfOver(n);
  maintenanceNotice(n);
  if (n.kind === "security.alert" && n.data?.severity === "critical" && fresh) showAlert(n);
  else if (fresh && Date.now() - state.welcomedAt > QUIET_AFTER_WELCOME_MS) toast(n.title || n.body);
  renderBell();
  if (isFeedOpen()) {
    renderFeed();
    ackNotifications();
  }
  persist();
}

/** Seen on another device of this user. */
export function onAcked(f) {
  if (typeof f.up_to !== "number" || f.up_to <= state.acked) return;
  state.acked = f.up_to;
  renderBell();
  if (isFeedOpen()) renderFeed();
  persist();
}

export function renderBell() {
  const unread = state.feed.filter((n) => n.seq > state.acked).length;
  const badge = $("bell-badge");
  badge.hidden = unread === 0;
  badge.textContent = unread > 99 ? "99+" : String(unread);
  $("btn-bell").classList.toggle("has-unread", unread > 0);
}

export function renderFeed() {
  const list = $("feed");
  const shown = state.feed.filter((n) => !isDismissed(n)); // a dismissed card never returns
  if (!shown.length) mount(list, h("li", { class: "empty", text: t("no_notifications") }));
  else mount(list, shown.map(notifItem));
}

function notifItem(n) {
  const d = n.data || {};
  const campaign = campaignOf(n);
  const kindClass = n.kind === "security.alert" ? `alert sev-${d.severity || "info"}` : campaign ? `notice campaign cat-${campaign.category}` : n.kind === "system.notice" ? "notice" : "tx";
  const extra = n.kind === "transaction.status" ? transactionDetails(d) : campaignExtras(n, renderFeed);
  return h(
    "li",
    { class: ["feed-item", kindClass, n.seq > state.acked && "unread"], dataset: { seq: n.seq } },
    h("div", { class: "feed-head" }, h("strong", { text: n.title }), h("time", { text: clock(n.ts) })),
    n.body && h("p", { text: n.body }),
    extra.length ? h("div", { class: "feed-extra" }, extra) : null,
  );
}

function transactionDetails(d) {
  const extra = [h("span", { class: `chip tx-${d.status}`, text: label("tx", d.status, state.lang) })];
  if (d.amount) extra.push(h("span", { class: "amount", text: money(d.amount, d.currency, state.lang) }));
  if (d.reason) extra.push(h("span", { class: "reason", text: label("reason", d.reason, state.lang) }));
  // The expected time is in the body, in this device's zone and labelled (the hub renders
  // it for this device, as the bot's answers): a second, unlabelled copy here could differ.
  return extra;
}

function ackNotifications() {
  const max = state.feed.reduce((m, n) => Math.max(m, n.seq), 0);
  if (max > state.acked) {
    state.acked = max;
    state.client.send({ type: "notifications.ack", up_to: max });
    persist();
  }
  renderBell();
}

export function wireNotifications() {
  $("btn-bell").addEventListener("click", () => {
    renderFeed();
    openPanel("panel-notif");
    ackNotifications();
  });
}
