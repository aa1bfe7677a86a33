// The secure code box of an identity check: shown when a security agent asks for one
// (`verify.challenge`), apart from the chat composer so that the code never goes into the
// chat. It sends `verify.submit` and shows the outcome; every device of the user shows the
// same box and hears the same `verify.result`.

import { $, clock, h, mount } from "/static/shared/dom.js";
import { persist, state, t } from "../state.js";

let expiryTimer = null;

/** `verify.challenge`: a code is on its way to the user's phone. */
export function onChallenge(f) {
  state.verify = {
    challengeId: f.challenge_id,
    conversationId: f.conversation_id,
    expiresAt: f.expires_at,
    attemptsLeft: f.attempts_left,
    phase: "pending",
  };
  persist();
  renderVerify();
  $("verify-code")?.focus();
}

/** `verify.result` (or the ack of our own submit, which carries the same fields). */
export function onResult(f) {
  const check = state.verify;
  if (!check || check.challengeId !== f.challenge_id || check.phase === "passed") return;
  if (f.ok) Object.assign(check, { phase: "passed", wrong: false });
  else if (f.reason === "wrong_code") Object.assign(check, { attemptsLeft: f.attempts_left, wrong: true });
  else Object.assign(check, { phase: "failed", reason: f.reason });
  persist();
  renderVerify();
}

export function renderVerify() {
  const box = $("verify-box");
  const check = state.verify;
  clearTimeout(expiryTimer);
  if (!check) {
    box.hidden = true;
    mount(box);
    return;
  }
  box.hidden = false;
  box.dataset.phase = check.phase;
  const title = h("h2", { id: "verify-title", text: `🔒 ${t("verify_title")}` });
  if (check.phase === "pending") {
    mount(box, title, pendingForm(check));
    expireLater(check);
  } else {
    mount(box, title, outcome(check));
  }
}

function pendingForm(check) {
  const typed = $("verify-code")?.value || "";
  const input = h("input", {
    id: "verify-code",
    type: "text",
    value: check.wrong ? "" : typed,
    attrs: {
      inputmode: "numeric",
      autocomplete: "one-time-code",
      maxlength: 8,
      pattern: "[0-9 ]*",
      spellcheck: "false",
      "aria-label": t("verify_code"),
      "aria-describedby": "verify-lead",
    },
  });
  const error = check.wrong ? t("verify_wrong", { n: check.attemptsLeft }) : "";
  return [
    h("p", { id: "verify-lead", class: "verify-lead", text: t("verify_lead") }),
    h(
      "form",
      { id: "verify-form", class: "verify-form", onsubmit: submit },
      input,
      h("button", { id: "verify-submit", class: "btn primary", type: "submit", text: t("verify_submit") }),
    ),
    h("p", { id: "verify-error", class: "form-error", role: "alert", hidden: !error, text: error }),
    h("p", { class: "verify-expiry", text: t("verify_expires", { time: clock(check.expiresAt) }) }),
  ];
}

function outcome(check) {
  const passed = check.phase === "passed";
  return [
    h("p", {
      id: passed ? "verify-ok" : "verify-failed",
      class: passed ? "verify-ok" : "form-error",
      role: "status",
      text: passed ? `✓ ${t("verify_ok")}` : t(`verify_${check.reason}`),
    }),
    h("button", { id: "verify-close", class: "btn ghost", type: "button", text: t("verify_close"), onclick: close }),
  ];
}

async function submit(ev) {
  ev.preventDefault();
  const check = state.verify;
  const code = $("verify-code").value.trim();
  if (!code) {
    showError(t("verify_empty"));
    return;
  }
  $("verify-submit").disabled = true;
  try {
    onResult(await state.client.request({ type: "verify.submit", challenge_id: check.challengeId, code }));
  } catch (e) {
    showError(e.message || t("error_generic"));
  } finally {
    const button = $("verify-submit");
    if (button) button.disabled = false;
  }
  $("verify-code")?.focus();
}

function showError(text) {
  const error = $("verify-error");
  error.textContent = text;
  error.hidden = false;
}

/** The code's time is up: say so without waiting for a submit. */
function expireLater(check) {
  const left = Date.parse(check.expiresAt) - Date.now();
  if (!Number.isFinite(left)) return;
  expiryTimer = setTimeout(() => onResult({ challenge_id: check.challengeId, ok: false, reason: "expired" }), Math.max(0, left));
}

function close() {
  state.verify = null;
  persist();
  renderVerify();
}
