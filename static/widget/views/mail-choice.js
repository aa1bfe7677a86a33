// Waiting with nobody to answer soon: "answer me by e-mail too" (chat.leave_message). Once
// chosen, the card says where the answer will go (the address comes back half hidden).

import { h } from "/static/shared/dom.js";
import { state, t } from "../state.js";
import { toast } from "./banners.js";

/** The choice (or what was chosen) for a queued chat `c`. */
export function mailChoice(c, rerender) {
  if (c.replyEmail) {
    return h("div", { class: "queue-mail", id: "queue-mail", text: t("mail_chosen", { address: c.replyEmail }) });
  }
  const button = h("button", { class: "queue-mail-btn", id: "btn-mail", type: "button", text: t("mail_choose") });
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const ack = await state.client.request({ type: "chat.leave_message", conversation_id: c.cid, via: "email" });
      c.replyEmail = ack.address;
      rerender();
    } catch (e) {
      toast(e.frame?.reason === "no_verified_email" ? t("mail_no_address") : e.message || t("error_generic"));
      button.disabled = false;
    }
  });
  return button;
}
