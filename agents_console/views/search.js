// Search: conversations by text (Chinese too), customer id or name, or transaction id.
// A hit opens the conversation read-only; the matched words are marked.

import { $, api, dateTime, h } from "/static/shared/dom.js";
import { label } from "/static/shared/labels.js";
import { conversationDialog } from "../dialogs/readers.js";
import { S, t, token } from "../state.js";

let pending = 0;

export function wireSearch() {
  $("search-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    run($("search-input").value.trim());
  });
  $("search-input").addEventListener("input", (ev) => {
    if (!ev.target.value.trim()) $("search-section").hidden = true;
  });
}

async function run(q) {
  const section = $("search-section");
  if (!q) {
    section.hidden = true;
    return;
  }
  const mine = ++pending;
  section.hidden = false;
  const list = $("search-list");
  try {
    const body = await api(`/api/search?q=${encodeURIComponent(q)}`, { token: token() });
    if (mine !== pending) return; // a newer search answered first
    $("search-count").textContent = String(body.results.length);
    list.replaceChildren(
      ...(body.results.length ? body.results.map(hitItem) : [h("li", { class: "empty", text: t("search_none") })]),
    );
  } catch (e) {
    list.replaceChildren(h("li", { class: "empty form-error", text: e.message }));
  }
}

function hitItem(hit) {
  const about = `${label("topic", hit.topic, S.lang)} · ${label("conv", hit.status, S.lang)} · ${dateTime(hit.created_at, S.lang)}`;
  const li = h(
    "li",
    { class: "chat-item search-hit", attrs: { tabindex: "0" }, dataset: { cid: hit.conversation_id } },
    h("div", { class: "chat-name", text: hit.user.name || hit.user.id }),
    h("div", { class: "chat-preview" }, ...snippet(hit)),
    h("div", { class: "muted small", text: about }),
  );
  const open = () => conversationDialog(hit.conversation_id);
  li.addEventListener("click", open);
  li.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") open();
  });
  return li;
}

function snippet(hit) {
  if (hit.matched === "customer") return [t("matched_customer")];
  if (hit.matched === "transaction") return [t("matched_transaction")];
  const text = hit.snippet || "";
  if (!hit.highlight) return [text];
  const [a, b] = hit.highlight;
  return [text.slice(0, a), h("mark", { text: text.slice(a, b) }), text.slice(b)];
}
