// fetch wrapper: JSON in and out, auth headers, rate-limit headers. It never throws: every outcome is a result
// {ok, status, data, error, rate}. A 401 on an authenticated call ends the session.

import { loadSession, clearSession } from "./session.js";

let unauthorized = () => {};

/** Called with the result whenever an authenticated call gets 401 (after the session is cleared). */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

export function authHeaders(session = loadSession()) {
  return session ? { Authorization: `Bearer ${session.token}`, "X-Username": session.username } : {};
}

/** `RateLimit: "ai";r=3;t=42`, `RateLimit-Policy: "ai";q=5;w=60`, `Retry-After: 7`. */
export function parseRate(headers) {
  const num = (text, key) => {
    const match = new RegExp(`(?:^|;)\\s*${key}=(\\d+)`).exec(text ?? "");
    return match ? Number(match[1]) : null;
  };
  const limit = headers.get("RateLimit");
  const policy = headers.get("RateLimit-Policy");
  const retry = Number(headers.get("Retry-After"));
  return {
    remaining: num(limit, "r"),
    reset: num(limit, "t"),
    quota: num(policy, "q"),
    window: num(policy, "w"),
    retryAfter: Number.isFinite(retry) && retry > 0 ? Math.ceil(retry) : null,
  };
}

/** A user-facing line for a failed result, e.g. "Rate limit exceeded · try again in 12 s". */
export function describeError(result) {
  if (result.status === 429 && result.rate?.retryAfter) return `${result.error} · try again in ${result.rate.retryAfter} s`;
  return result.error;
}

export async function api(method, path, { body, auth = true, keepalive = false } = {}) {
  const session = loadSession();
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth) {
    if (!session) {
      const result = { ok: false, status: 401, data: null, error: "Please sign in", rate: {} };
      unauthorized(result);
      return result;
    }
    Object.assign(headers, authHeaders(session));
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      keepalive,
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    return { ok: false, status: 0, data: null, error: "Network error: the server could not be reached", rate: {} };
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    // Not JSON (or empty): data stays null.
  }
  const result = {
    ok: response.ok,
    status: response.status,
    data,
    rate: parseRate(response.headers),
    error: response.ok ? null : typeof data?.error === "string" ? data.error : `Request failed (${response.status})`,
  };
  // Only the session that made the call is ended: a newer sign-in stays.
  if (auth && response.status === 401 && loadSession()?.token === session.token) {
    clearSession();
    unauthorized(result);
  }
  return result;
}

export const get = (path, options) => api("GET", path, options);
export const post = (path, body, options) => api("POST", path, { ...options, body: body ?? {} });
