// Ryo's limiter as the page knows it from the RateLimit headers: "4 of 5 asks left · next frees in 42 s", counting
// down each second; the ask button is disabled while no asks are left (or an ask is under way).

export class RyoStatus {
  constructor(statusEl, button) {
    this.el = statusEl;
    this.button = button;
    this.remaining = null;
    this.quota = null;
    this.reset = 0;
    this.pending = false;
    this.timer = 0;
    this.render();
  }

  /** Takes the limiter state from a ryo-reply result. */
  update(result) {
    const rate = result.rate ?? {};
    if (rate.quota !== null && rate.quota !== undefined) this.quota = rate.quota;
    if (result.status === 429) {
      this.remaining = 0;
      this.reset = rate.retryAfter ?? rate.reset ?? 1;
    } else if (rate.remaining !== null && rate.remaining !== undefined) {
      this.remaining = rate.remaining;
      this.reset = rate.reset ?? 0;
    }
    this.restartCountdown();
    this.render();
  }

  setPending(pending) {
    this.pending = pending;
    this.button.setAttribute("aria-busy", pending ? "true" : "false");
    this.render();
  }

  restartCountdown() {
    clearInterval(this.timer);
    this.timer = 0;
    if (this.reset > 0) this.timer = setInterval(() => this.tick(), 1000);
  }

  tick() {
    this.reset = Math.max(0, this.reset - 1);
    if (this.reset === 0) {
      clearInterval(this.timer);
      this.timer = 0;
      // The oldest counted ask has left the window: one more is free.
      if (this.remaining !== null && (this.quota === null || this.remaining < this.quota)) this.remaining += 1;
    }
    this.render();
  }

  get blocked() {
    return this.remaining === 0;
  }

  render() {
    this.button.disabled = this.pending || this.blocked;
    if (this.remaining === null) {
      delete this.el.dataset.remaining;
      delete this.el.dataset.reset;
      this.el.textContent = this.pending ? "Ryo is thinking…" : "Ryo answers questions about this room";
      return;
    }
    this.el.dataset.remaining = String(this.remaining);
    this.el.dataset.reset = String(this.reset);
    if (this.remaining === 0) {
      this.el.textContent = `No asks left · try again in ${this.reset} s`;
      return;
    }
    const of = this.quota !== null ? `${this.remaining} of ${this.quota}` : `${this.remaining}`;
    const noun = this.remaining === 1 && this.quota === null ? "ask" : "asks";
    const frees = this.reset > 0 && (this.quota === null || this.remaining < this.quota) ? ` · next frees in ${this.reset} s` : "";
    this.el.textContent = `${this.pending ? "Ryo is thinking… · " : ""}${of} ${noun} left${frees}`;
  }
}
