// A supervisor gives a queued chat to an agent of their choice (`chat.assign`): anyone
// online with room; the hub refuses the others (an urgent chat may use an urgent slot).

import { api, h } from "/static/shared/dom.js";
import { label } from "/static/shared/labels.js";
import { S, t, token } from "../state.js";
import { toast } from "../views/notifications.js";
import { closeDialog, openDialog } from "./dialog.js";

export async function assignDialog(q) {
  let choice = null;
  const go = h("button", { class: "btn primary", type: "button", id: "assign-go", text: t("assign_go"), disabled: true });
  const error = h("p", { class: "form-error", hidden: true });
  go.addEventListener("click", async () => {
    go.disabled = true;
    try {
      await S.client.request({ type: "chat.assign", conversation_id: q.conversation_id, agent_id: choice });
      closeDialog();
      toast(t("assign_done"), "info");
    } catch (e) {
      error.hidden = false;
      error.textContent = e.message;
      go.disabled = false;
    }
  });
  const agents = await listAgents();
  const who = `${q.user?.name || q.user_id} · ${label("topic", q.topic, S.lang)} · ${label("priority", q.priority, S.lang)}`;
  openDialog(
    t("assign_title"),
    [
      h("p", { class: "muted", text: who }),
      agents.length
        ? h("div", { class: "pick-list", role: "radiogroup", id: "assign-list" }, agents.map((a) => agentChoice(a, q, (id) => {
            choice = id;
            go.disabled = false;
          })))
        : h("p", { class: "muted", text: t("transfer_none") }),
      error,
    ],
    [h("button", { class: "btn ghost", type: "submit", value: "cancel", text: t("cancel") }), go],
  );
}

async function listAgents() {
  try {
    return (await api("/api/agents", { token: token() })).agents || [];
  } catch {
    return [];
  }
}

function agentChoice(a, q, pick) {
  // offline and away agents are refused by the hub: not offered; a full one may still
  // take an urgent chat in its urgent slot, so only the hub says no to it
  const online = a.status === "online";
  const full = a.active >= a.capacity;
  const available = online && (!full || q.priority === "urgent");
  const load = `${label("agentStatus", a.status, S.lang)} · ${a.active}/${a.capacity}${full ? ` ${t("full")}` : ""}`;
  const tags = [
    ...(a.skills || []).map((s) => label("topic", s, S.lang)),
    a.supervisor ? t("tag_supervisor") : null,
    a.security_backup ? t("tag_backup") : null,
  ].filter(Boolean);
  return h(
    "label",
    { class: ["pick", !available && "disabled"], dataset: { agent: a.id } },
    h("input", { type: "radio", name: "assign-target", value: a.id, disabled: !available, onchange: () => pick(a.id) }),
    h("span", { class: `dot st-${a.status}` }),
    h("span", { class: "pick-name", text: a.name }),
    h("span", { class: "muted small", text: load }),
    h("span", { class: "muted small pick-skills", text: tags.join(" · ") }),
  );
}
