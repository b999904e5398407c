// The chat page: sign-in, then rooms, search, the room view and support tickets over one realtime connection.

import { byId, setError } from "./dom.js";
import { post, describeError, onUnauthorized } from "./api.js";
import { loadSession, clearSession, config } from "./session.js";
import { PusherClient, showConnectionState } from "./pusher.js";
import { bindAuthForm } from "./auth.js";
import { createRoomList } from "./rooms.js";
import { createChat } from "./chat.js";
import { createSearch } from "./search.js";
import { createSupport } from "./support.js";

const el = {
  authView: byId("auth-view"), appView: byId("app-view"), authError: byId("auth-error"),
  username: byId("auth-username"), whoami: byId("whoami"), signout: byId("signout-button"),
  status: byId("connection-status"), reason: byId("connection-reason"), welcome: byId("welcome"), roomView: byId("room-view"),
  ticketView: byId("ticket-view"), searchError: byId("search-error"),
};

let session = null;
const me = () => session?.username ?? "";

// Back after a drop, each channel's subscribe answer says whether the events missed meanwhile are replayed (connection
// recovery) or must be reloaded: the room list, the room view and the ticket view each reload only then.
const pusher = new PusherClient({
  key: config.pusherKey,
  version: config.version,
  onStateChange(state, reason) {
    showConnectionState(el.status, state, reason, el.reason);
  },
});

/** One of "welcome", "room", "ticket" fills the main area. */
function showMain(view) {
  el.welcome.hidden = view !== "welcome";
  el.roomView.hidden = view !== "room";
  el.ticketView.hidden = view !== "ticket";
}

const rooms = createRoomList({
  list: byId("room-list"),
  error: byId("room-list-error"),
  pusher,
  onEnter: (room) => chat.enter(room),
  onRoomGone: (id) => chat.roomGone(id),
});

const chat = createChat({
  pusher, config, rooms, me, showMain,
  beforeEnter: () => support.leave({ show: false }),
});

const support = createSupport({
  pusher, config, me, showMain,
  beforeJoin: () => chat.leave(),
});

const search = createSearch({
  input: byId("user-search"),
  results: byId("search-results"),
  status: byId("search-status"),
  error: el.searchError,
  me,
  async onMessage(other, button) {
    button.disabled = true;
    const result = await post("/api/rooms", { name: `${me()} & ${other}`, type: "private", members: [other] });
    button.disabled = false;
    if (!result.ok) {
      if (result.status !== 401) setError(el.searchError, describeError(result));
      return;
    }
    const room = rooms.upsert(result.data?.room);
    if (room) chat.enter(room);
  },
});

function showAuth(message = "") {
  el.appView.hidden = true;
  el.authView.hidden = false;
  setError(el.authError, message);
  el.username.focus();
}

/** Tears the signed-in state down (no requests). */
function teardown() {
  pusher.disconnect();
  chat.reset();
  support.reset();
  rooms.reset();
  search.reset();
  session = null;
}

async function showApp(current) {
  session = current;
  const result = await rooms.load();
  if (!result.ok && result.status === 401) return; // onUnauthorized shows the sign-in form
  el.whoami.textContent = current.username;
  el.authView.hidden = true;
  el.appView.hidden = false;
  showMain("welcome");
  pusher.connect();
  rooms.start(current.username);
}

async function signOut() {
  el.signout.disabled = true;
  await chat.leave();
  await support.leave();
  await post("/api/auth/logout", {});
  clearSession();
  teardown();
  el.signout.disabled = false;
  showAuth();
}

onUnauthorized(() => {
  const wasSignedIn = session !== null;
  teardown();
  showAuth(wasSignedIn ? "Your session has ended. Please sign in again." : "");
});

bindAuthForm({
  form: byId("auth-form"),
  username: el.username,
  password: byId("auth-password"),
  error: el.authError,
  loginButton: byId("login-button"),
  registerButton: byId("register-button"),
  onSignedIn: (current) => showApp(current),
});

el.signout.addEventListener("click", () => signOut());

window.addEventListener("pagehide", () => {
  chat.leaveOnUnload();
  support.leaveOnUnload();
});
// Restored from the back/forward cache after pagehide left the rooms: start again from a clean page.
window.addEventListener("pageshow", (event) => {
  if (event.persisted && session) location.reload();
});

showConnectionState(el.status, "offline");
const stored = loadSession();
if (stored) showApp(stored);
else showAuth();
