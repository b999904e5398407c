// Support tickets: join a ticket as customer/agent/observer, follow its members, typing, metadata and transcript on
// private-room-ticket_<id>, post, close/reopen, leave. A closed ticket stays readable.

import { h, byId, setError, timeElement } from "./dom.js";
import { get, post, describeError, authHeaders } from "./api.js";
import { MessageList } from "./messages.js";
import { TypingIndicator, TypingSender } from "./typing.js";

const TICKET_ID = /^[A-Za-z0-9_-]{1,64}$/;
const PAGE = 100;
const MAX_PAGES = 100;

const ticketPath = (id) => `/support/${encodeURIComponent(id)}`;
const ticketChannel = (id) => `private-room-ticket_${id}`;

function transcriptItem(message) {
  const role = typeof message.role === "string" ? message.role : "";
  return h("li", {
    class: `message role-${role.replace(/[^a-z]/g, "")}`,
    dataset: { messageId: message.id, username: message.username, role },
  },
  h("span", { class: "message-user" }, message.username),
  role ? h("span", { class: "message-role" }, role) : null,
  timeElement(message.timestamp),
  h("p", { class: "message-text" }, message.content));
}

/**
 * @param {object} o
 * @param {import("./pusher.js").PusherClient} o.pusher
 * @param {{supportTtl: number}} o.config
 * @param {() => string} o.me
 * @param {(view: string) => void} o.showMain
 * @param {() => Promise<void>} o.beforeJoin called before joining (leaves a chat room)
 */
export function createSupport({ pusher, config, me, showMain, beforeJoin }) {
  const el = {
    form: byId("ticket-form"), id: byId("ticket-id"), role: byId("ticket-role"), join: byId("ticket-join"),
    formError: byId("ticket-form-error"), view: byId("ticket-view"), title: byId("ticket-title"),
    state: byId("ticket-state"), error: byId("ticket-error"), members: byId("ticket-members"),
    typing: byId("ticket-typing"), metadata: byId("ticket-metadata"), priority: byId("meta-priority"),
    assigned: byId("meta-assigned"), status: byId("meta-status"), save: byId("meta-save"),
    messages: byId("ticket-messages"), composer: byId("ticket-composer"), input: byId("ticket-input"),
    send: byId("ticket-send"), close: byId("ticket-close"), reopen: byId("ticket-reopen"), leave: byId("ticket-leave"),
  };
  const transcript = new MessageList(el.messages, transcriptItem);
  const typing = new TypingIndicator(el.typing, { ttlMs: null, me }); // the server keeps the flag: no lapse
  const members = new Map(); // username → role
  /** {id, role, closed, present, joining} */
  let ticket = null;
  let heartbeat = 0;
  const sender = new TypingSender(async (isTyping) => {
    if (!ticket?.present) return;
    const result = await post(`${ticketPath(ticket.id)}/typing`, { typing: isTyping });
    handleGone(result);
  });

  const path = (suffix) => `${ticketPath(ticket.id)}/${suffix}`;

  function showError(result, prefix = "") {
    if (result.status === 401) return;
    setError(el.error, `${prefix}${describeError(result)}`);
  }

  /** 410 anywhere means the ticket closed under us; 409 that our presence lapsed. Returns true when handled. */
  function handleGone(result) {
    if (result.status === 410) {
      setClosed(true);
      return true;
    }
    if (result.status === 409 && result.error !== "Transcript is full") {
      if (ticket) ticket.present = false;
      rejoin();
      return true;
    }
    return false;
  }

  // Members and typing -----------------------------------------------------------------------------------------
  function renderMembers() {
    const entries = [...members].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    el.members.replaceChildren(...entries.map(([name, role]) =>
      h("li", { dataset: { username: name, role }, class: name === me() ? "me" : null },
        h("span", { class: "member-name" }, name), " ", h("span", { class: "member-role" }, role))));
  }

  function upsertMember(member) {
    if (typeof member?.username !== "string") return;
    members.set(member.username, member.metadata?.role ?? "customer");
    typing.set(member.username, member.presence?.typing === true);
    renderMembers();
  }

  function removeMember(name) {
    members.delete(name);
    typing.set(name, false);
    renderMembers();
  }

  /** replace: members not listed any more (they left while we were away) are dropped once every page is read. */
  async function loadMembers(id, { replace = false } = {}) {
    let cursor = "";
    const listed = new Set();
    for (let page = 0; page < MAX_PAGES; page += 1) {
      const query = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
      const result = await get(`${ticketPath(id)}/members?limit=${PAGE}${query}`);
      if (ticket?.id !== id) return;
      if (!result.ok) {
        if (!handleGone(result)) showError(result);
        return;
      }
      for (const member of result.data?.members ?? []) {
        upsertMember(member);
        if (typeof member?.username === "string") listed.add(member.username);
      }
      cursor = result.data?.nextCursor;
      if (!cursor) break;
    }
    if (cursor || !replace) return;
    for (const name of [...members.keys()]) if (!listed.has(name)) removeMember(name);
  }

  async function loadTranscript(id) {
    for (let page = 0; page < MAX_PAGES; page += 1) {
      const after = transcript.newestId;
      const query = after ? `&after=${encodeURIComponent(after)}` : "";
      const result = await get(`${ticketPath(id)}/messages?limit=${PAGE}${query}`);
      if (ticket?.id !== id) return;
      if (!result.ok) {
        showError(result, "Transcript: ");
        return;
      }
      const messages = result.data?.messages ?? [];
      transcript.add(messages);
      if (messages.length < PAGE) return;
    }
  }

  // Metadata ---------------------------------------------------------------------------------------------------
  function fillMetadata(metadata) {
    if (!metadata) return;
    el.priority.value = metadata.priority ?? "";
    el.assigned.value = metadata.assignedAgentId ?? "";
    if (typeof metadata.status === "string") el.status.value = metadata.status;
  }

  el.metadata.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!ticket) return;
    el.save.disabled = true;
    const result = await post(path("metadata"), {
      priority: el.priority.value.trim() || null,
      assignedAgentId: el.assigned.value.trim() || null,
      status: el.status.value,
    });
    el.save.disabled = false;
    if (!result.ok) return showError(result, "Details not saved: ");
    setError(el.error, "");
    fillMetadata(result.data?.room?.metadata);
  });

  // Open / closed ----------------------------------------------------------------------------------------------
  function stopPresence() {
    clearInterval(heartbeat);
    heartbeat = 0;
    sender.reset();
  }

  function startHeartbeat() {
    clearInterval(heartbeat);
    const every = Math.max(1, config.supportTtl / 3) * 1000;
    heartbeat = setInterval(async () => {
      if (!ticket?.present) return;
      handleGone(await post(path("heartbeat"), {}));
    }, every);
  }

  function setClosed(closed, snapshot = null) {
    if (!ticket) return;
    ticket.closed = closed;
    el.view.dataset.state = closed ? "closed" : "open";
    let text = closed ? "Closed" : "Open";
    if (closed && snapshot?.closedBy) text += ` · closed by ${snapshot.closedBy}`;
    el.state.textContent = text;
    el.state.dataset.state = closed ? "closed" : "open";
    el.close.hidden = closed;
    el.reopen.hidden = !closed;
    el.input.disabled = closed;
    el.send.disabled = closed;
    if (closed) {
      ticket.present = false;
      stopPresence();
      members.clear();
      typing.clear();
      renderMembers();
      if (snapshot?.metadata) fillMetadata(snapshot.metadata);
    }
  }

  async function fetchSnapshot(id) {
    const result = await get(`${ticketPath(id)}/snapshot`);
    if (ticket?.id === id && ticket.closed && result.ok) setClosed(true, result.data?.snapshot);
  }

  /** Joins again with our role (after a reopen, or when our presence lapsed). */
  async function rejoin() {
    if (!ticket || ticket.present || ticket.joining || ticket.closed) return;
    const id = ticket.id;
    ticket.joining = true;
    const result = await post(path("join"), { role: ticket.role });
    if (ticket?.id !== id) return;
    ticket.joining = false;
    if (result.ok) {
      ticket.present = true;
      upsertMember(result.data?.member);
      startHeartbeat();
    } else if (!handleGone(result)) {
      showError(result);
    }
  }

  function onEvent(event, data, message, subscription) {
    if (!ticket) return;
    switch (event) {
      case "pusher_internal:subscription_succeeded":
        // Back after a reconnect without the missed events replayed: catch up by HTTP (the transcript from the
        // newest message shown; the members afresh). When recovered, the missed events follow this answer.
        if (subscription?.reload) {
          loadTranscript(ticket.id);
          if (!ticket.closed) loadMembers(ticket.id, { replace: true });
        }
        break;
      case "member-joined":
      case "member-updated":
        upsertMember(data?.member);
        break;
      case "member-left":
        removeMember(data?.username);
        if (data?.username === me() && data?.reason === "expired") {
          ticket.present = false;
          rejoin();
        }
        break;
      case "metadata-updated":
        fillMetadata(data?.room?.metadata);
        break;
      case "room-message":
        transcript.add([data?.message]);
        break;
      case "room-closed":
        setClosed(true, data?.snapshot);
        break;
      case "room-reopened":
        setClosed(false);
        fillMetadata(data?.room?.metadata);
        rejoin();
        break;
      case "pusher:subscription_error":
        setError(el.error, `Live updates for this ticket stopped: ${data?.error ?? "subscription refused"}`);
        break;
    }
  }

  // Join and leave ---------------------------------------------------------------------------------------------
  /** Shows the ticket (open or closed) and starts following it. */
  function open(id, role, member, closed) {
    if (ticket) stop();
    ticket = { id, role, closed: false, present: !closed, joining: false };
    transcript.clear();
    members.clear();
    typing.clear();
    setError(el.error, "");
    el.view.dataset.ticketId = id;
    el.title.textContent = `Ticket ${id}`;
    fillMetadata({ priority: null, assignedAgentId: null, status: "open" });
    setClosed(closed);
    showMain("ticket");
    el.title.focus();
    pusher.subscribe(ticketChannel(id), onEvent);
    if (closed) {
      fetchSnapshot(id);
    } else {
      if (member) upsertMember(member);
      loadMembers(id);
      startHeartbeat();
    }
    loadTranscript(id);
    // Agents (and admins) read the current details with an empty update, which changes nothing.
    if (role !== "customer") {
      post(path("metadata"), {}).then((result) => {
        if (ticket?.id === id && result.ok) fillMetadata(result.data?.room?.metadata);
      });
    }
  }

  /** Stops following the ticket (channel, timers); no request. */
  function stop() {
    if (!ticket) return;
    sender.stop();
    stopPresence();
    pusher.unsubscribe(ticketChannel(ticket.id));
    ticket = null;
    delete el.view.dataset.ticketId;
  }

  async function leave({ show = true } = {}) {
    if (!ticket) return;
    const { id, present } = ticket;
    sender.stop();
    stop();
    if (show) showMain("welcome");
    if (present) {
      const result = await post(`${ticketPath(id)}/leave`, {});
      if (!result.ok && result.status !== 410 && result.status !== 401) setError(el.formError, describeError(result));
    }
  }

  el.form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const id = el.id.value.trim();
    const role = el.role.value;
    if (!TICKET_ID.test(id)) {
      setError(el.formError, "A ticket id is 1–64 letters, digits, - or _.");
      el.id.focus();
      return;
    }
    setError(el.formError, "");
    el.join.disabled = true;
    if (ticket && ticket.id !== id) await leave({ show: false });
    await beforeJoin();
    const result = await post(`${ticketPath(id)}/join`, { role });
    el.join.disabled = false;
    if (result.ok) open(id, role, result.data?.member, false);
    else if (result.status === 410) open(id, role, null, true);
    else if (result.status !== 401) setError(el.formError, describeError(result));
  });

  // Composer -----------------------------------------------------------------------------------------------------
  el.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      el.composer.requestSubmit(el.send);
    }
  });
  el.input.addEventListener("input", () => {
    if (ticket?.present && el.input.value.trim()) sender.typed();
  });

  el.composer.addEventListener("submit", async (event) => {
    event.preventDefault();
    const content = el.input.value.trim();
    if (!ticket || !content || el.send.disabled) return;
    const id = ticket.id;
    el.send.disabled = true;
    sender.stop();
    const result = await post(path("messages"), { content });
    if (ticket?.id !== id) return;
    el.send.disabled = ticket.closed;
    if (!result.ok) {
      handleGone(result);
      return showError(result, "Not sent: ");
    }
    setError(el.error, "");
    if (el.input.value.trim() === content) el.input.value = "";
    transcript.add([result.data?.message], { stick: true });
  });

  // Close / reopen / leave ---------------------------------------------------------------------------------------
  el.close.addEventListener("click", async () => {
    if (!ticket) return;
    const result = await post(path("close"), {});
    if (result.ok) {
      setError(el.error, "");
      setClosed(true, { closedBy: me() });
    } else if (result.status === 410) {
      setClosed(true);
    } else {
      showError(result, "Only agents and admins can close a ticket: ");
    }
  });

  el.reopen.addEventListener("click", async () => {
    if (!ticket) return;
    const result = await post(path("reopen"), {});
    if (!result.ok) return showError(result, "Only agents and admins can reopen a ticket: ");
    setError(el.error, "");
    setClosed(false);
    fillMetadata(result.data?.room?.metadata);
    rejoin();
  });

  el.leave.addEventListener("click", () => leave());

  return {
    leave,
    get ticketId() {
      return ticket?.id ?? null;
    },
    leaveOnUnload() {
      if (!ticket?.present) return;
      fetch(`${ticketPath(ticket.id)}/leave`, {
        method: "POST", keepalive: true, body: "{}",
        headers: { "Content-Type": "application/json", ...authHeaders() },
      }).catch(() => {});
    },
    reset() {
      stop();
      members.clear();
      typing.clear();
      transcript.clear();
      setError(el.error, "");
      setError(el.formError, "");
    },
  };
}
