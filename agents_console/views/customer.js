// The customer panel: account (balance, frozen), the identity check (for security agents),
// recent transactions with live status, security alerts and past conversations. REST on
// selection; `customer.event` and `verify.result` frames update it in place while a chat is
// open.

import { api, clock, dateTime, h, money, mount } from "/static/shared/dom.js";
import { label } from "/static/shared/labels.js";

const TX_LIMIT = 8;

export class CustomerPanel {
  /**
   * @param {object} o
   * @param {HTMLElement} o.el
   * @param {() => string} o.token
   * @param {(key: string, vars?: object) => string} o.t
   * @param {() => string} o.lang
   * @param {() => boolean} o.canUnfreeze
   * @param {(userId: string) => void} o.onUnfreeze
   * @param {() => boolean} o.canVerify
   * @param {(userId: string, cid: string) => void} o.onVerify
   * @param {(cid: string) => void} o.onOpenConversation
   * @param {() => void} [o.onClose] closes the panel where it is a drawer (narrow screens)
   */
  constructor(o) {
    this.o = o;
    this.cache = new Map(); // user_id -> {account, payments, alerts, convs, errors}
    this.checks = new Map(); // user_id -> identity check {state, challengeId, expiresAt, verifiedAt, ...}
    this.user = null;
    this.currentCid = null;
    this.flash = new Set(); // transaction ids / alert keys to highlight once
    this._refreshTimer = null;
    this._seq = 0;
  }

  /** Show a user (from a selected chat); loads fresh data in the background. */
  show(user, cid) {
    this.user = user;
    this.currentCid = cid;
    this.render();
    if (user) this.refresh();
  }

  clear() {
    this.user = null;
    this.render();
  }

  async refresh() {
    const user = this.user;
    if (!user) return;
    const uid = encodeURIComponent(user.id);
    const token = this.o.token();
    const seq = ++this._seq;
    const [account, payments, alerts, convs] = await Promise.allSettled([
      api(`/api/accounts/${uid}`, { token }),
      api(`/api/payments?user_id=${uid}&limit=${TX_LIMIT}`, { token }),
      api(`/api/accounts/${uid}/alerts?limit=5`, { token }),
      api(`/api/conversations?user_id=${uid}&limit=10`, { token }),
    ]);
    const data = this.data(user.id);
    const keep = (res, pick, key) => {
      if (res.status === "fulfilled") {
        data[key] = pick(res.value);
        delete data.errors[key];
      } else {
        data.errors[key] = res.reason?.status || "error";
        if (res.reason?.status === 404) data[key] = null;
      }
    };
    keep(account, (v) => v, "account");
    keep(payments, (v) => listOf(v, "payments", "transactions", "items"), "payments");
    keep(alerts, (v) => listOf(v, "alerts", "items"), "alerts");
    keep(convs, (v) => listOf(v, "conversations", "items"), "convs");
    data.loaded = true;
    if (seq === this._seq && this.user?.id === user.id) this.render();
  }

  data(userId) {
    let d = this.cache.get(userId);
    if (!d) {
      d = { account: undefined, payments: [], alerts: [], convs: [], errors: {}, loaded: false };
      this.cache.set(userId, d);
    }
    return d;
  }

  /** A `customer.event` frame: update the transaction or alert in place. */
  applyEvent(ev) {
    if (!ev?.user_id) return;
    const d = this.data(ev.user_id);
    const data = ev.data || {};
    if (ev.kind === "transaction.status" && data.transaction_id) {
      d.payments = d.payments || [];
      let tx = d.payments.find((p) => p.transaction_id === data.transaction_id);
      if (!tx) {
        tx = {
          transaction_id: data.transaction_id,
          from_account: ev.user_id,
          to_account: data.to_account,
          amount: data.amount,
          currency: data.currency,
          speed: data.speed,
          created_at: ev.ts,
        };
        d.payments.unshift(tx);
        d.payments.length = Math.min(d.payments.length, TX_LIMIT);
      }
      tx.status = data.status;
      if (data.reason) tx.reason = data.reason;
      else delete tx.reason;
      if (data.expected_by) tx.expected_by = data.expected_by;
      this.flash.add(`tx:${data.transaction_id}`);
    } else if (ev.kind === "security.alert") {
      d.alerts = d.alerts || [];
      d.alerts.unshift({ alert: data.alert, severity: data.severity, details: data.details, occurred_at: ev.ts });
      d.alerts.length = Math.min(d.alerts.length, 5);
      if (d.account && data.alert === "account_frozen") d.account.frozen = true;
      if (d.account && data.alert === "account_unfrozen") d.account.frozen = false;
      this.flash.add(`alert:${ev.ts}`);
    }
    if (this.user?.id === ev.user_id) {
      this.render();
      // the balance moves with a settled payment: fetch it shortly after
      clearTimeout(this._refreshTimer);
      this._refreshTimer = setTimeout(() => this.refresh(), 800);
    }
  }

  /** What the console knows of this customer's identity check (after verify.request). */
  setVerification(userId, check) {
    this.checks.set(userId, check);
    if (this.user?.id === userId) this.render();
  }

  /** A `verify.result` frame: passed, a wrong code (attempts left), or over. */
  applyVerifyResult(f) {
    const check = this.checks.get(f.user_id) || {};
    if (check.state === "verified" && !f.ok) return; // e.g. the same code sent again: "used"
    if (check.challengeId && check.challengeId !== f.challenge_id) return; // an older code
    if (f.ok) this.setVerification(f.user_id, { state: "verified", challengeId: f.challenge_id, verifiedAt: f.verified_at });
    else if (f.reason === "wrong_code") this.setVerification(f.user_id, { ...check, attemptsLeft: f.attempts_left });
    else this.setVerification(f.user_id, { state: "failed", challengeId: f.challenge_id, reason: f.reason });
  }

  render() {
    const { el, t } = this.o;
    const lang = this.o.lang();
    const close =
      this.o.onClose &&
      h("button", { type: "button", class: "icon-btn customer-close", id: "customer-close", text: "✕", attrs: { "aria-label": t("close") }, onclick: () => this.o.onClose() });
    if (!this.user) {
      mount(el, close, h("div", { class: "cp-empty", text: t("customer") }));
      return;
    }
    const user = this.user;
    const d = this.data(user.id);
    const sections = [
      close,
      h(
        "section",
        { class: "cp-card cp-profile" },
        h("div", { class: "avatar lg", text: initial(user.name || user.id) }),
        h(
          "div",
          { class: "cp-who" },
          h("div", { class: "cp-name", text: user.name || user.id }),
          h("div", { class: "cp-id", text: user.id }),
          user.lang && h("span", { class: "tag", text: `${t("lang_of_user")}: ${user.lang === "en" ? "English" : "中文"}` }),
        ),
      ),
      this.accountSection(d, lang),
      this.verificationSection(),
      this.paymentsSection(d, lang),
      this.alertsSection(d, lang),
      this.pastSection(d, lang),
    ];
    mount(el, sections);
    this.flash.clear();
  }

  accountSection(d, lang) {
    const { t } = this.o;
    let body;
    if (d.account === undefined && !d.loaded) body = h("div", { class: "skeleton" });
    else if (!d.account) body = h("div", { class: "muted", text: d.errors.account === 404 || d.account === null ? t("no_account") : t("unavailable") });
    else {
      const a = d.account;
      body = h(
        "div",
        { class: "cp-account" },
        h("div", { class: "cp-balance-label", text: t("balance") }),
        h("div", { class: "cp-balance", id: "cp-balance", text: money(a.balance, a.currency, lang) }),
        h(
          "div",
          { class: "cp-account-state" },
          a.frozen
            ? h("span", { class: "badge-frozen", id: "cp-frozen", text: `🔒 ${t("frozen")}` })
            : h("span", { class: "badge-ok", text: t("active_account") }),
          a.frozen && a.frozen_reason && h("span", { class: "muted small", text: a.frozen_reason }),
        ),
        a.frozen &&
          this.o.canUnfreeze() &&
          h("button", {
            class: "btn danger small",
            type: "button",
            id: "btn-unfreeze",
            text: t("unfreeze"),
            onclick: () => this.o.onUnfreeze(this.user.id),
          }),
      );
    }
    return h("section", { class: "cp-card" }, h("h3", { text: t("account") }), body);
  }

  verificationSection() {
    const { t } = this.o;
    if (!this.o.canVerify() || !this.currentCid) return null;
    const check = this.checks.get(this.user.id) || { state: "idle" };
    const ask = (key) =>
      h("button", {
        class: "btn ghost small",
        type: "button",
        id: "btn-verify",
        text: t(key),
        onclick: () => this.o.onVerify(this.user.id, this.currentCid),
      });
    let body;
    if (check.state === "verified") {
      body = [h("span", { class: "badge-ok", id: "cp-verified", text: `✓ ${t("verified_at", { time: clock(check.verifiedAt) })}` })];
    } else if (check.state === "pending") {
      body = [
        h("div", { class: "verify-state", id: "verify-pending", text: t("verify_pending", { time: clock(check.expiresAt) }) }),
        check.attemptsLeft < check.attempts && h("div", { class: "form-error small", id: "verify-attempts", text: t("verify_attempts", { n: check.attemptsLeft }) }),
        ask("verify_again"),
      ];
    } else if (check.state === "failed") {
      body = [h("div", { class: "form-error small", id: "verify-failed", text: t(`verify_${check.reason}`) }), ask("verify_again")];
    } else {
      body = [h("p", { class: "muted small", text: t("verify_lead") }), ask("verify_identity")];
    }
    return h("section", { class: "cp-card cp-verify", dataset: { state: check.state } }, h("h3", { text: t("verify_title") }), body);
  }

  paymentsSection(d, lang) {
    const { t } = this.o;
    const list = d.payments || [];
    let body;
    if (!list.length) {
      body = h("div", { class: "muted", text: d.errors.payments && d.errors.payments !== 404 ? t("unavailable") : t("no_transactions") });
    } else {
      body = h(
        "ul",
        { class: "tx-list", id: "tx-list" },
        list.map((tx) => {
          const out = tx.from_account ? tx.from_account === this.user.id : tx.direction !== "in";
          const other = out ? tx.to_account : tx.from_account;
          return h(
            "li",
            {
              class: ["tx", this.flash.has(`tx:${tx.transaction_id}`) && "flash"],
              dataset: { tx: tx.transaction_id, status: tx.status },
            },
            h("div", { class: ["tx-dir", out ? "out" : "in"], text: out ? "↑" : "↓" }),
            h(
              "div",
              { class: "tx-main" },
              h(
                "div",
                { class: "tx-line" },
                h("span", { class: "tx-amount", text: `${out ? "−" : "+"}${money(tx.amount, tx.currency, lang)}` }),
                h("span", { class: `chip tx-${tx.status}`, text: label("tx", tx.status, lang) }),
              ),
              h(
                "div",
                { class: "tx-sub" },
                other && h("span", { text: t(out ? "to" : "from", { who: other }) }),
                h("span", { text: dateTime(tx.created_at, lang) }),
                tx.speed && h("span", { text: label("speed", tx.speed, lang) }),
              ),
              tx.status === "failed" && tx.reason && h("div", { class: "tx-reason", text: label("reason", tx.reason, lang) }),
              tx.status === "processing" &&
                tx.expected_by &&
                h("div", { class: "tx-eta", text: t("expected_by", { time: dateTime(tx.expected_by, lang) }) }),
              h("div", { class: "tx-id", text: tx.transaction_id }),
            ),
          );
        }),
      );
    }
    return h("section", { class: "cp-card" }, h("h3", { text: t("transactions") }), body);
  }

  alertsSection(d, lang) {
    const { t } = this.o;
    const list = d.alerts || [];
    const body = list.length
      ? h(
          "ul",
          { class: "alert-list", id: "alert-list" },
          list.map((a) =>
            h(
              "li",
              { class: ["sec-alert", `sev-${a.severity || "info"}`, this.flash.has(`alert:${a.occurred_at}`) && "flash"], dataset: { alert: a.alert } },
              h("span", { class: "sev-dot" }),
              h(
                "div",
                {},
                h("div", { class: "sec-title", text: label("alert", a.alert, lang) }),
                h("div", { class: "muted small", text: `${label("severity", a.severity, lang)} · ${dateTime(a.occurred_at || a.ts, lang)}` }),
              ),
            ),
          ),
        )
      : h("div", { class: "muted", text: d.errors.alerts && d.errors.alerts !== 404 ? t("unavailable") : t("no_alerts") });
    return h("section", { class: "cp-card" }, h("h3", { text: t("alerts") }), body);
  }

  pastSection(d, lang) {
    const { t } = this.o;
    const list = (d.convs || []).filter((c) => c.conversation_id !== this.currentCid);
    const body = list.length
      ? h(
          "ul",
          { class: "past-list" },
          list.map((c) =>
            h(
              "li",
              {},
              h(
                "button",
                { type: "button", class: "past", onclick: () => this.o.onOpenConversation(c.conversation_id) },
                h("span", { class: "past-topic", text: label("topic", c.topic, lang) }),
                h("span", { class: `chip conv-${c.status}`, text: label("conv", c.status, lang) }),
                h("span", { class: "muted small", text: dateTime(c.created_at, lang) }),
              ),
            ),
          ),
        )
      : h("div", { class: "muted", text: d.errors.convs ? t("unavailable") : t("no_past") });
    return h("section", { class: "cp-card" }, h("h3", { text: t("past") }), body);
  }
}

function listOf(value, ...keys) {
  if (Array.isArray(value)) return value;
  for (const k of keys) if (Array.isArray(value?.[k])) return value[k];
  return [];
}

export function initial(name) {
  return String(name || "?").trim().slice(0, 1).toUpperCase();
}
