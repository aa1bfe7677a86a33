// Managing macros: the list of the team's and the agent's own, and a form to write or
// change one (title, a Chinese and an English body, the topics it is for, personal or
// team). Team macros are the supervisors' to write; everyone uses them.

import { api, h } from "/static/shared/dom.js";
import { TOPICS, label } from "/static/shared/labels.js";
import { VARIABLES, macroBody } from "../macros.js";
import { S, isSupervisor, t, token } from "../state.js";
import { toast } from "../views/notifications.js";
import { openDialog } from "./dialog.js";

const mayEdit = (m) => (m.scope === "team" ? isSupervisor() : m.owner_id === S.me?.id);

export async function macrosDialog() {
  let macros = [];
  try {
    macros = (await api("/api/macros", { token: token() })).macros || [];
  } catch (e) {
    toast(t("error", { msg: e.message }), "error");
  }
  const rows = macros.map((m) =>
    h(
      "li",
      { class: "macro-row", dataset: { macro: m.id } },
      h(
        "div",
        { class: "macro-main" },
        h("div", { class: "canned-title" }, h("span", { class: ["canned-kind", `scope-${m.scope}`], text: t(`macro_${m.scope}`) }), m.title),
        h("div", { class: "canned-summary", text: macroBody(m, S.lang) }),
        m.topics?.length > 0 && h("div", { class: "muted small", text: m.topics.map((tp) => label("topic", tp, S.lang)).join(" · ") }),
      ),
      mayEdit(m) &&
        h(
          "div",
          { class: "macro-actions" },
          h("button", { type: "button", class: "btn ghost small", dataset: { action: "edit" }, text: t("edit"), onclick: () => editMacro(m) }),
          h("button", { type: "button", class: "btn ghost small", dataset: { action: "delete" }, text: t("delete"), onclick: () => deleteMacro(m) }),
        ),
    ),
  );
  openDialog(
    t("macros_title"),
    [
      h("p", { class: "muted small", text: t("macros_lead") }),
      h("ul", { class: "macro-list", id: "macro-list" }, rows.length ? rows : h("li", { class: "muted", text: t("macros_none") })),
    ],
    [
      h("button", { class: "btn ghost", type: "submit", value: "cancel", text: t("close") }),
      h("button", { class: "btn primary", type: "button", id: "macro-new", text: t("macro_new"), onclick: () => editMacro(null) }),
    ],
  );
}

async function deleteMacro(m) {
  try {
    await api(`/api/macros/${encodeURIComponent(m.id)}`, { token: token(), method: "DELETE" });
    toast(t("macro_deleted"), "info");
  } catch (e) {
    toast(t("error", { msg: e.message }), "error");
  }
  macrosDialog();
}

function editMacro(m) {
  const title = h("input", { id: "macro-title", maxLength: 120, value: m?.title || "", required: true });
  const zh = h("textarea", { id: "macro-zh", rows: 4, maxLength: 4000, value: m?.body_zh || "" });
  const en = h("textarea", { id: "macro-en", rows: 4, maxLength: 4000, value: m?.body_en || "" });
  const topics = h(
    "div",
    { class: "macro-topics" },
    TOPICS.map((tp) =>
      h(
        "label",
        { class: "chk" },
        h("input", { type: "checkbox", value: tp, checked: Boolean(m?.topics?.includes(tp)) }),
        label("topic", tp, S.lang),
      ),
    ),
  );
  const scope = h(
    "select",
    { id: "macro-scope", disabled: Boolean(m) || !isSupervisor() },
    h("option", { value: "personal", text: t("macro_personal"), selected: (m?.scope || "personal") === "personal" }),
    h("option", { value: "team", text: t("macro_team"), selected: m?.scope === "team" }),
  );
  // Enter in the title must not submit the dialog's form (that would close the editor)
  title.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") ev.preventDefault();
  });
  const error = h("p", { class: "form-error", hidden: true });
  const save = h("button", { class: "btn primary", type: "button", id: "macro-save", text: t("save") });
  save.addEventListener("click", async () => {
    const body = {
      title: title.value.trim(),
      body_zh: zh.value,
      body_en: en.value,
      topics: [...topics.querySelectorAll("input:checked")].map((i) => i.value),
      scope: scope.value,
    };
    if (!body.title || !(body.body_zh.trim() || body.body_en.trim())) {
      error.hidden = false;
      error.textContent = t("macro_incomplete");
      return;
    }
    save.disabled = true;
    try {
      const path = m ? `/api/macros/${encodeURIComponent(m.id)}` : "/api/macros";
      await api(path, { token: token(), method: m ? "PUT" : "POST", body });
      toast(t("macro_saved"), "info");
      macrosDialog();
    } catch (e) {
      error.hidden = false;
      error.textContent = e.message;
      save.disabled = false;
    }
  });
  openDialog(
    m ? t("macro_edit") : t("macro_new"),
    [
      h("label", { class: "field" }, h("span", { text: t("macro_title_label") }), title),
      h("label", { class: "field" }, h("span", { text: t("macro_body_zh") }), zh),
      h("label", { class: "field" }, h("span", { text: t("macro_body_en") }), en),
      h("p", { class: "muted small", text: `${t("macro_variables")} ${VARIABLES.join(" ")}` }),
      h("h3", { class: "dlg-sub", text: t("macro_topics") }),
      topics,
      h("label", { class: "field" }, h("span", { text: t("macro_scope") }), scope),
      error,
    ],
    [h("button", { class: "btn ghost", type: "button", text: t("cancel"), onclick: () => macrosDialog() }), save],
  );
  title.focus();
}
