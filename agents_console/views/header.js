// The top bar: connection state, the agent's status and load, the sound switch, the
// workspace / supervisor tabs and who is signed in.

import { $ } from "/static/shared/dom.js";
import { label } from "/static/shared/labels.js";
import { supervisor } from "../panels.js";
import { beep, unlock } from "../sound.js";
import { S, isSupervisor, selectedChat, t, toggleSound } from "../state.js";
import { initial } from "./customer.js";
import { toast } from "./notifications.js";
import { markRead } from "./transcript.js";

export function renderConnection(state) {
  const el = $("conn-state");
  el.className = `conn-state st-${state}`;
  el.textContent = state === "open" ? t("connected") : state === "connecting" ? t("connecting") : t("reconnecting");
  document.body.classList.toggle("is-offline", state === "reconnecting");
}

export function renderHeader() {
  const st = S.agentState;
  for (const b of $("status-switch").querySelectorAll("button")) {
    const on = b.dataset.status === st.status;
    b.classList.toggle("on", on);
    b.setAttribute("aria-checked", on ? "true" : "false");
    b.querySelector("[data-label]").textContent = label("agentStatus", b.dataset.status, S.lang);
  }
  const load = $("load");
  load.textContent = t("capacity", { active: st.active ?? 0, capacity: st.capacity ?? 0 });
  load.classList.toggle("full", st.capacity > 0 && st.active >= st.capacity);
  $("me-name").textContent = S.me?.name || S.session?.agent?.name || "";
  $("me-avatar").textContent = initial(S.me?.name || S.session?.agent?.name);
  const sound = $("btn-sound");
  sound.textContent = S.sound ? "🔔" : "🔕";
  sound.setAttribute("aria-pressed", S.sound ? "true" : "false");
  sound.title = S.sound ? t("sound_on") : t("sound_off");
  sound.setAttribute("aria-label", sound.title);
  for (const b of $("view-tabs").querySelectorAll("button")) b.setAttribute("aria-selected", b.dataset.view === S.view ? "true" : "false");
}

/** Show the tabs only to supervisors (once the hub said who we are). */
export function renderViewTabs() {
  $("view-tabs").hidden = !isSupervisor();
}

async function setStatus(status) {
  try {
    const state = await S.client.request({ type: "agent.status", status });
    S.agentState = { status: state.status, capacity: state.capacity, active: state.active };
    renderHeader();
  } catch (e) {
    toast(t("error", { msg: e.message }), "error");
  }
}

function setView(view) {
  if (view === "supervisor" && !isSupervisor()) view = "work";
  S.view = view;
  $("work-view").hidden = view !== "work";
  $("supervisor-view").hidden = view !== "supervisor";
  if (view === "supervisor") supervisor.show();
  else {
    supervisor.hide();
    markRead(selectedChat());
  }
  renderHeader();
}

export function wireHeader() {
  $("btn-sound").addEventListener("click", () => {
    toggleSound();
    unlock();
    if (S.sound) beep("message");
    renderHeader();
  });
  for (const b of $("status-switch").querySelectorAll("button")) {
    b.addEventListener("click", () => {
      unlock();
      setStatus(b.dataset.status);
    });
  }
  for (const b of $("view-tabs").querySelectorAll("button")) b.addEventListener("click", () => setView(b.dataset.view));
}
