// The reply box: reply or private-note mode, sending (a failed message is sent again on a
// click), and the typing signal to the customer.

import { MAX_BYTES, MAX_FILES, filesOf, uploadFile } from "/static/shared/attachments.js";
import { $, h, mount } from "/static/shared/dom.js";
import { clientMsgId } from "/static/shared/ws-client.js";
import { cannedDialog } from "../dialogs/canned.js";
import { S, selectedChat, t, token } from "../state.js";
import { toast } from "./notifications.js";
import { appendPending, removePending, repaintPending } from "./transcript.js";

const TYPING_EVERY_MS = 3000;
const TYPING_IDLE_MS = 4000;
const SEND_TIMEOUT_MS = 120000;

export function setMode(mode) {
  const chat = selectedChat();
  if (chat) chat.mode = mode;
  const form = $("composer");
  form.dataset.mode = mode;
  for (const b of form.querySelectorAll(".composer-tabs button")) b.setAttribute("aria-selected", b.dataset.mode === mode ? "true" : "false");
  $("reply").placeholder = mode === "note" ? t("note_ph") : t("reply_ph");
  $("btn-send").textContent = mode === "note" ? t("add_note") : t("send");
}

async function submitComposer(ev) {
  ev?.preventDefault();
  const chat = selectedChat();
  const input = $("reply");
  const text = input.value.trim();
  if (!chat || !text || chat.status !== "assigned") return;
  input.value = "";
  chat.draft = "";
  setNotice(chat, null);
  if (chat.mode === "note") {
    try {
      await S.client.request({ type: "chat.note", conversation_id: chat.cid, text });
    } catch (e) {
      input.value = text;
      toast(t("error", { msg: e.message }), "error");
    }
    return;
  }
  stopTyping(chat);
  sendReply(chat, text, []);
}

function sendReply(chat, text, attachments) {
  const cmid = clientMsgId();
  const p = { text, attachments, failed: false };
  chat.pending.set(cmid, p);
  appendPending(cmid, p);
  deliver(chat, cmid);
}

function deliver(chat, cmid) {
  const p = chat.pending.get(cmid);
  const frame = { type: "chat.send", conversation_id: chat.cid, client_msg_id: cmid, text: p.text };
  if (p.attachments?.length) frame.attachments = p.attachments.map((a) => a.attachment_id);
  S.client
    .request(frame, { retry: true, timeout: SEND_TIMEOUT_MS })
    .catch((e) => {
      if (!chat.pending.has(cmid)) return;
      if (e.frame?.reason === "asks_for_secret") {
        refused(chat, cmid, p, e);
        return;
      }
      p.failed = true;
      repaintPending(cmid, p);
      toast(t("error", { msg: e.message }), "error");
    });
}

/** The hub refused a message asking the customer for a code or a password: nothing was
 * sent, so no bubble; the text goes back into the reply box to be reworded, and the reason
 * stays above it. */
function refused(chat, cmid, p, e) {
  chat.pending.delete(cmid);
  removePending(cmid);
  const explanation = e.frame?.explanation?.[S.lang] || e.message || t("secret_ask_blocked");
  if (S.selected === chat.cid && !$("reply").value) $("reply").value = p.text;
  else if (!chat.draft) chat.draft = p.text;
  setNotice(chat, { kind: "blocked", text: explanation });
}

/** A notice above the reply box for `chat`: `{kind: "blocked"|"masked", text?}` or null. */
export function setNotice(chat, notice) {
  if (!chat) return;
  chat.notice = notice;
  if (S.selected === chat.cid) renderNotice();
}

export function renderNotice() {
  const box = $("composer-notice");
  const notice = selectedChat()?.notice;
  box.hidden = !notice;
  if (!notice) return;
  box.className = `composer-notice ${notice.kind}`;
  mount(
    box,
    h("span", { class: "cn-icon", text: notice.kind === "blocked" ? "⛔" : "⚠", attrs: { "aria-hidden": "true" } }),
    h("span", { class: "cn-text", text: notice.text || t("secret_hidden_staff") }),
    h("button", { type: "button", class: "cn-close", text: t("notice_close"), onclick: () => setNotice(selectedChat(), null) }),
  );
}

export function retry(cmid) {
  const chat = selectedChat();
  const p = chat?.pending.get(cmid);
  if (!p) return;
  p.failed = false;
  repaintPending(cmid, p);
  deliver(chat, cmid);
}

// --- files: uploaded one by one, then sent in one reply with the text typed so far ---------

async function attachFiles(files) {
  const chat = selectedChat();
  if (!chat || chat.status !== "assigned" || !files.length) return;
  const hint = document.querySelector("#composer .hint");
  const attachments = [];
  for (const file of files.slice(0, MAX_FILES)) {
    if (file.size > MAX_BYTES) {
      toast(t("too_large", { name: file.name || "file" }), "error");
      continue;
    }
    try {
      const upload = uploadFile({
        file,
        conversationId: chat.cid,
        token: token(),
        onProgress: (p) => {
          hint.textContent = t("uploading", { p: Math.round(p * 100) });
        },
      });
      attachments.push(await upload.promise);
    } catch (e) {
      toast(t("upload_failed", { msg: e.message }), "error");
    }
  }
  hint.textContent = t("hint");
  if (!attachments.length || chat.status !== "assigned") return;
  const input = $("reply");
  const text = chat.mode === "reply" && S.selected === chat.cid ? input.value.trim() : "";
  if (text) {
    input.value = "";
    chat.draft = "";
  }
  sendReply(chat, text, attachments);
}

/** Insert text at the cursor, on a line of its own. */
export function insertIntoReply(text) {
  const input = $("reply");
  const start = input.selectionStart ?? input.value.length;
  const before = input.value.slice(0, start);
  input.value = `${before}${before && !before.endsWith("\n") ? "\n" : ""}${text}${input.value.slice(input.selectionEnd ?? start)}`;
}

// --- typing signal -----------------------------------------------------------------------

function onReplyInput() {
  const chat = selectedChat();
  if (!chat || chat.mode !== "reply" || chat.status !== "assigned" || !$("reply").value) return;
  const now = Date.now();
  if (now - S.typingSentAt > TYPING_EVERY_MS) {
    S.typingSentAt = now;
    S.client.send({ type: "typing", conversation_id: chat.cid, state: true }, { queue: false });
  }
  clearTimeout(S.typingStop);
  S.typingStop = setTimeout(() => stopTyping(chat), TYPING_IDLE_MS);
}

export function stopTyping(chat) {
  clearTimeout(S.typingStop);
  if (!S.typingSentAt || !chat) return;
  S.typingSentAt = 0;
  if (chat.status === "assigned") S.client?.send({ type: "typing", conversation_id: chat.cid, state: false }, { queue: false });
}

export function wireComposer() {
  const reply = $("reply");
  for (const b of $("composer").querySelectorAll(".composer-tabs button")) {
    b.addEventListener("click", () => {
      setMode(b.dataset.mode);
      reply.focus();
    });
  }
  $("composer").addEventListener("submit", submitComposer);
  reply.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
      ev.preventDefault();
      submitComposer();
    }
  });
  reply.addEventListener("input", onReplyInput);
  const picker = $("file-input");
  $("btn-attach").addEventListener("click", () => picker.click());
  picker.addEventListener("change", () => {
    attachFiles([...picker.files]);
    picker.value = "";
  });
  reply.addEventListener("paste", (ev) => {
    const files = filesOf(ev.clipboardData);
    if (!files.length) return;
    ev.preventDefault();
    attachFiles(files);
  });
  $("btn-canned").addEventListener("click", cannedDialog);
}
