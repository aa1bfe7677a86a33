// What calls for the agent's attention: toasts, the alert sound (with a screen flash when
// urgent), the urgent banner and the unread count in the tab title.

import { $, h, mount } from "/static/shared/dom.js";
import { label } from "/static/shared/labels.js";
import { select } from "../chats.js";
import { conversationDialog } from "../dialogs/readers.js";
import { beep } from "../sound.js";
import { S, t } from "../state.js";
import { takeChat } from "../take.js";

const TOAST_MS = 4000;
const URGENT_TOAST_MS = 8000;

export function toast(text, kind = "info") {
  const el = h("div", { class: ["toast", kind], text });
  $("toasts").appendChild(el);
  setTimeout(() => el.remove(), kind === "urgent" ? URGENT_TOAST_MS : TOAST_MS);
}

/** `note.mention`: a colleague wrote @me in a note. The toast stays until it is opened or
 * closed; opening shows the chat (read-only when it is not mine). */
export function mentionToast(f) {
  alertSound("message");
  const by = f.by?.name || f.by?.id || "";
  const text = t("mentioned", { name: by, topic: label("topic", f.topic, S.lang) });
  const el = h(
    "div",
    { class: "toast mention", role: "alert", dataset: { cid: f.conversation_id } },
    h("div", { class: "toast-title", text }),
    f.note?.text && h("div", { class: "toast-body", text: f.note.text }),
  );
  const open = () => {
    el.remove();
    if (S.chats.has(f.conversation_id)) select(f.conversation_id);
    else conversationDialog(f.conversation_id);
  };
  el.append(
    h(
      "div",
      { class: "toast-actions" },
      h("button", { type: "button", class: "btn small light", dataset: { action: "open" }, text: t("open"), onclick: open }),
      h("button", { type: "button", class: "btn small link", text: t("close"), onclick: () => el.remove() }),
    ),
  );
  $("toasts").appendChild(el);
  notifyHidden(text, f.note?.text || "", `mention:${f.note?.note_id || f.conversation_id}`, open);
}

/** A system notification while the tab is hidden (permission asked once, on a click). */
export function notifyHidden(title, body, tag, onOpen) {
  if (document.visibilityState !== "hidden" || typeof Notification === "undefined") return;
  if (Notification.permission !== "granted") return;
  try {
    const n = new Notification(title, { body, tag, lang: S.lang === "en" ? "en" : "zh-CN" });
    n.onclick = () => {
      window.focus();
      onOpen?.();
      n.close();
    };
  } catch {
    // some browsers only allow notifications from a service worker: the toast remains
  }
}

/** Ask for notification permission once, from a user gesture (the first click). */
export function askNotificationPermission() {
  if (typeof Notification === "undefined" || Notification.permission !== "default") return;
  try {
    Notification.requestPermission().catch(() => {});
  } catch {
    // an old callback-only API: not worth supporting
  }
}

export function alertSound(kind) {
  if (S.sound) beep(kind);
  if (kind === "urgent") {
    document.body.classList.remove("urgent-flash");
    void document.body.offsetWidth; // restart the animation
    document.body.classList.add("urgent-flash");
  }
}

/** Urgent chats of mine not opened yet, and how many urgent ones are queued. */
export function renderUrgentBanner() {
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
  if (queued) {
    // the oldest urgent chat first (the snapshot is in queue order)
    const first = S.queue.find((q) => q.priority === "urgent");
    parts.push(
      h(
        "span",
        { class: "ub-item" },
        t("urgent_queue", { n: queued }),
        h("button", { type: "button", class: "btn small light", id: "ub-take", text: t("take"), onclick: () => takeChat(first.conversation_id) }),
      ),
    );
  }
  mount(banner, h("span", { class: "ub-icon", text: "⚠", attrs: { "aria-hidden": "true" } }), parts);
}

/** "(3) 客服工作台", blinking a 【new urgent chat】 prefix while one is unopened. */
export function updateTitle() {
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
