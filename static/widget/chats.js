// The user's conversations: the frames that change them (opened, queued, assigned, closed,
// rated, messages, typing, read marks) and what each changes on screen.

import { OPEN, conv, currentConv, persist, state, t } from "./state.js";
import { refreshAlert, toast } from "./views/banners.js";
import { openChat, renderChat, renderChatChrome } from "./views/chat.js";
import { showSecretNotice } from "./views/composer.js";
import { renderOtherConvs } from "./views/chat-list.js";
import { renderClosedCard } from "./views/rating.js";
import {
  hideTyping,
  insertMessage,
  markRead,
  refreshReceipts,
  removePending,
  showTyping,
} from "./views/transcript.js";

const isCurrent = (f) => f.conversation_id === state.current;

export function onOpened(f) {
  const c = conv(f.conversation_id);
  c.status = f.status;
  c.topic = f.topic || c.topic;
  state.client.track(f.conversation_id);
  if (f.priority === "urgent") {
    // the hub opened a security chat for this user (account frozen): show it at once
    // unless the user is in the middle of another open chat
    const current = currentConv();
    if (!current || !OPEN.has(current.status)) openChat(c.cid);
    else renderOtherConvs();
    refreshAlert(); // + its button to the security chat
  }
}

export function onMessage(m) {
  const c = conv(m.conversation_id);
  c.messages.set(m.seq, m);
  if (m.client_msg_id && c.pending.has(m.client_msg_id)) {
    c.pending.delete(m.client_msg_id);
    removePending(m.client_msg_id);
  }
  if (m.sender?.role === "agent" && c.status === "bot") c.status = "assigned";
  if (!isCurrent(m)) {
    renderOtherConvs();
    return;
  }
  if (state.view !== "chat") return;
  insertMessage(m);
  if (m.sender?.role === "agent") hideTyping();
  markRead();
}

/** A code, card number, ID number or password in our message was hidden before it was
 * stored: the transcript shows the masked text; this says why (in the chat's language). */
export function onSecurityWarning(f) {
  if (isCurrent(f) && state.view === "chat") showSecretNotice(f.text);
}

export function onQueued(f) {
  const c = conv(f.conversation_id);
  if (c.status === "bot" || c.status === "assigned") {
    c.status = "queued"; // back in the queue (an agent timed out or went away)
    c.agent = null;
  }
  // an urgent chat says where it stands (`notice`) instead of a place in line
  // nobody online who can help (`staffed: false`): `notice` and the choice to leave a message
  c.queue = {
    position: f.position,
    eta_s: f.eta_s,
    notice: f.notice,
    staffed: f.staffed,
    urgent: f.priority === "urgent",
    message_left: f.message_left || (c.queue && c.queue.message_left) || false,
  };
  if (isCurrent(f)) renderChatChrome();
}

export function onAssigned(f) {
  const c = conv(f.conversation_id);
  c.status = "assigned";
  c.agent = f.agent;
  c.queue = null;
  if (isCurrent(f)) {
    renderChatChrome();
    toast(t("agent_joined", { name: f.agent?.name || t("agent") }));
  } else {
    renderOtherConvs();
  }
}

export function onRated(f) {
  state.rated.add(f.conversation_id); // rated here or on another device
  persist();
  const c = state.convs.get(f.conversation_id);
  if (c && isCurrent(f) && (c.status === "closed" || c.status === "resolved")) renderClosedCard(c);
}

export function onTyping(f) {
  if (!isCurrent(f) || f.from?.role === "user") return;
  if (f.state) showTyping(f.from?.name || t("agent"));
  else hideTyping();
}

export function onRead(f) {
  if (f.by?.role === "user") return;
  const c = conv(f.conversation_id);
  c.agentRead = Math.max(c.agentRead, f.seq || 0);
  if (isCurrent(f)) refreshReceipts();
}

export function onClosed(f) {
  const c = conv(f.conversation_id);
  c.status = f.by === "agent" ? "resolved" : "closed";
  c.queue = null;
  if (isCurrent(f)) renderChat();
}
