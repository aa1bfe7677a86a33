// The supporthub WebSocket client: one object per signed-in session, for browsers (the
// widget and the console import it from the hub) and Node (with any WebSocket class).
//
// What it promises to the code that uses it:
// - `hello` is the first frame, with `resume` and whatever fields `opts.hello` adds;
//   nothing else is sent before `welcome`.
// - After a drop it reconnects by itself (exponential backoff with jitter) and resumes
//   with {notifications_after, conversations: {id: last_seq}}, each number the highest seq
//   received *without a gap*, so a replay can only fill holes, never skip one.
// - Each `message` and `notification` is emitted once, even when it arrives twice (a
//   replay racing a live push, a re-sent `chat.send`): by seq per stream and by id.
// - `chat.send` goes through an outbox kept in storage (localStorage in a browser) until
//   its `ack`: it survives reconnects and reloads, and its `client_msg_id` makes the hub
//   store it once however often it is sent.
// - `request()` matches the answer by `id`; `retry` requests are sent again after a
//   reconnect.

import { CODECS, decodeFrame } from "./codec.js";
import { defaultStorage, loadJson, saveJson } from "./storage.js";

/** @typedef {import("./index.js").ClientOptions} ClientOptions */

const OUTBOX_LIMIT = 200;
const SEEN_LIMIT = 2000; // per stream; seqs at or below the watermark are forgotten
const IDS_LIMIT = 5000; // message and notification ids remembered for dedupe
/** Errors after which a message will never be accepted as it is: it leaves the outbox. */
const FINAL_ERRORS = new Set(["bad_frame", "forbidden", "not_found", "invalid", "conflict", "unauthorized"]);

/** Per-stream duplicate filter with a gap-free watermark. */
export class SeqTracker {
  /** @param {number} [watermark] */
  constructor(watermark = 0) {
    this.watermark = watermark;
    /** seqs received above the watermark (after a gap) */
    this.ahead = new Set();
  }

  /** True the first time `seq` is seen. */
  accept(seq) {
    if (!Number.isInteger(seq) || seq <= this.watermark || this.ahead.has(seq)) return false;
    this.ahead.add(seq);
    while (this.ahead.has(this.watermark + 1)) {
      this.watermark += 1;
      this.ahead.delete(this.watermark);
    }
    if (this.ahead.size > SEEN_LIMIT) {
      // a hole that never fills: give up on it rather than grow without bound
      const lowest = Math.min(...this.ahead);
      this.watermark = lowest;
      this.ahead.delete(lowest);
    }
    return true;
  }

  /** True when seqs above the watermark arrived but one below them has not. */
  get hasGap() {
    return this.ahead.size > 0;
  }
}

/** A bounded set of ids, oldest forgotten first. */
class RecentIds {
  constructor(limit = IDS_LIMIT) {
    this.limit = limit;
    this.ids = new Set();
  }

  /** True the first time `id` is seen (an absent id is always new). */
  add(id) {
    if (id == null) return true;
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.limit) this.ids.delete(this.ids.values().next().value);
    return true;
  }
}

export class HubError extends Error {
  /**
   * @param {string} code  the hub's error code, or `timeout`, `disconnected`, `stopped`, `http`
   * @param {string} [message]
   * @param {object|null} [frame]  the whole `error` frame (or HTTP error body), with any extension fields
   */
  constructor(code, message, frame = null) {
    super(message || code);
    this.name = "HubError";
    this.code = code;
    this.frame = frame;
  }
}

function defaultUrl() {
  const loc = globalThis.location;
  if (!loc) throw new Error("HubClient: opts.url is required outside a browser page");
  const proto = loc.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${loc.host}/ws`;
}

/** The hub's HTTP base for a WebSocket URL: ws://host:port/ws -> http://host:port. */
export function httpBaseOf(wsUrl) {
  const u = new URL(wsUrl);
  u.protocol = u.protocol === "wss:" ? "https:" : "http:";
  u.pathname = u.pathname.replace(/\/ws\/?$/, "") || "/";
  u.search = "";
  u.hash = "";
  return u.toString().replace(/\/$/, "");
}

export class HubClient {
  /** @param {ClientOptions} opts */
  constructor(opts) {
    this.opts = opts;
    this.url = opts.url || defaultUrl();
    this.codec = CODECS[opts.codec || "json"];
    if (!this.codec) throw new Error(`HubClient: unknown codec ${opts.codec}`);
    this.WebSocket = opts.WebSocket || globalThis.WebSocket;
    if (!this.WebSocket) throw new Error("HubClient: no WebSocket: pass opts.WebSocket");
    this.storage = opts.storage || defaultStorage();
    this.storageKey = opts.storageKey || "supporthub.client";
    this.ws = null;
    /** idle | connecting | open | reconnecting | stopped | unauthorized */
    this.state = "idle";
    this.welcome = null;
    this.attempt = 0;
    this.listeners = new Map();
    this.pending = new Map(); // id -> entry
    this.outbox = []; // fire-and-forget frames waiting for the connection (memory only)
    this.nextId = 1;
    this.seenIds = new RecentIds();
    const cursors = opts.persistCursors ? loadJson(this.storage, this._key("cursors"), {}) : {};
    const notifAfter = opts.notificationsAfter ?? cursors.notifications_after ?? null;
    this.notifications = notifAfter == null ? null : new SeqTracker(notifAfter);
    this.conversations = new Map();
    for (const [cid, seq] of Object.entries({ ...(cursors.conversations || {}), ...(opts.conversations || {}) })) {
      this.conversations.set(cid, new SeqTracker(seq));
    }
    this._timer = null;
    this._pingTimer = null;
    this._pongDeadline = null;
    this._refreshTimer = null;
    this._sessionExp = 0;
    this._onOnline = () => this._reconnectNow();
    this._onOffline = () => this._drop("offline");
    this._restoreOutbox();
  }

  _key(what) {
    return `${this.storageKey}.${what}`;
  }

  // --- events --------------------------------------------------------------------------

  /**
   * Listen for a frame type, "*" for every frame, "state" for connection states, or the
   * client's own events (`outbox.sent`, `outbox.failed`, `gap`). Returns the unsubscriber.
   */
  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.listeners.get(type)?.delete(fn);
  }

  /** The next frame of `type` (optionally matching `pred`), as a promise. */
  once(type, pred = () => true, timeout = 15000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new HubError("timeout", `no ${type} in time`));
      }, timeout);
      const off = this.on(type, (frame) => {
        if (!pred(frame)) return;
        clearTimeout(timer);
        off();
        resolve(frame);
      });
    });
  }

  /**
   * Route every frame to `handlers[frame.type]` (a table of frame type -> function);
   * types the table does not name are ignored.
   */
  dispatch(handlers) {
    return this.on("*", (frame) => {
      if (Object.hasOwn(handlers, frame.type)) handlers[frame.type](frame);
    });
  }

  _emit(type, payload) {
    const keys = type === "state" || type.startsWith("outbox.") || type === "gap" ? [type] : [type, "*"];
    for (const key of keys) {
      for (const fn of [...(this.listeners.get(key) || [])]) {
        try {
          fn(payload);
        } catch (err) {
          console.error("listener for", type, "failed", err);
        }
      }
    }
  }

  _setState(state, detail) {
    if (this.state === state && !detail) return;
    this.state = state;
    this._emit("state", { state, detail });
  }

  // --- lifecycle -----------------------------------------------------------------------

  start() {
    if (this.state !== "idle" && this.state !== "stopped") return;
    this.state = "idle";
    if (this.opts.watchNetwork !== false && typeof globalThis.addEventListener === "function") {
      globalThis.addEventListener("online", this._onOnline);
      globalThis.addEventListener("offline", this._onOffline);
    }
    this._connect();
  }

  /** Close for good (what is in the outbox stays in storage for the next client). */
  stop() {
    this._setState("stopped");
    if (typeof globalThis.removeEventListener === "function") {
      globalThis.removeEventListener("online", this._onOnline);
      globalThis.removeEventListener("offline", this._onOffline);
    }
    clearTimeout(this._timer);
    this._stopHeartbeat();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      try {
        ws.close(1000, "bye");
      } catch {
        /* not open yet */
      }
    }
    this._failPending(new HubError("stopped", "client stopped"), true);
  }

  get connected() {
    return this.state === "open";
  }

  async _token() {
    const t = this.opts.token;
    return typeof t === "function" ? await t() : t;
  }

  async _helloFields() {
    const h = this.opts.hello;
    const fields = typeof h === "function" ? await h() : h;
    return fields && typeof fields === "object" ? fields : {};
  }

  async _connect() {
    clearTimeout(this._timer);
    if (this.state === "stopped" || this.state === "unauthorized") return;
    this._setState(this.attempt === 0 && !this.welcome ? "connecting" : "reconnecting");
    let token;
    let extra;
    try {
      token = await this._token();
      extra = await this._helloFields();
    } catch {
      this._scheduleReconnect();
      return;
    }
    if (this.state === "stopped" || this.state === "unauthorized") return;
    let ws;
    try {
      ws = new this.WebSocket(this.url, [this.codec.protocol]);
      ws.binaryType = "arraybuffer";
    } catch {
      this._scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this._rawSend({ ...extra, type: "hello", token, resume: this.resumeState() });
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      let frame;
      try {
        frame = decodeFrame(ev.data);
      } catch {
        return; // not a frame of ours: ignore it
      }
      this._receive(frame);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this._closed(ev.code, ev.reason);
    };
    ws.onerror = () => {}; // onclose follows
  }

  /** What to ask the server to replay after (re)connecting. */
  resumeState() {
    const conversations = {};
    for (const [cid, tracker] of this.conversations) conversations[cid] = tracker.watermark;
    const resume = { conversations };
    if (this.notifications) resume.notifications_after = this.notifications.watermark;
    return resume;
  }

  _closed(code, reason) {
    this._stopHeartbeat();
    this._failPending(new HubError("disconnected", "connection lost"), false);
    if (this.state === "stopped") return;
    if (code === 4001) {
      this._setState("unauthorized", reason);
      // the page may fetch a new token; it calls restart() when it has one
      if (this.opts.onUnauthorized) this.opts.onUnauthorized(reason);
      return;
    }
    this._scheduleReconnect(code === 1008 || code === 1009 ? 10 : 0);
  }

  /** Start again after an `unauthorized` stop (a fresh token is available). */
  restart() {
    this.attempt = 0;
    this.state = "reconnecting";
    this._connect();
  }

  /** The delay before reconnect attempt `n` (0-based): exponential, capped, jittered. */
  backoff(n) {
    const base = this.opts.backoffBase ?? 400;
    const max = this.opts.backoffMax ?? 15000;
    const delay = Math.min(max, base * 2 ** Math.min(n, 16));
    const random = this.opts.random ?? Math.random;
    return delay / 2 + random() * (delay / 2);
  }

  _scheduleReconnect(extraAttempts = 0) {
    this._setState("reconnecting");
    const n = this.attempt + extraAttempts;
    this.attempt += 1;
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this._connect(), this.backoff(n));
  }

  _reconnectNow() {
    if (this.state === "stopped" || this.state === "unauthorized") return;
    if (this.ws && this.ws.readyState <= 1) return;
    this.attempt = 0;
    this._connect();
  }

  /** Drop the socket now (the network went away, or it stopped answering pings). */
  _drop(why) {
    if (!this.ws) return;
    const ws = this.ws;
    this.ws = null;
    try {
      ws.close(4000, why);
    } catch {
      /* already closing */
    }
    this._closed(1006, why);
  }

  // --- heartbeat -----------------------------------------------------------------------

  _startHeartbeat() {
    this._stopHeartbeat();
    const every = this.opts.pingInterval ?? 20000;
    this._pingTimer = setInterval(() => {
      if (!this.connected) return;
      this._rawSend({ type: "ping", id: "hb" });
      clearTimeout(this._pongDeadline);
      this._pongDeadline = setTimeout(() => this._drop("no pong"), this.opts.pongTimeout ?? 10000);
    }, every);
  }

  _stopHeartbeat() {
    clearInterval(this._pingTimer);
    clearTimeout(this._pongDeadline);
    clearTimeout(this._refreshTimer);
  }

  // --- the session's lifetime ----------------------------------------------------------

  /** Hand in a fresh token (`auth.refresh`) `refreshBefore` ms before the session's `exp`. */
  _scheduleRefresh(exp) {
    clearTimeout(this._refreshTimer);
    const before = this.opts.refreshBefore ?? 60000;
    if (typeof exp !== "number" || before === false) return;
    this._sessionExp = exp;
    const delay = Math.max(1000, exp * 1000 - Date.now() - before);
    this._refreshTimer = setTimeout(() => this._refresh(), delay);
  }

  async _refresh() {
    if (!this.connected) return;
    try {
      const token = await this._token();
      const ack = await this.request({ type: "auth.refresh", token });
      // the same token again moves nothing: stop here (the hub closes with 4001 at exp,
      // and the reconnect asks for a token anew)
      if (typeof ack.exp === "number" && ack.exp > this._sessionExp) this._scheduleRefresh(ack.exp);
    } catch {
      /* refused or cut off: the session ends at its exp and the reconnect starts afresh */
    }
  }

  // --- receiving -----------------------------------------------------------------------

  _receive(frame) {
    if (!frame || typeof frame.type !== "string") return;
    switch (frame.type) {
      case "welcome":
        this.welcome = frame;
        this.attempt = 0;
        if (frame.role === "user" && !this.notifications) {
          // no cursor was given: the stream starts where the welcome says it stands, so
          // that a reconnect does not replay the user's whole history
          const at = typeof frame.notifications_seq === "number" ? frame.notifications_seq : 0;
          this.notifications = new SeqTracker(this.opts.notificationsAfter ?? at);
        }
        this._setState("open");
        this._startHeartbeat();
        this._scheduleRefresh(frame.exp);
        this._emit("welcome", frame);
        this._flush();
        return;
      case "pong":
        clearTimeout(this._pongDeadline);
        if (frame.id === "hb") return;
        break;
      case "message":
        if (!this.acceptMessage(frame)) return;
        this._saveCursors();
        break;
      case "notification":
        if (!this.acceptNotification(frame)) return;
        this._saveCursors();
        break;
      case "chat.assigned":
        // the history an agent gets with an assignment counts as received
        for (const m of frame.history || []) this.acceptMessage(m);
        break;
      default:
        break;
    }
    if (frame.id != null && this.pending.has(frame.id)) {
      this._settle(frame.id, frame);
    } else if (frame.type !== "error") {
      this._settleByType(frame);
    }
    this._emit(frame.type, frame);
  }

  /** Record a message as received; false when it is a duplicate. */
  acceptMessage(m) {
    if (!m || !m.conversation_id) return false;
    const tracker = this.track(m.conversation_id);
    const fresh = tracker.accept(m.seq);
    // a message seen under its id is a duplicate even when its seq was forgotten
    const freshId = this.seenIds.add(m.message_id && `m:${m.message_id}`);
    if (fresh && tracker.hasGap) this._emit("gap", { conversation_id: m.conversation_id, after: tracker.watermark });
    return fresh && freshId;
  }

  /** Record a notification as received; false when it is a duplicate. */
  acceptNotification(n) {
    if (!this.notifications) this.notifications = new SeqTracker(0);
    const fresh = this.notifications.accept(n.seq);
    const freshId = this.seenIds.add(n.notification_id && `n:${n.notification_id}`);
    if (fresh && this.notifications.hasGap) this._emit("gap", { notifications_after: this.notifications.watermark });
    return fresh && freshId;
  }

  /** Make sure a conversation is named in the next resume. */
  track(cid, seq = 0) {
    let tracker = this.conversations.get(cid);
    if (!tracker) {
      tracker = new SeqTracker(seq);
      this.conversations.set(cid, tracker);
    }
    return tracker;
  }

  /** Stop naming a conversation in resumes (closed and no longer shown). */
  forget(cid) {
    this.conversations.delete(cid);
    this._saveCursors();
  }

  _saveCursors() {
    if (!this.opts.persistCursors) return;
    saveJson(this.storage, this._key("cursors"), this.resumeState());
  }

  // --- sending -------------------------------------------------------------------------

  _rawSend(frame) {
    if (!this.ws || this.ws.readyState !== 1) return false;
    try {
      this.ws.send(this.codec.encode(frame));
    } catch {
      return false;
    }
    return true;
  }

  /** Fire and forget. `queue: false` drops the frame when offline (typing, read). */
  send(frame, { queue = true } = {}) {
    if (this.connected && this._rawSend(frame)) return true;
    if (queue) {
      this.outbox.push(frame);
      if (this.outbox.length > OUTBOX_LIMIT) this.outbox.shift();
    }
    return false;
  }

  /**
   * Send a frame and wait for its answer (the frame carrying the same id; an `error`
   * rejects). `matchType` also accepts the first frame of that type (for answers that
   * carry no id, such as `chat.opened`). `retry` re-sends after a reconnect. A `chat.send`
   * with a `client_msg_id` sent with `retry` is kept in the stored outbox until its ack.
   */
  request(frame, { timeout = 15000, retry = false, matchType = null } = {}) {
    const durable = retry && frame.type === "chat.send" && typeof frame.client_msg_id === "string";
    if (durable) {
      const existing = this._pendingFor(frame.client_msg_id);
      if (existing) {
        // the same message again (a tap on "retry"): one entry, answered once for both
        return new Promise((resolve, reject) => {
          existing.waiters.push({ resolve, reject });
          if (this.connected && !existing.sent) existing.sent = this._rawSend(existing.frame);
        });
      }
    }
    const id = `c${this.nextId++}`;
    const full = { ...frame, id };
    return new Promise((resolve, reject) => {
      const entry = { frame: full, waiters: [{ resolve, reject }], retry, matchType, sent: false, durable };
      if (timeout != null && timeout !== Infinity) {
        entry.timer = setTimeout(() => {
          const err = new HubError("timeout", `no answer to ${frame.type}`);
          if (durable) {
            // it stays in the outbox and goes out when it can; only the caller stops waiting
            for (const w of entry.waiters.splice(0)) w.reject(err);
            return;
          }
          this.pending.delete(id);
          for (const w of entry.waiters.splice(0)) w.reject(err);
        }, timeout);
      }
      this.pending.set(id, entry);
      if (durable) this._storeOutbox();
      if (this.connected) entry.sent = this._rawSend(full);
    });
  }

  /**
   * Send a chat message through the outbox: stored until the hub acks it, sent again after
   * every reconnect (and after a reload, by the next client on the same storage), stored
   * by the hub once thanks to its `client_msg_id`. Resolves with the `ack`.
   */
  sendMessage({ conversationId, text = "", attachments, clientMsgId: cmid, timeout = null }) {
    const frame = { type: "chat.send", conversation_id: conversationId, client_msg_id: cmid || clientMsgId(), text };
    if (attachments?.length) frame.attachments = attachments.map((a) => (typeof a === "string" ? a : a.attachment_id));
    return this.request(frame, { retry: true, timeout });
  }

  /** The messages waiting for an ack: `chat.send` frames (without their request ids). */
  get unsent() {
    return [...this.pending.values()].filter((e) => e.durable).map((e) => this._bare(e.frame));
  }

  _bare(frame) {
    const { id: _id, ...rest } = frame;
    return rest;
  }

  _pendingFor(cmid) {
    for (const entry of this.pending.values()) {
      if (entry.durable && entry.frame.client_msg_id === cmid) return entry;
    }
    return null;
  }

  _storeOutbox() {
    saveJson(this.storage, this._key("outbox"), this.unsent.slice(-OUTBOX_LIMIT));
  }

  /** Messages a previous client on this storage (the page before a reload) left unsent. */
  _restoreOutbox() {
    const stored = loadJson(this.storage, this._key("outbox"), []);
    if (!Array.isArray(stored)) return;
    for (const frame of stored) {
      if (!frame || frame.type !== "chat.send" || typeof frame.client_msg_id !== "string") continue;
      if (this._pendingFor(frame.client_msg_id)) continue;
      this.request(frame, { retry: true, timeout: null }).then(
        (ack) => this._emit("outbox.sent", { frame, ack }),
        (error) => this._emit("outbox.failed", { frame, error }),
      );
    }
  }

  _settle(id, frame) {
    const entry = this.pending.get(id);
    if (!entry) return;
    if (frame.type === "error" && entry.durable && !FINAL_ERRORS.has(frame.code)) {
      // unavailable, rate limited: nothing was stored; send it again after a pause
      entry.sent = false;
      clearTimeout(entry.retryTimer);
      entry.retryTimer = setTimeout(() => {
        if (this.connected && this.pending.get(id) === entry && !entry.sent) entry.sent = this._rawSend(entry.frame);
      }, this.backoff(entry.tries = (entry.tries || 0) + 1));
      return;
    }
    this.pending.delete(id);
    clearTimeout(entry.timer);
    clearTimeout(entry.retryTimer);
    if (entry.durable) this._storeOutbox();
    const waiters = entry.waiters.splice(0);
    if (frame.type === "error") {
      const err = new HubError(frame.code, frame.message, frame);
      for (const w of waiters) w.reject(err);
    } else {
      for (const w of waiters) w.resolve(frame);
    }
  }

  _settleByType(frame) {
    for (const [id, entry] of this.pending) {
      if (entry.matchType === frame.type && entry.sent) {
        this._settle(id, frame);
        return;
      }
    }
  }

  _failPending(err, all) {
    for (const [id, entry] of this.pending) {
      if (entry.retry && !all) {
        entry.sent = false;
        continue;
      }
      if (!entry.sent && !all) continue; // never left: it goes out after the reconnect
      this.pending.delete(id);
      clearTimeout(entry.timer);
      clearTimeout(entry.retryTimer);
      for (const w of entry.waiters.splice(0)) w.reject(err);
    }
  }

  _flush() {
    const queued = this.outbox.splice(0);
    for (const frame of queued) this._rawSend(frame);
    for (const entry of this.pending.values()) {
      if (!entry.sent) entry.sent = this._rawSend(entry.frame);
    }
  }

  // --- HTTP ----------------------------------------------------------------------------

  /** The hub's HTTP base URL (`opts.httpUrl`, else derived from the WebSocket URL). */
  get httpUrl() {
    return (this.opts.httpUrl || httpBaseOf(this.url)).replace(/\/$/, "");
  }

  /**
   * Upload a file to a conversation (`POST /api/attachments`); resolves with the
   * attachment `{attachment_id, content_type, size, name, url, thumbnail_url?}` to name
   * in `sendMessage({attachments})`.
   * @param {{conversationId: string, file: Blob, name?: string}} args
   */
  async upload({ conversationId, file, name }) {
    const fetchFn = this.opts.fetch || globalThis.fetch;
    const form = new FormData();
    form.append("conversation_id", conversationId); // first: the hub checks it before the file
    form.append("file", file, name || file.name || "file");
    const res = await fetchFn(`${this.httpUrl}/api/attachments`, {
      method: "POST",
      headers: { Authorization: `Bearer ${await this._token()}` },
      body: form,
    });
    let body = null;
    try {
      body = await res.json();
    } catch {
      /* not JSON */
    }
    if (!res.ok) {
      const err = body?.error || {};
      throw new HubError(err.code || "http", err.message || `upload failed (${res.status})`, body);
    }
    return body;
  }
}

let counter = 0;

/** A client message id that stays unique across reloads and devices. */
export function clientMsgId() {
  counter += 1;
  const rnd = globalThis.crypto.getRandomValues(new Uint32Array(2));
  return `m-${Date.now().toString(36)}-${rnd[0].toString(36)}${rnd[1].toString(36)}-${counter}`;
}
