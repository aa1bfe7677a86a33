// The sign-in form (POST /api/agents/login); the session it yields is kept for the tab.

import { $, api } from "/static/shared/dom.js";
import { unlock } from "../sound.js";
import { saveSession, t } from "../state.js";

export function showLogin(message) {
  $("app-view").hidden = true;
  $("login-view").hidden = false;
  const err = $("login-error");
  err.hidden = !message;
  err.textContent = message || "";
  $("login-user").focus();
}

async function login(ev, onSignedIn) {
  ev.preventDefault();
  unlock(); // a user gesture: sound may play from now on
  const button = $("login-submit");
  button.disabled = true;
  try {
    const body = await api("/api/agents/login", {
      method: "POST",
      body: { username: $("login-user").value.trim(), password: $("login-pass").value },
    });
    saveSession({ token: body.token, agent: body.agent || null });
    $("login-pass").value = "";
    onSignedIn();
  } catch (e) {
    showLogin(e.status === 401 ? t("login_failed") : t("login_error"));
  } finally {
    button.disabled = false;
  }
}

/** `onSignedIn` starts the session once the hub accepted the credentials. */
export function wireLogin(onSignedIn) {
  $("login-form").addEventListener("submit", (ev) => login(ev, onSignedIn));
}
