// Taking a chat from the queue (`chat.take`): urgent ones for the agents the urgent ladder
// allows (security agents, supervisors, security back-ups), any queued chat for
// supervisors. The hub decides; a refusal is shown as it comes.

import { S, isSupervisor, t } from "./state.js";
import { toast } from "./views/notifications.js";

/** Whether to offer "Take" on a queued chat: urgent ones to everyone (the hub refuses
 *  those who may not), every chat to supervisors. */
export const mayOfferTake = (q) => q.priority === "urgent" || isSupervisor();

export async function takeChat(cid) {
  try {
    await S.client.request({ type: "chat.take", conversation_id: cid });
    toast(t("take_done"), "info");
  } catch (e) {
    toast(t("take_failed", { msg: e.message }), "error");
  }
}
