// The identity check from the console: a security agent asks the hub to send the customer
// of the selected chat a one-time code (verify.request); the customer types it into their
// chat's code box and the outcome arrives as `verify.result` (see views/customer.js).

import { customer } from "./panels.js";
import { S, t } from "./state.js";
import { toast } from "./views/notifications.js";

export async function requestVerification(userId, cid) {
  try {
    const ack = await S.client.request({ type: "verify.request", conversation_id: cid });
    customer.setVerification(userId, {
      state: "pending",
      challengeId: ack.challenge_id,
      expiresAt: ack.expires_at,
      attempts: ack.attempts_left,
      attemptsLeft: ack.attempts_left,
    });
  } catch (e) {
    toast(t("error", { msg: e.message }), "error");
  }
}
