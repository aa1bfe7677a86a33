// The console's store: one state object that the frame handlers and the user's actions
// change and the views read, the signed-in session, and the i18n function.

import { makeT } from "/static/shared/labels.js";
import { TEXT } from "./i18n.js";

const SESSION_KEY = "supporthub.console";
const LANG_KEY = "supporthub.console.lang";
const SOUND_KEY = "supporthub.console.sound";

/** The agent's pick (kept), else the browser's language: Chinese for zh-*, else English. */
function initialLang() {
  const picked = localStorage.getItem(LANG_KEY);
  if (picked === "zh" || picked === "en") return picked;
  const langs = navigator.languages?.length ? navigator.languages : [navigator.language || "zh"];
  return String(langs[0]).toLowerCase().startsWith("zh") ? "zh" : "en";
}

export const S = {
  lang: initialLang(),
  sound: localStorage.getItem(SOUND_KEY) !== "off",
  session: loadSession(), // {token, agent}
  me: null, // welcome.agent
  agentState: { status: "offline", capacity: 0, active: 0 },
  client: null,
  queue: [],
  chats: new Map(), // cid -> chat (see newChat in chats.js)
  selected: null,
  view: "work",
  sweepAfterWelcome: false,
  prevUrgentQueue: new Set(),
  typingSentAt: 0,
  typingStop: null,
  titleBlink: null,
};

export const t = makeT(TEXT, () => S.lang);

function loadSession() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY)) || null;
  } catch {
    return null;
  }
}

export function saveSession(session) {
  S.session = session;
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

export function clearSession() {
  S.session = null;
  sessionStorage.removeItem(SESSION_KEY);
}

export function toggleLang() {
  S.lang = S.lang === "en" ? "zh" : "en";
  localStorage.setItem(LANG_KEY, S.lang);
}

export function toggleSound() {
  S.sound = !S.sound;
  localStorage.setItem(SOUND_KEY, S.sound ? "on" : "off");
}

export const token = () => S.session?.token;
export const isSupervisor = () => S.me?.supervisor || S.session?.agent?.role === "supervisor";
export const skills = () => S.me?.skills || S.session?.agent?.skills || [];
export const selectedChat = () => S.chats.get(S.selected);

/** "★★★☆☆" for a score of 3. */
export const stars = (score) => "★".repeat(score) + "☆".repeat(5 - score);
