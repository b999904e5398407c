// "alice and bob are typing…": who is typing in a room, rendered as text with data-users (sorted, comma-separated).

export function typingText(users) {
  if (users.length === 0) return "";
  if (users.length === 1) return `${users[0]} is typing…`;
  if (users.length <= 3) return `${users.slice(0, -1).join(", ")} and ${users.at(-1)} are typing…`;
  return `${users.length} people are typing…`;
}

export class TypingIndicator {
  /**
   * @param {HTMLElement} el where the text goes
   * @param {object} options
   * @param {number|null} options.ttlMs an entry lapses this long after its last `typing: true` (null: never)
   * @param {() => string} options.me the signed-in user, never shown as typing
   */
  constructor(el, { ttlMs = 5000, me = () => "" } = {}) {
    this.el = el;
    this.ttlMs = ttlMs;
    this.me = me;
    this.timers = new Map(); // user → timeout id (0 when it never lapses)
    this.render();
  }

  set(user, typing) {
    if (typeof user !== "string" || !user || user === this.me()) return;
    clearTimeout(this.timers.get(user));
    if (typing) {
      const timer = this.ttlMs ? setTimeout(() => this.set(user, false), this.ttlMs) : 0;
      this.timers.set(user, timer);
    } else {
      this.timers.delete(user);
    }
    this.render();
  }

  clear() {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.render();
  }

  render() {
    const users = [...this.timers.keys()].sort();
    this.el.dataset.users = users.join(",");
    this.el.textContent = typingText(users);
  }
}

/**
 * Sends "I am typing" at most every 2 s while the user types, and "stopped" after 3 s idle or on send.
 * `send(typing)` does the sending (a client event, or a POST); it returns false when nothing could go out (the channel
 * is not subscribed yet): the next keystroke, or `retry()` once it is, sends it then.
 */
export class TypingSender {
  constructor(send, { every = 2000, idle = 3000 } = {}) {
    this.sendFn = send;
    this.every = every;
    this.idle = idle;
    this.lastSent = 0;
    this.active = false;
    this.idleTimer = 0;
  }

  /** Call on each input. */
  typed() {
    const now = Date.now();
    if (now - this.lastSent >= this.every) this.sendTyping(now);
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.stop(), this.idle);
  }

  sendTyping(now) {
    if (this.sendFn(true) === false) return;
    this.lastSent = now;
    this.active = true;
  }

  /** The way to send is there now (subscribed): "I am typing" if the user is typing and it did not go out. */
  retry() {
    if (this.idleTimer && !this.active) this.sendTyping(Date.now());
  }

  /** Call on send (and when leaving): one `false` if a `true` went out. */
  stop() {
    clearTimeout(this.idleTimer);
    this.idleTimer = 0;
    if (!this.active) return;
    this.active = false;
    this.lastSent = 0;
    this.sendFn(false);
  }

  /** Forget without sending (the room is gone). */
  reset() {
    clearTimeout(this.idleTimer);
    this.idleTimer = 0;
    this.active = false;
    this.lastSent = 0;
  }
}
