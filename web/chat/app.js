// The Portcullis chat demo page: sign in through the built-in identity provider (authorization
// code + PKCE S256), open a WebSocket to /chat, chat, and explain every failure in plain words.
//
// Chat happens in rooms: the backend subscribes each connection to the gateway topic
// room:lobby, /join NAME to room:NAME, and publishes a message to its room's topic only.
// /msg USER TEXT is pushed to the user (every connection of theirs). Next to the WebSocket, a
// cookie-mode page listens to Server-Sent Events (EventSource on /chat/events) for its
// notifications panel: direct messages and announcements, with what it missed while it was
// reconnecting replayed by the gateway (Last-Event-ID).
//
// Three ways to sign in, chosen before signing in:
//   token  - the tokens stay in this module's memory only; the access token travels in the
//            Sec-WebSocket-Protocol list next to "chat.v1". A reload means signing in again.
//   cookie - POST /pools/main/session exchanges the code and sets HttpOnly cookies; the page only
//            ever sees the CSRF value, which it sends back (?csrf= on the WebSocket URL,
//            X-CSRF-Token on refresh and logout).
//   amplify - AWS Amplify v6 (vendor/amplify-auth.js, bundled from web/amplify) signs in on this
//            page with SRP against the Cognito JSON API and keeps the tokens in memory (as token
//            mode, refreshed and revoked through Amplify).
// sessionStorage holds the PKCE verifier and state across the redirect to the sign-in page and
// nothing else; they are deleted as soon as the page comes back.

const POOL = "/pools/main";
const CLIENT_ID = "web";
// The pool's id as the Cognito clients know it: {region of [management]}_{pool} (examples/demo.toml).
const USER_POOL_ID = "us-east-1_main";
const BASE_SCOPES = ["openid", "email", "profile", "chat/write"];
const ANNOUNCE_SCOPE = "chat/announce";
const SUBPROTOCOL = "chat.v1";
const PKCE_KEY = "portcullis-demo.pkce";
const CSRF_COOKIE = "portcullis_csrf";
const HEALTH_URL = "/api/health";
const EVENTS_URL = "/chat/events"; // Server-Sent Events of the WebSocket API (sse = true)
const LOBBY = "lobby";
const ROOM_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const MAX_NOTIFICATIONS = 100;
const BACKOFF_S = [1, 2, 4, 8, 15, 30]; // reconnect delays; the last one repeats
const REFRESH_LEAD_MS = 60_000; // refresh this long before the access token expires...
const REFRESH_LEAD_FRACTION = 0.2; // ...or this share of its lifetime when that is shorter
const SIGN_OUT_CLOSE_WAIT_MS = 5_000; // how long to wait for the gateway's 1008 after sign-out
const MAX_MESSAGES = 500;

// The callback URL is this page's own directory (http://host/demo/).
const REDIRECT_URI = new URL(".", location.href).href;

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("status"),
  alert: $("alert"),
  signedOutPanel: $("signed-out-panel"),
  signInForm: $("sign-in-form"),
  signIn: $("sign-in"),
  modeToken: $("mode-token"),
  modeCookie: $("mode-cookie"),
  modeAmplify: $("mode-amplify"),
  amplifyFields: $("amplify-fields"),
  amplifyUsername: $("amplify-username"),
  amplifyPassword: $("amplify-password"),
  scopeAnnounce: $("scope-announce"),
  chatPanel: $("chat-panel"),
  sessionInfo: $("session-info"),
  messages: $("messages"),
  composer: $("composer"),
  input: $("message-input"),
  send: $("send"),
  announce: $("announce"),
  whoami: $("whoami"),
  whoamiResult: $("whoami-result"),
  signOut: $("sign-out"),
  room: $("room"),
  notifications: $("notifications"),
  notificationsStatus: $("notifications-status"),
};

// ---- state -------------------------------------------------------------------------------------

/**
 * The signed-in session, or null.
 * token mode:  {mode, username, scopes, expiresAt, access, refresh}
 * cookie mode: {mode, username, scopes, expiresAt, csrf}
 */
let session = null;
let ws = null; // the current WebSocket (stale sockets' events are ignored)
let reconnectAttempt = 0;
let reconnectTimer = null;
let countdownTimer = null;
let refreshTimer = null;
let refreshing = null; // the refresh in flight, shared by everyone who asks
let refusedHandshakes = 0; // handshakes refused in a row while gateway, backend and token looked fine
let signOutWaiter = null; // set while sign-out waits for the gateway to close the socket
let lastAction = null; // the action of the last message sent, to explain a "Forbidden" frame
let alertKind = null; // "connectivity" alerts disappear by themselves once connected again
let room = LOBBY; // the room this page's messages go to
let events = null; // the EventSource of the notifications panel (cookie mode only)
let lastEventId = ""; // the last notification's id, to resume a stream opened anew

class GatewayDown extends Error {}

// ---- small helpers -----------------------------------------------------------------------------

function setStatus(state, text) {
  ui.status.dataset.state = state;
  ui.status.textContent = text;
}

function showAlert(text, kind = "error", link = null) {
  alertKind = kind;
  ui.alert.replaceChildren(text);
  if (link) {
    const a = document.createElement("a");
    a.href = link.href;
    a.textContent = link.text;
    ui.alert.append(" ", a);
  }
}

function clearAlert(kind = null) {
  if (kind === null || alertKind === kind) {
    ui.alert.replaceChildren();
    alertKind = null;
  }
}

function describeClose(ev) {
  return ev.reason ? `${ev.code} ${ev.reason}` : `${ev.code}`;
}

function readCookie(name) {
  for (const part of document.cookie.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      return decodeURIComponent(part.slice(eq + 1).trim());
    }
  }
  return "";
}

function csrfToken() {
  return readCookie(CSRF_COOKIE) || session?.csrf || "";
}

function scopeList(value) {
  if (Array.isArray(value)) return value.map(String);
  return typeof value === "string" ? value.split(/\s+/).filter(Boolean) : [];
}

function inMinutes(ms) {
  const min = Math.round((ms - Date.now()) / 60_000);
  if (min > 1) return `in ${min} minutes`;
  if (min === 1) return "in 1 minute";
  if (ms > Date.now()) return "in less than a minute";
  return "already expired";
}

/** POSTs a form; returns {ok, status, body (parsed JSON or null)}; throws GatewayDown. */
async function postForm(path, fields, headers = {}) {
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", ...headers },
      body: new URLSearchParams(fields),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new GatewayDown();
  }
  const text = await response.text().catch(() => "");
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  return { ok: response.ok, status: response.status, body };
}

function oauthError(result) {
  const b = result.body || {};
  return b.error_description || b.error || b.message || `HTTP ${result.status}`;
}

// ---- PKCE ----------------------------------------------------------------------------------------

function base64url(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(bytes = 32) {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

async function sha256(text) {
  const data = new TextEncoder().encode(text);
  // WebCrypto only exists in secure contexts (https, localhost, 127.0.0.1); a demo opened over
  // plain http on another host name still needs S256, hence the fallback.
  if (globalThis.crypto?.subtle) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  }
  return sha256Fallback(data);
}

const SHA256_K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

function sha256Fallback(data) {
  const ror = (x, n) => (x >>> n) | (x << (32 - n));
  const h = new Uint32Array([
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
  ]);
  const total = Math.ceil((data.length + 9) / 64) * 64;
  const buf = new Uint8Array(total);
  buf.set(data);
  buf[data.length] = 0x80;
  const view = new DataView(buf.buffer);
  view.setUint32(total - 8, Math.floor(data.length / 0x20000000));
  view.setUint32(total - 4, (data.length * 8) >>> 0);
  const w = new Uint32Array(64);
  for (let off = 0; off < total; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + SHA256_K[i] + w[i]) >>> 0;
      const t2 = ((ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) >>> 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) >>> 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }
  const out = new Uint8Array(32);
  const outView = new DataView(out.buffer);
  h.forEach((v, i) => outView.setUint32(i * 4, v));
  return out;
}

// ---- sessions ------------------------------------------------------------------------------------

function jwtClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = part + "=".repeat((4 - (part.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return {};
  }
}

/** A token-mode session from a token endpoint answer (keeps `previous`'s refresh token). */
function tokenSession(tokens, previous = null) {
  const claims = jwtClaims(tokens.access_token);
  const expiresAt = Number(claims.exp) > 0
    ? Number(claims.exp) * 1000
    : Date.now() + Number(tokens.expires_in || 3600) * 1000;
  return {
    mode: "token",
    username: claims.username || claims["cognito:username"] || claims.sub || "?",
    scopes: scopeList(claims.scope || tokens.scope),
    expiresAt,
    access: tokens.access_token,
    refresh: tokens.refresh_token || previous?.refresh || null,
  };
}

/** A cookie-mode session from a /pools/main/session answer. */
function cookieSession(info) {
  return {
    mode: "cookie",
    username: info.username || "?",
    scopes: scopeList(info.scope),
    expiresAt: Date.now() + Number(info.expires_in || 3600) * 1000,
    csrf: info.csrf || "",
  };
}

function describeSession() {
  if (!session) return;
  const how = session.amplify
    ? "Amplify (SRP), tokens in memory (reloading the page signs you out)"
    : session.mode === "token"
      ? "token in memory (reloading the page signs you out)"
      : "HttpOnly cookie session (the page never sees the token)";
  ui.sessionInfo.textContent =
    `Signed in as ${session.username} with ${how}. Scopes: ${session.scopes.join(" ") || "(none)"}. ` +
    `Access token expires ${inMinutes(session.expiresAt)}; the page refreshes it before then.`;
}

/**
 * Refreshes the access token. Resolves true when it worked, false when the session is over
 * (refresh token revoked or expired); throws GatewayDown when Portcullis is not reachable.
 */
function refreshSession() {
  if (refreshing) return refreshing;
  const s = session;
  refreshing = (async () => {
    if (!s) return false;
    let result;
    if (s.amplify) {
      result = await amplifyRefresh(s);
    } else if (s.mode === "token") {
      if (!s.refresh) return false;
      result = await postForm(`${POOL}/oauth2/token`, {
        grant_type: "refresh_token",
        client_id: CLIENT_ID,
        refresh_token: s.refresh,
      });
      if (result.ok && result.body?.access_token && session === s) {
        Object.assign(s, tokenSession(result.body, s));
      }
    } else {
      result = await postForm(
        `${POOL}/session/refresh`,
        { client_id: CLIENT_ID },
        { "X-CSRF-Token": csrfToken() },
      );
      if (result.ok && result.body && session === s) {
        Object.assign(s, cookieSession({ ...result.body, csrf: result.body.csrf || s.csrf }));
      }
    }
    if (result.ok) {
      describeSession();
      return true;
    }
    if (result.status >= 500) throw new GatewayDown(`HTTP ${result.status}`);
    return false;
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  if (!session) return;
  const s = session;
  const lifetime = s.expiresAt - Date.now();
  const lead = Math.min(REFRESH_LEAD_MS, lifetime * REFRESH_LEAD_FRACTION);
  const delay = Math.min(Math.max(lifetime - lead, 1_000), 2 ** 31 - 1);
  refreshTimer = setTimeout(async () => {
    if (session !== s) return;
    try {
      if (await refreshSession()) {
        scheduleRefresh();
      } else if (session === s) {
        sessionEnded("Your session ended (the gateway no longer accepts its refresh token). Sign in again.");
      }
    } catch {
      // Portcullis is not reachable right now: try again a little later.
      if (session === s) refreshTimer = setTimeout(scheduleRefresh, 10_000);
    }
  }, delay);
}

// ---- page states -----------------------------------------------------------------------------------

function showSignedOut(statusText = "Signed out") {
  ui.chatPanel.hidden = true;
  ui.signedOutPanel.hidden = false;
  ui.signIn.disabled = false;
  setStatus("signed-out", statusText);
}

function enableChat(connected) {
  ui.send.disabled = !connected;
  ui.announce.disabled = !connected;
  ui.whoami.disabled = !connected;
}

function startSession() {
  ui.messages.replaceChildren();
  ui.notifications.replaceChildren();
  lastEventId = "";
  setRoom(LOBBY); // a new connection starts in the lobby
  resetWhoami();
  ui.signedOutPanel.hidden = true;
  ui.chatPanel.hidden = false;
  describeSession();
  scheduleRefresh();
  reconnectAttempt = 0;
  refusedHandshakes = 0;
  connect();
  openNotifications();
  ui.input.focus();
}

/** Forgets everything about the session (tokens included) and stops all timers. */
function endSession() {
  session = null;
  closeNotifications();
  clearTimeout(refreshTimer);
  clearTimeout(reconnectTimer);
  clearInterval(countdownTimer);
  refreshTimer = reconnectTimer = countdownTimer = null;
  if (ws) {
    const old = ws;
    ws = null;
    if (old.readyState === WebSocket.OPEN || old.readyState === WebSocket.CONNECTING) {
      old.close(1000, "Signed out");
    }
  }
  enableChat(false);
  resetWhoami();
}

/** The session is over without the user asking: say so and go back to the sign-in form. */
function sessionEnded(alertText, statusText = "Signed out") {
  endSession();
  showSignedOut(statusText);
  showAlert(alertText, "session");
}

// ---- the WebSocket -----------------------------------------------------------------------------------

function chatUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/chat`;
}

function connect() {
  clearTimeout(reconnectTimer);
  clearInterval(countdownTimer);
  if (!session) return;
  setStatus("connecting", reconnectAttempt ? "Reconnecting…" : "Connecting…");
  let socket;
  try {
    socket = session.mode === "token"
      ? new WebSocket(chatUrl(), [SUBPROTOCOL, session.access])
      : new WebSocket(`${chatUrl()}?csrf=${encodeURIComponent(csrfToken())}`, [SUBPROTOCOL]);
  } catch (e) {
    setStatus("closed", `Could not open a WebSocket: ${e.message}`);
    return;
  }
  ws = socket;
  let opened = false;
  socket.addEventListener("open", () => {
    if (ws !== socket) return;
    opened = true;
    reconnectAttempt = 0;
    refusedHandshakes = 0;
    clearAlert("connectivity");
    setStatus("connected", `Connected as ${session.username}`);
    enableChat(true);
    if (!events) openNotifications(); // stopped while the session was refreshed
  });
  socket.addEventListener("message", (ev) => {
    if (ws === socket) handleFrame(ev.data);
  });
  socket.addEventListener("close", (ev) => {
    if (ws !== socket) return;
    ws = null;
    enableChat(false);
    onSocketClosed(ev, opened);
  });
  // An "error" event carries no detail (the browser hides why a handshake failed); the "close"
  // event that always follows does the explaining.
}

function onSocketClosed(ev, opened) {
  const closed = describeClose(ev);
  if (signOutWaiter) {
    signOutWaiter(closed);
    return;
  }
  if (!session) return;
  if (ev.code === 1008 && /revoked/i.test(ev.reason)) {
    sessionEnded(
      `Signed out: the gateway closed the connection (${closed}).`,
      `Signed out (the gateway closed the connection: ${closed})`,
    );
    return;
  }
  setStatus("closed", `Closed (${closed})`);
  recover(ev, opened);
}

/** "ok", "backend-down" (the gateway answers but its backend does not) or "gateway-down". */
async function checkHealth() {
  try {
    const r = await fetch(HEALTH_URL, { cache: "no-store", credentials: "same-origin" });
    return r.status >= 500 ? "backend-down" : "ok";
  } catch {
    return "gateway-down";
  }
}

const GATEWAY_DOWN_TEXT =
  "Portcullis is not reachable (is the gateway running?). This page keeps trying to reconnect.";
const BACKEND_DOWN_TEXT =
  "Portcullis is up, but the chat backend is not answering. This page keeps trying to reconnect.";

/** Works out why the socket went away, fixes what the page can fix, and reconnects. */
async function recover(ev, opened) {
  const s = session;
  const health = await checkHealth();
  if (session !== s || !s) return;
  if (health === "gateway-down") {
    showAlert(GATEWAY_DOWN_TEXT, "connectivity");
    scheduleReconnect(ev);
    return;
  }
  if (health === "backend-down") {
    showAlert(BACKEND_DOWN_TEXT, "connectivity");
    scheduleReconnect(ev);
    return;
  }
  // Gateway and backend are up. A refused handshake or a policy close is then about the token:
  // expired (refresh it), or revoked (the refresh fails too, and the session is over).
  const tokenSuspect = !opened || ev.code === 1008 || s.expiresAt - Date.now() < 30_000;
  if (tokenSuspect) {
    let refreshed;
    try {
      refreshed = await refreshSession();
    } catch {
      if (session !== s) return;
      showAlert(GATEWAY_DOWN_TEXT, "connectivity");
      scheduleReconnect(ev);
      return;
    }
    if (session !== s) return;
    if (!refreshed) {
      sessionEnded("Your session ended (the sign-in expired or was revoked). Sign in again.");
      return;
    }
    scheduleRefresh();
    if (!opened && ++refusedHandshakes >= 3) {
      showAlert(
        "The gateway keeps refusing the WebSocket although the sign-in is valid. Is this page " +
          "open at Portcullis's public URL (the WebSocket's Origin is checked)?",
        "connectivity",
      );
    }
  }
  scheduleReconnect(ev);
}

function scheduleReconnect(ev) {
  if (!session) return;
  const delay = BACKOFF_S[Math.min(reconnectAttempt, BACKOFF_S.length - 1)];
  reconnectAttempt += 1;
  const deadline = Date.now() + delay * 1000;
  const prefix = ev ? `Closed (${describeClose(ev)}). ` : "";
  const tick = () => {
    const left = Math.ceil((deadline - Date.now()) / 1000);
    if (left > 0) setStatus("closed", `${prefix}Reconnecting in ${left} s…`);
  };
  tick();
  clearInterval(countdownTimer);
  countdownTimer = setInterval(tick, 250);
  clearTimeout(reconnectTimer);
  reconnectTimer = setTimeout(connect, delay * 1000);
}

// ---- frames ---------------------------------------------------------------------------------------------

function handleFrame(data) {
  if (typeof data !== "string") {
    addMessage({ kind: "system", text: "(a binary frame)" });
    return;
  }
  let msg;
  try {
    msg = JSON.parse(data);
  } catch {
    msg = null;
  }
  if (!msg || typeof msg !== "object" || Array.isArray(msg)) {
    addMessage({ kind: "message", text: data }); // plain text from an older backend
    return;
  }
  switch (msg.type) {
    case "message":
      addMessage({ kind: "message", from: msg.from, text: msg.text, at: msg.at, room: msg.room });
      return;
    case "direct":
      addMessage({ kind: "direct", from: msg.from, text: msg.text, at: msg.at });
      return;
    case "direct-sent":
      addMessage({ kind: "direct", to: msg.to, text: msg.text, at: msg.at, note: receiptNote(msg) });
      return;
    case "joined":
    case "left":
      setRoom(msg.type === "joined" ? msg.room : LOBBY);
      return;
    case "announcement":
      addMessage({ kind: "announcement", from: msg.from, text: msg.text, at: msg.at });
      return;
    case "system":
      addMessage({ kind: "system", text: msg.text, at: msg.at, room: msg.room });
      return;
    case "whoami":
      showWhoami(msg);
      return;
    default:
      break;
  }
  if (msg.routeKey === "whoami" && msg.connectionId) {
    showWhoami(msg);
    return;
  }
  if (msg.message === "Forbidden") {
    if (lastAction === "announce") {
      // The route needs the scope (asked for at sign-in) and the group admins (granted by an
      // administrator); the page knows its scopes, so it can tell which one is missing.
      showAlert(
        session?.scopes.includes(ANNOUNCE_SCOPE)
          ? "Not allowed: only members of the admins group may post announcements."
          : "Not allowed: your sign-in did not grant the chat/announce scope.",
        "forbidden",
      );
    } else if (["sendmessage", "direct", "join", "leave"].includes(lastAction)) {
      showAlert("Not allowed: your sign-in did not grant the chat/write scope.", "forbidden");
    } else {
      showAlert("Not allowed: the gateway refused that message (Forbidden).", "forbidden");
    }
    return;
  }
  if (msg.message === "Internal server error") {
    showAlert(
      "The chat backend could not handle that message (Internal server error). Try again in a moment.",
      "backend",
    );
    checkHealth().then((h) => {
      if (h === "backend-down") showAlert(BACKEND_DOWN_TEXT, "backend");
    });
    return;
  }
  if (typeof msg.message === "string") {
    addMessage({ kind: "system", text: `Gateway: ${msg.message}` });
    return;
  }
  addMessage({ kind: "system", text: data });
}

/** What the sender of a direct message learns from the gateway's {"connections": N}. */
function receiptNote(msg) {
  const n = Number(msg.connections);
  if (n === 0) return `${msg.to} has nothing open right now; it waits for their next visit`;
  return `delivered to ${n} ${n === 1 ? "connection" : "connections"}`;
}

function setRoom(name) {
  room = name;
  ui.room.textContent = `#${name}`;
}

function addMessage({ kind, from, to, text, at, room: inRoom, note }) {
  const li = document.createElement("li");
  li.className = `msg ${kind}`;
  if ((from && session && from === session.username) || to) li.classList.add("mine");
  const when = at ? new Date(at) : new Date();
  const time = document.createElement("time");
  if (!Number.isNaN(when.getTime())) {
    time.dateTime = when.toISOString();
    time.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  li.append(time);
  if (kind === "announcement") {
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = "Announcement";
    li.append(" ", badge);
  }
  if (inRoom && inRoom !== LOBBY) {
    const tag = document.createElement("span");
    tag.className = "room-tag";
    tag.textContent = `#${inRoom}`;
    li.append(" ", tag);
  }
  if (kind === "direct") {
    const who = document.createElement("strong");
    who.className = "from";
    who.textContent = to ? `you → ${to}` : `${from} → you`;
    li.append(" ", who, ":");
  } else if (from) {
    const who = document.createElement("strong");
    who.className = "from";
    who.textContent = from;
    li.append(" ", who, ":");
  }
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = String(text ?? "");
  li.append(" ", body);
  if (note) {
    const small = document.createElement("span");
    small.className = "room-tag";
    small.textContent = `(${note})`;
    li.append(" ", small);
  }
  ui.messages.append(li);
  while (ui.messages.children.length > MAX_MESSAGES) ui.messages.firstElementChild.remove();
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

function resetWhoami() {
  const p = document.createElement("p");
  p.className = "help";
  p.textContent =
    "Press “Who am I?”: the backend answers with the requestContext.authorizer the gateway gave it.";
  ui.whoamiResult.replaceChildren(p);
}

function showWhoami(msg) {
  const auth = msg.authorizer || {};
  const claims = auth.jwt?.claims || auth.claims || {};
  const scopes = scopeList(auth.jwt?.scopes?.length ? auth.jwt.scopes : claims.scope);
  const exp = Number(claims.exp);
  const rows = [
    ["Username", claims.username || claims["cognito:username"] || auth.principalId || "(anonymous)"],
    ["Connection id", msg.connectionId || "?"],
    ["Principal id", auth.principalId || "(none)"],
    ["Client id", claims.client_id || "(none)"],
    ["Scopes", scopes.join(" ") || "(none)"],
    [
      "Token expires",
      exp > 0 ? `${new Date(exp * 1000).toLocaleString()} (${inMinutes(exp * 1000)})` : "(unknown)",
    ],
  ];
  if (msg.identity?.sourceIp) rows.push(["Source IP", msg.identity.sourceIp]);
  const dl = document.createElement("dl");
  for (const [name, value] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = String(value);
    dl.append(dt, dd);
  }
  ui.whoamiResult.replaceChildren(dl);
}

function sendAction(action, data, extra = {}) {
  if (!ws || ws.readyState !== WebSocket.OPEN) {
    showAlert("Not connected right now; wait until the status says “Connected”.", "send");
    return false;
  }
  if (alertKind === "forbidden" || alertKind === "send" || alertKind === "backend") clearAlert();
  lastAction = action;
  ws.send(JSON.stringify(data === undefined ? { action, ...extra } : { action, data, ...extra }));
  return true;
}

const COMMAND_HELP = "Commands: /join ROOM, /leave, /msg USER TEXT.";

/** A line starting with "/": returns true when it was sent (the input is then cleared). */
function runCommand(line) {
  const [command, first = ""] = line.split(/\s+/, 2);
  switch (command.toLowerCase()) {
    case "/join": {
      const name = first.replace(/^#/, "");
      if (!ROOM_NAME.test(name)) {
        showAlert("A room name is 1 to 64 letters, digits, “.”, “_” or “-”: /join ROOM.", "send");
        return false;
      }
      return sendAction("join", undefined, { room: name });
    }
    case "/leave":
      if (room === LOBBY) {
        addMessage({ kind: "system", text: "You are in #lobby, where everyone is; /join ROOM to go elsewhere." });
        return true;
      }
      return sendAction("leave", undefined, { room });
    case "/msg": {
      const text = line.replace(/^\S+\s+\S+\s*/, "");
      if (!first || !text) {
        showAlert("Usage: /msg USER TEXT", "send");
        return false;
      }
      return sendAction("direct", text, { to: first });
    }
    default:
      showAlert(`Unknown command ${command}. ${COMMAND_HELP}`, "send");
      return false;
  }
}

function sendFromInput(action) {
  const text = ui.input.value.trim();
  if (!text) {
    ui.input.focus();
    return;
  }
  const sent = action === "sendmessage" && text.startsWith("/")
    ? runCommand(text)
    : sendAction(action, text, action === "sendmessage" ? { room } : {});
  if (sent) ui.input.value = "";
  ui.input.focus();
}

// ---- notifications (Server-Sent Events) ---------------------------------------------------------

function setNotificationsStatus(state, text) {
  ui.notificationsStatus.dataset.state = state;
  ui.notificationsStatus.textContent = text;
}

/**
 * Opens the notifications stream: EventSource on /chat/events with the cookie session (the
 * gateway checks the CSRF echo as for the WebSocket). EventSource reconnects by itself and
 * sends the last event id it saw; the gateway replays the direct messages missed meanwhile.
 */
function openNotifications() {
  closeNotifications();
  if (!session) return;
  if (session.mode !== "cookie") {
    setNotificationsStatus(
      "off",
      "Notifications arrive over Server-Sent Events with the HttpOnly cookie session; " +
        "EventSource cannot send a token, so this token-mode tab gets them in the chat only.",
    );
    return;
  }
  // A stream opened anew (not EventSource's own reconnection) resumes with ?lastEventId=.
  const query = new URLSearchParams({ csrf: csrfToken() });
  if (lastEventId) query.set("lastEventId", lastEventId);
  const source = new EventSource(`${EVENTS_URL}?${query}`);
  events = source;
  setNotificationsStatus("connecting", "Notifications: connecting…");
  source.addEventListener("connected", (ev) => {
    if (events !== source) return;
    let id = "";
    try {
      id = JSON.parse(ev.data).connectionId || "";
    } catch {
      id = "";
    }
    ui.notificationsStatus.dataset.connectionId = id;
    setNotificationsStatus("live", "Notifications: live over Server-Sent Events.");
  });
  source.addEventListener("message", (ev) => {
    if (events === source) addNotification(ev.data, ev.lastEventId);
  });
  source.addEventListener("close", (ev) => {
    if (events !== source) return;
    let code = 0;
    try {
      code = Number(JSON.parse(ev.data).code);
    } catch {
      code = 0;
    }
    // Revoked: asking again would be refused. Anything else: EventSource reconnects by itself
    // with the last id it saw, and the gateway replays what it missed.
    if (code === 1008) {
      closeNotifications();
      setNotificationsStatus("closed", "Notifications: stopped (the session was signed out).");
    }
  });
  source.addEventListener("binary", (ev) => {
    if (events === source) addNotification(null, ev.lastEventId);
  });
  source.addEventListener("reset", () => {
    if (events !== source) return;
    addNotification(
      JSON.stringify({ type: "note", text: "Some notifications came while this page was away and are too old to show." }),
      "",
    );
  });
  source.addEventListener("error", () => {
    if (events !== source) return;
    if (source.readyState === EventSource.CLOSED) {
      // Refused (the session ended or the access cookie expired): the next WebSocket
      // connection, after a refresh, opens it again.
      events = null;
      setNotificationsStatus("closed", "Notifications: stopped; they resume when the chat reconnects.");
    } else {
      setNotificationsStatus("reconnecting", "Notifications: reconnecting; what comes meanwhile follows.");
    }
  });
}

function closeNotifications() {
  if (events) events.close();
  events = null;
  delete ui.notificationsStatus.dataset.connectionId;
}

function addNotification(data, id) {
  if (id) lastEventId = id;
  let msg = null;
  try {
    msg = data === null ? null : JSON.parse(data);
  } catch {
    msg = null;
  }
  const li = document.createElement("li");
  li.dataset.eventId = id || "";
  const at = msg?.at ? new Date(msg.at) : new Date();
  const time = document.createElement("time");
  if (!Number.isNaN(at.getTime())) {
    time.dateTime = at.toISOString();
    time.textContent = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  const what = document.createElement("strong");
  if (msg?.type === "direct") {
    li.className = "direct";
    what.textContent = `Direct message from ${msg.from}:`;
  } else if (msg?.type === "announcement") {
    li.className = "announcement";
    what.textContent = `Announcement from ${msg.from}:`;
  } else {
    li.className = "note";
  }
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = msg && typeof msg === "object" ? String(msg.text ?? "") : data === null ? "(binary data)" : data;
  li.append(time, " ", what, " ", text);
  ui.notifications.prepend(li);
  while (ui.notifications.children.length > MAX_NOTIFICATIONS) ui.notifications.lastElementChild.remove();
}

// ---- sign in and out ------------------------------------------------------------------------------------

/** Fetches the discovery document; warns when the page is not open at the public URL. */
async function checkGateway() {
  let r;
  try {
    r = await fetch(`${POOL}/.well-known/openid-configuration`, { cache: "no-store" });
  } catch {
    showAlert(GATEWAY_DOWN_TEXT.replace(" This page keeps trying to reconnect.", " Try again in a moment."), "connectivity");
    return false;
  }
  if (!r.ok) return true;
  try {
    const issuer = new URL((await r.json()).issuer);
    if (issuer.origin !== location.origin) {
      const there = new URL(location.pathname, issuer.origin).href;
      showAlert(
        `This page is open at ${location.origin}, but Portcullis's public URL is ${issuer.origin}: ` +
          "the sign-in would return there and the WebSocket would be refused here.",
        "origin",
        { href: there, text: `Open ${there}` },
      );
    }
  } catch {
    // Not JSON or no issuer: nothing to compare.
  }
  return true;
}

// ---- Sign in with Amplify -------------------------------------------------------------------------

/** The username and password fields belong to the Amplify sign-in only. */
function showModeFields() {
  ui.amplifyFields.hidden = !ui.modeAmplify.checked;
  ui.scopeAnnounce.disabled = ui.modeAmplify.checked;
}

/** Amplify's error in words: its name (Cognito's exception) and message. */
function amplifyError(err) {
  const name = err?.name || "Error";
  if (name === "NotAuthorizedException") return "wrong username or password";
  if (name === "TooManyRequestsException") return "too many attempts; wait a moment";
  return `${name}: ${err?.message || "no details"}`;
}

let amplifyModule = null;

async function loadAmplify() {
  if (!amplifyModule) {
    amplifyModule = await import("./vendor/amplify-auth.js");
    amplifyModule.configure(location.origin, USER_POOL_ID, CLIENT_ID);
  }
  return amplifyModule;
}

/** A token-mode session from Amplify's tokens, refreshed and revoked through `amplify`. */
function amplifySession(amplify, tokens, previous = null) {
  const s = tokenSession({ access_token: tokens.accessToken.toString() }, previous);
  s.amplify = amplify;
  return s;
}

async function amplifySignIn() {
  const username = ui.amplifyUsername.value.trim();
  const password = ui.amplifyPassword.value;
  if (!username || !password) {
    showAlert("Enter your username and password to sign in with Amplify.");
    return;
  }
  setStatus("connecting", "Signing in with Amplify…");
  let amplify;
  try {
    amplify = await loadAmplify();
  } catch {
    showSignedOut();
    showAlert("The Amplify library (vendor/amplify-auth.js) could not be loaded. Reload the page.");
    return;
  }
  let tokens;
  try {
    // A sign-in the gateway ended (revoked, expired) may still sit in Amplify's memory.
    await amplify.signOut().catch(() => {});
    const result = await amplify.signIn({ username, password });
    if (!result.isSignedIn) {
      showSignedOut();
      showAlert(
        `Amplify needs another step (${result.nextStep?.signInStep}), which this page does not ` +
          "handle: sign in with \"Token in memory\" once to complete it.",
      );
      return;
    }
    tokens = (await amplify.fetchAuthSession()).tokens;
  } catch (err) {
    showSignedOut();
    showAlert(`Sign-in with Amplify failed: ${amplifyError(err)}.`);
    return;
  } finally {
    ui.amplifyPassword.value = "";
  }
  if (!tokens?.accessToken) {
    showSignedOut();
    showAlert("Sign-in with Amplify returned no access token. Sign in again.");
    return;
  }
  session = amplifySession(amplify, tokens);
  startSession();
}

/** refreshSession's Amplify branch, answering as postForm does. */
async function amplifyRefresh(s) {
  try {
    const tokens = (await s.amplify.fetchAuthSession({ forceRefresh: true })).tokens;
    if (!tokens?.accessToken) return { ok: false, status: 400 };
    if (session === s) Object.assign(s, amplifySession(s.amplify, tokens, s));
    return { ok: true, status: 200 };
  } catch (err) {
    if (err?.name === "NetworkError" || err instanceof TypeError) throw new GatewayDown(String(err));
    return { ok: false, status: 400 };
  }
}

/** signOut's Amplify branch: RevokeToken ends the sign-in session (and its sockets). */
async function amplifySignOut(s) {
  try {
    await s.amplify.signOut();
    return { ok: true, status: 200 };
  } catch (err) {
    if (err?.name === "NetworkError" || err instanceof TypeError) throw err;
    return { ok: false, status: 400, body: { error: err?.name || "error" } };
  }
}

async function startSignIn(ev) {
  ev.preventDefault();
  clearAlert();
  ui.signIn.disabled = true;
  try {
    if (!(await checkGateway())) return;
    if (ui.modeAmplify.checked) {
      await amplifySignIn();
      return;
    }
    const mode = ui.modeCookie.checked ? "cookie" : "token";
    const scopes = [...BASE_SCOPES];
    if (ui.scopeAnnounce.checked) scopes.push(ANNOUNCE_SCOPE);
    const state = randomString();
    const verifier = randomString(48);
    const challenge = base64url(await sha256(verifier));
    sessionStorage.setItem(PKCE_KEY, JSON.stringify({ state, verifier, mode }));
    const query = new URLSearchParams({
      response_type: "code",
      client_id: CLIENT_ID,
      redirect_uri: REDIRECT_URI,
      scope: scopes.join(" "),
      state,
      code_challenge: challenge,
      code_challenge_method: "S256",
    });
    location.assign(`${POOL}/oauth2/authorize?${query}`);
  } finally {
    // Re-enabled in case the navigation does not happen (or the page comes back from bfcache).
    setTimeout(() => {
      ui.signIn.disabled = false;
    }, 2_000);
  }
}

/** The sign-in page sent the browser back here with ?code=&state= (or ?error=). */
async function finishSignIn(params) {
  const saved = sessionStorage.getItem(PKCE_KEY);
  sessionStorage.removeItem(PKCE_KEY);
  history.replaceState(null, "", location.pathname); // the code is single-use; drop it from the URL
  showSignedOut();
  if (params.get("error") === "access_denied") {
    // Cancel on the sign-in page: the user changed their mind, nothing went wrong.
    setStatus("signed-out", "Signed out (sign-in cancelled)");
    return;
  }
  if (params.has("error")) {
    showAlert(`Sign-in did not complete: ${params.get("error_description") || params.get("error")}.`);
    return;
  }
  let pending = null;
  try {
    pending = saved ? JSON.parse(saved) : null;
  } catch {
    pending = null;
  }
  if (!pending?.state || !pending?.verifier) {
    showAlert("This sign-in answer was not started from this tab (or it was already used). Sign in again.");
    return;
  }
  if (params.get("state") !== pending.state) {
    showAlert("The sign-in answer does not match this tab's request (state mismatch). Sign in again.");
    return;
  }
  ui.modeCookie.checked = pending.mode === "cookie";
  ui.modeToken.checked = pending.mode !== "cookie";
  setStatus("connecting", "Signing in…");
  const fields = {
    grant_type: "authorization_code",
    client_id: CLIENT_ID,
    code: params.get("code") || "",
    redirect_uri: REDIRECT_URI,
    code_verifier: pending.verifier,
  };
  let result;
  try {
    result = await postForm(pending.mode === "cookie" ? `${POOL}/session` : `${POOL}/oauth2/token`, fields);
  } catch {
    showSignedOut();
    showAlert(GATEWAY_DOWN_TEXT.replace(" This page keeps trying to reconnect.", " Sign in again once it is back."));
    return;
  }
  if (!result.ok || !result.body) {
    showSignedOut();
    showAlert(`Sign-in failed: ${oauthError(result)}. Sign in again.`);
    return;
  }
  if (pending.mode === "cookie") {
    session = cookieSession(result.body);
  } else {
    if (!result.body.access_token) {
      showSignedOut();
      showAlert("Sign-in failed: the token endpoint returned no access token. Sign in again.");
      return;
    }
    session = tokenSession(result.body);
  }
  startSession();
}

/**
 * After a reload: an HttpOnly cookie session may still be there (token mode never survives).
 * Portcullis sets the readable CSRF cookie together with the session and clears it at sign-out,
 * so without it there is no session to ask about: a signed-out visit sends no request (and
 * logs no 401). With it, GET /session describes the session; when only the access cookie has
 * expired (it lives as long as one access token), POST /session/refresh revives the session.
 */
async function resumeCookieSession() {
  if (!readCookie(CSRF_COOKIE)) return false;
  const unreachable = () => {
    showAlert(GATEWAY_DOWN_TEXT.replace(" This page keeps trying to reconnect.", " Reload the page once it is back."), "connectivity");
    return false;
  };
  let r;
  try {
    r = await fetch(`${POOL}/session`, { cache: "no-store", credentials: "same-origin" });
  } catch {
    return unreachable();
  }
  let info = r.ok ? await r.json().catch(() => null) : null;
  if (r.status === 401) {
    let result;
    try {
      result = await postForm(`${POOL}/session/refresh`, { client_id: CLIENT_ID }, { "X-CSRF-Token": csrfToken() });
    } catch {
      return unreachable();
    }
    if (!result.ok) {
      // Portcullis cleared the cookies with this answer: the next visit asks nothing.
      showAlert("Your previous session has ended (it expired or was signed out elsewhere). Sign in again.", "session");
      return false;
    }
    info = result.body;
  }
  if (!info?.username) return false;
  session = cookieSession(info);
  ui.modeCookie.checked = true;
  startSession();
  return true;
}

function waitForClose(ms) {
  const socket = ws;
  if (!socket || socket.readyState === WebSocket.CLOSED) return Promise.resolve(null);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signOutWaiter = null;
      resolve(null);
    }, ms);
    signOutWaiter = (closed) => {
      clearTimeout(timer);
      signOutWaiter = null;
      resolve(closed);
    };
  });
}

async function signOut() {
  const s = session;
  if (!s) return;
  clearAlert();
  ui.signOut.disabled = true;
  clearTimeout(refreshTimer);
  clearTimeout(reconnectTimer);
  clearInterval(countdownTimer);
  const socketWasOpen = ws !== null;
  closeNotifications(); // the sign-out ends the stream; EventSource must not ask again
  const closed = waitForClose(SIGN_OUT_CLOSE_WAIT_MS);
  setStatus(ui.status.dataset.state, "Signing out…");
  let problem = null;
  try {
    const result = s.amplify
      ? await amplifySignOut(s)
      : s.mode === "token"
      // Revoking the refresh token ends the whole sign-in session; the gateway then closes every
      // WebSocket opened with its access tokens (1008 Token revoked).
      ? await postForm(`${POOL}/oauth2/revoke`, { token: s.refresh || "", client_id: CLIENT_ID })
      : await postForm(`${POOL}/session/logout`, { client_id: CLIENT_ID }, { "X-CSRF-Token": csrfToken() });
    if (!result.ok) problem = `Portcullis did not confirm the sign-out (${oauthError(result)}).`;
  } catch {
    problem = "Portcullis is not reachable, so the session could not be revoked there.";
  }
  const closedBy = socketWasOpen && !problem ? await closed : null;
  signOutWaiter = null;
  endSession(); // forgets the tokens; closes the socket itself if the gateway has not
  ui.signOut.disabled = false;
  showSignedOut(
    closedBy
      ? `Signed out. The gateway closed the connection (${closedBy}).`
      : "Signed out.",
  );
  if (problem) showAlert(problem, "session");
}

// ---- wiring --------------------------------------------------------------------------------------------------

ui.signInForm.addEventListener("submit", startSignIn);
for (const radio of [ui.modeToken, ui.modeCookie, ui.modeAmplify]) {
  radio.addEventListener("change", showModeFields);
}
ui.composer.addEventListener("submit", (ev) => {
  ev.preventDefault();
  sendFromInput("sendmessage");
});
ui.announce.addEventListener("click", () => sendFromInput("announce"));
ui.whoami.addEventListener("click", () => {
  if (sendAction("whoami")) {
    const p = document.createElement("p");
    p.className = "help";
    p.textContent = "Asking…";
    ui.whoamiResult.replaceChildren(p);
  }
});
ui.signOut.addEventListener("click", signOut);
// Back online: do not wait for the rest of the backoff.
window.addEventListener("online", () => {
  if (session && !ws && reconnectTimer) connect();
});

async function main() {
  // A reload may bring the form back with "Sign in with Amplify" still chosen.
  showModeFields();
  const params = new URLSearchParams(location.search);
  if (params.has("code") || params.has("error")) {
    await finishSignIn(params);
    return;
  }
  // A verifier left over from a sign-in that never came back is of no use to anyone.
  sessionStorage.removeItem(PKCE_KEY);
  showSignedOut();
  if (await resumeCookieSession()) return;
  await checkGateway();
}

main();
