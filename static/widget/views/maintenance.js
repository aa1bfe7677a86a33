// The maintenance banner: while the payments module announces a maintenance window, a
// strip under the header says what is paused and when it is expected back. The text is
// the hub's, made for this device (its language and time zone, the zone said), from
// `welcome.maintenance` on connect and from each notice that carries `data.window`; the
// notice that announces the end takes the strip down.

import { $, h, mount } from "/static/shared/dom.js";

function banner() {
  let box = $("maintenance-banner");
  if (!box) {
    box = h("div", { id: "maintenance-banner", class: "maintenance-banner", attrs: { role: "status" } });
    const alert = $("alert-banner");
    alert.parentNode.insertBefore(box, alert);
  }
  return box;
}

/** `m` is a `welcome.maintenance` ({active, expected_end, title, body, ...}) or a
 * notification whose `data.window` says the window's state; null: none is on. */
export function showMaintenance(m) {
  const window_ = m && (m.data?.window || m);
  const box = banner();
  if (!m || !window_ || window_.active !== true) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  box.dataset.expectedEnd = window_.expected_end || "";
  mount(
    box,
    h("span", { class: "maintenance-icon", text: "🛠", attrs: { "aria-hidden": "true" } }),
    h("div", { class: "maintenance-text" }, h("strong", { text: m.title || "" }), h("div", { text: m.body || "" })),
  );
}

/** A notice about the window (start, change or end) moves the banner. */
export function maintenanceNotice(n) {
  if (n.kind === "system.notice" && n.data && typeof n.data.window === "object") showMaintenance(n);
}
