// Who the page calls the API as: an API key entered once (kept in this browser), or, where the
// deployment configures sign-in (config.json "signIn"), the ID token of an OpenID Connect sign-in
// (authorization code with PKCE: no secret in the page, the code is useless without the verifier).

import { loadConfig } from "./config.js";

const KEY = "strata.apiKey";
const SESSION = "strata.session"; // {idToken, refreshToken, expiresAt}
const PENDING = "strata.signIn"; // {state, verifier} while the browser is at the sign-in page
const EXPIRY_MARGIN_MS = 60_000;

export function storedKey() {
  return localStorage.getItem(KEY) || "";
}

export function saveKey(key) {
  localStorage.setItem(KEY, key.trim());
}

export function forgetCredentials() {
  localStorage.removeItem(KEY);
  sessionStorage.removeItem(SESSION);
}

// The local stack prints a link with the key in the fragment, which never reaches a server log.
export function takeKeyFromAddress() {
  const key = new URLSearchParams(location.hash.slice(1)).get("key");
  if (!key) return false;
  saveKey(key);
  history.replaceState(null, "", location.pathname + location.search);
  return true;
}

function session() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION)) || null;
  } catch {
    return null;
  }
}

export function signedIn() {
  return session() !== null;
}

// Who the stored credentials are ("key:<id>" or "user:<sub>"): the conversation kept in the
// browser belongs to them, and another key or user does not see it.
export function identity() {
  const current = session();
  if (current) return `user:${claims(current.idToken).sub || ""}`;
  const key = /^sk-strata-([a-z0-9]+)-/.exec(storedKey());
  return key ? `key:${key[1]}` : storedKey() ? "key:?" : "";
}

// The Authorization header's value, or null when the page has no credentials.
export async function authorization() {
  let current = session();
  if (current && Date.now() > current.expiresAt - EXPIRY_MARGIN_MS) current = await refreshOnce(current);
  if (current) return `Bearer ${current.idToken}`;
  const key = storedKey();
  return key ? `Bearer ${key}` : null;
}

// Calls made while a token expires share one refresh (a refresh token may be good for one use).
let refreshing = null;
function refreshOnce(current) {
  refreshing ??= refresh(current).finally(() => { refreshing = null; });
  return refreshing;
}

async function endpoints(signIn) {
  const issuer = signIn.issuer.replace(/\/+$/, "");
  const response = await fetch(`${issuer}/.well-known/openid-configuration`);
  if (!response.ok) throw new Error(`The sign-in service answered ${response.status}.`);
  return response.json();
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function redirectUri() {
  return `${location.origin}${location.pathname}`;
}

export async function startSignIn() {
  const { signIn } = await loadConfig();
  const discovery = await endpoints(signIn);
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem(PENDING, JSON.stringify({ state, verifier }));
  const url = new URL(discovery.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: signIn.clientId,
    redirect_uri: redirectUri(),
    scope: signIn.scopes || "openid",
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
  }).toString();
  location.assign(url.toString());
}

// Back from the sign-in page (?code=…&state=…): exchange the code for tokens. Returns true when
// this load completed a sign-in; throws when it failed.
export async function completeSignIn() {
  const params = new URLSearchParams(location.search);
  if (!params.has("code") && !params.has("error")) return false;
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, "", location.pathname);
  if (params.has("error")) throw new Error(params.get("error_description") || params.get("error"));
  if (!pending || pending.state !== params.get("state")) throw new Error("The sign-in answer did not match this page's request.");
  const { signIn } = await loadConfig();
  const discovery = await endpoints(signIn);
  const tokens = await tokenRequest(discovery.token_endpoint, {
    grant_type: "authorization_code",
    client_id: signIn.clientId,
    code: params.get("code"),
    redirect_uri: redirectUri(),
    code_verifier: pending.verifier,
  });
  storeSession(tokens);
  return true;
}

// A new ID token; the session ends only when the issuer refuses the refresh token (a network
// failure keeps it, and the call goes out with the token it has).
async function refresh(current) {
  if (!current.refreshToken) {
    sessionStorage.removeItem(SESSION);
    return null;
  }
  try {
    const { signIn } = await loadConfig();
    const discovery = await endpoints(signIn);
    const tokens = await tokenRequest(discovery.token_endpoint, {
      grant_type: "refresh_token",
      client_id: signIn.clientId,
      refresh_token: current.refreshToken,
    });
    return storeSession({ refresh_token: current.refreshToken, ...tokens });
  } catch (error) {
    if (error.code !== "invalid_grant") return current;
    sessionStorage.removeItem(SESSION);
    return null;
  }
}

async function tokenRequest(endpoint, form) {
  const response = await fetch(endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok || !body.id_token) {
    throw Object.assign(new Error(body.error_description || body.error || "The sign-in failed."), { code: body.error });
  }
  return body;
}

// The page sends the ID token, so the session lasts as long as that token does (its exp), not
// as long as the access token (expires_in).
function storeSession(tokens) {
  const exp = Number(claims(tokens.id_token).exp);
  const current = {
    idToken: tokens.id_token,
    refreshToken: tokens.refresh_token || null,
    expiresAt: exp ? exp * 1000 : Date.now() + Number(tokens.expires_in || 3600) * 1000,
  };
  sessionStorage.setItem(SESSION, JSON.stringify(current));
  return current;
}

// A JWT's claims, read (not verified: the API verifies it) for its subject and expiry.
function claims(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload.padEnd(Math.ceil(payload.length / 4) * 4, "=")));
  } catch {
    return {};
  }
}
