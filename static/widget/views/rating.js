// The card under an ended chat: rate the agent (once per chat, 1-5 stars and a comment),
// the thanks afterwards, and a button for a new chat.

import { $, h, mount } from "/static/shared/dom.js";
import { persist, state, t } from "../state.js";
import { toast } from "./banners.js";
import { newChat } from "./chat.js";
import { scrollToBottom } from "./transcript.js";

export function renderClosedCard(c) {
  const parts = [h("div", { class: "closed-title", text: t("closed_title") })];
  if (c.agent && !state.rated.has(c.cid)) parts.push(...ratingForm(c));
  else if (state.rated.has(c.cid)) parts.push(h("div", { class: "rate-thanks", text: t("rate_thanks") }));
  parts.push(h("button", { class: "btn ghost", type: "button", id: "btn-new-chat", text: t("new_chat"), onclick: newChat }));
  mount($("closed-card"), parts);
  scrollToBottom(false);
}

function ratingForm(c) {
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
  return [h("div", { class: "rate-prompt", text: t("rate_prompt") }), stars, comment, submit];
}
