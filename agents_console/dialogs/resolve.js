// Resolving the selected chat: how it ended (solved, needs follow-up, duplicate, spam) and
// a few tags, sent with `chat.resolve` and counted in the supervisor's stats.

import { h } from "/static/shared/dom.js";
import { S, selectedChat, t } from "../state.js";
import { toast } from "../views/notifications.js";
import { closeDialog, openDialog } from "./dialog.js";

export const OUTCOMES = ["solved", "follow_up", "duplicate", "spam"];
const MAX_TAGS = 10;

/** "退款, Bank delay  ，退款" -> ["退款", "bank-delay"]: lower-cased, once each, at most 10. */
export function parseTags(text) {
  const tags = String(text)
    .split(/[,，;；\n]+/)
    .map((s) => s.trim().toLowerCase().replace(/\s+/g, "-"))
    .filter(Boolean)
    .map((s) => s.slice(0, 40));
  return [...new Set(tags)].slice(0, MAX_TAGS);
}

export function resolveDialog() {
  const chat = selectedChat();
  if (!chat || chat.status !== "assigned") return;
  const outcomes = h(
    "div",
    { class: "pick-list outcome-list", role: "radiogroup", id: "resolve-outcomes" },
    OUTCOMES.map((o) =>
      h(
        "label",
        { class: "pick outcome", dataset: { outcome: o } },
        h("input", { type: "radio", name: "outcome", value: o, checked: o === "solved" }),
        h("span", { class: "pick-name", text: t(`outcome_${o}`) }),
      ),
    ),
  );
  const tags = h("input", { id: "resolve-tags", maxLength: 400, autocomplete: "off", placeholder: t("tags_ph") });
  const error = h("p", { class: "form-error", hidden: true });
  const go = h("button", { class: "btn success", type: "button", id: "resolve-go", text: t("resolve") });
  go.addEventListener("click", async () => {
    go.disabled = true;
    const outcome = outcomes.querySelector("input:checked")?.value || "solved";
    try {
      await S.client.request({ type: "chat.resolve", conversation_id: chat.cid, outcome, tags: parseTags(tags.value) });
      closeDialog();
    } catch (e) {
      error.hidden = false;
      error.textContent = e.message;
      go.disabled = false;
      toast(t("error", { msg: e.message }), "error");
    }
  });
  // Enter in the tags resolves (the dialog's form would take it as its close button)
  tags.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.isComposing) {
      ev.preventDefault();
      if (!go.disabled) go.click();
    }
  });
  openDialog(
    t("resolve_title"),
    [h("h3", { class: "dlg-sub", text: t("outcome") }), outcomes, h("label", { class: "field" }, h("span", { text: t("tags") }), tags), error],
    [h("button", { class: "btn ghost", type: "submit", value: "cancel", text: t("cancel") }), go],
  );
  outcomes.querySelector("input:checked")?.focus();
}
