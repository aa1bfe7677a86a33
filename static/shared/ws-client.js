// A small client for the supporthub WebSocket protocol (supporthub.json.v1), shared by the
// agents' console and the users' web chat.
//
// What it guarantees to the page:
// - `hello` is the first frame; nothing else is sent before `welcome` (frames sent while
//   offline wait in a bounded outbox, or are dropped when they only matter live).
// - After a drop it reconnects by itself (exponential backoff with jitter) and resumes with
//   {notifications_after, conversations: {id: last_seq}}, where each number is the highest
//   seq received *without a gap*, so a replay can only fill holes, never skip one.
// - Each `message` (per conversation) and `notification` (per user) is emitted once, even if
//   it arrives twice (a replay racing a live push, a resent `chat.send`).
// - `request()` matches the answer by `id`; requests marked `retry` (idempotent ones such as
//   `chat.send` with its client_msg_id) are sent again after a reconnect.

export const SUBPROTOCOL = "supporthub.json.v1";

const OUTBOX_LIMIT = 200;
const SEEN_LIMIT = 2000; // per stream; seqs at or below the watermark are forgotten

/** Per-stream duplicate filter with a gap-free watermark. */
class SeqTracker {
  constructor(watermark = 0) {
    this.watermark = watermark;
    this.ahead = new Set(); // seqs received above the watermark (after a gap)
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
}

export class HubError extends Error {
  /** `frame`: the whole `error` frame, with any extension fields (`reason`, ...). */
  constructor(code, message, frame = null) {
    super(message || code);
    this.code = code;
    this.frame = frame;
  }
}

function defaultUrl() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.host}/ws`;
}

export class HubClient {
  /**
   * @param {object} opts
   * @param {() => (string|Promise<string>)} opts.token  called before every hello
   * @param {string} [opts.url]
   * @param {number|null} [opts.notificationsAfter]  resume notifications after this seq
   * @param {object} [opts.conversations]  {conversation_id: last_seq} already shown
   * @param {() => object} [opts.helloFields]  more fields for every hello (a device's
   *   `lang` and `tz`), asked for again before each connect
   */
  constructor(opts) {
    this.opts = opts;
    this.url = opts.url || defaultUrl();
    this.ws = null;
    this.state = "idle"; // idle | connecting | open | reconnecting | stopped | unauthorized
    this.welcome = null;
    this.attempt = 0;
    this.listeners = new Map();
    this.pending = new Map(); // id -> {frame, resolve, reject, timer, retry, matchType}
    this.outbox = [];
    this.nextId = 1;
    this.notifications =
      opts.notificationsAfter == null ? null : new SeqTracker(opts.notificationsAfter);
    this.conversations = new Map();
    for (const [cid, seq] of Object.entries(opts.conversations || {})) {
      this.conversations.set(cid, new SeqTracker(seq));
    }
    this._timer = null;
    this._pingTimer = null;
    this._pongDeadline = null;
    this._onOnline = () => this._reconnectNow();
    this._onOffline = () => this._drop("offline");
  }

  // --- events --------------------------------------------------------------------------

  /** Listen for a frame type, "*" for every frame, or "state" for connection states. */
  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.listeners.get(type).delete(fn);
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
    for (const key of [type, "*"]) {
      if (type === "state" && key === "*") continue;
      for (const fn of this.listeners.get(key) || []) {
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
    window.addEventListener("online", this._onOnline);
    window.addEventListener("offline", this._onOffline);
    this._connect();
  }

  stop() {
    this._setState("stopped");
    window.removeEventListener("online", this._onOnline);
    window.removeEventListener("offline", this._onOffline);
    clearTimeout(this._timer);
    this._stopHeartbeat();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, "bye");
    }
    this._failPending(new HubError("stopped", "client stopped"), true);
  }

  get connected() {
    return this.state === "open";
  }

  async _connect() {
    clearTimeout(this._timer);
    if (this.state === "stopped" || this.state === "unauthorized") return;
    this._setState(this.attempt === 0 && !this.welcome ? "connecting" : "reconnecting");
    let token;
    try {
      token = await this.opts.token();
    } catch (err) {
      this._scheduleReconnect();
      return;
    }
    if (this.state === "stopped") return;
    let ws;
    try {
      ws = new WebSocket(this.url, [SUBPROTOCOL]);
    } catch (err) {
      this._scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      const extra = this.opts.helloFields ? this.opts.helloFields() : {};
      ws.send(JSON.stringify({ ...extra, type: "hello", token, resume: this.resumeState() }));
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;
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
      if (this.opts.onUnauthorized) {
        // the page may fetch a new token; it calls restart() when it has one
        this.opts.onUnauthorized(reason);
      }
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

  _scheduleReconnect(extraAttempts = 0) {
    this._setState("reconnecting");
    const n = this.attempt + extraAttempts;
    this.attempt += 1;
    const base = this.opts.backoffBase ?? 400;
    const max = this.opts.backoffMax ?? 15000;
    const delay = Math.min(max, base * 2 ** Math.min(n, 10));
    const jittered = delay / 2 + Math.random() * (delay / 2);
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this._connect(), jittered);
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
  }

  // --- receiving -----------------------------------------------------------------------

  _receive(frame) {
    if (!frame || typeof frame.type !== "string") return;
    switch (frame.type) {
      case "welcome":
        this.welcome = frame;
        this.attempt = 0;
        if (frame.role === "user" && !this.notifications) {
          this.notifications = new SeqTracker(this.opts.notificationsAfter ?? 0);
        }
        this._setState("open");
        this._startHeartbeat();
        this._emit("welcome", frame);
        this._flush();
        return;
      case "pong":
        clearTimeout(this._pongDeadline);
        if (frame.id === "hb") return;
        break;
      case "message":
        if (!this.acceptMessage(frame)) return;
        break;
      case "notification":
        if (!this.notifications) this.notifications = new SeqTracker(0);
        if (!this.notifications.accept(frame.seq)) return;
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
    return this.track(m.conversation_id).accept(m.seq);
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
  }

  // --- sending -------------------------------------------------------------------------

  _rawSend(frame) {
    if (!this.ws || this.ws.readyState !== 1) return false;
    this.ws.send(JSON.stringify(frame));
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
   * carry no id, such as `chat.opened`). `retry` re-sends after a reconnect.
   */
  request(frame, { timeout = 15000, retry = false, matchType = null } = {}) {
    const id = `c${this.nextId++}`;
    const full = { ...frame, id };
    return new Promise((resolve, reject) => {
      const entry = { frame: full, resolve, reject, retry, matchType, sent: false };
      entry.timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new HubError("timeout", `no answer to ${frame.type}`));
      }, timeout);
      this.pending.set(id, entry);
      if (this.connected) entry.sent = this._rawSend(full);
    });
  }

  _settle(id, frame) {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.pending.delete(id);
    clearTimeout(entry.timer);
    if (frame.type === "error") entry.reject(new HubError(frame.code, frame.message, frame));
    else entry.resolve(frame);
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
      entry.reject(err);
    }
  }

  _flush() {
    const queued = this.outbox.splice(0);
    for (const frame of queued) this._rawSend(frame);
    for (const entry of this.pending.values()) {
      if (!entry.sent) entry.sent = this._rawSend(entry.frame);
    }
  }
}

let counter = 0;

/** A client message id that stays unique across reloads and devices. */
export function clientMsgId() {
  counter += 1;
  const rnd = crypto.getRandomValues(new Uint32Array(2));
  return `m-${Date.now().toString(36)}-${rnd[0].toString(36)}${rnd[1].toString(36)}-${counter}`;
}
