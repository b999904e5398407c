// User search (#user-search): prefix search debounced 250 ms, results with a "Message" button each; a 429 pauses
// searching until Retry-After has passed, with a countdown in #search-error.

import { h, setError } from "./dom.js";
import { get, describeError } from "./api.js";

const DEBOUNCE_MS = 250;

function lastActiveText(ms) {
  const minutes = Math.floor((Date.now() - Number(ms)) / 60000);
  if (!Number.isFinite(minutes)) return "";
  if (minutes < 1) return "active now";
  if (minutes < 60) return `active ${minutes} min ago`;
  if (minutes < 48 * 60) return `active ${Math.floor(minutes / 60)} h ago`;
  return `active ${Math.floor(minutes / 1440)} days ago`;
}

export function createSearch({ input, results, status, error, me, onMessage }) {
  let debounce = 0;
  let countdown = 0;
  let blockedUntil = 0;
  let sequence = 0;

  function render(users) {
    results.replaceChildren(...users.map((user) => {
      const button = h("button", { type: "button", class: "start-private", "aria-label": `Message ${user.username}` }, "Message");
      button.addEventListener("click", () => onMessage(user.username, button));
      return h("li", { dataset: { username: user.username } },
        h("span", { class: "search-name" }, user.username),
        h("span", { class: "search-seen" }, lastActiveText(user.lastActive)),
        button);
    }));
    status.textContent = users.length ? "" : "No one found.";
  }

  function block(seconds) {
    blockedUntil = Date.now() + seconds * 1000;
    clearInterval(countdown);
    const show = () => {
      const left = Math.ceil((blockedUntil - Date.now()) / 1000);
      if (left > 0) {
        setError(error, `Searching too fast · try again in ${left} s`);
        return;
      }
      clearInterval(countdown);
      countdown = 0;
      setError(error, "");
      run();
    };
    show();
    countdown = setInterval(show, 1000);
  }

  async function run() {
    if (Date.now() < blockedUntil) return; // the countdown searches again when it ends
    const query = input.value.trim().toLowerCase();
    const id = ++sequence;
    if (query.length < 2) {
      results.replaceChildren();
      status.textContent = "";
      return;
    }
    const result = await get(`/api/users?search=${encodeURIComponent(query)}&limit=20`, { auth: false });
    if (id !== sequence) return; // a newer search owns the results
    if (result.status === 429) {
      block(result.rate.retryAfter ?? 1);
      return;
    }
    if (!result.ok) {
      setError(error, describeError(result));
      return;
    }
    setError(error, "");
    const self = me();
    render((result.data?.users ?? []).filter((user) => user.username !== self));
  }

  input.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(run, DEBOUNCE_MS);
  });

  return {
    reset() {
      clearTimeout(debounce);
      clearInterval(countdown);
      countdown = 0;
      blockedUntil = 0;
      sequence += 1;
      input.value = "";
      results.replaceChildren();
      status.textContent = "";
      setError(error, "");
    },
  };
}
