// The queue in the sidebar: who is waiting, by priority, with a waiting time that ticks
// (every [data-since] element is updated once a second by app.js).

import { $, duration, h, mount } from "/static/shared/dom.js";
import { label } from "/static/shared/labels.js";
import { assignDialog } from "../dialogs/assign.js";
import { S, isSupervisor, t } from "../state.js";
import { mayOfferTake, takeChat } from "../take.js";

export function renderQueue() {
  const list = $("queue-list");
  $("queue-count").textContent = S.queue.length ? String(S.queue.length) : "";
  if (!S.queue.length) {
    mount(list, h("li", { class: "empty", text: t("no_queue") }));
    return;
  }
  mount(list, S.queue.map(queueItem));
}

function queueItem(q) {
  return h(
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
    queueActions(q),
  );
}

/** "Take" (urgent chats; any chat for supervisors) and "Assign to…" (supervisors). */
export function queueActions(q) {
  const take = mayOfferTake(q);
  const assign = isSupervisor();
  if (!take && !assign) return null;
  return h(
    "div",
    { class: "qi-actions" },
    take && h("button", { type: "button", class: ["btn", "small", q.priority === "urgent" ? "danger" : "ghost", "qi-take"], text: t("take"), onclick: () => takeChat(q.conversation_id) }),
    assign && h("button", { type: "button", class: "btn small ghost qi-assign", text: t("assign"), onclick: () => assignDialog(q) }),
  );
}
