// Unfreezing a customer's account (agents with the security skill), with a stated reason.

import { api, h } from "/static/shared/dom.js";
import { customer } from "../panels.js";
import { t, token } from "../state.js";
import { toast } from "../views/notifications.js";
import { closeDialog, openDialog } from "./dialog.js";

export function unfreezeDialog(userId) {
  const reason = h("textarea", { id: "unfreeze-reason", rows: 3, maxLength: 500, required: true });
  const error = h("p", { class: "form-error", hidden: true });
  const go = h("button", { class: "btn danger", type: "button", id: "unfreeze-go", text: t("unfreeze") });
  go.addEventListener("click", async () => {
    if (!reason.value.trim()) {
      reason.focus();
      return;
    }
    go.disabled = true;
    try {
      const body = { reason: reason.value.trim() };
      await api(`/api/accounts/${encodeURIComponent(userId)}/unfreeze`, { token: token(), method: "POST", body });
      closeDialog();
      toast(t("unfreeze_done"), "info");
      customer.refresh();
    } catch (e) {
      error.hidden = false;
      error.textContent = e.message;
      go.disabled = false;
    }
  });
  openDialog(
    t("unfreeze_title"),
    [h("label", { class: "field" }, h("span", { text: t("unfreeze_reason") }), reason), error],
    [h("button", { class: "btn ghost", type: "submit", value: "cancel", text: t("cancel") }), go],
  );
  reason.focus();
}
