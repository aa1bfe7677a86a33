// The message box: sending (queued while offline, a failed message is sent again on a tap),
// growing with its text, the typing signal to the agent, and files: the attach button,
// pasted and dropped images, each uploaded at once with its progress, previewed in the tray
// above the box, retried on failure, and sent with the next message.

import { $, h, mount } from "/static/shared/dom.js";
import { MAX_BYTES, MAX_FILES, filesOf, uploadFile } from "/static/shared/attachments.js";
import { clientMsgId } from "/static/shared/ws-client.js";
import { OPEN, currentConv, state, t } from "../state.js";
import { toast } from "./banners.js";
import { appendPending, repaintPending } from "./transcript.js";

const TYPING_EVERY_MS = 3000;
const TYPING_IDLE_MS = 4000;
const SEND_TIMEOUT_MS = 5 * 60_000;
const MAX_HEIGHT_PX = 120;
const IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/webp", "image/gif"]);

// files waiting to be sent, for the conversation they were uploaded to
const tray = { cid: null, items: [] };
let nextKey = 1;

/** Send `text` as the user's message in the open chat (quick replies). */
export function sendText(text) {
  sendMessage(text, []);
}

function sendMessage(text, attachments) {
  const c = currentConv();
  if (!c || !OPEN.has(c.status)) return;
  const cmid = clientMsgId();
  const p = { text, attachments, ts: new Date().toISOString(), failed: false };
  c.pending.set(cmid, p);
  appendPending(cmid, p);
  deliver(c, cmid);
  stopTyping();
}

function deliver(c, cmid) {
  const p = c.pending.get(cmid);
  const frame = { type: "chat.send", conversation_id: c.cid, client_msg_id: cmid, text: p.text };
  if (p.attachments?.length) frame.attachments = p.attachments.map((a) => a.attachment_id);
  state.client
    .request(frame, { retry: true, timeout: SEND_TIMEOUT_MS })
    .catch((err) => {
      if (!c.pending.has(cmid)) return;
      p.failed = true;
      repaintPending(cmid, p);
      if (err.code !== "timeout") toast(err.message || t("error_generic"));
    });
}

export function retrySend(cmid) {
  const c = currentConv();
  const p = c?.pending.get(cmid);
  if (!p) return;
  p.failed = false;
  repaintPending(cmid, p);
  deliver(c, cmid);
}

// --- the tray of files -------------------------------------------------------------------

/** Start uploading files (from the button, a paste or a drop) to the open chat. */
export function addFiles(files) {
  const c = currentConv();
  if (!c || !OPEN.has(c.status) || !files.length) return;
  if (tray.cid !== c.cid) clearTray();
  tray.cid = c.cid;
  for (const file of files) {
    if (tray.items.length >= MAX_FILES) {
      toast(t("attach_too_many", { n: MAX_FILES }));
      break;
    }
    const item = {
      key: nextKey++,
      file,
      preview: IMAGE_TYPES.has(file.type) ? URL.createObjectURL(file) : null,
      status: "uploading",
      progress: 0,
      att: null,
      error: "",
      upload: null,
    };
    tray.items.push(item);
    if (file.size > MAX_BYTES) {
      item.status = "failed";
      item.error = t("attach_too_large");
      item.final = true;
    } else {
      startUpload(item);
    }
  }
  renderTray();
}

function startUpload(item) {
  item.status = "uploading";
  item.progress = 0;
  item.error = "";
  item.upload = uploadFile({
    file: item.file,
    conversationId: tray.cid,
    token: state.token,
    onProgress: (p) => {
      item.progress = p;
      const bar = document.querySelector(`[data-tray="${item.key}"] progress`);
      if (bar) bar.value = p;
    },
  });
  item.upload.promise.then(
    (att) => {
      item.status = "done";
      item.att = att;
      renderTray();
    },
    (err) => {
      if (err.code === "aborted") return;
      item.status = "failed";
      item.error = err.message || t("error_generic");
      // too large, not an accepted type, a pixel bomb: trying again cannot help
      item.final = [413, 415, 422].includes(err.status);
      toast(t("attach_failed", { msg: item.error }));
      renderTray();
    },
  );
}

function removeItem(item) {
  item.upload?.abort();
  if (item.preview) URL.revokeObjectURL(item.preview);
  tray.items = tray.items.filter((i) => i !== item);
  renderTray();
}

function clearTray() {
  for (const item of tray.items) {
    item.upload?.abort();
    if (item.preview) URL.revokeObjectURL(item.preview);
  }
  tray.items = [];
}

function trayItemEl(item) {
  const name = item.file.name || "image";
  return h(
    "div",
    {
      class: ["tray-item", item.status],
      dataset: { tray: item.key, status: item.status },
      title: item.error ? `${name}: ${item.error}` : name,
    },
    item.preview ? h("img", { src: item.preview, alt: name }) : h("span", { class: "tray-doc", text: `📄 ${name}` }),
    item.status === "uploading" &&
      h("progress", { max: 1, value: item.progress, attrs: { "aria-label": t("attach_uploading", { p: Math.round(item.progress * 100) }) } }),
    h("button", {
      type: "button",
      class: "tray-remove",
      text: "✕",
      attrs: { "aria-label": t("attach_remove") },
      onclick: () => removeItem(item),
    }),
    item.status === "failed" &&
      !item.final &&
      h("button", {
        type: "button",
        class: "tray-retry",
        text: t("attach_retry"),
        onclick: () => {
          startUpload(item);
          renderTray();
        },
      }),
  );
}

export function renderTray() {
  const c = currentConv();
  const box = $("attach-tray");
  const items = c && tray.cid === c.cid ? tray.items : [];
  box.hidden = !items.length;
  mount(box, items.map(trayItemEl));
  refreshSend();
}

function refreshSend() {
  const text = $("input").value.trim();
  const c = currentConv();
  const items = c && tray.cid === c.cid ? tray.items : [];
  const uploading = items.some((i) => i.status === "uploading");
  const ready = items.some((i) => i.status === "done");
  $("btn-send").disabled = uploading || !(text || ready);
}

// --- typing ------------------------------------------------------------------------------

function onComposerInput() {
  const input = $("input");
  refreshSend();
  autosize(input);
  const c = currentConv();
  if (!c || !OPEN.has(c.status) || !input.value) return;
  const now = Date.now();
  if (now - state.typingSentAt > TYPING_EVERY_MS) {
    state.typingSentAt = now;
    state.client.send({ type: "typing", conversation_id: c.cid, state: true }, { queue: false });
  }
  clearTimeout(state.typingStop);
  state.typingStop = setTimeout(stopTyping, TYPING_IDLE_MS);
}

function stopTyping() {
  clearTimeout(state.typingStop);
  if (!state.typingSentAt) return;
  state.typingSentAt = 0;
  const c = currentConv();
  if (c && OPEN.has(c.status)) {
    state.client.send({ type: "typing", conversation_id: c.cid, state: false }, { queue: false });
  }
}

// --- the notice above the composer: a secret in the user's message was hidden -------------

/** Show why a code, card number or password in the last message was hidden; it stays (not a
 * toast that may be missed) until dismissed or another chat is opened, and blocks nothing. */
export function showSecretNotice(text) {
  const box = $("secret-notice");
  mount(
    box,
    h("span", { class: "sn-icon", text: "⚠", attrs: { "aria-hidden": "true" } }),
    h("span", { class: "sn-text", text: text || t("secret_hidden") }),
    h("button", { type: "button", class: "sn-close", text: t("dismiss"), onclick: hideSecretNotice }),
  );
  box.hidden = false;
}

export function hideSecretNotice() {
  $("secret-notice").hidden = true;
}

function autosize(el) {
  el.style.height = "auto"; // CSSOM, which the CSP allows
  el.style.height = `${Math.min(el.scrollHeight, MAX_HEIGHT_PX)}px`;
}

function submit() {
  const input = $("input");
  const text = input.value.trim();
  const c = currentConv();
  const items = c && tray.cid === c.cid ? tray.items : [];
  if (items.some((i) => i.status === "uploading")) {
    toast(t("attach_wait"));
    return;
  }
  const done = items.filter((i) => i.status === "done");
  if (!text && !done.length) return;
  input.value = "";
  autosize(input);
  for (const item of done) if (item.preview) URL.revokeObjectURL(item.preview);
  tray.items = items.filter((i) => i.status !== "done"); // failed ones stay, to retry or remove
  renderTray();
  sendMessage(text, done.map((i) => i.att));
}

function wireFiles() {
  const picker = $("file-input");
  $("btn-attach").addEventListener("click", () => picker.click());
  picker.addEventListener("change", () => {
    addFiles([...picker.files]);
    picker.value = "";
  });
  $("input").addEventListener("paste", (ev) => {
    const files = filesOf(ev.clipboardData);
    if (!files.length) return; // text pastes as usual
    ev.preventDefault();
    addFiles(files);
  });
  const zone = $("view-chat");
  const carriesFiles = (ev) => [...(ev.dataTransfer?.types || [])].includes("Files");
  zone.addEventListener("dragover", (ev) => {
    if (!carriesFiles(ev)) return;
    ev.preventDefault();
    ev.dataTransfer.dropEffect = "copy";
    zone.classList.add("drop-target");
    zone.title = t("attach_drop");
  });
  zone.addEventListener("dragleave", (ev) => {
    if (ev.target === zone || !zone.contains(ev.relatedTarget)) zone.classList.remove("drop-target");
  });
  zone.addEventListener("drop", (ev) => {
    zone.classList.remove("drop-target");
    zone.title = "";
    if (!carriesFiles(ev)) return;
    ev.preventDefault();
    addFiles(filesOf(ev.dataTransfer));
  });
}

export function wireComposer() {
  const input = $("input");
  input.addEventListener("input", onComposerInput);
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    submit();
  });
  wireFiles();
}

/** Files of a chat left for another: forget them. */
export function leaveTray() {
  const c = currentConv();
  if (tray.cid && (!c || c.cid !== tray.cid)) {
    clearTray();
    tray.cid = null;
  }
  renderTray();
}
