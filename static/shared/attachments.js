// Files in chats, shared by the console and the web chat: uploading one (with progress),
// showing the files of a message (image thumbnails, a chip for a PDF), the lightbox that
// shows an image full size, and links kept fresh (they are signed and expire).
//
// Names and everything else from the server go into the page as text only. Images come
// from this origin (the hub's signed links), which the pages' CSP allows (img-src 'self').

import { h } from "./dom.js";

export const ACCEPT = "image/png,image/jpeg,image/webp,image/gif,application/pdf";
export const MAX_BYTES = 10 * 1024 * 1024; // the hub's default; it has the last word
export const MAX_FILES = 10;
const REFRESH_BEFORE_MS = 10_000;

const LABELS = {
  download: { zh: "下载", en: "Download" },
  close: { zh: "关闭", en: "Close" },
  open_image: { zh: "查看大图", en: "View full size" },
  image: { zh: "图片", en: "Image" },
  file: { zh: "文件", en: "File" },
};

let config = { token: () => null, lang: () => "zh" };

/** `token()`: the caller's bearer token (to renew expired links); `lang()`: zh or en. */
export function configureAttachments(options) {
  config = { ...config, ...options };
}

const label = (key) => LABELS[key][config.lang() === "en" ? "en" : "zh"];

/** 1536 -> "1.5 KB". */
export function formatSize(bytes) {
  const n = Number(bytes) || 0;
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export const isImage = (att) => String(att?.content_type || "").startsWith("image/");

/** Files in a paste or a drop (DataTransfer): only files, never text or HTML. */
export function filesOf(transfer) {
  if (!transfer) return [];
  const files = [...(transfer.files || [])];
  if (files.length) return files;
  return [...(transfer.items || [])]
    .filter((item) => item.kind === "file")
    .map((item) => item.getAsFile())
    .filter(Boolean);
}

// --- upload ------------------------------------------------------------------------------

/**
 * POST /api/attachments with progress. Returns {promise, abort}; the promise resolves to
 * the attachment ({attachment_id, content_type, size, name, url, thumbnail_url?}) or
 * rejects with an Error carrying {status, code}.
 */
export function uploadFile({ file, conversationId, token, onProgress }) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    const form = new FormData();
    form.append("conversation_id", conversationId); // first: the hub checks it before the file
    form.append("file", file, file.name || "image.png");
    xhr.open("POST", "/api/attachments");
    xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (ev) => {
      if (ev.lengthComputable) onProgress?.(ev.loaded / ev.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status === 201 && xhr.response) {
        onProgress?.(1);
        resolve(xhr.response);
        return;
      }
      const err = new Error(xhr.response?.error?.message || `HTTP ${xhr.status}`);
      err.status = xhr.status;
      err.code = xhr.response?.error?.code || "http";
      reject(err);
    });
    xhr.addEventListener("error", () => reject(Object.assign(new Error("network error"), { status: 0, code: "network" })));
    xhr.addEventListener("abort", () => reject(Object.assign(new Error("aborted"), { status: 0, code: "aborted" })));
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}

// --- fresh links ------------------------------------------------------------------------

function expiry(url) {
  try {
    return Number(new URL(url, location.origin).searchParams.get("exp")) * 1000 || 0;
  } catch {
    return 0;
  }
}

const renewing = new Map(); // attachment_id -> promise

/**
 * Renew an attachment's links when they expired (or are about to): asks the hub for the
 * attachment again and updates `att` in place, so that every later render uses them.
 */
export async function fresh(att, { force = false } = {}) {
  if (!force && expiry(att.url) - Date.now() > REFRESH_BEFORE_MS) return att;
  const token = config.token();
  if (!token) return att;
  let pending = renewing.get(att.attachment_id);
  if (!pending) {
    pending = fetch(`/api/attachments/${encodeURIComponent(att.attachment_id)}`, {
      headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
    })
      .then((res) => (res.ok ? res.json() : null))
      .catch(() => null)
      .finally(() => renewing.delete(att.attachment_id));
    renewing.set(att.attachment_id, pending);
  }
  const view = await pending;
  if (view?.url) {
    att.url = view.url;
    if (view.thumbnail_url) att.thumbnail_url = view.thumbnail_url;
  }
  return att;
}

// --- showing them -----------------------------------------------------------------------

/** An <img> of an attachment's thumbnail that renews its link once if it expired. */
function thumbnailImg(att) {
  const img = h("img", {
    src: att.thumbnail_url || att.url,
    alt: att.name || label("image"),
    loading: "lazy",
    decoding: "async",
    draggable: false,
  });
  if (att.width && att.height) {
    img.width = Math.min(att.width, 240);
    img.height = Math.round((img.width * att.height) / att.width);
  }
  let renewed = false;
  img.addEventListener("error", async () => {
    if (renewed) return;
    renewed = true;
    await fresh(att, { force: true });
    img.src = att.thumbnail_url || att.url;
  });
  return img;
}

/**
 * The files of a message: image thumbnails that open the lightbox, and a chip with the
 * name and size for a PDF (a download). `extra(att)` may add an element after each one.
 */
export function attachmentsEl(list, { extra } = {}) {
  if (!Array.isArray(list) || !list.length) return null;
  return h(
    "div",
    { class: "atts" },
    list.map((att) => (isImage(att) ? imageEl(att, extra) : fileChip(att, extra))),
  );
}

function imageEl(att, extra) {
  const open = h(
    "button",
    {
      type: "button",
      class: "att-img",
      title: `${label("open_image")}: ${att.name || ""}`,
      dataset: { attachment: att.attachment_id },
      onclick: (ev) => {
        ev.stopPropagation();
        openLightbox(att);
      },
    },
    thumbnailImg(att),
  );
  return extra ? h("div", { class: "att-wrap" }, open, extra(att)) : open;
}

function fileChip(att, extra) {
  const link = h(
    "a",
    {
      class: "att-file",
      href: att.url,
      download: att.name || "",
      rel: "noopener",
      dataset: { attachment: att.attachment_id },
      onclick: async (ev) => {
        ev.stopPropagation();
        if (expiry(att.url) - Date.now() > REFRESH_BEFORE_MS) return; // the link works
        ev.preventDefault();
        await fresh(att);
        link.href = att.url;
        link.click();
      },
    },
    h("span", { class: "att-icon", attrs: { "aria-hidden": "true" }, text: "📄" }),
    h("span", { class: "att-name", text: att.name || label("file") }),
    h("span", { class: "att-size", text: formatSize(att.size) }),
  );
  return extra ? h("div", { class: "att-wrap" }, link, extra(att)) : link;
}

// --- the lightbox -----------------------------------------------------------------------

let lightbox = null;

function makeLightbox() {
  const img = h("img", { class: "lb-img", alt: "" });
  const name = h("span", { class: "lb-name" });
  const download = h("a", { class: "lb-download", rel: "noopener" });
  const close = h("button", { type: "button", class: "lb-close" });
  const dialog = h(
    "dialog",
    { class: "lightbox", attrs: { "aria-label": label("image") } },
    h("div", { class: "lb-bar" }, name, download, close),
    h("div", { class: "lb-stage" }, img),
  );
  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("click", (ev) => {
    if (ev.target === dialog || ev.target.classList.contains("lb-stage")) dialog.close();
  });
  dialog.addEventListener("close", () => img.removeAttribute("src"));
  document.body.appendChild(dialog);
  return { dialog, img, name, download, close };
}

/** Show an image attachment full size (Esc, the ✕ or a click beside it closes). */
export async function openLightbox(att) {
  lightbox ||= makeLightbox();
  const { dialog, img, name, download, close } = lightbox;
  await fresh(att);
  name.textContent = `${att.name || label("image")} · ${formatSize(att.size)}`;
  download.textContent = label("download");
  download.href = att.url;
  download.download = att.name || "";
  close.textContent = "✕";
  close.setAttribute("aria-label", label("close"));
  img.alt = att.name || label("image");
  img.src = att.url;
  if (!dialog.open) dialog.showModal();
  close.focus();
}

export const isLightboxOpen = () => Boolean(lightbox?.dialog.open);
