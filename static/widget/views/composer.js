// The message box: sending (queued while offline, a failed message is sent again on a tap),
// growing with its text, and the typing signal to the agent.

import { $, h, mount } from "/static/shared/dom.js";
import { clientMsgId } from "/static/shared/ws-client.js";
import { OPEN, currentConv, state, t } from "../state.js";
import { toast } from "./banners.js";
import { appendPending, repaintPending } from "./transcript.js";

const TYPING_EVERY_MS = 3000;
const TYPING_IDLE_MS = 4000;
const SEND_TIMEOUT_MS = 5 * 60_000;
const MAX_HEIGHT_PX = 120;

/** Send `text` as the user's message in the open chat (the composer, quick replies). */
export function sendText(text) {
  const c = currentConv();
  if (!c || !OPEN.has(c.status)) return;
  const cmid = clientMsgId();
  const p = { text, ts: new Date().toISOString(), failed: false };
  c.pending.set(cmid, p);
  appendPending(cmid, p);
  deliver(c, cmid);
  stopTyping();
}

function deliver(c, cmid) {
  const p = c.pending.get(cmid);
  state.client
    .request(
      { type: "chat.send", conversation_id: c.cid, client_msg_id: cmid, text: p.text },
      { retry: true, timeout: SEND_TIMEOUT_MS },
    )
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

function onComposerInput() {
  const input = $("input");
  $("btn-send").disabled = !input.value.trim();
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
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    autosize(input);
    $("btn-send").disabled = true;
    sendText(text);
  });
}
