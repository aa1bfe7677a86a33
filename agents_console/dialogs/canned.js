// Ctrl+K: the reply palette. Macros first (the team's and the agent's own, those for the
// chat's topic on top), help-center articles second; typing narrows both. A macro goes in
// in the chat's language with its variables filled in (the customer's name, their latest
// transaction); an article as its title, summary and a link the widget opens in place.

import { $, api, h, mount } from "/static/shared/dom.js";
import { TEXT } from "../i18n.js";
import { expand, filterMacros, macroBody, sortMacros, transactionText } from "../macros.js";
import { S, selectedChat, t, token } from "../state.js";
import { insertIntoReply, setMode } from "../views/composer.js";
import { closeDialog, openDialog } from "./dialog.js";
import { macrosDialog } from "./macros.js";

const SEARCH_DELAY_MS = 150;

export async function cannedDialog() {
  const chat = selectedChat();
  if (!chat || chat.status !== "assigned") return;
  const lang = chat.user?.lang === "en" ? "en" : "zh";
  const [articles, macros] = await Promise.all([listArticles(lang), listMacros()]);
  const bySlug = new Map(articles.map((a) => [a.slug, a]));
  const sorted = sortMacros(macros, chat.topic);
  const search = h("input", { type: "search", id: "canned-search", placeholder: t("canned_search"), autocomplete: "off" });
  const list = h("ul", { class: "canned-list", id: "canned-list", role: "listbox" });
  const items = (ms, as) => [...ms.map((m) => ({ macro: m })), ...as.map((a) => ({ article: a }))];
  let shown = items(sorted, articles);
  let active = 0;
  const insert = async (item) => {
    const text = item.macro
      ? await macroText(item.macro, chat, lang)
      : cannedText(item.article, item.article.summary || bySlug.get(item.article.slug)?.summary || "", lang);
    closeDialog();
    if (S.selected !== chat.cid) return;
    insertIntoReply(text);
    setMode("reply");
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
      shown = q ? items(filterMacros(sorted, q), await findArticles(q, lang, articles, bySlug)) : items(sorted, articles);
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
  const manage = h("button", { class: "btn ghost", type: "button", id: "btn-macros", text: t("macros_manage"), onclick: () => macrosDialog() });
  openDialog(t("canned"), [search, list], [manage]);
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

export async function listMacros() {
  try {
    return (await api("/api/macros", { token: token() })).macros || [];
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

/** The macro's body in the chat's language, its variables filled in. */
async function macroText(macro, chat, lang) {
  const body = macroBody(macro, lang);
  const vars = { customer_name: chat.user?.name || chat.user?.id || "", agent_name: S.me?.name || "" };
  if (body.includes("{latest_transaction}")) vars.latest_transaction = transactionText(await latestTransaction(chat.user?.id), lang);
  return expand(body, vars);
}

async function latestTransaction(userId) {
  if (!userId) return null;
  try {
    const body = await api(`/api/payments?user_id=${encodeURIComponent(userId)}&limit=1`, { token: token() });
    const list = Array.isArray(body) ? body : body?.payments || body?.transactions || body?.items || [];
    return list[0] || null;
  } catch {
    return null;
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
    shown.map((item, i) => {
      const m = item.macro;
      const a = item.article;
      return h(
        "li",
        {
          class: ["canned", m ? "canned-macro" : "canned-article", i === active && "active"],
          role: "option",
          dataset: m ? { macro: m.id } : { slug: a.slug },
          attrs: { "aria-selected": i === active ? "true" : "false" },
          onclick: () => onPick(item),
          onmousemove: () => onHover(i),
        },
        h(
          "div",
          { class: "canned-title" },
          h("span", { class: ["canned-kind", m ? `scope-${m.scope}` : "article"], text: m ? t(`macro_${m.scope}`) : t("article") }),
          m ? m.title : a.title,
        ),
        m
          ? h("div", { class: "canned-summary", text: macroBody(m, S.lang) })
          : a.summary && h("div", { class: "canned-summary", text: a.summary }),
      );
    }),
  );
  list.querySelector(".active")?.scrollIntoView({ block: "nearest" });
}
