// The web chat's store: one state object (kept in localStorage between visits) that the
// frame handlers and the user's actions change and the views read, and the i18n function.

import { makeT } from "/static/shared/labels.js";
import { TEXT } from "./i18n.js";

const STORE_KEY = "supporthub.widget";
export const FEED_LIMIT = 50;
/** Conversation statuses in which the user can still write. */
export const OPEN = new Set(["bot", "queued", "assigned"]);

export const saved = loadStore();
export const params = new URLSearchParams(location.search);
export const state = {
  lang: params.get("lang") === "en" || params.get("lang") === "zh" ? params.get("lang") : saved.lang || browserLang(),
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
  lastAlert: null, // the critical alert the banner shows (or showed last)
  verify: pendingCheck(saved.verify), // the identity check the code box shows
  client: null,
};
export const t = makeT(TEXT, () => state.lang);

/** The browser's language when the user picked none: English for an English browser,
 * else Chinese. */
function browserLang() {
  const langs = navigator.languages?.length ? navigator.languages : [navigator.language || ""];
  for (const l of langs) {
    const code = String(l).toLowerCase();
    if (code.startsWith("zh")) return "zh";
    if (code.startsWith("en")) return "en";
  }
  return "zh";
}

function loadStore() {
  try {
    return JSON.parse(localStorage.getItem(STORE_KEY)) || {};
  } catch {
    return {};
  }
}

/** A code box left open on the last visit, while its code is still valid. */
function pendingCheck(check) {
  return check?.phase === "pending" && Date.parse(check.expiresAt) > Date.now() ? check : null;
}

export function persist() {
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
    verify: pendingCheck(state.verify),
  };
  try {
    localStorage.setItem(STORE_KEY, JSON.stringify(data));
  } catch {
    /* private mode: fine, we just don't remember */
  }
}

/** Another user signs in on this browser: forget the previous one's chats and notifications. */
export function forgetUser() {
  state.current = null;
  state.feed = [];
  state.acked = 0;
  state.rated = new Set();
  state.verify = null;
  saved.notifAfter = 0;
}

/** The view model of a conversation, made on first mention. */
export function conv(cid) {
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

export const currentConv = () => (state.current ? state.convs.get(state.current) : null);

export const securityChat = () =>
  [...state.convs.values()].find((c) => c.topic === "security" && OPEN.has(c.status)) || null;
