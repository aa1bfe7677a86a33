// Campaigns in the supervisor view: the list with each campaign's status and its
// delivered / read / clicked counts (GET /api/campaigns), a button to schedule a new one
// (dialogs/campaign.js) and, for one not yet started, a cancel button.

import { api, h, mount } from "/static/shared/dom.js";
import { S, token } from "../state.js";
import { campaignDialog } from "../dialogs/campaign.js";

const WORDS = {
  zh: { title: "通知活动", add: "新建通知", none: "还没有通知活动", cancel: "取消发送", when: "发送时间",
        audience: "对象", status: "状态", delivered: "送达", read: "已读", clicked: "点击", notice: "通知",
        scheduled: "待发送", sending: "发送中", sent: "已发送", cancelled: "已取消" },
  en: { title: "Campaigns", add: "New campaign", none: "No campaigns yet", cancel: "Cancel", when: "Send time",
        audience: "Audience", status: "Status", delivered: "Delivered", read: "Read", clicked: "Clicked", notice: "Notice",
        scheduled: "Scheduled", sending: "Sending", sent: "Sent", cancelled: "Cancelled" },
}; // prettier-ignore

export const words = () => WORDS[S.lang === "en" ? "en" : "zh"];
let last = [];

/** What an audience is, in words. */
export function audienceText(a, lang = S.lang) {
  const en = lang === "en";
  switch (a?.kind) {
    case "all": return en ? "Everyone" : "全部用户";
    case "lang": return en ? `Language: ${a.lang}` : `语言：${a.lang}`;
    case "active": return en ? `Active within ${a.days} days` : `${a.days} 天内活跃`;
    case "alert": return en ? `${a.alert} within ${a.days} days` : `${a.days} 天内有 ${a.alert}`;
    case "list": return en ? "Uploaded list" : "上传名单";
    default: return "—";
  }
} // prettier-ignore

/** The panel's element; it fills itself and again after every change. */
export function campaignsPanel() {
  const box = h("section", { class: "sv-panel sv-campaigns", id: "sv-campaigns" });
  paint(box);
  load(box);
  return box;
}

async function load(box) {
  try {
    last = (await api("/api/campaigns?limit=20", { token: token() })).campaigns || [];
  } catch {
    return; // a later refresh tries again
  }
  paint(box);
}

function paint(box) {
  const w = words();
  const head = h(
    "header",
    { class: "sv-head" },
    h("h2", { text: w.title }),
    h("button", { type: "button", class: "btn small primary", id: "campaign-new", text: w.add,
                  onclick: () => campaignDialog(() => load(box)) }), // prettier-ignore
  );
  if (!last.length) return mount(box, head, h("p", { class: "muted", text: w.none }));
  const row = (c) =>
    h(
      "tr",
      { dataset: { campaign: c.id, status: c.status } },
      h("td", { text: (S.lang === "en" ? c.texts?.en?.title : c.texts?.zh?.title) || "" }),
      h("td", { text: audienceText(c.audience) }),
      h("td", { text: new Date(c.send_at).toLocaleString(S.lang === "en" ? "en" : "zh-CN") }),
      h("td", { class: "campaign-status", text: w[c.status] || c.status }),
      h("td", { class: "num", dataset: { count: "delivered" }, text: String(c.counts?.delivered ?? 0) }),
      h("td", { class: "num", dataset: { count: "read" }, text: String(c.counts?.read ?? 0) }),
      h("td", { class: "num", dataset: { count: "clicked" }, text: String(c.counts?.clicked ?? 0) }),
      h("td", {}, c.status === "scheduled" && h("button", { type: "button", class: "btn small ghost", text: w.cancel,
                                                              onclick: () => cancel(box, c.id) })), // prettier-ignore
    );
  mount(
    box,
    head,
    h(
      "table",
      { class: "sv-table", id: "sv-campaign-table" },
      h("thead", {}, h("tr", {}, [w.notice, w.audience, w.when, w.status, w.delivered, w.read, w.clicked, ""].map((x) => h("th", { text: x })))),
      h("tbody", {}, last.map(row)),
    ),
  );
}

async function cancel(box, id) {
  try {
    await api(`/api/campaigns/${id}/cancel`, { token: token(), method: "POST" });
  } finally {
    load(box);
  }
}
