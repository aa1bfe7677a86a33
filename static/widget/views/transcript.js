// The transcript of the current chat: messages in seq order, the user's own messages still
// on their way, read receipts, the typing line and the read marks sent to the agent.

import { attachmentsEl } from "/static/shared/attachments.js";
import { $, clock, h, linkifyHelp } from "/static/shared/dom.js";
import { openArticle } from "../dialogs/panels.js";
import { OPEN, currentConv, state, t } from "../state.js";
import { retrySend, sendText } from "./composer.js";

const NEAR_BOTTOM_PX = 80;
const TYPING_SHOWN_MS = 6000;

/** Show a conversation's messages (and those still on their way) from scratch. */
export function fillTranscript(c) {
  const box = $("transcript");
  const seqs = [...c.messages.keys()].sort((a, b) => a - b);
  for (const seq of seqs) box.appendChild(messageEl(c.messages.get(seq)));
  for (const [cmid, p] of c.pending) box.appendChild(pendingEl(cmid, p));
  // only the latest message's quick replies stand
  const sets = [...box.querySelectorAll(".choices")];
  const last = box.lastElementChild;
  for (const el of sets) if (!last || !last.contains(el)) el.remove();
  refreshReceipts();
}

export function clearTranscript() {
  $("transcript").replaceChildren();
}

function senderName(m) {
  if (m.sender?.role === "bot") return t("bot_name");
  return m.sender?.name || t("agent");
}

function messageEl(m) {
  const role = m.sender?.role || "system";
  if (role === "system") {
    return h("div", { class: "msg system", dataset: { seq: m.seq } }, h("span", { text: m.text }));
  }
  const mine = role === "user";
  const body = !m.text
    ? null
    : role === "bot" || role === "agent"
      ? h("div", { class: "bubble" }, linkifyHelp(m.text, openArticle, () => t("read_article")))
      : h("div", { class: "bubble", text: m.text });
  return h(
    "div",
    { class: ["msg", role, mine && "mine"], dataset: { seq: m.seq, role } },
    !mine && h("div", { class: "msg-name", text: senderName(m) }),
    body,
    attachmentsEl(m.attachments),
    role === "bot" && choicesEl(m),
    h(
      "div",
      { class: "msg-meta" },
      h("time", { text: clock(m.ts), dateTime: m.ts }),
      mine && h("span", { class: "receipt", text: "" }),
    ),
  );
}

// Quick replies under a bot message (`choices`: [{label, text}]): a tap sends the text as
// the user's message. Only the latest message's buttons stand; any later message clears them.
function choicesEl(m) {
  const list = Array.isArray(m.choices) ? m.choices.filter((c) => c && c.label && c.text) : [];
  if (!list.length) return null;
  return h(
    "div",
    { class: "choices", role: "group" },
    ...list.map((c) =>
      h("button", {
        type: "button",
        class: "choice",
        text: String(c.label),
        onclick: () => {
          clearChoices();
          sendText(String(c.text));
        },
      }),
    ),
  );
}

function clearChoices() {
  for (const el of $("transcript").querySelectorAll(".choices")) el.remove();
}

export function insertMessage(m) {
  const box = $("transcript");
  if (box.querySelector(`[data-seq="${m.seq}"]:not([data-pending])`)) return;
  clearChoices();
  const near = isNearBottom();
  const el = messageEl(m);
  // keep seq order: walk back past pending bubbles and later messages
  let before = null;
  for (let node = box.lastElementChild; node; node = node.previousElementSibling) {
    if (node.dataset.pending || Number(node.dataset.seq) > m.seq) before = node;
    else break;
  }
  box.insertBefore(el, before);
  refreshReceipts();
  if (near || m.sender?.role === "user") scrollToBottom();
}

// --- the user's messages on their way (keyed by client_msg_id) ----------------------------

function pendingEl(cmid, p) {
  const el = h(
    "div",
    { class: ["msg", "user", "mine", "pending", p.failed && "failed"], dataset: { pending: cmid } },
    p.text && h("div", { class: "bubble", text: p.text }),
    attachmentsEl(p.attachments),
    h(
      "div",
      { class: "msg-meta" },
      h("span", {
        class: "msg-state",
        text: p.failed ? t("failed") : state.client?.connected ? t("sending") : t("offline_hint"),
      }),
    ),
  );
  if (p.failed) {
    el.tabIndex = 0;
    el.addEventListener("click", () => retrySend(cmid));
  }
  return el;
}

const findPending = (cmid) => document.querySelector(`[data-pending="${CSS.escape(cmid)}"]`);

export function appendPending(cmid, p) {
  $("transcript").appendChild(pendingEl(cmid, p));
  scrollToBottom();
}

/** Show a pending message's new state (failed, or sending again). */
export function repaintPending(cmid, p) {
  findPending(cmid)?.replaceWith(pendingEl(cmid, p));
}

export function removePending(cmid) {
  findPending(cmid)?.remove();
}

// --- receipts, scrolling, typing, read marks -------------------------------------------------

export function refreshReceipts() {
  const c = currentConv();
  if (!c) return;
  for (const el of $("transcript").querySelectorAll(".msg.mine[data-seq]")) {
    const seq = Number(el.dataset.seq);
    const read = seq <= c.agentRead;
    const receipt = el.querySelector(".receipt");
    if (!receipt) continue;
    receipt.textContent = read ? `✓✓ ${t("read")}` : `✓ ${t("sent")}`;
    el.classList.toggle("is-read", read);
  }
}

function isNearBottom() {
  const box = $("transcript");
  return box.scrollHeight - box.scrollTop - box.clientHeight < NEAR_BOTTOM_PX;
}

export function scrollToBottom(force = true) {
  const box = $("transcript");
  if (force || isNearBottom()) box.scrollTop = box.scrollHeight;
}

export function showTyping(name) {
  $("typing-text").textContent = t("typing", { name });
  $("typing").hidden = false;
  clearTimeout(state.typingHide);
  // a "stopped typing" can be lost with the agent's connection
  state.typingHide = setTimeout(hideTyping, TYPING_SHOWN_MS);
  scrollToBottom(false);
}

export function hideTyping() {
  clearTimeout(state.typingHide);
  $("typing").hidden = true;
}

/** Tell the agent what we have seen: the newest seq, when the chat is on screen. */
export function markRead() {
  const c = currentConv();
  if (!c || state.view !== "chat" || document.visibilityState !== "visible") return;
  let max = 0;
  for (const [seq, m] of c.messages) if (m.sender?.role !== "user" && seq > max) max = seq;
  if (!max || (state.readSent.get(c.cid) || 0) >= max) return;
  if (!OPEN.has(c.status)) return;
  state.readSent.set(c.cid, max);
  state.client.send({ type: "read", conversation_id: c.cid, seq: max }, { queue: false });
}
