// The users' web chat: topic choice, the help bot, the human queue, the agent's chat,
// notifications and the satisfaction rating. Every piece of user, agent or bot text is put
// in the page as text (see ../shared/dom.js); only help-article links become elements.

import { HubClient, clientMsgId } from "/static/shared/ws-client.js";
import { api, clock, h, linkifyHelp, money, mount, renderMarkdown } from "/static/shared/dom.js";
import { TOPICS, TOPIC_ICONS, label, makeT } from "/static/shared/labels.js";
import { TEXT } from "./i18n.js";

const STORE_KEY = "supporthub.widget";
const FEED_LIMIT = 50;
const TYPING_EVERY_MS = 3000;
const TYPING_IDLE_MS = 4000;
const OPEN = new Set(["bot", "queued", "assigned"]);

// --- state -----------------------------------------------------------------------------

const saved = loadStore();
const params = new URLSearchParams(location.search);
const state = {
  lang: params.get("lang") === "en" || params.get("lang") === "zh" ? params.get("lang") : saved.lang || "zh",
  token: saved.token || null,
  user: saved.user || null, // {id, name}
  current: saved.current || null,
  convs: new Map(), // cid -> conversation view model
  feed: saved.feed || [], // newest first
  acked: saved.acked || 0,
  rated: new Set(saved.rated || []),
  topic: null,
  view: "home",
  welcomedAt: 0,
  typingSentAt: 0,
  typingStop: null,
  readSent: new Map(), // cid -> seq
  typingHide: null,
  client: null,
};
const t = makeT(TEXT, () => state.lang);
const $ = (id) => document.getElementById(id);

function loadStore() {
  try {
    return JSON.parse(localStorage.getItem(STORE_KEY)) || {};
  } catch {
    return {};
  }
}

function persist() {
  const notifAfter = state.client?.notifications?.watermark ?? saved.notifAfter ?? 0;
  const data = {
    lang: state.lang,
    token: state.token,
    user: state.user,
    current: state.current,
    feed: state.feed.slice(0, FEED_LIMIT),
    acked: state.acked,
    notifAfter,
    rated: [...state.rated].slice(-50),
  };
  try {
    localStorage.setItem(STORE_KEY, JSON.stringify(data));
  } catch {
    /* private mode: fine, we just don't remember */
  }
}

function conv(cid) {
  let c = state.convs.get(cid);
  if (!c) {
    c = {
      cid,
      status: "bot",
      topic: null,
      agent: null,
      messages: new Map(), // seq -> message frame
      pending: new Map(), // client_msg_id -> {text, ts, state}
      agentRead: 0,
      queue: null,
    };
    state.convs.set(cid, c);
  }
  return c;
}

const currentConv = () => (state.current ? state.convs.get(state.current) : null);

// --- token -----------------------------------------------------------------------------

function tokenExpiry(token) {
  try {
    const payload = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return (payload.exp || 0) * 1000;
  } catch {
    return 0;
  }
}

function tokenClaims(token) {
  try {
    return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
  } catch {
    return {};
  }
}

// In production the app that embeds the web chat signs its user in and passes the token
// in the URL fragment (#token=...), which never reaches any server log; /api/dev/token
// exists only in `supporthub dev`.
function takeTokenFromFragment() {
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (!token || tokenExpiry(token) <= Date.now()) return null;
  const claims = tokenClaims(token);
  history.replaceState(null, "", location.pathname + location.search);
  if (state.user && state.user.id !== claims.sub) {
    state.current = null;
    state.feed = [];
    state.acked = 0;
    state.rated = new Set();
    saved.notifAfter = 0;
  }
  state.token = token;
  state.user = { id: claims.sub, name: claims.name || claims.sub };
  persist();
  return token;
}

async function ensureToken(force = false) {
  const fromHost = takeTokenFromFragment();
  if (fromHost) return fromHost;
  const wantUser = params.get("user");
  const wantName = params.get("name");
  const sameUser = !wantUser || wantUser === state.user?.id;
  const fresh = state.token && tokenExpiry(state.token) > Date.now() + 60_000;
  if (!force && sameUser && fresh) return state.token;
  const q = new URLSearchParams();
  const userId = wantUser || state.user?.id;
  if (userId) q.set("user", userId);
  if (wantName || state.user?.name) q.set("name", wantName || state.user.name);
  const body = await api(`/api/dev/token?${q}`);
  if (!sameUser || (state.user && state.user.id !== body.user_id)) {
    // another demo user: forget the previous one's conversations and notifications
    state.current = null;
    state.feed = [];
    state.acked = 0;
    state.rated = new Set();
    saved.notifAfter = 0;
  }
  state.token = body.token;
  state.user = { id: body.user_id, name: body.name };
  persist();
  return state.token;
}

// --- connection ------------------------------------------------------------------------

async function connect() {
  try {
    // before the client exists: a different demo user resets what we resume from
    await ensureToken();
  } catch {
    /* the client asks again and backs off */
  }
  const client = new HubClient({
    token: () => ensureToken(),
    notificationsAfter: saved.notifAfter ?? 0,
    onUnauthorized: async () => {
      try {
        await ensureToken(true);
        client.restart();
      } catch {
        setTimeout(() => client.restart(), 3000);
      }
    },
  });
  state.client = client;
  window.__supporthub = { client, state };
  client.on("state", ({ state: s }) => renderConnection(s));
  client.on("welcome", onWelcome);
  client.on("chat.opened", (f) => {
    const c = conv(f.conversation_id);
    c.status = f.status;
    c.topic = f.topic || c.topic;
    client.track(f.conversation_id);
    if (f.priority === "urgent") {
      // the hub opened a security chat for this user (account frozen): show it at once
      // unless the user is in the middle of another open chat
      const current = currentConv();
      if (!current || !OPEN.has(current.status)) openChat(c.cid);
      else renderOtherConvs();
      if (state.lastAlert && !$("alert-banner").hidden) showAlert(state.lastAlert); // + its button
    }
  });
  client.on("message", onMessage);
  client.on("chat.queued", (f) => {
    const c = conv(f.conversation_id);
    if (c.status === "bot" || c.status === "assigned") {
      c.status = "queued"; // back in the queue (an agent timed out or went away)
      c.agent = null;
    }
    c.queue = { position: f.position, eta_s: f.eta_s };
    if (f.conversation_id === state.current) renderChatChrome();
  });
  client.on("chat.assigned", (f) => {
    const c = conv(f.conversation_id);
    c.status = "assigned";
    c.agent = f.agent;
    c.queue = null;
    if (f.conversation_id === state.current) {
      renderChatChrome();
      toast(t("agent_joined", { name: f.agent?.name || t("agent") }));
    } else {
      renderOtherConvs();
    }
  });
  client.on("chat.rated", (f) => {
    state.rated.add(f.conversation_id); // rated here or on another device
    persist();
    const c = state.convs.get(f.conversation_id);
    if (c && f.conversation_id === state.current && (c.status === "closed" || c.status === "resolved")) {
      renderClosedCard(c);
    }
  });
  client.on("typing", onTyping);
  client.on("read", (f) => {
    if (f.by?.role === "user") return;
    const c = conv(f.conversation_id);
    c.agentRead = Math.max(c.agentRead, f.seq || 0);
    if (f.conversation_id === state.current) refreshReceipts();
  });
  client.on("chat.closed", (f) => {
    const c = conv(f.conversation_id);
    c.status = f.by === "agent" ? "resolved" : "closed";
    c.queue = null;
    if (f.conversation_id === state.current) renderChat();
  });
  client.on("notification", onNotification);
  client.on("notifications.acked", (f) => {
    // seen on another device of this user
    if (typeof f.up_to !== "number" || f.up_to <= state.acked) return;
    state.acked = f.up_to;
    renderBell();
    if (!$("panel-notif").hidden) renderFeed();
    persist();
  });
  client.on("error", (f) => {
    if (!f.id && f.code === "rate_limited") toast(f.message);
  });
  client.start();
}

function onWelcome(w) {
  const first = state.welcomedAt === 0;
  state.welcomedAt = Date.now();
  if (typeof w.notifications_acked === "number") state.acked = Math.max(state.acked, w.notifications_acked);
  const open = new Map((w.conversations || []).map((c) => [c.conversation_id, c]));
  for (const [cid, info] of open) {
    const c = conv(cid);
    c.status = info.status;
    c.topic = info.topic;
    if (info.agent) c.agent = info.agent;
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

function renderConnection(s) {
  const banner = $("conn-banner");
  const down = s === "reconnecting" || s === "connecting";
  banner.hidden = !down;
  banner.classList.toggle("soft", s === "connecting");
  mount(banner, s === "connecting" ? t("connecting") : t("reconnecting"));
  $("app").classList.toggle("is-offline", s === "reconnecting");
  for (const el of document.querySelectorAll(".msg.pending .msg-state")) {
    el.textContent = s === "open" ? t("sending") : t("offline_hint");
  }
}

// --- messages ----------------------------------------------------------------------------

function onMessage(m) {
  const c = conv(m.conversation_id);
  c.messages.set(m.seq, m);
  if (m.client_msg_id && c.pending.has(m.client_msg_id)) {
    c.pending.delete(m.client_msg_id);
    document.querySelector(`[data-pending="${CSS.escape(m.client_msg_id)}"]`)?.remove();
  }
  if (m.sender?.role === "agent" && c.status === "bot") c.status = "assigned";
  if (m.conversation_id !== state.current) {
    renderOtherConvs();
    return;
  }
  if (state.view !== "chat") return;
  insertMessage(m);
  if (m.sender?.role === "agent") hideTyping();
  markRead();
}

function onTyping(f) {
  if (f.conversation_id !== state.current || f.from?.role === "user") return;
  if (!f.state) {
    hideTyping();
    return;
  }
  const name = f.from?.name || t("agent");
  $("typing-text").textContent = t("typing", { name });
  $("typing").hidden = false;
  clearTimeout(state.typingHide);
  state.typingHide = setTimeout(hideTyping, 6000);
  scrollToBottom(false);
}

function hideTyping() {
  clearTimeout(state.typingHide);
  $("typing").hidden = true;
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
  const body =
    role === "bot" || role === "agent"
      ? h("div", { class: "bubble" }, linkifyHelp(m.text, openArticle, () => t("read_article")))
      : h("div", { class: "bubble", text: m.text });
  return h(
    "div",
    { class: ["msg", role, mine && "mine"], dataset: { seq: m.seq, role } },
    !mine && h("div", { class: "msg-name", text: senderName(m) }),
    body,
    h(
      "div",
      { class: "msg-meta" },
      h("time", { text: clock(m.ts), dateTime: m.ts }),
      mine && h("span", { class: "receipt", text: "" }),
    ),
  );
}

function pendingEl(cmid, p) {
  const el = h(
    "div",
    { class: ["msg", "user", "mine", "pending", p.failed && "failed"], dataset: { pending: cmid } },
    h("div", { class: "bubble", text: p.text }),
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

function insertMessage(m) {
  const box = $("transcript");
  if (box.querySelector(`[data-seq="${m.seq}"]:not([data-pending])`)) return;
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

function refreshReceipts() {
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
  return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
}

function scrollToBottom(force = true) {
  const box = $("transcript");
  if (force || isNearBottom()) box.scrollTop = box.scrollHeight;
}

/** Tell the agent what we have seen: the newest seq, when the chat is on screen. */
function markRead() {
  const c = currentConv();
  if (!c || state.view !== "chat" || document.visibilityState !== "visible") return;
  let max = 0;
  for (const [seq, m] of c.messages) if (m.sender?.role !== "user" && seq > max) max = seq;
  if (!max || (state.readSent.get(c.cid) || 0) >= max) return;
  if (!OPEN.has(c.status)) return;
  state.readSent.set(c.cid, max);
  state.client.send({ type: "read", conversation_id: c.cid, seq: max }, { queue: false });
}

// --- sending ---------------------------------------------------------------------------

function sendText(text) {
  const c = currentConv();
  if (!c || !OPEN.has(c.status)) return;
  const cmid = clientMsgId();
  const p = { text, ts: new Date().toISOString(), failed: false };
  c.pending.set(cmid, p);
  $("transcript").appendChild(pendingEl(cmid, p));
  scrollToBottom();
  deliver(c, cmid);
  stopTyping();
}

function deliver(c, cmid) {
  const p = c.pending.get(cmid);
  state.client
    .request(
      { type: "chat.send", conversation_id: c.cid, client_msg_id: cmid, text: p.text },
      { retry: true, timeout: 5 * 60_000 },
    )
    .catch((err) => {
      if (!c.pending.has(cmid)) return;
      p.failed = true;
      const el = document.querySelector(`[data-pending="${CSS.escape(cmid)}"]`);
      el?.replaceWith(pendingEl(cmid, p));
      if (err.code !== "timeout") toast(err.message || t("error_generic"));
    });
}

function retrySend(cmid) {
  const c = currentConv();
  const p = c?.pending.get(cmid);
  if (!p) return;
  p.failed = false;
  document.querySelector(`[data-pending="${CSS.escape(cmid)}"]`)?.replaceWith(pendingEl(cmid, p));
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

function autosize(el) {
  el.style.height = "auto";
  el.style.height = `${Math.min(el.scrollHeight, 120)}px`;
}

// --- chat lifecycle --------------------------------------------------------------------

async function startChat(handoff) {
  if (!state.topic) return;
  const text = $("first-text").value.trim();
  const err = $("home-error");
  err.hidden = true;
  for (const b of [$("btn-start"), $("btn-start-agent")]) b.disabled = true;
  try {
    const frame = { type: "chat.open", topic: state.topic, handoff, lang: state.lang };
    if (text) frame.text = text;
    const opened = await state.client.request(frame, { matchType: "chat.opened", timeout: 20000 });
    const c = conv(opened.conversation_id);
    c.status = opened.status;
    c.topic = state.topic;
    state.client.track(c.cid);
    state.current = c.cid;
    $("first-text").value = "";
    persist();
    showView("chat");
  } catch (e) {
    err.textContent = e.message && e.code !== "timeout" ? e.message : t("error_start");
    err.hidden = false;
  } finally {
    renderTopics();
  }
}

async function escalate() {
  const c = currentConv();
  if (!c) return;
  $("btn-escalate").disabled = true;
  try {
    const ack = await state.client.request({ type: "chat.escalate", conversation_id: c.cid }, { retry: true });
    if (c.status === "bot") c.status = ack.status || "queued";
    renderChatChrome();
  } catch (e) {
    toast(e.message || t("error_generic"));
  } finally {
    $("btn-escalate").disabled = false;
  }
}

async function endChat() {
  const c = currentConv();
  if (!c) return;
  try {
    await state.client.request({ type: "chat.close", conversation_id: c.cid }, { retry: true });
    c.status = "closed";
    renderChat();
  } catch (e) {
    toast(e.message || t("error_generic"));
  }
}

function newChat() {
  const c = currentConv();
  if (c && !OPEN.has(c.status)) state.client.forget(c.cid);
  state.current = null;
  persist();
  showView("home");
}

// --- views -----------------------------------------------------------------------------

function showView(view) {
  state.view = view;
  $("app").dataset.view = view;
  $("view-home").hidden = view !== "home";
  $("view-chat").hidden = view !== "chat";
  if (view === "home") renderHome();
  else renderChat();
  renderHeader();
}

function renderHome() {
  const name = state.user?.name;
  $("home-hello").textContent = name ? t("hello", { name }) : t("hello_anon");
  renderTopics();
}

function renderTopics() {
  const box = $("topics");
  mount(
    box,
    TOPICS.map((topic) =>
      h(
        "button",
        {
          type: "button",
          class: ["topic", state.topic === topic && "selected"],
          attrs: { role: "radio", "aria-checked": state.topic === topic ? "true" : "false" },
          dataset: { topic },
          onclick: () => {
            state.topic = topic;
            renderTopics();
          },
        },
        h("span", { class: "topic-icon", text: TOPIC_ICONS[topic], attrs: { "aria-hidden": "true" } }),
        h("span", { class: "topic-label", text: label("topic", topic, state.lang) }),
      ),
    ),
  );
  const ready = Boolean(state.topic);
  $("btn-start").disabled = !ready;
  $("btn-start-agent").disabled = !ready;
}

function renderChat() {
  const c = currentConv();
  const box = $("transcript");
  box.replaceChildren();
  hideTyping();
  if (!c) {
    renderChatChrome();
    return;
  }
  const seqs = [...c.messages.keys()].sort((a, b) => a - b);
  for (const seq of seqs) box.appendChild(messageEl(c.messages.get(seq)));
  for (const [cmid, p] of c.pending) box.appendChild(pendingEl(cmid, p));
  refreshReceipts();
  renderChatChrome();
  scrollToBottom();
  markRead();
}

function renderChatChrome() {
  const c = currentConv();
  renderHeader();
  const open = c && OPEN.has(c.status);
  $("btn-escalate").hidden = !(c && c.status === "bot");
  $("btn-end").hidden = !open;
  $("composer").hidden = !open;
  $("input").disabled = !open;
  // queue card
  const card = $("queue-card");
  if (c && c.status === "queued") {
    card.hidden = false;
    const q = c.queue;
    let line1 = t("queue_waiting");
    let line2 = "";
    if (q && q.position) {
      line1 = q.position <= 1 ? t("queue_next") : t("queue_pos", { n: q.position - 1 });
      const min = Math.ceil((q.eta_s || 0) / 60);
      line2 = q.eta_s == null ? "" : min <= 1 ? t("queue_eta_short") : t("queue_eta", { m: min });
    }
    mount(
      card,
      h("div", { class: "queue-spinner", attrs: { "aria-hidden": "true" } }),
      h(
        "div",
        {},
        h("div", { class: "queue-line", id: "queue-line", text: line1 }),
        line2 && h("div", { class: "queue-eta", text: line2 }),
        h("div", { class: "queue-note", text: t("queue_note") }),
      ),
    );
  } else {
    card.hidden = true;
  }
  // closed: rating + new chat
  const closed = $("closed-card");
  if (c && !open) {
    closed.hidden = false;
    renderClosedCard(c);
  } else {
    closed.hidden = true;
  }
}

function openChat(cid) {
  state.current = cid;
  persist();
  showView("chat");
}

/** Other open conversations (e.g. the security chat opened for a frozen account). */
function renderOtherConvs() {
  const bar = $("other-convs");
  const others = [...state.convs.values()].filter(
    (c) => OPEN.has(c.status) && !(state.view === "chat" && c.cid === state.current),
  );
  bar.hidden = others.length === 0;
  if (!others.length) return;
  mount(
    bar,
    h("span", { class: "oc-label", text: t("other_open") }),
    others.map((c) =>
      h(
        "button",
        {
          type: "button",
          class: "oc-item",
          dataset: { cid: c.cid },
          onclick: () => openChat(c.cid),
        },
        `${c.topic ? label("topic", c.topic, state.lang) : t("title")} · ${label("conv", c.status, state.lang)} ›`,
      ),
    ),
  );
}

function renderHeader() {
  renderOtherConvs();
  const c = state.view === "chat" ? currentConv() : null;
  const sub = $("hdr-sub");
  const avatar = $("hdr-avatar");
  $("btn-home").hidden = state.view === "home";
  $("btn-new").hidden = !(c && !OPEN.has(c.status));
  avatar.className = "w-avatar";
  if (!c) {
    sub.textContent = state.user ? state.user.name : "";
    avatar.textContent = state.lang === "en" ? "S" : "客";
    return;
  }
  if (c.status === "bot") {
    sub.textContent = t("sub_bot");
    avatar.textContent = "🤖";
    avatar.classList.add("bot");
  } else if (c.status === "queued") {
    sub.textContent = t("sub_queued");
    avatar.textContent = "…";
  } else if (c.status === "assigned") {
    const name = c.agent?.name || t("agent");
    sub.textContent = t("sub_assigned", { name });
    avatar.textContent = name.slice(0, 1);
    avatar.classList.add("agent");
  } else {
    sub.textContent = t("sub_closed");
    avatar.textContent = "✓";
  }
  sub.dataset.status = c.status;
}

function renderClosedCard(c) {
  const box = $("closed-card");
  const parts = [h("div", { class: "closed-title", text: t("closed_title") })];
  if (c.agent && !state.rated.has(c.cid)) {
    let score = 0;
    const stars = h("div", { class: "stars", attrs: { role: "radiogroup", "aria-label": t("rate_prompt") } });
    const comment = h("textarea", { class: "rate-comment", rows: 2, maxLength: 2000, placeholder: t("rate_comment") });
    const submit = h("button", { class: "btn primary", type: "button", text: t("rate_submit"), disabled: true });
    const paint = () => {
      stars.querySelectorAll("button").forEach((b, i) => {
        b.classList.toggle("on", i < score);
        b.setAttribute("aria-checked", i + 1 === score ? "true" : "false");
      });
    };
    for (let n = 1; n <= 5; n++) {
      stars.appendChild(
        h("button", {
          type: "button",
          class: "star",
          text: "★",
          dataset: { score: n },
          attrs: { role: "radio", "aria-label": t("star", { n }), "aria-checked": "false" },
          onclick: () => {
            score = n;
            submit.disabled = false;
            paint();
          },
        }),
      );
    }
    submit.addEventListener("click", async () => {
      submit.disabled = true;
      const frame = { type: "chat.rate", conversation_id: c.cid, score };
      if (comment.value.trim()) frame.comment = comment.value.trim();
      try {
        await state.client.request(frame, { retry: true });
        state.rated.add(c.cid);
        persist();
        renderClosedCard(c);
      } catch (e) {
        submit.disabled = false;
        toast(e.message || t("error_generic"));
      }
    });
    parts.push(h("div", { class: "rate-prompt", text: t("rate_prompt") }), stars, comment, submit);
  } else if (state.rated.has(c.cid)) {
    parts.push(h("div", { class: "rate-thanks", text: t("rate_thanks") }));
  }
  parts.push(h("button", { class: "btn ghost", type: "button", id: "btn-new-chat", text: t("new_chat"), onclick: newChat }));
  mount(box, parts);
  scrollToBottom(false);
}

// --- notifications -----------------------------------------------------------------------

function onNotification(n) {
  if (!state.feed.some((x) => x.seq === n.seq)) {
    state.feed.unshift(n);
    state.feed.sort((a, b) => b.seq - a.seq);
    state.feed.length = Math.min(state.feed.length, FEED_LIMIT);
  }
  const fresh = n.seq > state.acked;
  const banner = $("alert-banner");
  if (n.kind === "security.alert" && n.data?.alert === "account_unfrozen" && !banner.hidden && n.seq > Number(banner.dataset.seq || 0)) {
    banner.hidden = true; // the freeze it warned about is over
  }
  if (n.kind === "security.alert" && n.data?.severity === "critical" && fresh) showAlert(n);
  else if (fresh && Date.now() - state.welcomedAt > 1500) toast(n.title || n.body);
  renderBell();
  if (!$("panel-notif").hidden) {
    renderFeed();
    ackNotifications();
  }
  persist();
}

function renderBell() {
  const unread = state.feed.filter((n) => n.seq > state.acked).length;
  const badge = $("bell-badge");
  badge.hidden = unread === 0;
  badge.textContent = unread > 99 ? "99+" : String(unread);
  $("btn-bell").classList.toggle("has-unread", unread > 0);
}

const securityChat = () =>
  [...state.convs.values()].find((c) => c.topic === "security" && OPEN.has(c.status)) || null;

function showAlert(n) {
  state.lastAlert = n;
  const box = $("alert-banner");
  box.hidden = false;
  box.dataset.seq = n.seq;
  mount(
    box,
    h("span", { class: "alert-icon", text: "⚠", attrs: { "aria-hidden": "true" } }),
    h("div", { class: "alert-text" }, h("strong", { text: n.title }), h("div", { text: n.body })),
    securityChat() &&
      h("button", {
        type: "button",
        class: "alert-close",
        text: t("open_security_chat"),
        onclick: () => openChat(securityChat().cid),
      }),
    h("button", {
      type: "button",
      class: "alert-close",
      text: t("dismiss"),
      onclick: () => {
        box.hidden = true;
        state.acked = Math.max(state.acked, n.seq);
        state.client.send({ type: "notifications.ack", up_to: state.acked });
        renderBell();
        persist();
      },
    }),
  );
}

function notifItem(n) {
  const d = n.data || {};
  const kindClass = n.kind === "security.alert" ? `alert sev-${d.severity || "info"}` : n.kind === "system.notice" ? "notice" : "tx";
  const extra = [];
  if (n.kind === "transaction.status") {
    extra.push(h("span", { class: `chip tx-${d.status}`, text: label("tx", d.status, state.lang) }));
    if (d.amount) extra.push(h("span", { class: "amount", text: money(d.amount, d.currency, state.lang) }));
    if (d.reason) extra.push(h("span", { class: "reason", text: label("reason", d.reason, state.lang) }));
    if (d.status === "processing" && d.expected_by) {
      extra.push(h("span", { class: "eta", text: t("expected_by", { time: clock(d.expected_by) }) }));
    }
  }
  return h(
    "li",
    { class: ["feed-item", kindClass, n.seq > state.acked && "unread"], dataset: { seq: n.seq } },
    h("div", { class: "feed-head" }, h("strong", { text: n.title }), h("time", { text: clock(n.ts) })),
    n.body && h("p", { text: n.body }),
    extra.length ? h("div", { class: "feed-extra" }, extra) : null,
  );
}

function renderFeed() {
  const list = $("feed");
  if (!state.feed.length) mount(list, h("li", { class: "empty", text: t("no_notifications") }));
  else mount(list, state.feed.map(notifItem));
}

function ackNotifications() {
  const max = state.feed.reduce((m, n) => Math.max(m, n.seq), 0);
  if (max > state.acked) {
    state.acked = max;
    state.client.send({ type: "notifications.ack", up_to: max });
    persist();
  }
  renderBell();
}

function openPanel(id) {
  const panel = $(id);
  panel.hidden = false;
  panel.querySelector("[data-close]")?.focus();
}

function closePanels() {
  for (const id of ["panel-notif", "panel-article"]) $(id).hidden = true;
  if (state.view === "chat") $("input").focus();
}

// --- help articles ------------------------------------------------------------------------

async function openArticle(slug, lang) {
  const box = $("article");
  mount(box, h("p", { class: "muted", text: t("loading") }));
  openPanel("panel-article");
  try {
    const a = await api(`/api/help/articles/${encodeURIComponent(slug)}?lang=${lang || state.lang}`);
    mount(
      box,
      h("h1", { text: a.title }),
      h("div", { class: "article-body" }, renderMarkdown(a.body, openArticle)),
    );
    box.scrollTop = 0;
  } catch {
    mount(box, h("p", { class: "muted", text: t("article_missing") }));
  }
}

// --- small things ------------------------------------------------------------------------

let toastTimer = null;
function toast(text) {
  if (!text) return;
  const el = $("toast");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    el.hidden = true;
  }, 3500);
}

function applyLang() {
  document.documentElement.lang = state.lang === "en" ? "en" : "zh-CN";
  document.title = t("title");
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-aria]")) el.setAttribute("aria-label", t(el.dataset.i18nAria));
  for (const el of document.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  $("btn-lang").textContent = state.lang === "en" ? "中文" : "EN";
  $("btn-lang").setAttribute("aria-label", state.lang === "en" ? "切换到中文" : "Switch to English");
  if (state.client) renderConnection(state.client.state);
  if (state.view === "home") renderHome();
  else renderChat();
  renderHeader();
  if (!$("panel-notif").hidden) renderFeed();
}

function wire() {
  $("btn-lang").addEventListener("click", () => {
    state.lang = state.lang === "en" ? "zh" : "en";
    persist();
    applyLang();
    // notifications and the agent's view follow the user's language from now on
    state.client?.send({ type: "user.lang", lang: state.lang });
  });
  $("btn-start").addEventListener("click", () => startChat("bot"));
  $("btn-start-agent").addEventListener("click", () => startChat("agent"));
  $("btn-escalate").addEventListener("click", escalate);
  $("btn-end").addEventListener("click", endChat);
  $("btn-new").addEventListener("click", newChat);
  $("btn-home").addEventListener("click", () => showView("home"));
  $("btn-bell").addEventListener("click", () => {
    renderFeed();
    openPanel("panel-notif");
    ackNotifications();
  });
  for (const b of document.querySelectorAll("[data-close]")) b.addEventListener("click", closePanels);
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && (!$("panel-notif").hidden || !$("panel-article").hidden)) closePanels();
  });
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
  document.addEventListener("visibilitychange", markRead);
  window.addEventListener("focus", markRead);
}

wire();
applyLang();
showView("home");
connect();
