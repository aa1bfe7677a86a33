// Supervisor view: /api/stats figures, a chart of the last hour (inline SVG drawn here),
// the live queue (from queue.snapshot frames) and every agent's load (GET /api/agents).

import { api, clock, duration, h, mount, svg } from "/static/shared/dom.js";
import { label } from "/static/shared/labels.js";
import { campaignsPanel } from "./campaigns.js";

const REFRESH_MS = 10000;

export class SupervisorView {
  constructor({ el, token, t, lang, actions = null }) {
    this.el = el;
    this.token = token;
    this.t = t;
    this.lang = lang;
    this.actions = actions; // (queued chat) => buttons for its row (take, assign), or null
    this.stats = null;
    this.agents = [];
    this.queue = [];
    this.updatedAt = null;
    this.timer = null;
    this.visible = false;
    this._soon = null;
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
    // queue changes move the figures too; coalesce bursts
    clearTimeout(this._soon);
    this._soon = setTimeout(() => this.refresh(), 1000);
  }

  async refresh() {
    const token = this.token();
    const [stats, agents] = await Promise.allSettled([api("/api/stats", { token }), api("/api/agents", { token })]);
    if (stats.status === "fulfilled") this.stats = stats.value;
    if (agents.status === "fulfilled") this.agents = agents.value.agents || [];
    this.updatedAt = new Date();
    if (this.visible) this.render();
  }

  render() {
    const t = this.t;
    mount(
      this.el,
      h("div", { class: "sv-cards", id: "sv-cards" }, this.cards()),
      h(
        "section",
        { class: "sv-panel sv-chart-panel" },
        h("header", { class: "sv-head" }, h("h2", { text: t("chart_title") }), this.legend()),
        h("div", { id: "sv-chart", class: "sv-chart" }, this.chart()),
      ),
      h(
        "div",
        { class: "sv-grid" },
        h("section", { class: "sv-panel" }, h("h2", { text: t("live_queue") }), h("div", { id: "sv-queue" })),
        h("section", { class: "sv-panel" }, h("h2", { text: t("agents_load") }), this.agentsTable()),
      ),
      campaignsPanel(),
      this.updatedAt && h("p", { class: "muted small sv-updated", text: t("updated", { time: clock(this.updatedAt) }) }),
    );
    this.renderQueue();
  }

  cards() {
    const t = this.t;
    const s = this.stats;
    const secs = (v) => (v == null ? "—" : duration(v));
    const liveOldest = this.queue.reduce((m, q) => (q.enqueued_at ? Math.min(m, Date.parse(q.enqueued_at)) : m), Infinity);
    const card = (key, value, sub, cls, attrs = {}) =>
      h("div", { class: ["sv-card", cls], dataset: { stat: key } }, h("div", { class: "sv-label", text: t(key) }), h("div", { class: "sv-value", ...attrs }, value), sub && h("div", { class: "sv-sub", text: sub }));
    const q = s?.queue || { total: this.queue.length, by_priority: {} };
    const urgent = q.by_priority?.urgent || 0;
    return [
      card(
        "stats_queue",
        String(q.total ?? 0),
        `${label("priority", "urgent", this.lang())} ${urgent} · ${label("priority", "high", this.lang())} ${q.by_priority?.high || 0}`,
        urgent ? "danger" : null,
      ),
      card(
        "stats_oldest",
        Number.isFinite(liveOldest) ? duration((Date.now() - liveOldest) / 1000) : secs(q.oldest_wait_s),
        null,
        null,
        Number.isFinite(liveOldest) ? { dataset: { since: new Date(liveOldest).toISOString() } } : {},
      ),
      card("stats_agents", String(s?.agents?.online ?? "—"), s ? `${t("away")} ${s.agents.away} · ${t("busy")} ${s.agents.busy}` : null),
      card("stats_wait", secs(s?.waiting_time_s?.avg), s ? t("p90", { v: secs(s.waiting_time_s.p90) }) : null),
      card("stats_first", secs(s?.first_response_s?.avg)),
      card("stats_resolution", secs(s?.resolution_s?.avg)),
      card("stats_csat", s?.csat?.avg == null ? "—" : `${Number(s.csat.avg).toFixed(1)} ★`, s ? t("ratings", { n: s.csat.count }) : null),
      card("stats_convs", String(s?.conversations ?? "—")),
    ];
  }

  legend() {
    const t = this.t;
    return h(
      "div",
      { class: "sv-legend" },
      h("span", { class: "lg-queue" }, t("chart_queue")),
      h("span", { class: "lg-wait" }, t("chart_wait")),
    );
  }

  /** Bars: queue length (left axis); line: average wait in minutes (right axis). */
  chart() {
    const t = this.t;
    // drawn at the panel's pixel size so that text stays 10-11 px whatever the width
    const W = Math.max(420, Math.round((this.el.clientWidth || 900) - 74));
    const H = 220;
    const pad = { l: 36, r: 40, t: 12, b: 26 };
    const now = Date.now();
    const from = now - 3600_000;
    const points = (this.stats?.history || [])
      .map((p) => ({ ts: Date.parse(p.ts), q: Number(p.queued) || 0, w: (Number(p.avg_wait_s) || 0) / 60 }))
      .filter((p) => p.ts >= from - 60_000)
      .sort((a, b) => a.ts - b.ts);
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "chart", role: "img", "aria-label": t("chart_title") });
    const x = (ts) => pad.l + ((ts - from) / 3600_000) * (W - pad.l - pad.r);
    const maxQ = Math.max(4, ...points.map((p) => p.q));
    const maxW = Math.max(1, ...points.map((p) => p.w));
    const yQ = (v) => H - pad.b - (v / maxQ) * (H - pad.t - pad.b);
    const yW = (v) => H - pad.b - (v / maxW) * (H - pad.t - pad.b);
    // grid and axes
    for (let i = 0; i <= 4; i++) {
      const y = pad.t + (i / 4) * (H - pad.t - pad.b);
      root.appendChild(svg("line", { x1: pad.l, x2: W - pad.r, y1: y, y2: y, class: "grid" }));
      root.appendChild(svg("text", { x: pad.l - 6, y: y + 4, class: "axis left" }, String(Math.round(maxQ * (1 - i / 4)))));
      root.appendChild(svg("text", { x: W - pad.r + 6, y: y + 4, class: "axis right" }, (maxW * (1 - i / 4)).toFixed(1)));
    }
    for (let m = 60; m >= 0; m -= 15) {
      const ts = now - m * 60_000;
      root.appendChild(svg("text", { x: x(ts), y: H - 6, class: "axis bottom" }, m ? `-${m}m` : clock(ts)));
    }
    if (!points.length) {
      root.appendChild(svg("text", { x: W / 2, y: H / 2, class: "chart-empty" }, t("chart_empty")));
      return root;
    }
    const bw = Math.max(2, ((W - pad.l - pad.r) / 60) * 0.7);
    for (const p of points) {
      root.appendChild(
        svg("rect", { x: x(p.ts) - bw / 2, y: yQ(p.q), width: bw, height: H - pad.b - yQ(p.q), class: "bar", "data-queued": p.q }, svg("title", {}, `${clock(p.ts)} · ${t("chart_queue")} ${p.q}`)),
      );
    }
    const d = points.map((p, i) => `${i ? "L" : "M"}${x(p.ts).toFixed(1)},${yW(p.w).toFixed(1)}`).join(" ");
    root.appendChild(svg("path", { d, class: "wait-line" }));
    for (const p of points) root.appendChild(svg("circle", { cx: x(p.ts), cy: yW(p.w), r: 2.5, class: "wait-dot" }));
    return root;
  }

  renderQueue() {
    const box = this.el.querySelector("#sv-queue");
    if (!box) return;
    const t = this.t;
    const lang = this.lang();
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
          this.queue.map((q) =>
            h(
              "tr",
              { class: `prio-${q.priority}`, dataset: { cid: q.conversation_id } },
              h("td", { text: q.user?.name || q.user_id }),
              h("td", { text: label("topic", q.topic, lang) }),
              h("td", {}, h("span", { class: `prio prio-${q.priority}`, text: label("priority", q.priority, lang) })),
              h("td", { class: "mono", dataset: { since: q.enqueued_at || "" }, text: q.enqueued_at ? duration((Date.now() - Date.parse(q.enqueued_at)) / 1000) : "—" }),
              this.actions && h("td", { class: "sv-actions" }, this.actions(q)),
            ),
          ),
        ),
      ),
    );
  }

  agentsTable() {
    const t = this.t;
    const lang = this.lang();
    if (!this.agents.length) return h("p", { class: "muted", text: "—" });
    return h(
      "table",
      { class: "sv-table", id: "sv-agents" },
      h("thead", {}, h("tr", {}, ["col_agent", "col_status", "col_load", "col_skills"].map((k) => h("th", { text: t(k) })))),
      h(
        "tbody",
        {},
        this.agents.map((a) => {
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
            h("td", { class: "small", text: (a.skills || []).map((s) => label("topic", s, lang)).join(" · ") }),
          );
        }),
      ),
    );
  }
}
