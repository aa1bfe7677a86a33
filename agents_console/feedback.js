// Tagging a customer's message, or the whole chat, as feedback for the product team
// (`feedback.tag`): from the ⚑ on a message and from the chat's ⋯ menu (with an optional
// note of the agent's own). The hub decides who may (the chat's agents, supervisors),
// answers the item stored first for a repeat (`new: false`, who tagged it), and lists a
// chat's tags in `chat.assigned.feedback` when the console reconnects or reloads.

import { h } from "/static/shared/dom.js";
import { S, t } from "./state.js";
import { closeDialog, openDialog } from "./dialogs/dialog.js";
import { toast } from "./views/notifications.js";

export const NOTE_MAX = 2000; // the hub's limit on a note (feedback.tag)
const key = (messageId) => messageId || "chat";

/** Remember a tag (`{message_id, tagged_by, note}`) of this chat: it shows as done. */
export function markTagged(chat, tag) {
  chat.feedbackTagged ??= new Map();
  chat.feedbackTagged.set(key(tag.message_id), { by: tag.tagged_by || null, note: tag.note || null });
}

/** Send the tag; the ack (throws when refused). A repeat says who tagged it first. */
async function sendTag(chat, messageId, note) {
  const frame = { type: "feedback.tag", conversation_id: chat.cid };
  if (messageId) frame.message_id = messageId;
  if (note.trim()) frame.note = note.trim();
  const ack = await S.client.request(frame);
  markTagged(chat, { ...ack, message_id: messageId });
  toast(ack.new === false ? t("already_tagged", { who: ack.tagged_by || "?" }) : t("tagged_feedback"), "info");
  return ack;
}

/** The chat (`messageId` null) or one of its messages; the ack, or null when refused. */
export async function tagFeedback(chat, messageId = null) {
  try {
    return await sendTag(chat, messageId, "");
  } catch (e) {
    toast(t("error", { msg: e.message }), "error");
    return null;
  }
}

export const isTagged = (chat, messageId = null) => Boolean(chat?.feedbackTagged?.has(key(messageId)));

/** Who tagged it (null: not tagged, or not known). */
export const taggedBy = (chat, messageId = null) => chat?.feedbackTagged?.get(key(messageId))?.by || null;

/** The ⋯ menu's "whole chat": a dialog with an optional note, then `feedback.tag`. */
export function tagChatDialog(chat, done) {
  const note = h("textarea", { id: "feedback-note", maxLength: NOTE_MAX, rows: 4, placeholder: t("feedback_note_ph") });
  const count = h("span", { class: "muted", id: "feedback-note-count", text: `0 / ${NOTE_MAX}` });
  note.addEventListener("input", () => (count.textContent = `${note.value.length} / ${NOTE_MAX}`));
  const error = h("p", { class: "form-error", hidden: true });
  const go = h("button", { class: "btn", type: "button", id: "feedback-go", text: t("tag_send") });
  go.addEventListener("click", async () => {
    go.disabled = true;
    try {
      await sendTag(chat, null, note.value);
      closeDialog();
      done();
    } catch (e) {
      error.hidden = false;
      error.textContent = e.message;
      go.disabled = false;
    }
  });
  openDialog(
    t("tag_chat_feedback"),
    [h("label", { class: "field" }, h("span", { text: t("feedback_note") }), note), count, error],
    [h("button", { class: "btn ghost", type: "submit", value: "cancel", text: t("cancel") }), go],
  );
  note.focus();
}
