// A small Pusher protocol 7 client: connection state, reconnects with backoff, channel (re)subscription with
// /pusher/auth for private-* and presence-*, ping/pong, client events, and the service's connection recovery extension
// (docs: issue #31): on a recoverable channel every event carries an `offset` and an `epoch`; after a reconnect the
// channel is subscribed again with `recover: {epoch, offset}` of the last event seen, and the server either replays
// what was missed (`recovery.recovered: true` in the subscribe answer) or says the app must reload by HTTP.

import { post } from "./api.js";

export const STATE_LABELS = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

const PONG_TIMEOUT_MS = 30_000;
const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 15_000;

/** `data` is usually a JSON-encoded string: parsed when it parses, else kept. */
export function parseData(data) {
  if (typeof data !== "string") return data;
  try {
    return JSON.parse(data);
  } catch {
    return data;
  }
}

/** The `{epoch, offset}` of an event frame on a recoverable channel (top-level fields), else null. */
export function framePosition(message) {
  const { epoch, offset } = message ?? {};
  if (typeof epoch !== "string" || !epoch || !Number.isSafeInteger(offset) || offset < 0) return null;
  return { epoch, offset };
}

/** The `recovery` of a subscribe answer (`{recovered, epoch, offset}`), else null (the channel is not recoverable). */
export function answerRecovery(data) {
  const recovery = data && typeof data === "object" ? data.recovery : null;
  const position = framePosition(recovery);
  return position ? { ...position, recovered: recovery.recovered === true } : null;
}

/** Signs a private or presence subscription: {ok, auth, channel_data} or {ok: false, error, status}. */
export async function authorizeChannel(socketId, channelName) {
  const result = await post("/pusher/auth", { socket_id: socketId, channel_name: channelName });
  if (!result.ok || typeof result.data?.auth !== "string") {
    return { ok: false, status: result.status, error: result.error ?? "Channel authorization failed" };
  }
  return { ok: true, auth: result.data.auth, channel_data: result.data.channel_data };
}

export class PusherClient {
  /**
   * @param {object} options
   * @param {string} options.key the app key (`/app/<key>`)
   * @param {string} options.version sent as `version=`
   * @param {(state: string, reason?: string) => void} [options.onStateChange]
   * @param {(socketId: string, channel: string) => Promise<object>} [options.authorize]
   */
  constructor({ key, version, onStateChange = () => {}, authorize = authorizeChannel }) {
    this.key = key;
    this.version = version;
    this.onStateChange = onStateChange;
    this.authorize = authorize;
    /**
     * name → {listener, subscribed, failed, position, asked, established} for every channel wanted: `position` is the
     * `{epoch, offset}` of the last event seen (or of the subscribe answer), `asked` the position the subscribe under
     * way asked to recover from, `established` whether a subscription of this channel ever succeeded.
     */
    this.channels = new Map();
    this.socket = null;
    this.socketId = null;
    this.state = "offline";
    this.stopped = true;
    this.attempts = 0;
    this.activityTimeout = 120;
    this.timers = { activity: 0, pong: 0, reconnect: 0 };
    this.handleOnline = () => {
      if (!this.stopped && !this.socket) this.open("reconnecting");
    };
    this.handleOffline = () => {
      if (this.stopped) return;
      this.dropSocket();
      this.setState("offline", "No network connection");
    };
  }

  connect() {
    if (!this.stopped) return;
    this.stopped = false;
    this.attempts = 0;
    window.addEventListener("online", this.handleOnline);
    window.addEventListener("offline", this.handleOffline);
    this.open("connecting");
  }

  /** Closes for good (sign-out); channels are forgotten. */
  disconnect() {
    this.stopped = true;
    window.removeEventListener("online", this.handleOnline);
    window.removeEventListener("offline", this.handleOffline);
    this.dropSocket();
    this.channels.clear();
    this.setState("offline");
  }

  setState(state, reason = "") {
    this.state = state;
    this.onStateChange(state, reason);
  }

  open(state) {
    this.clearTimer("reconnect");
    this.setState(state);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const url = `${scheme}://${location.host}/app/${encodeURIComponent(this.key)}` +
      `?protocol=7&client=presence-web&version=${encodeURIComponent(this.version)}`;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      this.scheduleReconnect(this.backoffDelay());
      return;
    }
    this.socket = ws;
    ws.addEventListener("message", (event) => this.handleMessage(ws, event.data));
    ws.addEventListener("close", (event) => this.handleClose(ws, event));
  }

  /** Forgets the current socket (its late events are ignored) and closes it. */
  dropSocket() {
    for (const name of ["activity", "pong", "reconnect"]) this.clearTimer(name);
    const ws = this.socket;
    this.socket = null;
    this.socketId = null;
    for (const channel of this.channels.values()) channel.subscribed = false;
    // Closing a socket still connecting makes the browser log an error: let it open, then close it.
    if (ws?.readyState === WebSocket.CONNECTING) ws.addEventListener("open", () => ws.close(1000));
    else if (ws?.readyState === WebSocket.OPEN) ws.close(1000);
  }

  handleClose(ws, event) {
    if (ws !== this.socket) return;
    this.dropSocket();
    if (this.stopped) return;
    const code = event.code;
    if (code >= 4000 && code <= 4099) {
      this.stopped = true;
      window.removeEventListener("online", this.handleOnline);
      window.removeEventListener("offline", this.handleOffline);
      this.setState("offline", event.reason || `Connection refused (${code})`);
    } else if (code >= 4100 && code <= 4199) {
      this.scheduleReconnect(1000);
    } else if (code >= 4200 && code <= 4299) {
      this.scheduleReconnect(Math.random() * 250);
    } else {
      this.scheduleReconnect(this.backoffDelay());
    }
  }

  /** 0.5 s doubling to 15 s, ±30 % jitter; reset on connection_established. */
  backoffDelay() {
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** this.attempts);
    this.attempts += 1;
    return base * (0.7 + Math.random() * 0.6);
  }

  scheduleReconnect(delay) {
    this.setState("reconnecting");
    this.clearTimer("reconnect");
    this.timers.reconnect = setTimeout(() => this.open("reconnecting"), delay);
  }

  clearTimer(name) {
    clearTimeout(this.timers[name]);
    this.timers[name] = 0;
  }

  /** Anything received resets the activity timer; silence → ping; no answer → reconnect. */
  noteActivity() {
    this.clearTimer("activity");
    this.clearTimer("pong");
    this.timers.activity = setTimeout(() => {
      this.send({ event: "pusher:ping", data: {} });
      this.timers.pong = setTimeout(() => {
        this.dropSocket();
        if (!this.stopped) this.scheduleReconnect(this.backoffDelay());
      }, PONG_TIMEOUT_MS);
    }, this.activityTimeout * 1000);
  }

  handleMessage(ws, raw) {
    if (ws !== this.socket) return;
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    if (!message || typeof message.event !== "string") return;
    this.noteActivity();
    const data = parseData(message.data);
    switch (message.event) {
      case "pusher:connection_established":
        this.socketId = data?.socket_id ?? null;
        this.activityTimeout = Number(data?.activity_timeout) > 0 ? Number(data.activity_timeout) : 120;
        this.attempts = 0;
        this.noteActivity();
        this.setState("connected");
        for (const [name, channel] of this.channels) {
          channel.subscribed = false;
          if (!channel.failed) this.sendSubscribe(name);
        }
        return;
      case "pusher:ping":
        this.send({ event: "pusher:pong", data: {} });
        return;
      case "pusher:pong":
      case "pusher:error":
        return;
      default:
        this.dispatch(message, data);
    }
  }

  dispatch(message, data) {
    const channel = message.channel !== undefined ? this.channels.get(message.channel) : undefined;
    if (!channel) return;
    if (message.event === "pusher_internal:subscription_succeeded") {
      channel.subscribed = true;
      channel.listener(message.event, data, message, this.settle(channel, data));
      return;
    }
    if (message.event === "pusher:subscription_error") {
      channel.subscribed = false;
      channel.failed = true;
      channel.asked = null;
    }
    const position = framePosition(message);
    if (position) {
      const last = channel.position;
      // Seen already (a replay overlapping what arrived live, or a duplicate): once is enough.
      if (last && last.epoch === position.epoch && position.offset <= last.offset) return;
      channel.position = position;
    }
    channel.listener(message.event, data, message);
  }

  /**
   * Takes a subscribe answer's `recovery` into the channel's position and says what the subscription is, for the
   * listener (4th argument of `pusher_internal:subscription_succeeded`):
   * - `resubscribed`: an earlier subscription of this channel succeeded (this one follows a reconnect);
   * - `recoverable`: the answer carries `recovery`;
   * - `recovered`: the server replays every event missed since the position asked for, right after this answer;
   * - `reload`: events may have been missed (resubscribed and not recovered): reload by HTTP what the channel feeds.
   */
  settle(channel, data) {
    const recovery = answerRecovery(data);
    const asked = channel.asked;
    channel.asked = null;
    const resubscribed = channel.established;
    channel.established = true;
    const recovered = recovery !== null && recovery.recovered && asked !== null && recovery.epoch === asked.epoch;
    if (!recovery) channel.position = null; // no offsets here: nothing to recover from next time
    // Recovered: the replay (offsets after `asked`) comes next and moves the position on. Otherwise live events go on
    // from the answer's latest offset.
    else if (!recovered) channel.position = { epoch: recovery.epoch, offset: recovery.offset };
    return { resubscribed, recoverable: recovery !== null, recovered, reload: resubscribed && !recovered };
  }

  send(message) {
    if (this.socket?.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  /**
   * Wants `name` from now on (resubscribed after every reconnect, recovering what was missed where it can);
   * `listener(event, data, message, subscription)`, `subscription` only with `pusher_internal:subscription_succeeded`
   * (see `settle`).
   */
  subscribe(name, listener) {
    const channel = { listener, subscribed: false, failed: false, position: null, asked: null, established: false };
    this.channels.set(name, channel);
    if (this.state === "connected") this.sendSubscribe(name);
  }

  async sendSubscribe(name) {
    const channel = this.channels.get(name);
    const ws = this.socket;
    const socketId = this.socketId;
    if (!channel || !ws || !socketId) return;
    const data = { channel: name };
    if (name.startsWith("private-") || name.startsWith("presence-")) {
      const signed = await this.authorize(socketId, name);
      // Reconnected, unsubscribed or subscribed afresh meanwhile: that attempt owns the channel now.
      if (this.socket !== ws || this.socketId !== socketId || this.channels.get(name) !== channel) return;
      if (!signed.ok) {
        channel.failed = true;
        channel.listener("pusher:subscription_error", { type: "AuthError", error: signed.error, status: signed.status }, {});
        return;
      }
      data.auth = signed.auth;
      if (signed.channel_data !== undefined) data.channel_data = signed.channel_data;
    }
    const position = channel.position;
    if (position) data.recover = { epoch: position.epoch, offset: position.offset };
    if (this.send({ event: "pusher:subscribe", data })) channel.asked = position ? { ...position } : null;
  }

  unsubscribe(name) {
    if (!this.channels.delete(name)) return;
    if (this.socketId) this.send({ event: "pusher:unsubscribe", data: { channel: name } });
  }

  isSubscribed(name) {
    return this.state === "connected" && this.channels.get(name)?.subscribed === true;
  }

  /** Sends a client event on a subscribed private or presence channel. */
  trigger(channel, event, data) {
    if (!this.isSubscribed(channel)) return false;
    return this.send({ event, channel, data });
  }
}

/**
 * Renders a connection state into `#connection-status` (text, data-state); the reason of an "offline" goes into its
 * title and, when given, into `reasonEl` as text.
 */
export function showConnectionState(el, state, reason = "", reasonEl = null) {
  if (!el) return;
  el.dataset.state = state;
  el.textContent = STATE_LABELS[state] ?? state;
  if (reason) el.title = reason;
  else el.removeAttribute("title");
  if (reasonEl) {
    reasonEl.textContent = state === "offline" ? reason : "";
    reasonEl.hidden = !(state === "offline" && reason);
  }
}
