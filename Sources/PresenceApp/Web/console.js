// The operator console: polls /api/console/overview every 2 s (admins only), shows totals, workers, rooms, the support
// queue (/api/support/queue) and Redis nodes, plots requests/s and p99 per worker, and tails a channel's live events.

import { h, byId, setError } from "./dom.js";
import { get, post, describeError, onUnauthorized } from "./api.js";
import { loadSession, clearSession, config } from "./session.js";
import { PusherClient, showConnectionState } from "./pusher.js";
import { bindAuthForm } from "./auth.js";
import { drawPlot, PALETTE } from "./plot.js";

const POLL_MS = 2000;
const WINDOW_MS = 10 * 60 * 1000;
const TAIL_MAX = 100;
const CHANNEL = /^[-a-zA-Z0-9_=@,.;]{1,200}$/;

const el = {
  auth: byId("console-auth"), authError: byId("console-auth-error"), username: byId("console-username"),
  denied: byId("console-denied"), error: byId("console-error"), dashboard: byId("dashboard"),
  account: byId("console-account"), whoami: byId("console-whoami"), signout: byId("console-signout"),
  totals: byId("totals"), updated: byId("console-updated"), workers: byId("workers").tBodies[0],
  rooms: byId("rooms-table").tBodies[0], roomsEmpty: byId("rooms-empty"),
  queue: byId("queue-table").tBodies[0], queueEmpty: byId("queue-empty"), nodes: byId("redis-nodes").tBodies[0],
  legend: byId("plot-legend"), rps: byId("plot-rps"), p99: byId("plot-p99"),
  status: byId("connection-status"), tailForm: byId("tail-form"), tailChannel: byId("tail-channel"),
  tailStart: byId("tail-start"), tailStop: byId("tail-stop"), tailError: byId("tail-error"),
  tailStatus: byId("tail-status"), tailEvents: byId("tail-events"),
};

let session = null;
let pollTimer = 0;
let generation = 0; // bumped on every sign-in/out so a late poll answer is dropped
let latest = null;
let pusher = null;
let tailing = null;

// Formatting ---------------------------------------------------------------------------------------------------
const fixed = (value, digits = 1) => (Number.isFinite(Number(value)) && value !== null ? Number(value).toFixed(digits) : "—");
const count = (value) => (Number.isFinite(Number(value)) ? Number(value).toLocaleString() : "—");

function duration(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  if (d) return `${d} d ${hh} h`;
  if (hh) return `${hh} h ${mm} min`;
  if (mm) return `${mm} min ${s % 60} s`;
  return `${s} s`;
}

function ago(now, then) {
  const seconds = Math.max(0, Math.round((Number(now) - Number(then)) / 1000));
  return Number.isFinite(seconds) ? `${seconds} s ago` : "—";
}

function row(attrs, cells) {
  return h("tr", attrs, cells.map((cell, i) => h(i === 0 ? "th" : "td", i === 0 ? { scope: "row" } : {}, cell)));
}

// Rendering ----------------------------------------------------------------------------------------------------
function renderTotals(data) {
  const t = data.totals ?? {};
  const items = [
    ["workers", "Workers", count(t.workers)],
    ["sockets", "Open sockets", count(t.sockets)],
    ["rooms", "Occupied rooms", count(t.rooms)],
    ["present", "People present", count(t.present)],
    ["leavesPerMinute", "Sweeper leaves / min", count(t.leavesPerMinute)],
    ["rejectionsPerMinute", "Limiter rejections / min", count(t.rejectionsPerMinute)],
    ["version", "Version", String(data.version ?? "—")],
  ];
  el.totals.replaceChildren(...items.flatMap(([key, name, value]) =>
    [h("dt", {}, name), h("dd", { dataset: { total: key } }, value)]));
  el.updated.textContent = `Updated ${new Date(Number(data.now) || Date.now()).toLocaleTimeString()}`;
}

function renderWorkers(data, workers) {
  el.workers.replaceChildren(...workers.map((w) => row({ dataset: { workerId: w.id } }, [
    w.id, `${w.host}:${w.port}`, String(w.version ?? "—"), duration(w.uptimeSeconds), count(w.sockets),
    count(w.subscriptions), fixed(w.requestsPerSecond), fixed(w.p99Ms), fixed(w.redisLatencyMs, 2),
    ago(data.now, w.announcedAt),
  ])));
}

function renderRooms(data) {
  const rooms = Array.isArray(data.rooms) ? data.rooms : [];
  el.rooms.replaceChildren(...rooms.map((r) => row({ dataset: { roomId: r.id } }, [r.id, count(r.userCount)])));
  el.roomsEmpty.hidden = rooms.length > 0;
}

// GET /api/support/queue: open tickets with a customer waiting and no agent present, longest wait first.
function renderQueue(tickets) {
  const list = Array.isArray(tickets) ? tickets : [];
  el.queue.replaceChildren(...list.map((t) => row({ dataset: { ticketId: String(t.ticketId) } }, [
    String(t.ticketId), t.customer ?? "—", duration(Number(t.waitMs) / 1000), t.assignedAgentId ?? "—",
    t.unattended ? "yes" : "no",
  ])));
  el.queueEmpty.hidden = list.length > 0;
}

function renderNodes(data) {
  const nodes = Array.isArray(data.redis?.nodes) ? data.redis.nodes : [];
  el.nodes.replaceChildren(...nodes.map((n) => row({ dataset: { address: n.address } }, [
    n.address, n.role, fixed(Number(n.usedMemoryBytes) / 1048576), count(n.opsPerSecond), count(n.connectedClients),
  ])));
}

function renderPlots() {
  if (!latest) return;
  const { data, workers } = latest;
  const tMax = Number(data.now) || Date.now();
  const tMin = tMax - WINDOW_MS;
  const colour = (i) => PALETTE[i % PALETTE.length];
  const history = (w) => (Array.isArray(w.history) ? w.history : []);
  drawPlot(el.rps, { tMin, tMax, series: workers.map((w, i) => ({ color: colour(i), points: history(w).map((p) => [p.t, p.rps]) })) });
  drawPlot(el.p99, { tMin, tMax, series: workers.map((w, i) => ({ color: colour(i), points: history(w).map((p) => [p.t, p.p99Ms]) })) });
  const summary = (field) => (workers.length ? workers.map((w) => `${w.id} ${fixed(w[field])}`).join(", ") : "no workers");
  el.rps.setAttribute("aria-label", `Requests per second, last 10 minutes: ${summary("requestsPerSecond")}`);
  el.p99.setAttribute("aria-label", `p99 latency in ms, last 10 minutes: ${summary("p99Ms")}`);
  el.legend.replaceChildren(...workers.map((w, i) =>
    h("li", { dataset: { workerId: w.id } }, h("span", { class: `swatch c${i % PALETTE.length}`, "aria-hidden": "true" }),
      `${w.id} (${w.host}:${w.port})`)));
}

function render(data) {
  const workers = (Array.isArray(data.workers) ? data.workers : [])
    .filter((w) => w && typeof w.id === "string")
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  latest = { data, workers };
  renderTotals(data);
  renderWorkers(data, workers);
  renderRooms(data);
  renderNodes(data);
  el.dashboard.hidden = false;
  renderPlots();
}

// Polling and access -------------------------------------------------------------------------------------------
function stopPolling() {
  clearTimeout(pollTimer);
  pollTimer = 0;
  generation += 1;
}

async function poll(current) {
  const result = await get("/api/console/overview");
  if (current !== generation) return;
  if (result.status === 401) return; // onUnauthorized shows the sign-in form
  if (result.status === 403) {
    showDenied();
    return;
  }
  if (result.ok && result.data) {
    setError(el.error, "");
    render(result.data);
    const queue = await get("/api/support/queue");
    if (current !== generation) return;
    if (queue.ok && queue.data) renderQueue(queue.data.tickets);
  } else {
    setError(el.error, `${describeError(result)} · trying again`);
  }
  pollTimer = setTimeout(() => poll(current), POLL_MS);
}

function showDenied() {
  stopPolling();
  stopTail();
  latest = null;
  el.dashboard.hidden = true;
  setError(el.error, "");
  el.denied.textContent = `Admins only: ${session?.username ?? "you"} is not an admin.`;
  el.denied.hidden = false;
}

function showSignIn(message = "") {
  stopPolling();
  stopTail();
  pusher?.disconnect();
  session = null;
  latest = null;
  el.dashboard.hidden = true;
  el.denied.hidden = true;
  el.account.hidden = true;
  setError(el.error, "");
  el.auth.hidden = false;
  setError(el.authError, message);
  el.username.focus();
}

function start(current) {
  session = current;
  el.auth.hidden = true;
  el.denied.hidden = true;
  el.whoami.textContent = current.username;
  el.account.hidden = false;
  stopPolling();
  poll(generation);
}

onUnauthorized(() => showSignIn(session ? "Your session has ended. Please sign in again." : ""));

bindAuthForm({
  form: byId("console-auth-form"),
  username: el.username,
  password: byId("console-password"),
  error: el.authError,
  loginButton: byId("console-login"),
  onSignedIn: start,
});

el.signout.addEventListener("click", async () => {
  el.signout.disabled = true;
  await post("/api/auth/logout", {});
  el.signout.disabled = false;
  clearSession();
  showSignIn();
});

// Plots follow their size.
if ("ResizeObserver" in window) new ResizeObserver(() => renderPlots()).observe(el.rps);
window.addEventListener("resize", () => renderPlots());

// Live event tail ----------------------------------------------------------------------------------------------
function stopTail() {
  if (tailing && pusher) pusher.unsubscribe(tailing);
  tailing = null;
  el.tailStop.disabled = true;
  el.tailStatus.textContent = "Not tailing.";
}

function addTailEvent(event, data, message) {
  let text;
  try {
    text = typeof data === "string" ? data : JSON.stringify(data);
  } catch {
    text = String(data);
  }
  const user = typeof message?.user_id === "string" ? ` (from ${message.user_id})` : "";
  el.tailEvents.prepend(h("li", {},
    h("time", { class: "tail-time", datetime: new Date().toISOString() }, new Date().toLocaleTimeString()),
    h("span", { class: "tail-event" }, `${event}${user}`),
    h("code", { class: "tail-data" }, text ?? "null")));
  while (el.tailEvents.children.length > TAIL_MAX) el.tailEvents.lastElementChild.remove();
}

function startTail(name) {
  if (!CHANNEL.test(name)) {
    setError(el.tailError, "A channel name is 1–200 of the characters a-z A-Z 0-9 - _ = @ , . ;");
    return;
  }
  if (name.startsWith("presence-")) {
    setError(el.tailError, "Presence channels can't be tailed: subscribing would make you present there.");
    return;
  }
  setError(el.tailError, "");
  stopTail();
  if (!pusher) {
    pusher = new PusherClient({
      key: config.pusherKey, version: config.version,
      onStateChange: (state, reason) => showConnectionState(el.status, state, reason),
    });
  }
  pusher.connect();
  tailing = name;
  el.tailEvents.replaceChildren();
  el.tailStop.disabled = false;
  el.tailStatus.textContent = `Subscribing to ${name}…`;
  pusher.subscribe(name, (event, data, message) => {
    if (tailing !== name) return;
    if (event === "pusher:subscription_error") {
      setError(el.tailError, `Can't tail ${name}: ${data?.error ?? "refused"}${data?.status ? ` (${data.status})` : ""}`);
      el.tailStatus.textContent = "Not tailing.";
      return;
    }
    if (event === "pusher_internal:subscription_succeeded") {
      el.tailStatus.textContent = `Tailing ${name}.`;
      return;
    }
    addTailEvent(event, data, message);
  });
}

el.tailForm.addEventListener("submit", (event) => {
  event.preventDefault();
  startTail(el.tailChannel.value.trim());
});
el.tailStop.addEventListener("click", () => stopTail());

showConnectionState(el.status, "offline");
const stored = loadSession();
if (stored) start(stored);
else showSignIn();
