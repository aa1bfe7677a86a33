// Macros: the agents' reply snippets (personal or team, a body per language) and the
// variables they may hold. Pure functions, no DOM: the palette (dialogs/canned.js) and the
// editor (dialogs/macros.js) use them.

import { money } from "/static/shared/dom.js";
import { label } from "/static/shared/labels.js";

export const VARIABLES = ["{customer_name}", "{latest_transaction}", "{agent_name}"];

const NO_TRANSACTION = { zh: "（暂无交易）", en: "(no recent transaction)" };

/** The body in the chat's language, the other one when that is empty. */
export function macroBody(macro, lang) {
  const own = lang === "en" ? macro.body_en : macro.body_zh;
  return own?.trim() ? own : (lang === "en" ? macro.body_zh : macro.body_en) || "";
}

/** Macros for the chat's topic first, then the rest; each group by title. */
export function sortMacros(macros, topic) {
  const rank = (m) => ((m.topics || []).includes(topic) ? 0 : (m.topics || []).length ? 2 : 1);
  return [...macros].sort((a, b) => rank(a) - rank(b) || a.title.localeCompare(b.title));
}

/** Macros whose title or bodies hold every word of `q` (case-insensitive). */
export function filterMacros(macros, q) {
  const words = q.toLowerCase().split(/\s+/).filter(Boolean);
  return macros.filter((m) => {
    const hay = `${m.title}\n${m.body_zh}\n${m.body_en}`.toLowerCase();
    return words.every((w) => hay.includes(w));
  });
}

/** "¥12.50（成功）" / "CN¥12.50 (succeeded)": a transaction as a customer reads it. */
export function transactionText(tx, lang) {
  if (!tx) return NO_TRANSACTION[lang === "en" ? "en" : "zh"];
  const status = label("tx", tx.status, lang);
  const reason = tx.status === "failed" && tx.reason ? label("reason", tx.reason, lang) : "";
  const amount = money(tx.amount, tx.currency, lang);
  if (lang === "en") return `${amount} (${status.toLowerCase()}${reason ? `: ${reason.toLowerCase()}` : ""})`;
  return `${amount}（${status}${reason ? `：${reason}` : ""}）`;
}

/** Replace the known `{variables}`; anything else in braces stays as typed. */
export function expand(text, vars) {
  return text.replace(/\{(customer_name|latest_transaction|agent_name)\}/g, (_, name) => vars[name] ?? "");
}
