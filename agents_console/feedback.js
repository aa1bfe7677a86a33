// Tagging a customer's message, or the whole chat, as feedback for the product team
// (`feedback.tag`): from the ⚑ on a message and from the chat's ⋯ menu. The hub decides
// who may (the chat's agents, supervisors) and answers the same item for a repeat.

import { S, t } from "./state.js";
import { toast } from "./views/notifications.js";

/** The chat (`messageId` null) or one of its messages, once per console session. */
export async function tagFeedback(chat, messageId = null) {
  const frame = { type: "feedback.tag", conversation_id: chat.cid };
  if (messageId) frame.message_id = messageId;
  try {
    const ack = await S.client.request(frame);
    chat.feedbackTagged ??= new Set();
    chat.feedbackTagged.add(messageId || "chat");
    toast(t("tagged_feedback"), "info");
    return ack;
  } catch (e) {
    toast(t("error", { msg: e.message }), "error");
    return null;
  }
}

export const isTagged = (chat, messageId = null) => Boolean(chat?.feedbackTagged?.has(messageId || "chat"));
