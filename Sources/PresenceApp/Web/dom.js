// Building DOM safely: elements from tag, attributes and children, where every string child becomes a text node.
// Nothing here parses HTML; user text can never become markup.

const URL_ATTRIBUTES = new Set(["href", "src", "action", "formaction", "xlink:href"]);

/** True for a relative URL or an absolute http(s) one. */
export function isSafeUrl(value) {
  try {
    const url = new URL(String(value), location.href);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}

/**
 * h("li", {class: "message", dataset: {messageId: id}}, h("span", {}, text))
 * Attributes: `class`, `dataset` (object), booleans (true → present, false/null/undefined → absent), others as
 * strings. Refuses `on*` names, `style`, and URLs that are not relative or http(s).
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    const lower = name.toLowerCase();
    if (lower.startsWith("on")) throw new Error(`dom.h: refusing event-handler attribute ${name}`);
    if (lower === "style") throw new Error("dom.h: refusing style attribute; use a class");
    if (URL_ATTRIBUTES.has(lower) && !isSafeUrl(value)) throw new Error(`dom.h: refusing unsafe ${name}`);
    if (name === "class") el.className = String(value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

/** Appends children: nodes as they are, strings and numbers as text, arrays flattened, null/false skipped. */
export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

export const byId = (id) => document.getElementById(id);

/** Shows `text` in an alert region (or clears and hides it when empty). */
export function setError(el, text) {
  if (!el) return;
  el.textContent = text ? String(text) : "";
  el.hidden = !text;
}

/** Local "HH:MM" for an epoch-ms time, and a <time> element for it. */
export function timeElement(ms, className = "message-time") {
  const date = new Date(Number(ms) || 0);
  const label = date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  return h("time", { class: className, datetime: date.toISOString(), title: date.toLocaleString() }, label);
}

/** Whether a scroll container is (nearly) scrolled to its bottom. */
export function atBottom(el, slack = 40) {
  return el.scrollHeight - el.scrollTop - el.clientHeight <= slack;
}

/** Compares message ids `<ms>-<seq>` (may exceed 2^53: compared as BigInt). */
export function compareIds(a, b) {
  const [am, as] = String(a).split("-");
  const [bm, bs] = String(b).split("-");
  try {
    const dm = BigInt(am) - BigInt(bm);
    if (dm !== 0n) return dm < 0n ? -1 : 1;
    const ds = BigInt(as ?? 0) - BigInt(bs ?? 0);
    return ds === 0n ? 0 : ds < 0n ? -1 : 1;
  } catch {
    return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
  }
}
