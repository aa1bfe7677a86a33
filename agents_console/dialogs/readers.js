// Read-only dialogs: a past conversation of the customer, and a help-center article.

import { api, dateTime, h, renderMarkdown } from "/static/shared/dom.js";
import { label } from "/static/shared/labels.js";
import { S, t, token } from "../state.js";
import { transcriptItems } from "../views/transcript.js";
import { openDialog, setDialogBody } from "./dialog.js";

export async function conversationDialog(cid) {
  openDialog(t("conversation"), [h("p", { class: "muted", text: "…" })], []);
  try {
    const conv = await api(`/api/conversations/${encodeURIComponent(cid)}`, { token: token() });
    const past = { cid, messages: new Map(), notes: new Map() };
    for (const m of conv.messages || []) past.messages.set(m.seq, m);
    for (const n of conv.notes || []) past.notes.set(n.note_id, n);
    const box = h("div", { class: "transcript readonly" }, transcriptItems(past).map((i) => i.el()));
    const about = `${label("topic", conv.topic, S.lang)} · ${label("conv", conv.status, S.lang)} · ${dateTime(conv.created_at, S.lang)}`;
    setDialogBody(h("p", { class: "muted small", text: about }), box);
  } catch (e) {
    setDialogBody(h("p", { class: "form-error", text: e.message }));
  }
}

export async function openArticle(slug, lang) {
  openDialog(t("article"), [h("p", { class: "muted", text: "…" })], []);
  try {
    const a = await api(`/api/help/articles/${encodeURIComponent(slug)}?lang=${lang || S.lang}`);
    setDialogBody(h("article", { class: "article" }, h("h1", { text: a.title }), renderMarkdown(a.body, openArticle)));
  } catch (e) {
    setDialogBody(h("p", { class: "form-error", text: e.message }));
  }
}
