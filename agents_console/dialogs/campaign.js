// Schedule a campaign (supervisors): the notice in Chinese and English, an optional help
// article, the send time with its time zone said, and the audience, whose size is shown
// before sending (POST /api/campaigns/preview).

import { api, h } from "/static/shared/dom.js";
import { S, token } from "../state.js";
import { closeDialog, openDialog } from "./dialog.js";

const WORDS = {
  zh: { title: "新建通知活动", category: "类型", notice: "通知", security: "安全教育", maintenance: "维护",
        zhTitle: "中文标题", zhBody: "中文内容", enTitle: "英文标题", enBody: "英文内容", link: "帮助文章（可选）",
        when: "发送时间（留空为立即）", tz: "时区", audience: "对象", all: "全部用户", lang: "按语言",
        active: "N 天内活跃", alert: "近期安全提醒", list: "用户名单", days: "天数", alertName: "提醒类型",
        ids: "用户 ID（每行一个）", preview: "预估人数", size: "将发送给 {n} 位用户", go: "确定发送", cancel: "取消" },
  en: { title: "New campaign", category: "Kind", notice: "Notice", security: "Security education", maintenance: "Maintenance",
        zhTitle: "Chinese title", zhBody: "Chinese text", enTitle: "English title", enBody: "English text",
        link: "Help article (optional)", when: "Send time (empty: now)", tz: "Time zone", audience: "Audience",
        all: "Everyone", lang: "A language", active: "Active within N days", alert: "A recent security alert",
        list: "A list of users", days: "Days", alertName: "Alert", ids: "User ids (one a line)",
        preview: "Audience size", size: "Goes to {n} users", go: "Schedule", cancel: "Cancel" },
}; // prettier-ignore

const field = (label, input) => h("label", { class: "field" }, label, input);

export function campaignDialog(done) {
  const w = WORDS[S.lang === "en" ? "en" : "zh"];
  const input = (id, attrs = {}) => h("input", { id, attrs: { type: "text", ...attrs } });
  const area = (id) => h("textarea", { id, attrs: { rows: 2 } });
  const select = (id, options) => h("select", { id }, options.map(([v, text]) => h("option", { text, attrs: { value: v } })));
  const category = select("cmp-category", [["notice", w.notice], ["security", w.security], ["maintenance", w.maintenance]]);
  const zhTitle = input("cmp-zh-title"), zhBody = area("cmp-zh-body"), enTitle = input("cmp-en-title"), enBody = area("cmp-en-body");
  const link = input("cmp-link", { placeholder: "account-security" });
  const when = input("cmp-when", { type: "datetime-local" });
  const tz = input("cmp-tz", { value: Intl.DateTimeFormat().resolvedOptions().timeZone || "Asia/Shanghai" });
  const kind = select("cmp-audience", [["all", w.all], ["lang", w.lang], ["active", w.active], ["alert", w.alert], ["list", w.list]]);
  const langPick = select("cmp-lang", [["zh", "中文"], ["en", "English"]]);
  const days = input("cmp-days", { type: "number", value: "7", min: "1", max: "365" });
  const alertName = input("cmp-alert", { value: "new_device_login" });
  const ids = area("cmp-ids");
  const size = h("p", { class: "muted", id: "cmp-size" });
  const error = h("p", { class: "form-error", hidden: true });
  const extra = h("div", { class: "cmp-extra" });
  const showExtra = () => {
    extra.replaceChildren();
    const k = kind.value;
    if (k === "lang") extra.append(langPick);
    if (k === "active" || k === "alert") extra.append(field(w.days, days));
    if (k === "alert") extra.append(field(w.alertName, alertName));
    if (k === "list") extra.append(field(w.ids, ids));
  };
  kind.addEventListener("change", showExtra);
  const audience = () => {
    const k = kind.value;
    const a = { kind: k };
    if (k === "lang") a.lang = langPick.value;
    if (k === "active" || k === "alert") a.days = Number(days.value);
    if (k === "alert") a.alert = alertName.value.trim();
    return a;
  };
  const userIds = () => (kind.value === "list" ? ids.value.split(/\s+/).filter(Boolean) : undefined);
  const fail = (e) => {
    error.hidden = false;
    error.textContent = e.message;
  };
  const preview = h("button", { type: "button", class: "btn ghost", id: "cmp-preview", text: w.preview });
  preview.addEventListener("click", async () => {
    error.hidden = true;
    try {
      const r = await api("/api/campaigns/preview", { token: token(), method: "POST", body: { audience: audience(), user_ids: userIds() } });
      size.textContent = w.size.replace("{n}", r.size);
    } catch (e) {
      fail(e);
    }
  });
  const go = h("button", { type: "button", class: "btn primary", id: "cmp-go", text: w.go });
  go.addEventListener("click", async () => {
    error.hidden = true;
    const body = {
      category: category.value,
      texts: { zh: { title: zhTitle.value, body: zhBody.value }, en: { title: enTitle.value, body: enBody.value } },
      audience: audience(),
    };
    if (link.value.trim()) body.link = link.value.trim();
    if (when.value) {
      body.send_at = when.value;
      body.tz = tz.value.trim();
    }
    const list = userIds();
    if (list) body.user_ids = list;
    go.disabled = true;
    try {
      await api("/api/campaigns", { token: token(), method: "POST", body });
      closeDialog();
      done?.();
    } catch (e) {
      fail(e);
    } finally {
      go.disabled = false;
    }
  });
  openDialog(
    w.title,
    [
      field(w.category, category),
      field(w.zhTitle, zhTitle), field(w.zhBody, zhBody), field(w.enTitle, enTitle), field(w.enBody, enBody),
      field(w.link, link),
      field(w.when, when), field(w.tz, tz),
      field(w.audience, kind), extra, size, error,
    ],
    [h("button", { class: "btn ghost", type: "submit", value: "cancel", text: w.cancel }), preview, go],
  ); // prettier-ignore
}
