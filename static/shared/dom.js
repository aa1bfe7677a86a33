// DOM helpers shared by the console and the widget.
//
// Invariant: text that came from a user, an agent or the server is only ever placed in the
// page as a Text node (textContent / createTextNode). Nothing here assigns innerHTML; the
// only markup built from server text is help-article links and the few Markdown constructs
// below, and those are built element by element.

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/**
 * Build an element. `props`: class, text, dataset, attrs, on{Event} handlers, and any DOM
 * property (hidden, disabled, value, type...). Children: nodes, strings (as text), arrays,
 * null/false (skipped).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value == null || value === false) continue;
    if (key === "class") el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    else if (key === "text") el.textContent = String(value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "attrs") for (const [a, v] of Object.entries(value)) el.setAttribute(a, String(v));
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else el[key] = value;
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child == null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replace all children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element with attributes (no style attributes: the CSP forbids inline styles). */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [a, v] of Object.entries(attrs)) if (v != null) el.setAttribute(a, String(v));
  for (const child of children.flat()) {
    if (child == null) continue;
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// --- help-article links ----------------------------------------------------------------

// What the help bot writes (and canned answers insert): /widget/help/<slug>?lang=zh|en,
// possibly with the origin in front. Only this exact shape becomes a link.
const HELP_LINK = /(?:https?:\/\/[\w.:-]+)?\/widget\/help\/([a-z0-9][a-z0-9-]{0,80})(?:\?lang=(zh|en))?/g;

/** True when `text` holds at least one help-article link. */
export function hasHelpLink(text) {
  HELP_LINK.lastIndex = 0;
  return HELP_LINK.test(String(text || ""));
}

/**
 * `text` as a fragment of Text nodes, with each help-article link turned into an <a> that
 * calls `onOpen(slug, lang)` instead of navigating.
 */
export function linkifyHelp(text, onOpen, label) {
  const frag = document.createDocumentFragment();
  const s = String(text ?? "");
  HELP_LINK.lastIndex = 0;
  let last = 0;
  let m;
  while ((m = HELP_LINK.exec(s)) !== null) {
    if (m.index > last) frag.appendChild(document.createTextNode(s.slice(last, m.index)));
    const slug = m[1];
    const lang = m[2] || null;
    const a = document.createElement("a");
    a.className = "help-link";
    a.href = `/widget/help/${slug}${lang ? `?lang=${lang}` : ""}`;
    a.dataset.slug = slug;
    a.textContent = label ? label(slug) : a.getAttribute("href");
    a.addEventListener("click", (ev) => {
      ev.preventDefault();
      onOpen(slug, lang);
    });
    frag.appendChild(a);
    last = m.index + m[0].length;
  }
  if (last < s.length) frag.appendChild(document.createTextNode(s.slice(last)));
  return frag;
}

// --- a small, safe Markdown subset for help articles -------------------------------------

function inline(text, onOpen) {
  // **bold**, `code`, [label](url); everything else is text
  const frag = document.createDocumentFragment();
  const re = /\*\*([^*]+)\*\*|`([^`]+)`|\[([^\]]+)\]\(([^)\s]+)\)/g;
  let last = 0;
  let m;
  while ((m = re.exec(text)) !== null) {
    if (m.index > last) frag.appendChild(document.createTextNode(text.slice(last, m.index)));
    if (m[1] != null) frag.appendChild(h("strong", { text: m[1] }));
    else if (m[2] != null) frag.appendChild(h("code", { text: m[2] }));
    else frag.appendChild(mdLink(m[3], m[4], onOpen));
    last = m.index + m[0].length;
  }
  if (last < text.length) frag.appendChild(document.createTextNode(text.slice(last)));
  return frag;
}

function mdLink(label, url, onOpen) {
  HELP_LINK.lastIndex = 0;
  const help = HELP_LINK.exec(url);
  const slugOnly = /^(?:\.\/)?([a-z0-9-]+)(?:\.md)?$/.exec(url);
  if ((help && help.index === 0) || slugOnly) {
    const slug = help ? help[1] : slugOnly[1];
    return h("a", {
      class: "help-link",
      href: `/widget/help/${slug}`,
      text: label,
      onclick: (ev) => {
        ev.preventDefault();
        onOpen?.(slug, help ? help[2] : null);
      },
    });
  }
  if (/^https?:\/\//.test(url)) {
    return h("a", { href: url, text: label, target: "_blank", rel: "noopener noreferrer" });
  }
  return document.createTextNode(label);
}

/** Render an article body (Markdown subset: #/##/### headings, -/1. lists, paragraphs). */
export function renderMarkdown(md, onOpen) {
  const root = document.createDocumentFragment();
  let list = null;
  let para = [];
  const flushPara = () => {
    if (para.length) root.appendChild(h("p", {}, inline(para.join(" "), onOpen)));
    para = [];
  };
  for (const raw of String(md || "").split(/\r?\n/)) {
    const line = raw.trim();
    const heading = /^(#{1,4})\s+(.*)$/.exec(line);
    const bullet = /^(?:[-*]|\d+[.)])\s+(.*)$/.exec(line);
    if (!line) {
      flushPara();
      list = null;
    } else if (heading) {
      flushPara();
      list = null;
      const level = Math.min(6, heading[1].length + 2);
      root.appendChild(h(`h${level}`, {}, inline(heading[2], onOpen)));
    } else if (bullet) {
      flushPara();
      if (!list) {
        list = h(/^\d/.test(line) ? "ol" : "ul");
        root.appendChild(list);
      }
      list.appendChild(h("li", {}, inline(bullet[1], onOpen)));
    } else {
      list = null;
      para.push(line);
    }
  }
  flushPara();
  return root;
}

// --- formatting ------------------------------------------------------------------------

export function pad2(n) {
  return String(n).padStart(2, "0");
}

/** 65 -> "1:05", 3720 -> "1:02:00". */
export function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  return hh ? `${hh}:${pad2(mm)}:${pad2(ss)}` : `${mm}:${pad2(ss)}`;
}

export function clock(ts) {
  const d = ts ? new Date(ts) : new Date();
  if (Number.isNaN(d.getTime())) return "";
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

export function dateTime(ts, lang) {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return "";
  return d.toLocaleString(lang === "en" ? "en-GB" : "zh-CN", {
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
  });
}

export function money(amount, currency, lang) {
  const n = Number(amount);
  if (!Number.isFinite(n)) return `${amount ?? ""} ${currency ?? ""}`.trim();
  try {
    return new Intl.NumberFormat(lang === "en" ? "en-US" : "zh-CN", {
      style: "currency",
      currency: currency || "CNY",
    }).format(n);
  } catch {
    return `${n.toFixed(2)} ${currency || ""}`.trim();
  }
}

/** Fetch JSON with a bearer token; throws {status, code, message} on HTTP errors. */
export async function api(path, { token, method = "GET", body, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    const err = new Error(data?.error?.message || `HTTP ${res.status}`);
    err.status = res.status;
    err.code = data?.error?.code || "http";
    throw err;
  }
  return data;
}
