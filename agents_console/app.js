// The agents' console: login, status, queue, chats, transcript, reply box with canned
// answers, notes, transfer, resolve, the customer panel and (for supervisors) the
// supervisor view. Every text from users or agents is rendered as text (../static/shared/dom.js).

import { HubClient, clientMsgId } from "/static/shared/ws-client.js";
import { api, clock, dateTime, duration, h, hasHelpLink, linkifyHelp, mount, renderMarkdown } from "/static/shared/dom.js";
import { TOPICS, label, makeT } from "/static/shared/labels.js";
import { CustomerPanel, initial } from "./views/customer.js";
import { TEXT } from "./i18n.js";
import { beep, unlock } from "./sound.js";
import { SupervisorView } from "./views/supervisor.js";

const SESSION_KEY = "supporthub.console";
const LANG_KEY = "supporthub.console.lang";
const SOUND_KEY = "supporthub.console.sound";
const TYPING_EVERY_MS = 3000;
const TYPING_IDLE_MS = 4000;

const $ = (id) => document.getElementById(id);

const S = {
  lang: localStorage.getItem(LANG_KEY) || "zh",
  sound: localStorage.getItem(SOUND_KEY) !== "off",
  session: loadSession(), // {token, agent}
  me: null, // welcome.agent
  agentState: { status: "offline", capacity: 0, active: 0 },
  client: null,
  queue: [],
  chats: new Map(), // cid -> chat
  selected: null,
  view: "work",
  sweepAfterWelcome: false,
  prevUrgentQueue: new Set(),
  typingSentAt: 0,
  typingStop: null,
  titleBlink: null,
};
const t = makeT(TEXT, () => S.lang);

function loadSession() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY)) || null;
  } catch {
    return null;
  }
}

const token = () => S.session?.token;
const isSupervisor = () => S.me?.supervisor || S.session?.agent?.role === "supervisor";
const skills = () => S.me?.skills || S.session?.agent?.skills || [];

// --- panels --------------------------------------------------------------------------------

const customer = new CustomerPanel({
  el: $("customer"),
  token,
  t,
  lang: () => S.lang,
  canUnfreeze: () => skills().includes("security"),
  onUnfreeze: (userId) => unfreezeDialog(userId),
  onOpenConversation: (cid) => conversationDialog(cid),
});

const supervisor = new SupervisorView({ el: $("supervisor-view"), token, t, lang: () => S.lang });

// --- login -----------------------------------------------------------------------------

function showLogin(message) {
  $("app-view").hidden = true;
  $("login-view").hidden = false;
  const err = $("login-error");
  err.hidden = !message;
  err.textContent = message || "";
  $("login-user").focus();
}

async function login(ev) {
  ev.preventDefault();
  unlock(); // a user gesture: sound may play from now on
  const button = $("login-submit");
  button.disabled = true;
  try {
    const body = await api("/api/agents/login", {
      method: "POST",
      body: { username: $("login-user").value.trim(), password: $("login-pass").value },
    });
    S.session = { token: body.token, agent: body.agent || null };
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(S.session));
    $("login-pass").value = "";
    start();
  } catch (e) {
    showLogin(e.status === 401 ? t("login_failed") : t("login_error"));
  } finally {
    button.disabled = false;
  }
}

function logout() {
  S.client?.stop();
  S.client = null;
  S.session = null;
  sessionStorage.removeItem(SESSION_KEY);
  S.chats.clear();
  S.selected = null;
  S.queue = [];
  supervisor.hide();
  showLogin();
}

// --- connection ------------------------------------------------------------------------

function start() {
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  const client = new HubClient({ token: () => token() });
  S.client = client;
  window.__supporthub = { client, S };
  client.opts.onUnauthorized = () => logout();
  client.on("state", ({ state }) => renderConnection(state));
  client.on("welcome", onWelcome);
  client.on("agent.state", (f) => {
    S.agentState = { status: f.status, capacity: f.capacity, active: f.active };
    renderHeader();
  });
  client.on("queue.snapshot", onQueue);
  client.on("chat.assigned", onAssigned);
  client.on("message", onMessage);
  client.on("note", onNote);
  client.on("typing", onTyping);
  client.on("read", onRead);
  client.on("chat.closed", onClosed);
  client.on("chat.transferred", onTransferred);
  client.on("chat.rated", onRated);
  client.on("customer.lang", (f) => {
    const chat = S.chats.get(f.conversation_id);
    if (!chat?.user) return;
    chat.user = { ...chat.user, lang: f.lang };
    if (S.selected === chat.cid) renderConversation();
  });
  client.on("customer.event", (f) => {
    customer.applyEvent(f);
    if (f.kind === "security.alert" && f.data?.alert === "account_unfrozen") {
      for (const chat of S.chats.values()) {
        if (chat.alert && chat.user?.id === f.user_id) chat.alert = { ...chat.alert, unfrozen: true };
      }
      renderConversation();
    }
  });
  client.on("session.resync", () => customer.refresh());
  client.on("error", (f) => {
    if (!f.id) toast(t("error", { msg: f.message }), "error");
  });
  client.start();
  renderAll();
}

function onWelcome(w) {
  if (!w.agent) {
    toast(t("no_agent_row"), "error");
  }
  S.me = w.agent || { id: w.sub, name: S.session?.agent?.name || w.sub, skills: [], supervisor: w.role === "supervisor" };
  if (w.agent) S.agentState = { status: w.agent.status, capacity: w.agent.capacity, active: w.agent.active };
  // chats still listed as ours but not re-announced by this session were taken away
  for (const chat of S.chats.values()) chat.stale = chat.status === "assigned";
  S.sweepAfterWelcome = true;
  $("view-tabs").hidden = !isSupervisor();
  renderHeader();
}

function renderConnection(state) {
  const el = $("conn-state");
  el.className = `conn-state st-${state}`;
  el.textContent = state === "open" ? t("connected") : state === "connecting" ? t("connecting") : t("reconnecting");
  document.body.classList.toggle("is-offline", state === "reconnecting");
}

// --- queue -------------------------------------------------------------------------------

function onQueue(f) {
  S.queue = f.queue || [];
  if (S.sweepAfterWelcome) {
    // resume_agent sends every assigned chat, then the queue: whatever was not re-sent is gone
    S.sweepAfterWelcome = false;
    for (const chat of S.chats.values()) {
      if (chat.stale) {
        chat.stale = false;
        chat.status = "gone";
      }
    }
    renderChatList();
    if (S.selected) renderConversation();
  }
  const urgent = new Set(S.queue.filter((q) => q.priority === "urgent").map((q) => q.conversation_id));
  const fresh = [...urgent].filter((cid) => !S.prevUrgentQueue.has(cid));
  S.prevUrgentQueue = urgent;
  if (fresh.length) alertSound("urgent");
  renderQueue();
  renderUrgentBanner();
  supervisor.setQueue(S.queue);
}

function renderQueue() {
  const list = $("queue-list");
  $("queue-count").textContent = S.queue.length ? String(S.queue.length) : "";
  if (!S.queue.length) {
    mount(list, h("li", { class: "empty", text: t("no_queue") }));
    return;
  }
  mount(
    list,
    S.queue.map((q) =>
      h(
        "li",
        { class: ["queue-item", `prio-${q.priority}`], dataset: { cid: q.conversation_id } },
        h(
          "div",
          { class: "qi-top" },
          h("span", { class: "qi-name", text: q.user?.name || q.user_id }),
          h("span", {
            class: "qi-wait mono",
            dataset: { since: q.enqueued_at || "" },
            text: q.enqueued_at ? duration((Date.now() - Date.parse(q.enqueued_at)) / 1000) : "",
          }),
        ),
        h(
          "div",
          { class: "qi-sub" },
          h("span", { class: `prio prio-${q.priority}`, text: label("priority", q.priority, S.lang) }),
          h("span", { text: label("topic", q.topic, S.lang) }),
          q.position && h("span", { class: "muted", text: t("position", { n: q.position }) }),
        ),
      ),
    ),
  );
}

// --- chats -------------------------------------------------------------------------------

function newChat(f) {
  return {
    cid: f.conversation_id,
    user: f.user,
    topic: f.topic,
    priority: f.priority,
    alert: f.alert,
    status: "assigned",
    messages: new Map(),
    notes: new Map(),
    pending: new Map(),
    unread: 0,
    userRead: 0,
    typing: false,
    typingTimer: null,
    fresh: false,
    rating: null,
    draft: "",
    mode: "reply",
    readSent: 0,
    stale: false,
    closedBy: null,
  };
}

function onAssigned(f) {
  let chat = S.chats.get(f.conversation_id);
  const isNew = !chat || chat.status !== "assigned";
  if (!chat) {
    chat = newChat(f);
    S.chats.set(chat.cid, chat);
  }
  Object.assign(chat, { user: f.user, topic: f.topic, priority: f.priority, alert: f.alert, status: "assigned", stale: false, closedBy: null });
  for (const m of f.history || []) chat.messages.set(m.seq, m);
  for (const n of f.notes || []) chat.notes.set(n.note_id, n);
  for (const m of f.history || []) if (m.client_msg_id) chat.pending.delete(m.client_msg_id);
  if (isNew && !f.resumed) {
    chat.fresh = true;
    chat.unread = [...chat.messages.values()].filter((m) => m.sender?.role === "user").length || 1;
    const urgent = chat.priority === "urgent";
    alertSound(urgent ? "urgent" : "chat");
    toast(`${urgent ? t("new_urgent") : t("new_chat")}: ${chat.user?.name || chat.user?.id} · ${label("topic", chat.topic, S.lang)}`, urgent ? "urgent" : "info");
  }
  const current = S.chats.get(S.selected);
  if (!current || current.status === "gone") select(chat.cid, { auto: true });
  if (chat.fresh && chat.priority !== "urgent") {
    // the flash fades by itself; an urgent chat stays flagged until the agent opens it
    setTimeout(() => {
      chat.fresh = false;
      renderChatList();
      updateTitle();
    }, 15000);
  }
  renderChatList();
  renderUrgentBanner();
  updateTitle();
  if (S.selected === chat.cid) renderConversation();
}

function onMessage(m) {
  const chat = S.chats.get(m.conversation_id);
  if (!chat) return;
  chat.messages.set(m.seq, m);
  if (m.client_msg_id && chat.pending.delete(m.client_msg_id)) {
    document.querySelector(`[data-pending="${CSS.escape(m.client_msg_id)}"]`)?.remove();
  }
  const fromUser = m.sender?.role === "user";
  if (fromUser) {
    chat.typing = false;
    const watching = S.selected === chat.cid && S.view === "work" && document.visibilityState === "visible";
    if (!watching) {
      chat.unread += 1;
      alertSound("message");
    }
  }
  if (S.selected === chat.cid) {
    insertItem(messageEl(chat, m), m.seq);
    renderTyping();
    markRead(chat);
  }
  renderChatList();
  updateTitle();
}

function onNote(n) {
  const chat = S.chats.get(n.conversation_id);
  if (!chat) return;
  chat.notes.set(n.note_id, n);
  if (S.selected === chat.cid) renderTranscript(true);
}

function onTyping(f) {
  const chat = S.chats.get(f.conversation_id);
  if (!chat || f.from?.role !== "user") return;
  chat.typing = Boolean(f.state);
  clearTimeout(chat.typingTimer);
  if (chat.typing) {
    chat.typingTimer = setTimeout(() => {
      chat.typing = false;
      renderTyping();
      renderChatList();
    }, 6000);
  }
  renderTyping();
  renderChatList();
}

function onRead(f) {
  const chat = S.chats.get(f.conversation_id);
  if (!chat || f.by?.role !== "user") return;
  chat.userRead = Math.max(chat.userRead, f.seq || 0);
  if (S.selected === chat.cid) refreshReceipts(chat);
}

function onClosed(f) {
  const chat = S.chats.get(f.conversation_id);
  if (!chat) return;
  chat.status = "closed";
  chat.closedBy = f.by;
  chat.typing = false;
  if (f.by === "user") toast(`${chat.user?.name || ""}: ${t("closed_by_user")}`, "info");
  renderChatList();
  if (S.selected === chat.cid) renderConversation();
  updateTitle();
}

function onTransferred(f) {
  const chat = S.chats.get(f.conversation_id);
  if (!chat) return;
  chat.status = "gone";
  toast(`${chat.user?.name || ""}: ${t("transferred_away")}`, "info");
  removeChat(chat.cid);
}

function onRated(f) {
  const chat = S.chats.get(f.conversation_id);
  const stars = "★".repeat(f.score) + "☆".repeat(5 - f.score);
  toast(`${chat?.user?.name || ""} ${t("rated", { stars })}`, "info");
  if (!chat) return;
  chat.rating = { score: f.score, comment: f.comment };
  if (S.selected === chat.cid) renderConversation();
  renderChatList();
}

function removeChat(cid) {
  S.chats.delete(cid);
  S.client?.forget(cid);
  if (S.selected === cid) {
    const next = [...S.chats.values()].find((c) => c.status === "assigned");
    S.selected = null;
    if (next) select(next.cid);
    else renderConversation();
  }
  renderChatList();
  renderUrgentBanner();
  updateTitle();
}

function orderedChats() {
  const rank = { urgent: 0, high: 1, normal: 2 };
  const lastTs = (c) => {
    let max = 0;
    for (const m of c.messages.values()) max = Math.max(max, m.seq);
    return max;
  };
  return [...S.chats.values()].sort((a, b) => {
    const openA = a.status === "assigned" ? 0 : 1;
    const openB = b.status === "assigned" ? 0 : 1;
    return openA - openB || (rank[a.priority] ?? 2) - (rank[b.priority] ?? 2) || (b.unread > 0) - (a.unread > 0) || lastTs(b) - lastTs(a);
  });
}

function lastMessage(chat) {
  let best = null;
  for (const m of chat.messages.values()) if (!best || m.seq > best.seq) best = m;
  return best;
}

function renderChatList() {
  const list = $("chat-list");
  const chats = orderedChats();
  const open = chats.filter((c) => c.status === "assigned").length;
  $("chats-count").textContent = open ? String(open) : "";
  if (!chats.length) {
    mount(list, h("li", { class: "empty", text: t("no_chats") }));
    return;
  }
  mount(
    list,
    chats.map((chat) => {
      const last = lastMessage(chat);
      const preview = chat.typing ? t("typing_short") : last ? `${last.sender?.role === "agent" ? `${t("you")}: ` : ""}${last.text}` : "";
      return h(
        "li",
        {},
        h(
          "button",
          {
            type: "button",
            class: [
              "chat-item",
              S.selected === chat.cid && "selected",
              `prio-${chat.priority}`,
              chat.status !== "assigned" && "ended",
              chat.fresh && (chat.priority === "urgent" ? "flash-urgent" : "flash"),
              chat.typing && "is-typing",
            ],
            dataset: { cid: chat.cid },
            attrs: { "aria-current": S.selected === chat.cid ? "true" : "false" },
            onclick: () => select(chat.cid),
          },
          h("span", { class: "avatar", text: initial(chat.user?.name || chat.user?.id) }),
          h(
            "span",
            { class: "ci-main" },
            h(
              "span",
              { class: "ci-top" },
              h("span", { class: "ci-name", text: chat.user?.name || chat.user?.id }),
              chat.priority !== "normal" && h("span", { class: `prio prio-${chat.priority}`, text: label("priority", chat.priority, S.lang) }),
              last && h("time", { class: "ci-time", text: clock(last.ts) }),
            ),
            h("span", { class: "ci-sub" }, h("span", { class: "ci-topic", text: label("topic", chat.topic, S.lang) }), chat.status !== "assigned" && h("span", { class: "chip conv-closed", text: label("conv", chat.status === "gone" ? "closed" : "resolved", S.lang) })),
            h("span", { class: "ci-preview", text: preview }),
          ),
          chat.unread > 0 && h("span", { class: "unread", text: String(chat.unread), attrs: { "aria-label": `${chat.unread} unread` } }),
        ),
      );
    }),
  );
}

function select(cid, { auto = false } = {}) {
  const prev = S.chats.get(S.selected);
  if (prev) prev.draft = $("reply").value;
  S.selected = cid;
  const chat = S.chats.get(cid);
  if (chat) {
    chat.unread = 0;
    if (!auto) chat.fresh = false;
  }
  stopTyping(prev);
  renderChatList();
  renderConversation();
  renderUrgentBanner();
  updateTitle();
  if (chat) {
    customer.show(chat.user, chat.cid);
    $("reply").value = chat.draft || "";
    if (chat.status === "assigned" && !auto) $("reply").focus();
  } else {
    customer.clear();
  }
}

// --- conversation ----------------------------------------------------------------------

/** What the risk monitor saw, in words: its reason and how many payments, not raw JSON. */
function alertDetails(details) {
  if (typeof details === "string") return details;
  const parts = [];
  if (details.reason) parts.push(details.reason);
  const ids = details.transaction_ids || [];
  if (ids.length) parts.push(t("alert_payments", { n: ids.length }));
  if (details.by) parts.push(t("alert_by", { name: details.by }));
  return parts.join(" · ");
}

function renderConversation() {
  const chat = S.chats.get(S.selected);
  $("empty-state").hidden = Boolean(chat);
  $("conv").hidden = !chat;
  if (!chat) return;
  $("conv-avatar").textContent = initial(chat.user?.name || chat.user?.id);
  $("conv-avatar").className = `avatar prio-${chat.priority}`;
  $("conv-name").textContent = chat.user?.name || chat.user?.id;
  mount(
    $("conv-meta"),
    h("span", { class: "tag", text: label("topic", chat.topic, S.lang) }),
    h("span", { class: `prio prio-${chat.priority}`, text: label("priority", chat.priority, S.lang) }),
    chat.user?.lang && h("span", { class: "tag", text: chat.user.lang === "en" ? "EN" : "中文" }),
    h("span", { class: "muted mono small", text: chat.cid }),
  );
  const alertBox = $("conv-alert");
  if (chat.alert) {
    alertBox.hidden = false;
    const a = chat.alert;
    alertBox.classList.toggle("resolved", Boolean(a.unfrozen));
    mount(
      alertBox,
      h("strong", { text: `⚠ ${t("alert_in_chat")}: ${label("alert", a.alert, S.lang) || ""}` }),
      a.unfrozen
        ? h("span", { class: "tag ok", text: t("alert_unfrozen") })
        : a.severity && h("span", { class: "tag danger", text: label("severity", a.severity, S.lang) }),
      a.details && h("span", { class: "small", text: alertDetails(a.details) }),
    );
  } else {
    alertBox.hidden = true;
  }
  const active = chat.status === "assigned";
  $("btn-transfer").disabled = !active;
  $("btn-resolve").disabled = !active;
  $("composer").hidden = !active;
  const bar = $("closed-bar");
  bar.hidden = active;
  if (!active) {
    const why = chat.status === "gone" ? t("closed_gone") : chat.closedBy === "user" ? t("closed_by_user") : t("closed_by_agent");
    mount(
      bar,
      h("span", { text: why }),
      chat.rating && h("span", { class: "rating", text: t("rated", { stars: "★".repeat(chat.rating.score) + "☆".repeat(5 - chat.rating.score) }) }),
      chat.rating?.comment && h("span", { class: "muted", text: `“${chat.rating.comment}”` }),
      h("button", { type: "button", class: "btn ghost small", text: t("dismiss"), onclick: () => removeChat(chat.cid) }),
    );
  }
  setMode(chat.mode);
  renderTranscript(false);
  renderTyping();
}

/** Transcript order: messages by seq; a note goes after the last message older than it. */
function transcriptItems(chat) {
  const msgs = [...chat.messages.values()].sort((a, b) => a.seq - b.seq);
  const items = msgs.map((m) => ({ sort: m.seq, el: () => messageEl(chat, m) }));
  const notes = [...chat.notes.values()].sort((a, b) => Date.parse(a.ts) - Date.parse(b.ts));
  notes.forEach((n, i) => {
    const ts = Date.parse(n.ts);
    let after = 0;
    for (const m of msgs) if (Date.parse(m.ts) <= ts) after = m.seq;
    items.push({ sort: after + 0.5 + i / 1000, el: () => noteEl(n, after + 0.5 + i / 1000) });
  });
  return items.sort((a, b) => a.sort - b.sort);
}

function renderTranscript(keepScroll) {
  const chat = S.chats.get(S.selected);
  const box = $("transcript");
  if (!chat) return;
  const near = isNearBottom();
  box.replaceChildren();
  for (const item of transcriptItems(chat)) box.appendChild(item.el());
  for (const [cmid, p] of chat.pending) box.appendChild(pendingEl(cmid, p));
  refreshReceipts(chat);
  if (!keepScroll || near) box.scrollTop = box.scrollHeight;
  markRead(chat);
}

function insertItem(el, sort) {
  const box = $("transcript");
  if (box.querySelector(`[data-seq="${sort}"]`)) return;
  const near = isNearBottom();
  el.dataset.sort = sort;
  let before = null;
  for (let node = box.lastElementChild; node; node = node.previousElementSibling) {
    if (node.dataset.pending || Number(node.dataset.sort) > sort) before = node;
    else break;
  }
  box.insertBefore(el, before);
  const chat = S.chats.get(S.selected);
  if (chat) refreshReceipts(chat);
  if (near) box.scrollTop = box.scrollHeight;
}

function isNearBottom() {
  const box = $("transcript");
  return box.scrollHeight - box.scrollTop - box.clientHeight < 120;
}

function messageEl(chat, m) {
  const role = m.sender?.role || "system";
  if (role === "system") {
    return h("div", { class: "msg system", dataset: { seq: m.seq, sort: m.seq } }, h("span", { text: m.text }), h("time", { text: clock(m.ts) }));
  }
  const mine = role === "agent";
  const name = role === "bot" ? t("bot") : m.sender?.id === S.me?.id ? t("you") : m.sender?.name || m.sender?.id;
  const trusted = role === "bot" || role === "agent"; // only these may carry article links
  const bubble = trusted
    ? h("div", { class: "bubble" }, linkifyHelp(m.text, openArticle, (slug) => `📄 ${slug}`))
    : h("div", { class: "bubble", text: m.text });
  return h(
    "div",
    { class: ["msg", role, mine && "mine"], dataset: { seq: m.seq, sort: m.seq, role } },
    h("div", { class: "msg-name", text: name }),
    bubble,
    h("div", { class: "msg-meta" }, h("time", { text: clock(m.ts), dateTime: m.ts }), mine && h("span", { class: "receipt" })),
  );
}

function noteEl(n, sort) {
  return h(
    "div",
    { class: "note", dataset: { note: n.note_id, sort } },
    h("div", { class: "note-head" }, h("span", { class: "note-badge", text: `🔒 ${t("internal")}` }), h("span", { text: n.agent?.name || "" }), h("time", { text: clock(n.ts) })),
    h("div", { class: "note-text", text: n.text }),
  );
}

function pendingEl(cmid, p) {
  const el = h(
    "div",
    { class: ["msg", "agent", "mine", "pending", p.failed && "failed"], dataset: { pending: cmid } },
    h("div", { class: "msg-name", text: t("you") }),
    h("div", { class: "bubble", text: p.text }),
    h("div", { class: "msg-meta" }, h("span", { text: p.failed ? t("failed") : t("sending") })),
  );
  if (p.failed) el.addEventListener("click", () => retry(cmid));
  return el;
}

function refreshReceipts(chat) {
  for (const el of $("transcript").querySelectorAll(".msg.mine[data-seq]")) {
    const read = Number(el.dataset.seq) <= chat.userRead;
    el.classList.toggle("is-read", read);
    const r = el.querySelector(".receipt");
    if (r) {
      r.textContent = read ? "✓✓" : "✓";
      r.title = read ? t("read") : t("delivered");
    }
  }
}

function renderTyping() {
  const chat = S.chats.get(S.selected);
  const show = Boolean(chat?.typing && chat.status === "assigned");
  $("typing").hidden = !show;
  if (show) $("typing-text").textContent = t("typing", { name: chat.user?.name || chat.user?.id });
}

function markRead(chat) {
  if (!chat || chat.status !== "assigned" || S.selected !== chat.cid) return;
  if (document.visibilityState !== "visible" || S.view !== "work") return;
  let max = 0;
  for (const m of chat.messages.values()) if (m.sender?.role !== "agent" && m.seq > max) max = m.seq;
  if (max <= chat.readSent) return;
  chat.readSent = max;
  S.client.send({ type: "read", conversation_id: chat.cid, seq: max }, { queue: false });
}

// --- composing -------------------------------------------------------------------------

function setMode(mode) {
  const chat = S.chats.get(S.selected);
  if (chat) chat.mode = mode;
  const form = $("composer");
  form.dataset.mode = mode;
  for (const b of form.querySelectorAll(".composer-tabs button")) b.setAttribute("aria-selected", b.dataset.mode === mode ? "true" : "false");
  $("reply").placeholder = mode === "note" ? t("note_ph") : t("reply_ph");
  $("btn-send").textContent = mode === "note" ? t("add_note") : t("send");
}

async function submitComposer(ev) {
  ev?.preventDefault();
  const chat = S.chats.get(S.selected);
  const input = $("reply");
  const text = input.value.trim();
  if (!chat || !text || chat.status !== "assigned") return;
  input.value = "";
  chat.draft = "";
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
  const cmid = clientMsgId();
  const p = { text, failed: false };
  chat.pending.set(cmid, p);
  $("transcript").appendChild(pendingEl(cmid, p));
  $("transcript").scrollTop = $("transcript").scrollHeight;
  deliver(chat, cmid);
}

function deliver(chat, cmid) {
  const p = chat.pending.get(cmid);
  S.client
    .request({ type: "chat.send", conversation_id: chat.cid, client_msg_id: cmid, text: p.text }, { retry: true, timeout: 120000 })
    .catch((e) => {
      if (!chat.pending.has(cmid)) return;
      p.failed = true;
      document.querySelector(`[data-pending="${CSS.escape(cmid)}"]`)?.replaceWith(pendingEl(cmid, p));
      toast(t("error", { msg: e.message }), "error");
    });
}

function retry(cmid) {
  const chat = S.chats.get(S.selected);
  const p = chat?.pending.get(cmid);
  if (!p) return;
  p.failed = false;
  document.querySelector(`[data-pending="${CSS.escape(cmid)}"]`)?.replaceWith(pendingEl(cmid, p));
  deliver(chat, cmid);
}

function onReplyInput() {
  const chat = S.chats.get(S.selected);
  if (!chat || chat.mode !== "reply" || chat.status !== "assigned" || !$("reply").value) return;
  const now = Date.now();
  if (now - S.typingSentAt > TYPING_EVERY_MS) {
    S.typingSentAt = now;
    S.client.send({ type: "typing", conversation_id: chat.cid, state: true }, { queue: false });
  }
  clearTimeout(S.typingStop);
  S.typingStop = setTimeout(() => stopTyping(chat), TYPING_IDLE_MS);
}

function stopTyping(chat) {
  clearTimeout(S.typingStop);
  if (!S.typingSentAt || !chat) return;
  S.typingSentAt = 0;
  if (chat.status === "assigned") S.client?.send({ type: "typing", conversation_id: chat.cid, state: false }, { queue: false });
}

// --- actions ---------------------------------------------------------------------------

async function resolveChat() {
  const chat = S.chats.get(S.selected);
  if (!chat || chat.status !== "assigned") return;
  $("btn-resolve").disabled = true;
  try {
    await S.client.request({ type: "chat.resolve", conversation_id: chat.cid });
  } catch (e) {
    toast(t("error", { msg: e.message }), "error");
    $("btn-resolve").disabled = false;
  }
}

async function transferDialog() {
  const chat = S.chats.get(S.selected);
  if (!chat || chat.status !== "assigned") return;
  let agents = [];
  try {
    agents = (await api("/api/agents", { token: token() })).agents || [];
  } catch {
    agents = [];
  }
  const others = agents.filter((a) => a.id !== S.me?.id);
  let choice = null;
  const go = h("button", { class: "btn primary", type: "button", id: "transfer-go", text: t("transfer_go"), disabled: true });
  const error = h("p", { class: "form-error", hidden: true });
  const pick = (value) => {
    choice = value;
    go.disabled = !value;
  };
  const agentList = others.length
    ? h(
        "div",
        { class: "pick-list", role: "radiogroup" },
        others.map((a) => {
          const available = a.status === "online" && a.active < a.capacity;
          const input = h("input", { type: "radio", name: "target", value: `agent:${a.id}`, disabled: !available, onchange: () => pick({ to_agent: a.id }) });
          return h(
            "label",
            { class: ["pick", !available && "disabled"], dataset: { agent: a.id } },
            input,
            h("span", { class: `dot st-${a.status}` }),
            h("span", { class: "pick-name", text: a.name }),
            h("span", { class: "muted small", text: `${label("agentStatus", a.status, S.lang)} · ${a.active}/${a.capacity}${a.active >= a.capacity ? ` ${t("full")}` : ""}` }),
            h("span", { class: "muted small pick-skills", text: (a.skills || []).map((s) => label("topic", s, S.lang)).join(" · ") }),
          );
        }),
      )
    : h("p", { class: "muted", text: t("transfer_none") });
  const topicSelect = h(
    "select",
    { id: "transfer-topic", onchange: (ev) => { if (ev.target.value) { for (const r of document.querySelectorAll("input[name=target]")) r.checked = false; pick({ to_topic: ev.target.value }); } } },
    h("option", { value: "", text: "—" }),
    TOPICS.map((tp) => h("option", { value: tp, text: label("topic", tp, S.lang) })),
  );
  go.addEventListener("click", async () => {
    go.disabled = true;
    try {
      await S.client.request({ type: "chat.transfer", conversation_id: chat.cid, ...choice });
      closeDialog();
      toast(t("transfer_done"), "info");
    } catch (e) {
      error.hidden = false;
      error.textContent = e.message;
      go.disabled = false;
    }
  });
  openDialog(
    t("transfer_title"),
    [h("h3", { class: "dlg-sub", text: t("transfer_to_agent") }), agentList, h("h3", { class: "dlg-sub", text: t("transfer_to_topic") }), topicSelect, error],
    [h("button", { class: "btn ghost", type: "submit", value: "cancel", text: t("cancel") }), go],
  );
}

function unfreezeDialog(userId) {
  const reason = h("textarea", { id: "unfreeze-reason", rows: 3, maxLength: 500, required: true });
  const error = h("p", { class: "form-error", hidden: true });
  const go = h("button", { class: "btn danger", type: "button", id: "unfreeze-go", text: t("unfreeze") });
  go.addEventListener("click", async () => {
    if (!reason.value.trim()) {
      reason.focus();
      return;
    }
    go.disabled = true;
    try {
      await api(`/api/accounts/${encodeURIComponent(userId)}/unfreeze`, { token: token(), method: "POST", body: { reason: reason.value.trim() } });
      closeDialog();
      toast(t("unfreeze_done"), "info");
      customer.refresh();
    } catch (e) {
      error.hidden = false;
      error.textContent = e.message;
      go.disabled = false;
    }
  });
  openDialog(t("unfreeze_title"), [h("label", { class: "field" }, h("span", { text: t("unfreeze_reason") }), reason), error], [h("button", { class: "btn ghost", type: "submit", value: "cancel", text: t("cancel") }), go]);
  reason.focus();
}

async function conversationDialog(cid) {
  openDialog(t("conversation"), [h("p", { class: "muted", text: "…" })], []);
  try {
    const conv = await api(`/api/conversations/${encodeURIComponent(cid)}`, { token: token() });
    const fake = { cid, messages: new Map(), notes: new Map() };
    for (const m of conv.messages || []) fake.messages.set(m.seq, m);
    for (const n of conv.notes || []) fake.notes.set(n.note_id, n);
    const box = h("div", { class: "transcript readonly" }, transcriptItems(fake).map((i) => i.el()));
    mount($("dlg-body"), h("p", { class: "muted small", text: `${label("topic", conv.topic, S.lang)} · ${label("conv", conv.status, S.lang)} · ${dateTime(conv.created_at, S.lang)}` }), box);
  } catch (e) {
    mount($("dlg-body"), h("p", { class: "form-error", text: e.message }));
  }
}

async function openArticle(slug, lang) {
  openDialog(t("article"), [h("p", { class: "muted", text: "…" })], []);
  try {
    const a = await api(`/api/help/articles/${encodeURIComponent(slug)}?lang=${lang || S.lang}`);
    mount($("dlg-body"), h("article", { class: "article" }, h("h1", { text: a.title }), renderMarkdown(a.body, openArticle)));
  } catch (e) {
    mount($("dlg-body"), h("p", { class: "form-error", text: e.message }));
  }
}

// --- canned answers (help-center articles) -----------------------------------------------

async function cannedDialog() {
  const chat = S.chats.get(S.selected);
  if (!chat || chat.status !== "assigned") return;
  const lang = chat.user?.lang === "en" ? "en" : "zh";
  let articles = [];
  try {
    articles = await api(`/api/help/articles?lang=${lang}`);
  } catch {
    articles = [];
  }
  const bySlug = new Map(articles.map((a) => [a.slug, a]));
  const search = h("input", { type: "search", id: "canned-search", placeholder: t("canned_search"), autocomplete: "off" });
  const list = h("ul", { class: "canned-list", id: "canned-list", role: "listbox" });
  let shown = articles;
  let active = 0;
  const paint = () => {
    if (!shown.length) {
      mount(list, h("li", { class: "muted", text: t("canned_empty") }));
      return;
    }
    mount(
      list,
      shown.map((a, i) =>
        h(
          "li",
          {
            class: ["canned", i === active && "active"],
            role: "option",
            dataset: { slug: a.slug },
            attrs: { "aria-selected": i === active ? "true" : "false" },
            onclick: () => insert(a),
            onmousemove: () => {
              if (active !== i) {
                active = i;
                paint();
              }
            },
          },
          h("div", { class: "canned-title", text: a.title }),
          a.summary && h("div", { class: "canned-summary", text: a.summary }),
        ),
      ),
    );
    list.querySelector(".active")?.scrollIntoView({ block: "nearest" });
  };
  const insert = (a) => {
    const link = `/widget/help/${a.slug}?lang=${lang}`;
    const summary = a.summary || bySlug.get(a.slug)?.summary || "";
    const text = [a.title, summary, `${TEXT.details_link[lang]}${link}`].filter(Boolean).join("\n");
    const input = $("reply");
    const start = input.selectionStart ?? input.value.length;
    const before = input.value.slice(0, start);
    input.value = `${before}${before && !before.endsWith("\n") ? "\n" : ""}${text}${input.value.slice(input.selectionEnd ?? start)}`;
    setMode("reply");
    closeDialog();
    input.focus();
  };
  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    const q = search.value.trim();
    timer = setTimeout(async () => {
      if (!q) shown = articles;
      else {
        try {
          const query = `/api/help/search?q=${encodeURIComponent(q)}&limit=10`;
          let hits = await api(`${query}&lang=${lang}`);
          // typed in the other language ("password" in a Chinese chat): search both, and
          // still insert the article in the chat's language
          if (!hits.length) hits = await api(query);
          const seen = new Set();
          shown = hits
            .filter((hit) => !seen.has(hit.slug) && seen.add(hit.slug))
            .map((hit) => bySlug.get(hit.slug) || hit);
        } catch {
          const ql = q.toLowerCase();
          shown = articles.filter((a) => `${a.title} ${a.summary}`.toLowerCase().includes(ql));
        }
      }
      active = 0;
      paint();
    }, 150);
  });
  search.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      active = Math.max(0, Math.min(shown.length - 1, active + (ev.key === "ArrowDown" ? 1 : -1)));
      paint();
    } else if (ev.key === "Enter") {
      ev.preventDefault();
      if (shown[active]) insert(shown[active]);
    }
  });
  openDialog(t("canned"), [search, list], []);
  paint();
  search.focus();
}

// --- dialogs, toasts, alerts -------------------------------------------------------------

function openDialog(title, body, foot) {
  const dlg = $("dlg");
  $("dlg-title").textContent = title;
  mount($("dlg-body"), body);
  mount($("dlg-foot"), foot);
  $("dlg-foot").hidden = !foot.length;
  if (!dlg.open) dlg.showModal();
}

function closeDialog() {
  const dlg = $("dlg");
  if (dlg.open) dlg.close();
}

function toast(text, kind = "info") {
  const el = h("div", { class: ["toast", kind], text });
  $("toasts").appendChild(el);
  setTimeout(() => el.remove(), kind === "urgent" ? 8000 : 4000);
}

function alertSound(kind) {
  if (S.sound) beep(kind);
  if (kind === "urgent") {
    document.body.classList.remove("urgent-flash");
    void document.body.offsetWidth; // restart the animation
    document.body.classList.add("urgent-flash");
  }
}

function renderUrgentBanner() {
  const banner = $("urgent-banner");
  const mine = [...S.chats.values()].filter((c) => c.priority === "urgent" && c.status === "assigned" && c.fresh);
  const queued = S.queue.filter((q) => q.priority === "urgent").length;
  if (!mine.length && !queued) {
    banner.hidden = true;
    return;
  }
  banner.hidden = false;
  const parts = mine.map((c) =>
    h(
      "span",
      { class: "ub-item" },
      t("urgent_banner", { name: c.user?.name || c.user?.id, topic: label("topic", c.topic, S.lang) }),
      h("button", { type: "button", class: "btn small light", text: t("open"), onclick: () => select(c.cid) }),
    ),
  );
  if (queued) parts.push(h("span", { class: "ub-item", text: t("urgent_queue", { n: queued }) }));
  mount(banner, h("span", { class: "ub-icon", text: "⚠", attrs: { "aria-hidden": "true" } }), parts);
}

function updateTitle() {
  const base = t("app_title");
  let n = 0;
  let urgent = false;
  for (const c of S.chats.values()) {
    n += c.unread || (c.fresh ? 1 : 0);
    if (c.fresh && c.priority === "urgent") urgent = true;
  }
  clearInterval(S.titleBlink);
  const plain = n ? `(${n}) ${base}` : base;
  document.title = plain;
  if (urgent) {
    let on = false;
    S.titleBlink = setInterval(() => {
      on = !on;
      document.title = on ? `【${t("new_urgent")}】${plain}` : plain;
    }, 1000);
  }
}

// --- header ----------------------------------------------------------------------------

function renderHeader() {
  const st = S.agentState;
  for (const b of $("status-switch").querySelectorAll("button")) {
    const on = b.dataset.status === st.status;
    b.classList.toggle("on", on);
    b.setAttribute("aria-checked", on ? "true" : "false");
    b.querySelector("[data-label]").textContent = label("agentStatus", b.dataset.status, S.lang);
  }
  const load = $("load");
  load.textContent = t("capacity", { active: st.active ?? 0, capacity: st.capacity ?? 0 });
  load.classList.toggle("full", st.capacity > 0 && st.active >= st.capacity);
  $("me-name").textContent = S.me?.name || S.session?.agent?.name || "";
  $("me-avatar").textContent = initial(S.me?.name || S.session?.agent?.name);
  $("btn-sound").textContent = S.sound ? "🔔" : "🔕";
  $("btn-sound").setAttribute("aria-pressed", S.sound ? "true" : "false");
  $("btn-sound").title = S.sound ? t("sound_on") : t("sound_off");
  $("btn-sound").setAttribute("aria-label", $("btn-sound").title);
  for (const b of $("view-tabs").querySelectorAll("button")) b.setAttribute("aria-selected", b.dataset.view === S.view ? "true" : "false");
}

async function setStatus(status) {
  try {
    const state = await S.client.request({ type: "agent.status", status });
    S.agentState = { status: state.status, capacity: state.capacity, active: state.active };
    renderHeader();
  } catch (e) {
    toast(t("error", { msg: e.message }), "error");
  }
}

function setView(view) {
  if (view === "supervisor" && !isSupervisor()) view = "work";
  S.view = view;
  $("work-view").hidden = view !== "work";
  $("supervisor-view").hidden = view !== "supervisor";
  if (view === "supervisor") supervisor.show();
  else {
    supervisor.hide();
    markRead(S.chats.get(S.selected));
  }
  renderHeader();
}

function applyLang() {
  document.documentElement.lang = S.lang === "en" ? "en" : "zh-CN";
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const b of document.querySelectorAll("[data-lang-toggle]")) b.textContent = S.lang === "en" ? "中文" : "English";
  if (!$("app-view").hidden) renderAll();
  updateTitle();
}

function renderAll() {
  renderHeader();
  renderConnection(S.client?.state || "connecting");
  renderQueue();
  renderChatList();
  renderConversation();
  renderUrgentBanner();
  customer.render();
  if (S.view === "supervisor") supervisor.render();
}

// --- live clocks -------------------------------------------------------------------------

setInterval(() => {
  const now = Date.now();
  for (const el of document.querySelectorAll("[data-since]")) {
    const since = Date.parse(el.dataset.since);
    if (Number.isFinite(since)) el.textContent = duration((now - since) / 1000);
  }
}, 1000);

// --- wiring ------------------------------------------------------------------------------

function wire() {
  $("login-form").addEventListener("submit", login);
  $("btn-logout").addEventListener("click", logout);
  for (const b of document.querySelectorAll("[data-lang-toggle]")) {
    b.addEventListener("click", () => {
      S.lang = S.lang === "en" ? "zh" : "en";
      localStorage.setItem(LANG_KEY, S.lang);
      applyLang();
    });
  }
  $("btn-sound").addEventListener("click", () => {
    S.sound = !S.sound;
    localStorage.setItem(SOUND_KEY, S.sound ? "on" : "off");
    unlock();
    if (S.sound) beep("message");
    renderHeader();
  });
  for (const b of $("status-switch").querySelectorAll("button")) {
    b.addEventListener("click", () => {
      unlock();
      setStatus(b.dataset.status);
    });
  }
  for (const b of $("view-tabs").querySelectorAll("button")) b.addEventListener("click", () => setView(b.dataset.view));
  for (const b of $("composer").querySelectorAll(".composer-tabs button")) b.addEventListener("click", () => {
    setMode(b.dataset.mode);
    $("reply").focus();
  });
  $("composer").addEventListener("submit", submitComposer);
  const reply = $("reply");
  reply.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
      ev.preventDefault();
      submitComposer();
    }
  });
  reply.addEventListener("input", onReplyInput);
  $("btn-canned").addEventListener("click", cannedDialog);
  $("btn-transfer").addEventListener("click", transferDialog);
  $("btn-resolve").addEventListener("click", resolveChat);
  document.addEventListener("keydown", (ev) => {
    if ($("app-view").hidden || $("dlg").open) return;
    if ((ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === "k") {
      ev.preventDefault();
      cannedDialog();
    } else if (ev.altKey && (ev.key === "ArrowDown" || ev.key === "ArrowUp")) {
      ev.preventDefault();
      const list = orderedChats();
      if (!list.length) return;
      const i = list.findIndex((c) => c.cid === S.selected);
      const next = list[(i + (ev.key === "ArrowDown" ? 1 : list.length - 1)) % list.length];
      select(next.cid);
    } else if (ev.altKey && ev.key.toLowerCase() === "n") {
      ev.preventDefault();
      const chat = S.chats.get(S.selected);
      if (chat) setMode(chat.mode === "note" ? "reply" : "note");
      reply.focus();
    }
  });
  document.addEventListener("visibilitychange", () => {
    const chat = S.chats.get(S.selected);
    if (chat && document.visibilityState === "visible") {
      chat.unread = 0;
      renderChatList();
      updateTitle();
      markRead(chat);
    }
  });
  // after a reload there was no login click: the first gesture unlocks sound
  for (const type of ["pointerdown", "keydown"]) document.addEventListener(type, unlock, { once: true, capture: true });
  document.body.addEventListener("animationend", (ev) => {
    if (ev.animationName === "urgent-flash") document.body.classList.remove("urgent-flash");
  });
}

wire();
applyLang();
if (S.session?.token) start();
else showLogin();
