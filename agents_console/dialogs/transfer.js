// Transferring the selected chat to another agent (who is online with room) or back to a
// topic's queue.

import { api, h } from "/static/shared/dom.js";
import { TOPICS, label } from "/static/shared/labels.js";
import { S, selectedChat, t, token } from "../state.js";
import { toast } from "../views/notifications.js";
import { closeDialog, openDialog } from "./dialog.js";

export async function transferDialog() {
  const chat = selectedChat();
  if (!chat || chat.status !== "assigned") return;
  const others = (await otherAgents()).filter((a) => a.id !== S.me?.id);
  let choice = null;
  const go = h("button", { class: "btn primary", type: "button", id: "transfer-go", text: t("transfer_go"), disabled: true });
  const error = h("p", { class: "form-error", hidden: true });
  const note = h("textarea", { id: "transfer-note", rows: 3, maxLength: 4000, placeholder: t("handover_ph") });
  const pick = (value) => {
    choice = value;
    go.disabled = !value;
  };
  go.addEventListener("click", async () => {
    go.disabled = true;
    try {
      const frame = { type: "chat.transfer", conversation_id: chat.cid, ...choice };
      if (note.value.trim()) frame.note = note.value.trim();
      await S.client.request(frame);
      closeDialog();
      toast(t("transfer_done"), "info");
    } catch (e) {
      error.hidden = false;
      error.textContent = e.message;
      go.disabled = false;
    }
  });
  openDialog(
    t("transfer_title"),
    [
      h("h3", { class: "dlg-sub", text: t("transfer_to_agent") }),
      agentPicker(others, pick),
      h("h3", { class: "dlg-sub", text: t("transfer_to_topic") }),
      topicPicker(pick),
      h("label", { class: "field" }, h("span", { text: t("handover_note") }), note),
      error,
    ],
    [h("button", { class: "btn ghost", type: "submit", value: "cancel", text: t("cancel") }), go],
  );
}

async function otherAgents() {
  try {
    return (await api("/api/agents", { token: token() })).agents || [];
  } catch {
    return [];
  }
}

function agentPicker(agents, pick) {
  if (!agents.length) return h("p", { class: "muted", text: t("transfer_none") });
  return h("div", { class: "pick-list", role: "radiogroup" }, agents.map((a) => agentChoice(a, pick)));
}

function agentChoice(a, pick) {
  const available = a.status === "online" && a.active < a.capacity;
  const load = `${label("agentStatus", a.status, S.lang)} · ${a.active}/${a.capacity}${a.active >= a.capacity ? ` ${t("full")}` : ""}`;
  return h(
    "label",
    { class: ["pick", !available && "disabled"], dataset: { agent: a.id } },
    h("input", { type: "radio", name: "target", value: `agent:${a.id}`, disabled: !available, onchange: () => pick({ to_agent: a.id }) }),
    h("span", { class: `dot st-${a.status}` }),
    h("span", { class: "pick-name", text: a.name }),
    h("span", { class: "muted small", text: load }),
    h("span", { class: "muted small pick-skills", text: (a.skills || []).map((s) => label("topic", s, S.lang)).join(" · ") }),
  );
}

function topicPicker(pick) {
  const onchange = (ev) => {
    if (!ev.target.value) return;
    for (const r of document.querySelectorAll("input[name=target]")) r.checked = false;
    pick({ to_topic: ev.target.value });
  };
  return h(
    "select",
    { id: "transfer-topic", onchange },
    h("option", { value: "", text: "—" }),
    TOPICS.map((tp) => h("option", { value: tp, text: label("topic", tp, S.lang) })),
  );
}
