// The header: who the user is talking to (bot, queue, agent, ended) and the back / new
// chat buttons.

import { $ } from "/static/shared/dom.js";
import { OPEN, currentConv, state, t } from "../state.js";
import { renderOtherConvs } from "./chat-list.js";

export function renderHeader() {
  renderOtherConvs();
  const c = state.view === "chat" ? currentConv() : null;
  const sub = $("hdr-sub");
  const avatar = $("hdr-avatar");
  $("btn-home").hidden = state.view === "home";
  $("btn-new").hidden = !(c && !OPEN.has(c.status));
  avatar.className = "w-avatar";
  if (!c) {
    sub.textContent = state.user ? state.user.name : "";
    avatar.textContent = state.lang === "en" ? "S" : "客";
    return;
  }
  if (c.status === "bot") {
    sub.textContent = t("sub_bot");
    avatar.textContent = "🤖";
    avatar.classList.add("bot");
  } else if (c.status === "queued") {
    sub.textContent = t("sub_queued");
    avatar.textContent = "…";
  } else if (c.status === "assigned") {
    const name = c.agent?.name || t("agent");
    sub.textContent = t("sub_assigned", { name });
    avatar.textContent = name.slice(0, 1);
    avatar.classList.add("agent");
  } else {
    sub.textContent = t("sub_closed");
    avatar.textContent = "✓";
  }
  sub.dataset.status = c.status;
}
