// Push to closed apps: the service worker (sw.js), the "notify me" switch in the
// notifications panel, and `push.register`, which lets the hub reach this browser when no
// page of the chat is open. The browser asks the user's permission only when they turn
// the switch on (a click: browsers refuse to ask otherwise), never by itself.
//
// Once on, every (re)connection registers the current subscription again (the hub keeps
// one row per browser, so this is idempotent), and a subscription made with a VAPID key
// the hub no longer uses is replaced. What the page shows is remembered for the service
// worker, which then does not show the same notification or reply again.

import { $, api } from "/static/shared/dom.js";
import { state, t } from "./state.js";
import { toast } from "./views/banners.js";

const SW_URL = "/widget/sw.js";
const SCOPE = "/widget/";
const WANTED = "supporthub.push"; // "1" while the user wants pushes on this browser
const SEEN_CACHE = "supporthub-push";
const SEEN_KEY = "/widget/__push_seen";
const SEEN_LIMIT = 200;
const SEEN_FLUSH_MS = 500;

let registration = null;
let status = "off"; // unsupported | off | working | on | blocked | failed
const pageIds = new Set(); // what this page showed (to close the system copies)
const shownIds = new Set(); // ... and has not written to the worker's list yet
let seenTimer = null;

const supported = () =>
  window.isSecureContext && "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;

const wanted = () => localStorage.getItem(WANTED) === "1";

function setWanted(on) {
  try {
    if (on) localStorage.setItem(WANTED, "1");
    else localStorage.removeItem(WANTED);
  } catch {
    /* private mode */
  }
}

/** Register the service worker and follow the connection; called once the client exists
 *  (before its first `welcome`, so that what the first replay shows counts as shown). */
export async function initPush() {
  $("push-toggle").addEventListener("click", () => (status === "on" ? disable() : enable()));
  $("btn-bell").addEventListener("click", render);
  $("btn-lang").addEventListener("click", render);
  if (!supported()) {
    status = "unsupported";
    render();
    return;
  }
  const client = state.client;
  client.on("notification", (n) => shown(n.notification_id));
  client.on("message", (m) => shown(m.message_id));
  try {
    registration = await navigator.serviceWorker.register(SW_URL, { scope: SCOPE });
  } catch {
    status = "unsupported";
    render();
    return;
  }
  navigator.serviceWorker.addEventListener("message", onWorkerMessage);
  client.on("welcome", () => sync());
  closeShown([...pageIds]);
  status = Notification.permission === "denied" ? "blocked" : "off";
  render();
  if (client.state === "open") await sync();
}

/** After each welcome: keep the hub's copy of this browser's subscription current. */
async function sync() {
  if (!registration || Notification.permission !== "granted") {
    if (Notification.permission === "denied") status = "blocked";
    render();
    return;
  }
  try {
    let sub = await registration.pushManager.getSubscription();
    if (!sub && !wanted()) return;
    const key = await vapidKey();
    if (sub && !sameKey(sub, key)) {
      await sub.unsubscribe();
      sub = null;
    }
    sub = sub || (await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key }));
    await register(sub);
    setWanted(true);
    status = "on";
  } catch {
    status = "failed";
  }
  render();
}

/** The switch turned on: ask (a user gesture), subscribe, tell the hub. */
async function enable() {
  if (!registration) return;
  status = "working";
  render();
  try {
    const permission = await Notification.requestPermission();
    if (permission !== "granted") {
      status = permission === "denied" ? "blocked" : "off";
      render();
      return;
    }
    const key = await vapidKey();
    let sub = await registration.pushManager.getSubscription();
    if (sub && !sameKey(sub, key)) {
      await sub.unsubscribe();
      sub = null;
    }
    sub = sub || (await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key }));
    await register(sub);
    setWanted(true);
    status = "on";
  } catch {
    status = "failed";
  }
  render();
}

async function disable() {
  setWanted(false);
  status = "working";
  render();
  try {
    const sub = await registration.pushManager.getSubscription();
    if (sub) {
      state.client.send({ type: "push.unregister", endpoint: sub.endpoint });
      await sub.unsubscribe();
    }
  } catch {
    /* the hub forgets it at the first push (410) */
  }
  status = "off";
  render();
}

function register(sub) {
  const frame = { type: "push.register", kind: "webpush", subscription: sub.toJSON() };
  return state.client.request(frame, { retry: true });
}

async function vapidKey() {
  const { key } = await api("/api/push/vapid-public-key");
  return fromBase64Url(key);
}

function sameKey(sub, key) {
  const have = sub.options && sub.options.applicationServerKey;
  if (!have) return true; // the browser does not say: keep it
  const bytes = new Uint8Array(have);
  return bytes.length === key.length && bytes.every((b, i) => b === key[i]);
}

function fromBase64Url(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

// --- once each ---------------------------------------------------------------------------

/** The page showed this id: the worker must not show it again, and a system notification
 *  already on screen for it is done with. */
function shown(id) {
  if (!id) return;
  pageIds.add(id);
  if (pageIds.size > SEEN_LIMIT) pageIds.delete(pageIds.values().next().value);
  shownIds.add(id);
  closeShown([id]);
  clearTimeout(seenTimer);
  seenTimer = setTimeout(flushSeen, SEEN_FLUSH_MS);
}

function closeShown(ids) {
  if (!registration || !ids.length) return;
  const wanted = new Set(ids);
  registration
    .getNotifications()
    .then((list) => list.filter((n) => wanted.has(n.tag)).forEach((n) => n.close()))
    .catch(() => {});
}

async function flushSeen() {
  if (!shownIds.size) return;
  const ids = [...shownIds];
  shownIds.clear();
  try {
    const cache = await caches.open(SEEN_CACHE);
    const hit = await cache.match(SEEN_KEY);
    const old = hit ? await hit.json() : [];
    const list = [...new Set([...(Array.isArray(old) ? old : []), ...ids])].slice(-SEEN_LIMIT);
    await cache.put(SEEN_KEY, new Response(JSON.stringify(list)));
  } catch {
    /* storage off: a duplicate may show, nothing worse */
  }
}

function onWorkerMessage(ev) {
  const msg = ev.data || {};
  // a push reached the worker while the chat is on screen but its socket is down
  if (msg.type === "push.received" && state.client?.state !== "open" && msg.push?.title) toast(msg.push.title);
}

// --- the switch --------------------------------------------------------------------------

const NOTES = {
  on: "push_on",
  working: "push_working",
  blocked: "push_blocked",
  failed: "push_failed",
  off: "push_off",
};

function render() {
  const row = $("push-row");
  row.hidden = status === "unsupported";
  if (row.hidden) return;
  const toggle = $("push-toggle");
  toggle.setAttribute("aria-checked", String(status === "on"));
  toggle.disabled = status === "working" || status === "blocked";
  toggle.dataset.state = status;
  $("push-note").textContent = t(NOTES[status] || "push_off");
}
