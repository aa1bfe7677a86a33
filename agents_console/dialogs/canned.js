// Canned answers: help-center articles, searched as the agent types and inserted into the
// reply in the chat's language (title, summary and a link the widget opens in place).

import { $, api, h, mount } from "/static/shared/dom.js";
import { TEXT } from "../i18n.js";
import { selectedChat, t } from "../state.js";
import { insertIntoReply, setMode } from "../views/composer.js";
import { closeDialog, openDialog } from "./dialog.js";

const SEARCH_DELAY_MS = 150;

export async function cannedDialog() {
  const chat = selectedChat();
  if (!chat || chat.status !== "assigned") return;
  const lang = chat.user?.lang === "en" ? "en" : "zh";
  const articles = await listArticles(lang);
  const bySlug = new Map(articles.map((a) => [a.slug, a]));
  const search = h("input", { type: "search", id: "canned-search", placeholder: t("canned_search"), autocomplete: "off" });
  const list = h("ul", { class: "canned-list", id: "canned-list", role: "listbox" });
  let shown = articles;
  let active = 0;
  const insert = (a) => {
    const summary = a.summary || bySlug.get(a.slug)?.summary || "";
    insertIntoReply(cannedText(a, summary, lang));
    setMode("reply");
    closeDialog();
    $("reply").focus();
  };
  const paint = () => {
    paintList(list, shown, active, {
      onPick: insert,
      onHover: (i) => {
        if (active !== i) {
          active = i;
          paint();
        }
      },
    });
  };
  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    const q = search.value.trim();
    timer = setTimeout(async () => {
      shown = q ? await findArticles(q, lang, articles, bySlug) : articles;
      active = 0;
      paint();
    }, SEARCH_DELAY_MS);
  });
  search.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      active = Math.max(0, Math.min(shown.length - 1, active + (ev.key === "ArrowDown" ? 1 : -1)));
      paint();
    } else if (ev.key === "Enter") {
      ev.preventDefault();
      if (shown[active]) insert(shown[active]);
    }
  });
  openDialog(t("canned"), [search, list], []);
  paint();
  search.focus();
}

async function listArticles(lang) {
  try {
    return await api(`/api/help/articles?lang=${lang}`);
  } catch {
    return [];
  }
}

async function findArticles(q, lang, articles, bySlug) {
  try {
    const query = `/api/help/search?q=${encodeURIComponent(q)}&limit=10`;
    let hits = await api(`${query}&lang=${lang}`);
    // typed in the other language ("password" in a Chinese chat): search both, and
    // still insert the article in the chat's language
    if (!hits.length) hits = await api(query);
    const seen = new Set();
    return hits.filter((hit) => !seen.has(hit.slug) && seen.add(hit.slug)).map((hit) => bySlug.get(hit.slug) || hit);
  } catch {
    const ql = q.toLowerCase();
    return articles.filter((a) => `${a.title} ${a.summary}`.toLowerCase().includes(ql));
  }
}

function cannedText(a, summary, lang) {
  const link = `/widget/help/${a.slug}?lang=${lang}`;
  return [a.title, summary, `${TEXT.details_link[lang]}${link}`].filter(Boolean).join("\n");
}

function paintList(list, shown, active, { onPick, onHover }) {
  if (!shown.length) {
    mount(list, h("li", { class: "muted", text: t("canned_empty") }));
    return;
  }
  mount(
    list,
    shown.map((a, i) =>
      h(
        "li",
        {
          class: ["canned", i === active && "active"],
          role: "option",
          dataset: { slug: a.slug },
          attrs: { "aria-selected": i === active ? "true" : "false" },
          onclick: () => onPick(a),
          onmousemove: () => onHover(i),
        },
        h("div", { class: "canned-title", text: a.title }),
        a.summary && h("div", { class: "canned-summary", text: a.summary }),
      ),
    ),
  );
  list.querySelector(".active")?.scrollIntoView({ block: "nearest" });
}
