// A scrollable message list (chat room or ticket transcript): items kept in id order, each id shown once.

import { atBottom, compareIds } from "./dom.js";

export class MessageList {
  /**
   * @param {HTMLElement} el the list (also the scroll container)
   * @param {(message: object) => HTMLElement} render builds one item; it must set data-message-id
   */
  constructor(el, render) {
    this.el = el;
    this.render = render;
    this.ids = new Set();
  }

  clear() {
    this.ids.clear();
    this.el.replaceChildren();
  }

  get oldestId() {
    return this.el.firstElementChild?.dataset.messageId ?? null;
  }

  get newestId() {
    return this.el.lastElementChild?.dataset.messageId ?? null;
  }

  /**
   * Adds messages (any order; duplicates skipped). A view at the bottom (or `stick`) stays at the bottom; older
   * messages added above keep what is on screen still. Returns how many were new.
   */
  add(messages, { stick = false } = {}) {
    const wasAtBottom = atBottom(this.el);
    const height = this.el.scrollHeight;
    const top = this.el.scrollTop;
    let added = 0;
    let above = false;
    for (const message of messages) {
      if (!message || typeof message.id !== "string" || this.ids.has(message.id)) continue;
      this.ids.add(message.id);
      let next = null;
      for (let child = this.el.lastElementChild;
        child && compareIds(child.dataset.messageId, message.id) > 0;
        child = child.previousElementSibling) {
        next = child;
      }
      if (next) above = true;
      this.el.insertBefore(this.render(message), next);
      added += 1;
    }
    if (added === 0) return 0;
    if (stick || wasAtBottom) this.el.scrollTop = this.el.scrollHeight;
    else if (above) this.el.scrollTop = top + (this.el.scrollHeight - height);
    return added;
  }

  /** The last `count` messages as "user: text" lines. */
  recentLines(count) {
    return [...this.el.children].slice(-count).map((li) =>
      `${li.dataset.username}: ${li.querySelector(".message-text")?.textContent ?? ""}`);
  }
}
