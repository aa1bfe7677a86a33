// Unfreezing a customer's account (agents with the security skill), with a stated reason.
// The hub refuses (409 verification_required) unless the customer passed an identity check
// in the last 10 minutes; the dialog says so up front, and shows the hub's words if refused.

import { api, h, mount } from "/static/shared/dom.js";
import { customer } from "../panels.js";
import { t, token } from "../state.js";
import { toast } from "../views/notifications.js";
import { closeDialog, openDialog } from "./dialog.js";

export function unfreezeDialog(userId) {
  const reason = h("textarea", { id: "unfreeze-reason", rows: 3, maxLength: 500, required: true });
  const error = h("div", { class: "form-error", id: "unfreeze-error", role: "alert", hidden: true });
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
      showError(error, e);
      go.disabled = false;
    }
  });
  openDialog(
    t("unfreeze_title"),
    [
      h("p", { class: "muted small", id: "unfreeze-hint", text: t("unfreeze_hint") }),
      h("label", { class: "field" }, h("span", { text: t("unfreeze_reason") }), reason),
      error,
    ],
    [h("button", { class: "btn ghost", type: "submit", value: "cancel", text: t("cancel") }), go],
  );
  reason.focus();
}

function showError(box, e) {
  box.hidden = false;
  if (e.code === "verification_required") {
    mount(box, h("strong", { text: t("verification_required") }), h("div", { class: "small", text: e.message }));
  } else {
    box.textContent = e.message;
  }
}
