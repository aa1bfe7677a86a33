// The user's other open chats, above the current view (e.g. the security chat the hub
// opened for a frozen account while the user was in another chat).

import { $, h, mount } from "/static/shared/dom.js";
import { label } from "/static/shared/labels.js";
import { OPEN, state, t } from "../state.js";
import { openChat } from "./chat.js";

export function renderOtherConvs() {
  const bar = $("other-convs");
  const others = [...state.convs.values()].filter(
    (c) => OPEN.has(c.status) && !(state.view === "chat" && c.cid === state.current),
  );
  bar.hidden = others.length === 0;
  if (!others.length) return;
  mount(
    bar,
    h("span", { class: "oc-label", text: t("other_open") }),
    others.map((c) =>
      h(
        "button",
        { type: "button", class: "oc-item", dataset: { cid: c.cid }, onclick: () => openChat(c.cid) },
        `${c.topic ? label("topic", c.topic, state.lang) : t("title")} · ${label("conv", c.status, state.lang)} ›`,
      ),
    ),
  );
}
