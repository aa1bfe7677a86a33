// The connection to the hub and the dispatch table that routes each frame type to its
// handler. Resumes from what the last visit had seen (notifications, open chats).

import { HubClient } from "/clients/js/index.js";
import { ensureToken } from "./auth.js";
import * as chats from "./chats.js";
import { OPEN, conv, currentConv, persist, saved, state } from "./state.js";
import { renderConnection, toast } from "./views/banners.js";
import { renderChat, showView } from "./views/chat.js";
import { rememberDismissed } from "./views/campaigns.js";
import { showMaintenance } from "./views/maintenance.js";
import { onAcked, onNotification, renderBell } from "./views/notifications.js";
import { onChallenge, onResult } from "./views/verify.js";

const RESTART_AFTER_MS = 3000;

const FRAMES = {
  welcome: onWelcome,
  "chat.opened": chats.onOpened,
  message: chats.onMessage,
  "chat.queued": chats.onQueued,
  "chat.assigned": chats.onAssigned,
  "chat.rated": chats.onRated,
  typing: chats.onTyping,
  read: chats.onRead,
  "chat.closed": chats.onClosed,
  "security.warning": chats.onSecurityWarning,
  notification: onNotification,
  "notifications.acked": onAcked,
  "verify.challenge": onChallenge,
  "verify.result": onResult,
  error: onError,
};

export async function connect() {
  try {
    // before the client exists: a different demo user resets what we resume from
    await ensureToken();
  } catch {
    /* the client asks again and backs off */
  }
  const client = new HubClient({
    token: () => ensureToken(),
    // binary frames: smaller on a phone's link (the console speaks JSON)
    codec: "msgpack",
    // the outbox of unsent messages lives in localStorage: a reload sends what was left
    storageKey: "supporthub.widget.client",
    notificationsAfter: saved.notifAfter ?? 0,
    // this device's language (the one the widget shows) and time zone: the hub renders
    // notifications and times for this device in them
    hello: () => deviceLocale(),
    onUnauthorized: async () => {
      try {
        await ensureToken(true);
        client.restart();
      } catch {
        setTimeout(() => client.restart(), RESTART_AFTER_MS);
      }
    },
  });
  state.client = client;
  window.__supporthub = { client, state };
  client.on("state", ({ state: s }) => renderConnection(s));
  client.dispatch(FRAMES);
  client.start();
}

function onWelcome(w) {
  const first = state.welcomedAt === 0;
  state.welcomedAt = Date.now();
  if (typeof w.notifications_acked === "number") state.acked = Math.max(state.acked, w.notifications_acked);
  showMaintenance(w.maintenance || null);
  rememberDismissed(w.dismissed_campaigns);
  const open = new Map((w.conversations || []).map((c) => [c.conversation_id, c]));
  for (const [cid, info] of open) {
    const c = conv(cid);
    c.status = info.status;
    c.topic = info.topic;
    if (info.agent) c.agent = info.agent;
    // an urgent chat nobody has yet: what the customer was told, not a place in line
    if (info.status === "queued" && info.notice)
      c.queue = {
        ...(c.queue || {}),
        notice: info.notice,
        staffed: info.staffed,
        urgent: info.priority === "urgent",
        message_left: !!info.message_left,
      };
    // how far the agent has read, also for messages read while this device was away
    if (typeof info.agent_read_seq === "number") c.agentRead = Math.max(c.agentRead || 0, info.agent_read_seq);
    state.client.track(cid);
  }
  // a chat we show as open but the server no longer lists was closed while we were away
  for (const c of state.convs.values()) {
    if (OPEN.has(c.status) && !open.has(c.cid) && c.messages.size + c.pending.size > 0) c.status = "closed";
  }
  const cur = currentConv();
  if (first) {
    if (!state.current || !open.has(state.current)) {
      const latest = [...open.keys()].pop() || null;
      state.current = latest;
    }
    showView(state.current ? "chat" : "home");
  } else if (cur) {
    renderChat();
  }
  renderBell();
  persist();
}

function onError(f) {
  if (!f.id && f.code === "rate_limited") toast(f.message);
}

/** The language the widget shows and the browser's IANA time zone, for `hello`. */
export function deviceLocale() {
  const out = { lang: state.lang === "en" ? "en" : "zh" };
  try {
    const tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (typeof tz === "string" && tz && tz.length <= 64) out.tz = tz;
  } catch {
    /* no Intl time zone: the hub uses its default */
  }
  return out;
}
