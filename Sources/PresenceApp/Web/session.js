// The signed-in user ({username, token}) lives in sessionStorage only, and the page's settings in <meta> tags.

const KEY = "presence.session";

export function loadSession() {
  try {
    const value = JSON.parse(sessionStorage.getItem(KEY) ?? "null");
    if (value && typeof value.username === "string" && typeof value.token === "string") return value;
  } catch {
    // Unreadable or blocked storage: no session.
  }
  return null;
}

export function saveSession({ username, token }) {
  sessionStorage.setItem(KEY, JSON.stringify({ username, token }));
}

export function clearSession() {
  sessionStorage.removeItem(KEY);
}

function meta(name) {
  return document.querySelector(`meta[name="${name}"]`)?.getAttribute("content") ?? "";
}

function seconds(name, fallback) {
  const value = Number(meta(name));
  return Number.isFinite(value) && value > 0 ? value : fallback;
}

/** Settings the server wrote into the page. */
export const config = Object.freeze({
  pusherKey: meta("presence-pusher-key"),
  version: meta("presence-version"),
  chatTtl: seconds("presence-chat-ttl", 90),
  supportTtl: seconds("presence-support-ttl", 45),
});
