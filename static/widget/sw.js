// The web chat's service worker: shows what the hub pushes while no page of the chat is
// open (a notification, an agent's reply), once each, and brings the chat back when one
// is tapped. A classic script with no imports, so that every browser can run it.
//
// A push's payload is JSON: {notification_id | message_id, kind, title, body, ts,
// conversation_id?}. The id decides "once": a notification is shown with the id as its
// tag (a second push with the same id replaces it quietly), and an id the page has
// already shown (push.js writes those to the cache below) is not shown again.

const SEEN_CACHE = "supporthub-push";
const SEEN_KEY = "/widget/__push_seen";
const SEEN_LIMIT = 200;

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => event.waitUntil(onPush(event)));

async function onPush(event) {
  let push = null;
  try {
    push = event.data ? event.data.json() : null;
  } catch {
    push = null;
  }
  const id = push && (push.notification_id || push.message_id);
  if (!id || typeof id !== "string") return;
  const scope = self.registration.scope;
  const pages = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const watching = pages.find((p) => p.url.startsWith(scope) && p.focused && p.visibilityState === "visible");
  if (watching) {
    // the chat is on screen: it shows this itself (its socket delivers or replays it)
    watching.postMessage({ type: "push.received", push });
    return;
  }
  const seen = await readSeen();
  if (seen.includes(id)) return;
  if ((await self.registration.getNotifications({ tag: id })).length) return;
  // shown before it is marked seen: a worker stopped in between must not leave an id
  // marked seen that was never shown (a second copy would then be dropped)
  await self.registration.showNotification(String(push.title || ""), {
    body: String(push.body || ""),
    tag: id,
    timestamp: Date.parse(push.ts) || Date.now(),
    requireInteraction: push.kind === "security.alert",
    data: { id, kind: push.kind, conversation_id: push.conversation_id || null },
  });
  await writeSeen([...seen, id]);
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(openChat(event.notification.data || {}));
});

async function openChat(data) {
  const scope = self.registration.scope;
  const pages = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const open = pages.find((page) => page.url.startsWith(scope));
  if (open) {
    await open.focus();
    open.postMessage({ type: "push.clicked", data });
    return;
  }
  await self.clients.openWindow(scope);
}

// The browser renewed the subscription: subscribe again with the same key; the page
// registers the new one with the hub the next time it connects (push.js `sync`).
self.addEventListener("pushsubscriptionchange", (event) => {
  const key = event.oldSubscription && event.oldSubscription.options.applicationServerKey;
  if (!key) return;
  event.waitUntil(
    self.registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key }).catch(() => {}),
  );
});

// Worker and page share this list through the Cache API (both can reach it).
async function readSeen() {
  try {
    const cache = await caches.open(SEEN_CACHE);
    const hit = await cache.match(SEEN_KEY);
    const list = hit ? await hit.json() : [];
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

async function writeSeen(list) {
  try {
    const cache = await caches.open(SEEN_CACHE);
    await cache.put(SEEN_KEY, new Response(JSON.stringify(list.slice(-SEEN_LIMIT))));
  } catch {
    /* storage off: a duplicate may show, nothing worse */
  }
}
