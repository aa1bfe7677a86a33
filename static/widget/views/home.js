// The home view: a greeting, the topics and the first message; starts a chat with the
// help bot or straight with a person.

import { $, h, mount } from "/static/shared/dom.js";
import { TOPICS, TOPIC_ICONS, label } from "/static/shared/labels.js";
import { conv, persist, state, t } from "../state.js";
import { showView } from "./chat.js";

const OPEN_TIMEOUT_MS = 20000;

export function renderHome() {
  const name = state.user?.name;
  $("home-hello").textContent = name ? t("hello", { name }) : t("hello_anon");
  renderTopics();
}

function renderTopics() {
  mount($("topics"), TOPICS.map(topicButton));
  const ready = Boolean(state.topic);
  $("btn-start").disabled = !ready;
  $("btn-start-agent").disabled = !ready;
}

function topicButton(topic) {
  const selected = state.topic === topic;
  return h(
    "button",
    {
      type: "button",
      class: ["topic", selected && "selected"],
      attrs: { role: "radio", "aria-checked": selected ? "true" : "false" },
      dataset: { topic },
      onclick: () => {
        state.topic = topic;
        renderTopics();
      },
    },
    h("span", { class: "topic-icon", text: TOPIC_ICONS[topic], attrs: { "aria-hidden": "true" } }),
    h("span", { class: "topic-label", text: label("topic", topic, state.lang) }),
  );
}

/** `handoff`: "bot" (the help bot answers first) or "agent" (straight to the queue). */
async function startChat(handoff) {
  if (!state.topic) return;
  const text = $("first-text").value.trim();
  const err = $("home-error");
  err.hidden = true;
  for (const b of [$("btn-start"), $("btn-start-agent")]) b.disabled = true;
  try {
    const frame = { type: "chat.open", topic: state.topic, handoff, lang: state.lang };
    if (text) frame.text = text;
    const opened = await state.client.request(frame, { matchType: "chat.opened", timeout: OPEN_TIMEOUT_MS });
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

export function wireHome() {
  $("btn-start").addEventListener("click", () => startChat("bot"));
  $("btn-start-agent").addEventListener("click", () => startChat("agent"));
}
