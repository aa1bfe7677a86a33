// The user's token: from the embedding app (URL fragment) or, in `supporthub dev`, from
// /api/dev/token; renewed before it expires.

import { api } from "/static/shared/dom.js";
import { forgetUser, params, persist, state } from "./state.js";

const RENEW_BEFORE_MS = 60_000;

function tokenClaims(token) {
  try {
    return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
  } catch {
    return {};
  }
}

const tokenExpiry = (token) => (tokenClaims(token)?.exp || 0) * 1000;

// In production the app that embeds the web chat signs its user in and passes the token
// in the URL fragment (#token=...), which never reaches any server log; /api/dev/token
// exists only in `supporthub dev`.
function takeTokenFromFragment() {
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (!token || tokenExpiry(token) <= Date.now()) return null;
  const claims = tokenClaims(token);
  history.replaceState(null, "", location.pathname + location.search);
  if (state.user && state.user.id !== claims.sub) forgetUser();
  state.token = token;
  state.user = { id: claims.sub, name: claims.name || claims.sub };
  persist();
  return token;
}

export async function ensureToken(force = false) {
  const fromHost = takeTokenFromFragment();
  if (fromHost) return fromHost;
  const wantUser = params.get("user");
  const wantName = params.get("name");
  const sameUser = !wantUser || wantUser === state.user?.id;
  const fresh = state.token && tokenExpiry(state.token) > Date.now() + RENEW_BEFORE_MS;
  if (!force && sameUser && fresh) return state.token;
  const q = new URLSearchParams();
  const userId = wantUser || state.user?.id;
  if (userId) q.set("user", userId);
  if (wantName || state.user?.name) q.set("name", wantName || state.user.name);
  const body = await api(`/api/dev/token?${q}`);
  if (!sameUser || (state.user && state.user.id !== body.user_id)) forgetUser();
  state.token = body.token;
  state.user = { id: body.user_id, name: body.name };
  persist();
  return state.token;
}
