// Supervisor view: the floor's alarms, /api/stats figures, a chart of the last hour and
// one of the day by hour (inline SVG drawn here), the live queue (from queue.snapshot
// frames) with long waits highlighted by the hub's thresholds, the chats in progress (watch
// one live, take one over), every agent's load and figures, topics, the bot's outcomes
// and the week's feedback themes, and CSV exports. The hub's live `queue.alert` and
// `sla.alert` frames show as alarm entries and toasts and refresh the figures; the
// service levels of /api/stats (`sla`) are a card and a table of the chats at risk.

import { api, clock, duration, h, mount, svg } from "/static/shared/dom.js";
import { label } from "/static/shared/labels.js";
import { campaignsPanel } from "./campaigns.js";

const REFRESH_MS = 10000;
const LIVE_KEPT = 8; // live alerts shown above the figures, newest first

/** `alarm` from alarmS on, `warn` from warnS, else `ok` (the hub's hub.rules.alarms.level). */
export function level(seconds, warnS, alarmS) {
  if (seconds == null || warnS == null) return "ok";
  if (seconds >= alarmS) return "alarm";
  if (seconds >= warnS) return "warn";
  return "ok";
}

export class SupervisorView {
  constructor({ el, token, t, lang, actions = null, request = null, toast = null }) {
    this.el = el;
    this.token = token;
    this.t = t;
    this.lang = lang;
    this.actions = actions; // (queued chat) => buttons for its row (take, assign), or null
    this.request = request; // (frame) => Promise of the answer (the console's socket)
    this.toast = toast || (() => {});
    this.stats = null;
    this.agents = [];
    this.queue = [];
    this.active = [];
    this.feedback = null;
    this.watched = null; // {conversation_id, user, agent, messages: Map seq -> frame}
    this.updatedAt = null;
    this.timer = null;
    this.visible = false;
    this._soon = null;
    this.live = []; // the latest queue.alert / sla.alert frames, newest first
  }

  show() {
    if (!this._onResize) {
      let timer = null;
      this._onResize = () => {
        clearTimeout(timer);
        timer = setTimeout(() => this.visible && this.render(), 200);
      };
      window.addEventListener("resize", this._onResize);
    }
    this.visible = true;
    this.render();
    this.refresh();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
  }

  hide() {
    this.visible = false;
    clearInterval(this.timer);
  }

  setQueue(queue) {
    this.queue = queue || [];
    if (!this.visible) return;
    this.renderQueue();
    this.refreshSoon(); // queue changes move the figures too
  }

  /** Coalesce bursts of changes into one refresh of the figures. */
  refreshSoon() {
    clearTimeout(this._soon);
    this._soon = setTimeout(() => this.refresh(), 1000);
  }

  /** `queue.alert {kind: "unanswered"}`: a chat's agent did not answer, it kept its place
   * and nobody else could take it. */
  onQueueAlert(f) {
    this.addLive({ frame: "queue.alert", kind: f.kind, cid: f.conversation_id, text: this.liveText("queue.alert", f), level: "alarm" });
  }

  /** `sla.alert {state, kind, action}`: a chat's service levels changed. */
  onSlaAlert(f) {
    const level = f.state === "breached" ? "alarm" : f.state === "at_risk" ? "warn" : "ok";
    this.addLive({ frame: "sla.alert", kind: f.state, cid: f.conversation_id, text: this.liveText("sla.alert", f), level });
  }

  liveText(type, f) {
    const t = this.t;
    const lang = this.lang();
    const user = this.queue.find((q) => q.conversation_id === f.conversation_id)?.user?.name || f.user_id || "";
    if (type === "queue.alert") return t(`queue_alert_${f.kind}`, { agent: f.agent_id || "—", user: user || `#${String(f.conversation_id).slice(0, 8)}` });
    const what = t(`sla_alert_${f.state}`, { topic: label("topic", f.topic, lang) || f.topic || "", kind: t(`sla_kind_${f.kind}`) });
    return f.action ? `${what} · ${t(`sla_action_${f.action}`)}` : what;
  }

  addLive(entry) {
    this.live = [{ ...entry, at: new Date() }, ...this.live].slice(0, LIVE_KEPT);
    if (entry.level !== "ok") this.toast(entry.text, entry.level === "alarm" ? "error" : "info");
    if (!this.visible) return;
    const box = this.el.querySelector("#sv-alarms");
    if (box) mount(box, this.alarms());
    this.refreshSoon();
  }

  async refresh() {
    const token = this.token();
    const [stats, agents, active, feedback] = await Promise.allSettled([
      api("/api/stats", { token }),
      api("/api/agents", { token }),
      api("/api/conversations?status=assigned&limit=100", { token }),
      api("/api/feedback?days=7&limit=1", { token }),
    ]);
    if (stats.status === "fulfilled") this.stats = stats.value;
    if (agents.status === "fulfilled") this.agents = agents.value.agents || [];
    if (active.status === "fulfilled") this.active = active.value.conversations || [];
    if (feedback.status === "fulfilled") this.feedback = feedback.value;
    this.updatedAt = new Date();
    if (this.visible) this.render();
  }

  get thresholds() {
    return this.stats?.thresholds || null;
  }

  render() {
    const t = this.t;
    mount(
      this.el,
      h("div", { id: "sv-alarms", class: "sv-alarms", attrs: { role: "alert" } }, this.alarms()),
      h("div", { class: "sv-cards", id: "sv-cards" }, this.cards()),
      h(
        "section",
        { class: "sv-panel sv-chart-panel" },
        h("header", { class: "sv-head" }, h("h2", { text: t("chart_title") }), this.legend("lg-queue", "chart_queue", "lg-wait", "chart_wait")),
        h("div", { id: "sv-chart", class: "sv-chart" }, this.chart()),
      ),
      h(
        "section",
        { class: "sv-panel sv-chart-panel" },
        h("header", { class: "sv-head" }, h("h2", { text: t("day_title") }), this.legend("lg-queue", "day_queued", "lg-wait", "day_wait")),
        h("div", { id: "sv-day", class: "sv-chart" }, this.dayChart()),
      ),
      h(
        "div",
        { class: "sv-grid" },
        h("section", { class: "sv-panel" }, h("h2", { text: t("live_queue") }), h("div", { id: "sv-queue" })),
        h("section", { class: "sv-panel" }, h("h2", { text: t("active_chats") }), h("div", { id: "sv-active" }, this.activeTable())),
      ),
      h("section", { class: "sv-panel", id: "sv-sla-panel" }, h("h2", { text: t("sla_title") }), this.slaTable()),
      h("section", { class: "sv-panel", id: "sv-watch-panel" }, h("h2", { text: t("watch_title") }), h("div", { id: "sv-watch" }, this.watchBox())),
      h("section", { class: "sv-panel" }, h("h2", { text: t("per_agent") }), this.agentsTable()),
      h(
        "div",
        { class: "sv-grid" },
        h("section", { class: "sv-panel" }, h("h2", { text: t("by_topic") }), this.topicsTable()),
        h(
          "section",
          { class: "sv-panel" },
          h("header", { class: "sv-head" }, h("h2", { text: t("themes_title") })),
          this.themesTable(),
        ),
      ),
      h(
        "p",
        { class: "sv-exports" },
        h("button", { type: "button", class: "btn small ghost", id: "sv-export-stats", text: t("export_stats"), onclick: () => this.download("/api/stats/export.csv", "supporthub-stats.csv") }),
        h("button", { type: "button", class: "btn small ghost", id: "sv-export-feedback", text: t("export_feedback"), onclick: () => this.download("/api/feedback/export.csv?days=7&limit=1000", "supporthub-feedback.csv") }),
      ),
      campaignsPanel(),
      this.updatedAt && h("p", { class: "muted small sv-updated", text: t("updated", { time: clock(this.updatedAt) }) }),
    );
    this.renderQueue();
  }

  alarms() {
    const t = this.t;
    return [
      ...(this.stats?.alarms || []).map((a) =>
        h("div", { class: ["sv-alarm", `alarm-${a.kind}`], dataset: { alarm: a.kind } }, h("strong", { text: "⚠ " }), t(`alarm_${a.kind}`, { n: a.kind === "no_agents" ? a.waiting : a.conversations.length })),
      ),
      ...this.live.map((e) =>
        h(
          "div",
          { class: ["sv-alarm", "sv-live", `live-${e.level}`], dataset: { live: e.frame, kind: e.kind, cid: e.cid } },
          h("time", { class: "mono small", text: `${clock(e.at)} ` }),
          e.text,
        ),
      ),
    ];
  }

  cards() {
    const t = this.t;
    const s = this.stats;
    const th = this.thresholds;
    const secs = (v) => (v == null ? "—" : duration(v));
    const liveOldest = this.queue.reduce((m, q) => (q.enqueued_at ? Math.min(m, Date.parse(q.enqueued_at)) : m), Infinity);
    const card = (key, value, sub, cls, attrs = {}) =>
      h("div", { class: ["sv-card", cls], dataset: { stat: key } }, h("div", { class: "sv-label", text: t(key) }), h("div", { class: "sv-value", ...attrs }, value), sub && h("div", { class: "sv-sub", text: sub }));
    const q = s?.queue || { total: this.queue.length, by_priority: {} };
    const urgent = q.by_priority?.urgent || 0;
    const oldestS = Number.isFinite(liveOldest) ? (Date.now() - liveOldest) / 1000 : q.oldest_wait_s;
    const oldestLevel = th && q.total ? level(oldestS, th.wait_warn_s, th.wait_alarm_s) : "ok";
    const sla = s?.sla;
    const bot = s?.bot;
    return [
      card(
        "stats_queue",
        String(q.total ?? 0),
        `${label("priority", "urgent", this.lang())} ${urgent} · ${label("priority", "high", this.lang())} ${q.by_priority?.high || 0}`,
        urgent ? "danger" : null,
      ),
      card(
        "stats_oldest",
        q.total || Number.isFinite(liveOldest) ? duration(oldestS || 0) : "—",
        null,
        oldestLevel === "alarm" ? "danger" : oldestLevel === "warn" ? "warn" : null,
        Number.isFinite(liveOldest) ? { dataset: { since: new Date(liveOldest).toISOString() } } : {},
      ),
      card("stats_agents", String(s?.agents?.online ?? "—"), s ? `${t("away")} ${s.agents.away} · ${t("full")} ${s.agents.busy}` : null, s && !s.agents.online && q.total ? "danger" : null),
      card("stats_wait", secs(s?.waiting_time_s?.avg), s ? t("p90", { v: secs(s.waiting_time_s.p90) }) : null),
      card("stats_first", secs(s?.first_response_s?.avg)),
      card("stats_handle", secs(s?.handle_time_s?.avg)),
      card("stats_resolution", secs(s?.resolution_s?.avg)),
      card("stats_csat", s?.csat?.avg == null ? "—" : `${Number(s.csat.avg).toFixed(1)} ★`, s ? t("ratings", { n: s.csat.count }) : null),
      card("stats_sla", sla?.share == null ? "—" : `${Math.round(sla.share * 100)}%`, sla ? `${sla.met}/${sla.counted} · ${t("sla_target", { v: duration(sla.reply_s) })}` : null),
      card(
        "stats_sla_live",
        sla?.at_risk == null ? "—" : String(sla.at_risk + (sla.breached_open || 0)),
        sla?.at_risk == null ? null : t("sla_live_sub", { r: sla.at_risk, b: sla.breached_open || 0, d: sla.breached || 0, x: sla.rerouted || 0, e: sla.escalated || 0 }),
        sla?.breached_open ? "danger" : sla?.at_risk ? "warn" : null,
      ),
      card("stats_bot", bot ? String(bot.confirmed + bot.assumed) : "—", bot ? t("bot_sub", { c: bot.confirmed, a: bot.assumed, h: bot.handed_off, n: bot.involved }) : null),
      card("stats_convs", String(s?.conversations ?? "—")),
    ];
  }

  legend(aCls, aKey, bCls, bKey) {
    const t = this.t;
    return h("div", { class: "sv-legend" }, h("span", { class: aCls }, t(aKey)), h("span", { class: bCls }, t(bKey)));
  }

  /** Bars: queue length (left axis); line: average wait in minutes (right axis). */
  chart() {
    const t = this.t;
    const now = Date.now();
    const from = now - 3600_000;
    const points = (this.stats?.history || [])
      .map((p) => ({ ts: Date.parse(p.ts), q: Number(p.queued) || 0, w: (Number(p.avg_wait_s) || 0) / 60 }))
      .filter((p) => p.ts >= from - 60_000)
      .sort((a, b) => a.ts - b.ts);
    const ticks = [];
    for (let m = 60; m >= 0; m -= 15) ticks.push({ ts: now - m * 60_000, text: m ? `-${m}m` : clock(now) });
    return this.barsAndLine({ from, span: 3600_000, points, ticks, slots: 60, title: t("chart_title"), barTitle: (p) => `${clock(p.ts)} · ${t("chart_queue")} ${p.q}` });
  }

  /** The day by hour: bars, chats that entered the queue; line, their average wait (min). */
  dayChart() {
    const t = this.t;
    const hours = this.stats?.by_hour || [];
    const points = hours.map((p) => ({ ts: Date.parse(p.hour) + 1800_000, q: Number(p.queued) || 0, w: (Number(p.wait_avg_s) || 0) / 60, hasWait: p.wait_avg_s != null, max: p.wait_max_s }));
    const from = hours.length ? Date.parse(hours[0].hour) : Date.now() - 86400_000;
    const ticks = hours.filter((_, i) => i % 3 === 0).map((p) => ({ ts: Date.parse(p.hour) + 1800_000, text: clock(p.hour) }));
    return this.barsAndLine({
      from,
      span: 24 * 3600_000,
      points: points.filter((p) => p.q || p.hasWait),
      ticks,
      slots: 24,
      title: t("day_title"),
      barTitle: (p) => `${clock(p.ts - 1800_000)} · ${t("day_queued")} ${p.q} · ${t("day_wait")} ${p.w.toFixed(1)} · ${t("day_max")} ${((p.max || 0) / 60).toFixed(1)}`,
      cls: "day",
    });
  }

  barsAndLine({ from, span, points, ticks, slots, title, barTitle, cls = "" }) {
    const t = this.t;
    // drawn at the panel's pixel size so that text stays 10-11 px whatever the width
    const W = Math.max(420, Math.round((this.el.clientWidth || 900) - 74));
    const H = 200;
    const pad = { l: 36, r: 40, t: 12, b: 26 };
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: ["chart", cls].join(" ").trim(), role: "img", "aria-label": title });
    const x = (ts) => pad.l + ((ts - from) / span) * (W - pad.l - pad.r);
    const maxQ = Math.max(4, ...points.map((p) => p.q));
    const maxW = Math.max(1, ...points.map((p) => p.w));
    const yQ = (v) => H - pad.b - (v / maxQ) * (H - pad.t - pad.b);
    const yW = (v) => H - pad.b - (v / maxW) * (H - pad.t - pad.b);
    for (let i = 0; i <= 4; i++) {
      const y = pad.t + (i / 4) * (H - pad.t - pad.b);
      root.appendChild(svg("line", { x1: pad.l, x2: W - pad.r, y1: y, y2: y, class: "grid" }));
      root.appendChild(svg("text", { x: pad.l - 6, y: y + 4, class: "axis left" }, String(Math.round(maxQ * (1 - i / 4)))));
      root.appendChild(svg("text", { x: W - pad.r + 6, y: y + 4, class: "axis right" }, (maxW * (1 - i / 4)).toFixed(1)));
    }
    for (const tick of ticks) root.appendChild(svg("text", { x: x(tick.ts), y: H - 6, class: "axis bottom" }, tick.text));
    if (!points.length) {
      root.appendChild(svg("text", { x: W / 2, y: H / 2, class: "chart-empty" }, t("chart_empty")));
      return root;
    }
    const bw = Math.max(2, ((W - pad.l - pad.r) / slots) * 0.7);
    for (const p of points) {
      root.appendChild(svg("rect", { x: x(p.ts) - bw / 2, y: yQ(p.q), width: bw, height: H - pad.b - yQ(p.q), class: "bar", "data-queued": p.q }, svg("title", {}, barTitle(p))));
    }
    const waits = points.filter((p) => p.hasWait !== false);
    const d = waits.map((p, i) => `${i ? "L" : "M"}${x(p.ts).toFixed(1)},${yW(p.w).toFixed(1)}`).join(" ");
    if (d) root.appendChild(svg("path", { d, class: "wait-line" }));
    for (const p of waits) root.appendChild(svg("circle", { cx: x(p.ts), cy: yW(p.w), r: 2.5, class: "wait-dot", "data-wait-min": p.w.toFixed(2) }));
    return root;
  }

  renderQueue() {
    const box = this.el.querySelector("#sv-queue");
    if (!box) return;
    const t = this.t;
    const lang = this.lang();
    const th = this.thresholds;
    if (!this.queue.length) {
      mount(box, h("p", { class: "muted", text: t("no_queue") }));
      return;
    }
    mount(
      box,
      h(
        "table",
        { class: "sv-table" },
        h("thead", {}, h("tr", {}, ["col_user", "col_topic", "col_priority", "col_wait", ...(this.actions ? ["col_actions"] : [])].map((k) => h("th", { text: t(k) })))),
        h(
          "tbody",
          {},
          this.queue.map((q) => {
            const waited = q.enqueued_at ? (Date.now() - Date.parse(q.enqueued_at)) / 1000 : null;
            const lvl = th ? level(waited, th.wait_warn_s, th.wait_alarm_s) : "ok";
            return h(
              "tr",
              { class: [`prio-${q.priority}`, `wait-${lvl}`], dataset: { cid: q.conversation_id, level: lvl } },
              h("td", { text: q.user?.name || q.user_id }),
              h("td", { text: label("topic", q.topic, lang) }),
              h("td", {}, h("span", { class: `prio prio-${q.priority}`, text: label("priority", q.priority, lang) })),
              h("td", { class: "mono", dataset: { since: q.enqueued_at || "" }, text: waited == null ? "—" : duration(waited) }),
              this.actions && h("td", { class: "sv-actions" }, this.actions(q)),
            );
          }),
        ),
      ),
    );
  }

  activeTable() {
    const t = this.t;
    const lang = this.lang();
    if (!this.active.length) return h("p", { class: "muted", text: t("no_active") });
    const flagged = new Map((this.stats?.waiting || []).map((w) => [w.conversation_id, w]));
    return h(
      "table",
      { class: "sv-table", id: "sv-active-table" },
      h("thead", {}, h("tr", {}, ["col_user", "col_topic", "col_agent", "col_unanswered", "col_actions"].map((k) => h("th", { text: t(k) })))),
      h(
        "tbody",
        {},
        this.active.map((c) => {
          const w = flagged.get(c.conversation_id);
          const lvl = w ? w.reply_level : "ok";
          const watching = this.watched?.conversation_id === c.conversation_id;
          return h(
            "tr",
            { class: [`prio-${c.priority}`, `wait-${lvl}`], dataset: { cid: c.conversation_id, level: lvl } },
            h("td", { text: c.user?.name || c.user_id }),
            h("td", { text: label("topic", c.topic, lang) }),
            h("td", { text: c.agent?.name || c.agent_id || "—" }),
            h("td", { class: "mono", text: w?.unanswered_s != null ? duration(w.unanswered_s) : "—" }),
            h(
              "td",
              { class: "sv-actions" },
              h("button", { type: "button", class: "btn small ghost sv-watch", text: watching ? t("stop_watch") : t("watch"), onclick: () => (watching ? this.unwatch() : this.watch(c.conversation_id)) }),
              h("button", { type: "button", class: "btn small ghost sv-takeover", text: t("takeover"), onclick: () => this.takeover(c.conversation_id) }),
            ),
          );
        }),
      ),
    );
  }

  watchBox() {
    const t = this.t;
    const w = this.watched;
    if (!w) return h("p", { class: "muted", text: t("watch_empty") });
    const messages = [...w.messages.values()].sort((a, b) => a.seq - b.seq);
    return [
      h("p", { class: "sv-watch-head" }, h("strong", { text: t("watching", { user: w.user?.name || "", agent: w.agent?.name || "—" }) }), " ", h("span", { class: "muted small", text: t("watch_hint") })),
      h(
        "ol",
        { class: "sv-watch-log", id: "sv-watch-log" },
        messages.map((m) =>
          h(
            "li",
            { class: ["sv-watch-msg", `from-${m.sender?.role}`], dataset: { seq: m.seq } },
            h("span", { class: "sv-watch-who", text: `${m.sender?.name || m.sender?.role}: ` }),
            h("span", { text: m.text || "" }),
            m.sender?.role === "user" &&
              h("button", {
                type: "button",
                class: ["btn", "small", "ghost", "sv-tag", w.tagged.has(m.message_id) && "on"],
                text: w.tagged.has(m.message_id) ? t("tagged_feedback") : t("tag_feedback"),
                disabled: w.tagged.has(m.message_id),
                onclick: () => this.tagFeedback(w.conversation_id, m.message_id),
              }),
          ),
        ),
      ),
    ];
  }

  renderWatch() {
    const box = this.el.querySelector("#sv-watch");
    if (box) mount(box, this.watchBox());
    const table = this.el.querySelector("#sv-active");
    if (table) mount(table, this.activeTable());
  }

  async watch(cid) {
    if (!this.request) return;
    if (this.watched) await this.unwatch();
    try {
      await this.request({ type: "chat.watch", conversation_id: cid, watch: true });
    } catch (e) {
      this.toast(this.t("error", { msg: e.message }), "error");
    }
  }

  async unwatch() {
    const w = this.watched;
    this.watched = null;
    this.renderWatch();
    if (w && this.request) {
      try {
        await this.request({ type: "chat.watch", conversation_id: w.conversation_id, watch: false });
      } catch {
        /* the socket may be gone: the watch went with it */
      }
    }
  }

  /** `chat.watching`: the chat so far. */
  onWatching(f) {
    this.watched = { conversation_id: f.conversation_id, user: f.user, agent: f.agent, messages: new Map((f.history || []).map((m) => [m.seq, m])), tagged: new Set((f.feedback || []).map((x) => x.message_id)) };
    if (this.visible) this.renderWatch();
  }

  /** `watch.event`: a frame of the watched chat. */
  onWatchEvent(f) {
    const w = this.watched;
    if (!w || w.conversation_id !== f.conversation_id) return;
    const frame = f.frame || {};
    if (frame.type === "message") w.messages.set(frame.seq, frame);
    else if (frame.type === "chat.assigned" && frame.agent) w.agent = frame.agent;
    else if (frame.type !== "chat.closed") return;
    if (this.visible) this.renderWatch();
  }

  /** A customer's message in the watched chat goes to the product team (`feedback.tag`). */
  async tagFeedback(cid, messageId) {
    if (!this.request) return;
    try {
      const ack = await this.request({ type: "feedback.tag", conversation_id: cid, message_id: messageId });
      this.watched?.tagged.add(messageId);
      this.toast(ack.new === false ? this.t("already_tagged", { who: ack.tagged_by || "?" }) : this.t("tagged_feedback"), "info");
      this.renderWatch();
    } catch (e) {
      this.toast(this.t("error", { msg: e.message }), "error");
    }
  }

  async takeover(cid) {
    if (!this.request) return;
    try {
      await this.request({ type: "chat.takeover", conversation_id: cid });
      this.toast(this.t("takeover_done"), "info");
      if (this.watched?.conversation_id === cid) await this.unwatch();
      this.refresh();
    } catch (e) {
      this.toast(this.t("error", { msg: e.message }), "error");
    }
  }

  async download(path, name) {
    try {
      const res = await fetch(path, { headers: { Authorization: `Bearer ${this.token()}` } });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const url = URL.createObjectURL(await res.blob());
      const a = h("a", { href: url, download: name, hidden: true });
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (e) {
      this.toast(this.t("error", { msg: e.message }), "error");
    }
  }

  agentsTable() {
    const t = this.t;
    const lang = this.lang();
    if (!this.agents.length) return h("p", { class: "muted", text: "—" });
    const figures = new Map((this.stats?.per_agent || []).map((a) => [a.id, a]));
    const secs = (v) => (v == null ? "—" : duration(v));
    return h(
      "table",
      { class: "sv-table", id: "sv-agents" },
      h("thead", {}, h("tr", {}, ["col_agent", "col_status", "col_load", "col_handled", "col_first", "col_handle", "col_csat", "col_sla", "col_skills"].map((k) => h("th", { text: t(k) })))),
      h(
        "tbody",
        {},
        this.agents.map((a) => {
          const f = figures.get(a.id);
          const fill = h("span", { class: "load-fill" });
          const ratio = a.capacity ? Math.min(1, a.active / a.capacity) : 0;
          fill.style.width = `${Math.round(ratio * 100)}%`; // CSSOM, allowed by the CSP
          if (ratio >= 1) fill.classList.add("full");
          return h(
            "tr",
            { dataset: { agent: a.id } },
            h("td", {}, h("strong", { text: a.name }), a.supervisor && h("span", { class: "tag", text: "★" })),
            h("td", {}, h("span", { class: `dot st-${a.status}` }), label("agentStatus", a.status, lang)),
            h("td", {}, h("span", { class: "load-bar" }, fill), h("span", { class: "mono small", text: ` ${a.active}/${a.capacity}` })),
            h("td", { class: "mono", dataset: { col: "handled" }, text: f ? String(f.handled) : "—" }),
            h("td", { class: "mono", dataset: { col: "first" }, text: secs(f?.first_response_s) }),
            h("td", { class: "mono", dataset: { col: "handle" }, text: secs(f?.handle_time_s) }),
            h("td", { class: "mono", dataset: { col: "csat" }, text: f?.csat?.avg == null ? "—" : `${Number(f.csat.avg).toFixed(1)} ★` }),
            h("td", { class: "mono", dataset: { col: "sla" }, text: f?.sla_met?.share == null ? "—" : `${Math.round(f.sla_met.share * 100)}%` }),
            h("td", { class: "small", text: (a.skills || []).map((s) => label("topic", s, lang)).join(" · ") }),
          );
        }),
      ),
    );
  }

  /** The open chats at risk or breached (`/api/stats` `sla.chats`), worst first. */
  slaTable() {
    const t = this.t;
    const lang = this.lang();
    const chats = this.stats?.sla?.chats || [];
    if (!chats.length) return h("p", { class: "muted", id: "sv-sla", text: t("no_sla") });
    const names = new Map(this.agents.map((a) => [a.id, a.name]));
    return h(
      "table",
      { class: "sv-table", id: "sv-sla" },
      h("thead", {}, h("tr", {}, ["col_chat", "col_topic", "col_priority", "col_agent", "col_state", "col_kind", "col_action", "col_wait"].map((k) => h("th", { text: t(k) })))),
      h(
        "tbody",
        {},
        chats.map((c) =>
          h(
            "tr",
            { class: [`prio-${c.priority}`, c.state === "breached" ? "wait-alarm" : "wait-warn"], dataset: { cid: c.conversation_id, state: c.state } },
            h("td", { class: "mono", text: `#${String(c.conversation_id).slice(0, 8)}` }),
            h("td", { text: label("topic", c.topic, lang) }),
            h("td", {}, h("span", { class: `prio prio-${c.priority}`, text: label("priority", c.priority, lang) })),
            h("td", { text: c.agent_id ? names.get(c.agent_id) || c.agent_id : "—" }),
            h("td", { dataset: { col: "state" }, text: t(`sla_state_${c.state}`) }),
            h("td", { text: c.kind ? t(`sla_kind_${c.kind}`) : "—" }),
            h("td", { dataset: { col: "action" }, text: c.action ? t(`sla_action_${c.action}`) : "—" }),
            h("td", { class: "mono", dataset: { since: c.enqueued_at || "" }, text: c.enqueued_at ? duration((Date.now() - Date.parse(c.enqueued_at)) / 1000) : "—" }),
          ),
        ),
      ),
    );
  }

  topicsTable() {
    const t = this.t;
    const lang = this.lang();
    const topics = this.stats?.topics || [];
    if (!topics.length) return h("p", { class: "muted", text: "—" });
    return h(
      "table",
      { class: "sv-table", id: "sv-topics" },
      h("thead", {}, h("tr", {}, ["col_topic", "col_chats", "col_csat", "stats_wait"].map((k) => h("th", { text: t(k) })))),
      h(
        "tbody",
        {},
        topics.map((x) =>
          h(
            "tr",
            { dataset: { topic: x.topic } },
            h("td", { text: label("topic", x.topic, lang) }),
            h("td", { class: "mono", text: String(x.conversations) }),
            h("td", { class: "mono", text: x.csat.avg == null ? "—" : `${Number(x.csat.avg).toFixed(1)} ★ (${x.csat.count})` }),
            h("td", { class: "mono", text: x.waiting_time_s.avg == null ? "—" : duration(x.waiting_time_s.avg) }),
          ),
        ),
      ),
    );
  }

  themesTable() {
    const t = this.t;
    const themes = this.feedback?.themes || [];
    if (!themes.length) return h("p", { class: "muted", id: "sv-themes", text: t("no_themes") });
    return h(
      "table",
      { class: "sv-table", id: "sv-themes" },
      h("thead", {}, h("tr", {}, ["col_theme", "col_count", "col_example"].map((k) => h("th", { text: t(k) })))),
      h(
        "tbody",
        {},
        themes.slice(0, 8).map((x) =>
          h("tr", { dataset: { theme: x.theme } }, h("td", { text: t(`theme_${x.theme}`) }), h("td", { class: "mono", text: String(x.count) }), h("td", { class: "small sv-example", text: x.example })),
        ),
      ),
    );
  }
}
