// The connection to the hub: one HubClient per signed-in session, and the dispatch table
// that routes each frame type to its handler.

import { HubClient } from "/clients/js/index.js";
import * as chats from "./chats.js";
import { customer, supervisor } from "./panels.js";
import { S, t, token } from "./state.js";
import { renderConnection, renderHeader, renderViewTabs } from "./views/header.js";
import { alertSound, mentionToast, renderUrgentBanner, toast } from "./views/notifications.js";
import { renderQueue } from "./views/queue.js";

const FRAMES = {
  welcome: onWelcome,
  "agent.state": onAgentState,
  "queue.snapshot": onQueueSnapshot,
  "chat.assigned": chats.onAssigned,
  message: chats.onMessage,
  note: chats.onNote,
  "security.warning": chats.onSecurityWarning,
  typing: chats.onTyping,
  read: chats.onRead,
  "chat.closed": chats.onClosed,
  "chat.transferred": chats.onTransferred,
  "chat.rated": chats.onRated,
  "customer.lang": chats.onCustomerLang,
  "customer.presence": chats.onCustomerPresence,
  "note.mention": mentionToast,
  "customer.event": onCustomerEvent,
  "verify.result": (f) => customer.applyVerifyResult(f),
  "chat.watching": (f) => supervisor.onWatching(f),
  "watch.event": (f) => supervisor.onWatchEvent(f),
  "queue.alert": (f) => supervisor.onQueueAlert(f),
  "sla.alert": (f) => supervisor.onSlaAlert(f),
  "session.resync": () => customer.refresh(),
  error: onError,
};

/** Connect with the session's token; `onUnauthorized` when the hub refuses it. */
export function connect({ onUnauthorized }) {
  const client = new HubClient({ token: () => token(), storageKey: "supporthub.console.client", onUnauthorized });
  S.client = client;
  window.__supporthub = { client, S };
  client.on("state", ({ state }) => renderConnection(state));
  client.dispatch(FRAMES);
  client.start();
}

export function disconnect() {
  S.client?.stop();
  S.client = null;
}

function onWelcome(w) {
  if (!w.agent) toast(t("no_agent_row"), "error");
  S.me = w.agent || { id: w.sub, name: S.session?.agent?.name || w.sub, skills: [], supervisor: w.role === "supervisor" };
  if (w.agent) S.agentState = { status: w.agent.status, capacity: w.agent.capacity, active: w.agent.active };
  chats.expectResumedChats();
  renderViewTabs();
  renderHeader();
}

function onAgentState(f) {
  S.agentState = { status: f.status, capacity: f.capacity, active: f.active };
  renderHeader();
  // the hub set us away (a new chat left unanswered past its deadline): say why
  if (f.reason === "unanswered" && f.text) toast(f.text[S.lang] || f.text.zh, "error");
}

function onQueueSnapshot(f) {
  S.queue = f.queue || [];
  chats.dropUnresumedChats();
  const urgent = new Set(S.queue.filter((q) => q.priority === "urgent").map((q) => q.conversation_id));
  const fresh = [...urgent].filter((cid) => !S.prevUrgentQueue.has(cid));
  S.prevUrgentQueue = urgent;
  if (fresh.length) alertSound("urgent");
  renderQueue();
  renderUrgentBanner();
  supervisor.setQueue(S.queue);
}

/** A payment or security event of a customer the agent is talking to. */
function onCustomerEvent(f) {
  customer.applyEvent(f);
  if (f.kind === "security.alert" && f.data?.alert === "account_unfrozen") chats.markUnfrozen(f.user_id);
}

function onError(f) {
  if (!f.id) toast(t("error", { msg: f.message }), "error"); // errors of requests reject them instead
}
