// Campaign cards in the notification list: a notice the operator scheduled (security
// education, maintenance, news) shown as a card with its help link, not a chat message.
// Security-education cards can be dismissed and are never shown again on this device or,
// through the hub, on the user's others (`welcome.dismissed_campaigns`). Opening the link
// and dismissing are reported once each (POST /api/campaigns/{id}/marks) for the counts.

import { api, h } from "/static/shared/dom.js";
import { state } from "../state.js";

const KEY = "supporthub.widget.dismissed";

function loadDismissed() {
  try {
    return new Set(JSON.parse(localStorage.getItem(KEY) || "[]"));
  } catch {
    return new Set();
  }
}

const dismissed = loadDismissed();

function saveDismissed() {
  try {
    localStorage.setItem(KEY, JSON.stringify([...dismissed].slice(-500)));
  } catch {
    // private mode: this page still remembers
  }
}

export const campaignOf = (n) => (n.kind === "system.notice" && Number.isInteger(n.data?.campaign_id) ? n.data : null);

/** The hub's list of dismissed campaigns (welcome): remembered here too. */
export function rememberDismissed(ids) {
  for (const id of ids || []) if (Number.isInteger(id)) dismissed.add(id);
  saveDismissed();
}

/** Whether the notification is a campaign card the user dismissed. */
export const isDismissed = (n) => {
  const c = campaignOf(n);
  return Boolean(c && dismissed.has(c.campaign_id));
};

function mark(id, action) {
  if (!state.token) return;
  api(`/api/campaigns/${id}/marks`, { token: state.token, method: "POST", body: { action } }).catch(() => {});
}

function href(link) {
  if (/^https:\/\//.test(link)) return link;
  return `/widget/help/${encodeURIComponent(link)}?lang=${state.lang}`;
}

/** The card's extra row: its link, and for security education a dismiss button. */
export function campaignExtras(n, rerender) {
  const c = campaignOf(n);
  if (!c) return [];
  const out = [];
  if (typeof c.link === "string" && c.link) {
    out.push(
      h("a", {
        class: "campaign-link",
        text: state.lang === "en" ? "Learn more" : "了解详情",
        attrs: { href: href(c.link), target: "_blank", rel: "noopener" },
        onclick: () => mark(c.campaign_id, "clicked"),
      }),
    );
  }
  if (c.category === "security") {
    out.push(
      h("button", {
        type: "button",
        class: "campaign-dismiss",
        text: state.lang === "en" ? "Got it" : "知道了",
        onclick: () => {
          dismissed.add(c.campaign_id);
          saveDismissed();
          mark(c.campaign_id, "dismissed");
          rerender();
        },
      }),
    );
  }
  return out;
}
