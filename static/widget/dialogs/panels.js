// The panels that slide over the web chat (notifications, a help article): opening,
// closing (back button or Escape), and loading an article into its panel.

import { $, api, h, mount, renderMarkdown } from "/static/shared/dom.js";
import { state, t } from "../state.js";

const PANELS = ["panel-notif", "panel-article"];

export function openPanel(id) {
  const panel = $(id);
  panel.hidden = false;
  panel.querySelector("[data-close]")?.focus();
}

function closePanels() {
  for (const id of PANELS) $(id).hidden = true;
  if (state.view === "chat") $("input").focus();
}

export async function openArticle(slug, lang) {
  const box = $("article");
  mount(box, h("p", { class: "muted", text: t("loading") }));
  openPanel("panel-article");
  try {
    const a = await api(`/api/help/articles/${encodeURIComponent(slug)}?lang=${lang || state.lang}`);
    mount(box, h("h1", { text: a.title }), h("div", { class: "article-body" }, renderMarkdown(a.body, openArticle)));
    box.scrollTop = 0;
  } catch {
    mount(box, h("p", { class: "muted", text: t("article_missing") }));
  }
}

export function wirePanels() {
  for (const b of document.querySelectorAll("[data-close]")) b.addEventListener("click", closePanels);
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && PANELS.some((id) => !$(id).hidden)) closePanels();
  });
}
