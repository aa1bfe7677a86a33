// System messages as agents read them: in the console's language and from the team's side
// ("Transferred to Bob by Alice"), from the message's `system {kind, params}`. The
// customer's own wording (the message's text) stays available as a tooltip; a message
// without `system` (older ones) shows that text.

import { label } from "/static/shared/labels.js";

const who = (p) => p?.name || p?.id || "";

/** The agent-side text of a system message, or null to show the message's own text. */
export function systemText(m, t, lang) {
  const kind = m.system?.kind;
  const p = m.system?.params || {};
  switch (kind) {
    case "transferred":
      if (p.by) return t("sys_transferred_by", { to: who(p.to), by: who(p.by) });
      if (p.from) return t("sys_transferred_from", { to: who(p.to), from: who(p.from) });
      return t("sys_transferred", { to: who(p.to) });
    case "requeued": {
      const topic = label("topic", p.topic, lang);
      if (p.by) return t("sys_requeued_by", { by: who(p.by), topic });
      if (p.reason === "offline") return t("sys_requeued_offline");
      if (p.reason === "timeout") return t("sys_requeued_timeout");
      if (p.reason === "disabled") return t("sys_requeued_disabled");
      return t("sys_requeued");
    }
    case "transferred_wait":
      return t("sys_transferred_wait", { by: who(p.by), topic: label("topic", p.topic, lang) });
    case "agent_left":
      return t("sys_agent_left");
    case "reoffered":
      return t("sys_reoffered");
    case "kept_place":
      return t("sys_kept_place");
    case "sla_rerouted":
      return t("sys_sla_rerouted");
    case "message_left":
      return t("sys_message_left");
    case "resolved":
      return p.by ? t("sys_resolved_by", { by: who(p.by), outcome: t(`outcome_${p.outcome || "solved"}`) }) : t("sys_resolved");
    case "idle":
      return t("sys_idle");
    case "queued":
      return t("sys_queued");
    case "urgent_staffed":
      return t("sys_urgent_staffed");
    case "urgent_unstaffed":
      return t("sys_urgent_unstaffed");
    case "account_frozen":
      return t("sys_account_frozen");
    default:
      return null;
  }
}
