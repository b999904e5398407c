// The room view: entering and leaving (presence switch + channels + heartbeat), history and live messages, who is
// here, who is typing, the composer and Ryo.

import { h, byId, setError, timeElement } from "./dom.js";
import { get, post, describeError, authHeaders } from "./api.js";
import { MessageList } from "./messages.js";
import { TypingIndicator, TypingSender } from "./typing.js";
import { RyoStatus } from "./ryo.js";

const PAGE = 50;

// Chat messages arrive HTML-escaped, as ryOS stores them; these five entities are all the server writes. Decoded here
// and then set as text (never parsed as HTML), the user reads exactly what was typed.
const ENTITIES = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#039;": "'" };
export function decodeText(text) {
  return String(text).replace(/&(?:amp|lt|gt|quot|#039);/g, (entity) => ENTITIES[entity]);
}

export function messageItem(message) {
  const ai = message.isAI === true;
  return h("li", { class: ai ? "message ai" : "message", dataset: { messageId: message.id, username: message.username } },
    h("span", { class: "message-user" }, message.username),
    timeElement(message.timestamp),
    h("p", { class: "message-text" }, decodeText(message.content)));
}

const eventChannel = (room) => (room.type === "private" ? `private-room-${room.id}` : `room-${room.id}`);
const presenceChannel = (room) => `presence-room-${room.id}`;
const roomPath = (id) => `/api/rooms/${encodeURIComponent(id)}`;

/**
 * @param {object} o
 * @param {import("./pusher.js").PusherClient} o.pusher
 * @param {{chatTtl: number}} o.config
 * @param {ReturnType<import("./rooms.js").createRoomList>} o.rooms
 * @param {() => string} o.me the signed-in username
 * @param {(view: string) => void} o.showMain shows "welcome", "room" or "ticket"
 * @param {() => Promise<void>} o.beforeEnter called before entering a room (leaves a ticket)
 */
export function createChat({ pusher, config, rooms, me, showMain, beforeEnter }) {
  const el = {
    view: byId("room-view"), title: byId("room-title"), leave: byId("leave-room"), error: byId("room-error"),
    messages: byId("messages"), loadOlder: byId("load-older"), members: byId("members"),
    memberCount: byId("member-count"), typing: byId("typing"), composer: byId("composer"),
    input: byId("message-input"), send: byId("send-button"), composerError: byId("composer-error"),
    ask: byId("ask-ryo-button"), ryoStatus: byId("ryo-status"),
  };
  const list = new MessageList(el.messages, messageItem);
  const typing = new TypingIndicator(el.typing, { ttlMs: 5000, me });
  const ryo = new RyoStatus(el.ryoStatus, el.ask);
  const members = new Set();
  let room = null;
  let heartbeat = 0;
  let busy = false;
  // false (not sent) until the presence channel is subscribed; its subscribe answer retries.
  const sender = new TypingSender((isTyping) =>
    room ? pusher.trigger(presenceChannel(room), "client-typing", { typing: isTyping }) : false);

  // Members ----------------------------------------------------------------------------------------------------
  function renderMembers() {
    const names = [...members].sort();
    el.members.replaceChildren(...names.map((name) =>
      h("li", { dataset: { username: name }, class: name === me() ? "me" : null }, name)));
    el.memberCount.textContent = String(names.length);
  }

  function setMember(name, present) {
    if (typeof name !== "string" || !name) return;
    if (present) members.add(name);
    else {
      members.delete(name);
      typing.set(name, false);
    }
    renderMembers();
  }

  // Live events ------------------------------------------------------------------------------------------------
  function roomListener(target) {
    return (event, data, message, subscription) => {
      if (room?.id !== target.id) return;
      if (event === "pusher_internal:subscription_succeeded") {
        // Back after a reconnect: what was missed is replayed right after this answer when the server recovered
        // the channel; otherwise (or on a channel without recovery) it comes from the history.
        if (subscription?.reload) loadMessages(target, "resync");
      } else if (event === "room-message" && data?.roomId === target.id) {
        list.add([data.message]);
      } else if (event === "presence-update" && data?.roomId === target.id) {
        setMember(data.username, data.action === "joined");
      } else if (event === "pusher:subscription_error") {
        setError(el.error, `Live messages for this room stopped: ${data?.error ?? "subscription refused"}`);
      }
    };
  }

  function presenceListener(target) {
    return (event, data, message) => {
      if (room?.id !== target.id) return;
      switch (event) {
        case "pusher_internal:subscription_succeeded": {
          const ids = Array.isArray(data?.presence?.ids) ? data.presence.ids : [];
          members.clear();
          for (const id of ids) if (typeof id === "string") members.add(id);
          members.add(me());
          renderMembers();
          sender.retry();
          break;
        }
        case "pusher_internal:member_added":
          setMember(data?.user_id, true);
          break;
        case "pusher_internal:member_removed":
          setMember(data?.user_id, false);
          break;
        case "client-typing":
          typing.set(message?.user_id, data?.typing === true);
          break;
        case "pusher:subscription_error":
          setError(el.error, `Who is here can't be followed live: ${data?.error ?? "subscription refused"}`);
          break;
      }
    };
  }

  // History ----------------------------------------------------------------------------------------------------
  /** mode: "initial" (decides #load-older), "older" (pages back from the oldest shown), "resync" (newest page). */
  async function loadMessages(target, mode) {
    const before = mode === "older" ? list.oldestId : null;
    const cursor = before ? `&before=${encodeURIComponent(before)}` : "";
    const result = await get(`${roomPath(target.id)}/messages?limit=${PAGE}${cursor}`);
    if (room?.id !== target.id) return;
    if (!result.ok) {
      if (result.status !== 401) setError(el.error, describeError(result));
      return;
    }
    const messages = result.data?.messages ?? [];
    list.add(messages);
    if (mode !== "resync") el.loadOlder.hidden = messages.length < PAGE;
  }

  // Entering and leaving ---------------------------------------------------------------------------------------
  /** Starts following `target`: channels, heartbeat, and (fresh) the view. */
  function startRoom(target, fresh) {
    room = target;
    rooms.setCurrent(target.id);
    if (fresh) {
      list.clear();
      members.clear();
      members.add(me());
      renderMembers();
      typing.clear();
      setError(el.composerError, "");
      el.loadOlder.hidden = true;
      el.view.dataset.roomId = target.id;
      el.title.textContent = target.name;
      showMain("room");
      el.title.focus();
      loadMessages(target, "initial");
    }
    pusher.subscribe(eventChannel(target), roomListener(target));
    pusher.subscribe(presenceChannel(target), presenceListener(target));
    const every = Math.max(1, config.chatTtl / 3) * 1000;
    clearInterval(heartbeat);
    heartbeat = setInterval(() => post("/api/presence/heartbeat", { roomId: target.id }), every);
  }

  /** Stops following the current room (channels, heartbeat, typing); the view stays. */
  function stopRoom(target) {
    sender.stop();
    pusher.unsubscribe(eventChannel(target));
    pusher.unsubscribe(presenceChannel(target));
    clearInterval(heartbeat);
    heartbeat = 0;
  }

  function closeView() {
    room = null;
    rooms.setCurrent(null);
    list.clear();
    members.clear();
    typing.clear();
    sender.reset();
    delete el.view.dataset.roomId;
    showMain("welcome");
  }

  async function enter(target) {
    if (busy || !target) return;
    if (room?.id === target.id) {
      el.title.focus();
      return;
    }
    busy = true;
    setError(el.error, "");
    await beforeEnter();
    const previous = room;
    if (previous) stopRoom(previous);
    const body = { username: me(), nextRoomId: target.id };
    if (previous) body.previousRoomId = previous.id;
    const result = await post("/api/presence/switch", body);
    busy = false;
    if (!result.ok) {
      if (result.status === 401) return;
      setError(el.error, describeError(result));
      // A refused switch changes nothing: the previous room is still ours.
      if (previous && room === previous) startRoom(previous, false);
      return;
    }
    startRoom(target, true);
  }

  async function leave() {
    if (!room) return;
    const previous = room;
    stopRoom(previous);
    closeView();
    const result = await post("/api/presence/switch", { username: me(), previousRoomId: previous.id });
    if (!result.ok && result.status !== 401) setError(el.error, describeError(result));
  }

  // Composer and Ryo -------------------------------------------------------------------------------------------
  el.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      el.composer.requestSubmit(el.send);
    }
  });
  el.input.addEventListener("input", () => {
    if (room && el.input.value.trim()) sender.typed();
  });

  el.composer.addEventListener("submit", async (event) => {
    event.preventDefault();
    const content = el.input.value.trim();
    if (!room || !content || el.send.disabled) return;
    const target = room;
    el.send.disabled = true;
    sender.stop();
    const result = await post(`${roomPath(target.id)}/messages`, { content });
    el.send.disabled = false;
    if (!result.ok) {
      if (result.status !== 401) setError(el.composerError, describeError(result));
      return;
    }
    setError(el.composerError, "");
    if (el.input.value.trim() === content) el.input.value = "";
    if (room?.id === target.id) list.add([result.data?.message], { stick: true });
    el.input.focus();
  });

  el.ask.addEventListener("click", async () => {
    const prompt = el.input.value.trim();
    if (!room) return;
    if (!prompt) {
      setError(el.composerError, "Write a question for Ryo in the message box first.");
      el.input.focus();
      return;
    }
    const target = room;
    const recentMessages = list.recentLines(20).join("\n");
    ryo.setPending(true);
    sender.stop();
    const result = await post("/api/ai/ryo-reply",
      { roomId: target.id, prompt, systemState: { chatRoomContext: { recentMessages } } });
    ryo.setPending(false);
    ryo.update(result);
    if (!result.ok) {
      if (result.status !== 401) setError(el.composerError, describeError(result));
      return;
    }
    setError(el.composerError, "");
    if (el.input.value.trim() === prompt) el.input.value = "";
    if (room?.id === target.id) list.add([result.data?.message], { stick: true });
  });

  el.loadOlder.addEventListener("click", async () => {
    if (!room || !list.oldestId || el.loadOlder.disabled) return;
    el.loadOlder.disabled = true;
    await loadMessages(room, "older");
    el.loadOlder.disabled = false;
  });
  el.leave.addEventListener("click", () => leave());

  return {
    enter,
    leave,
    get roomId() {
      return room?.id ?? null;
    },

    /** The room was deleted: stop following it without a switch. */
    roomGone(id) {
      if (room?.id !== id) return;
      stopRoom(room);
      closeView();
      setError(el.error, "This room was deleted.");
    },

    /** The tab is going away: leave the room with a request that outlives the page. */
    leaveOnUnload() {
      if (!room) return;
      const body = JSON.stringify({ username: me(), previousRoomId: room.id });
      fetch("/api/presence/switch", {
        method: "POST", keepalive: true, body,
        headers: { "Content-Type": "application/json", ...authHeaders() },
      }).catch(() => {});
    },

    /** Signed out (or the session ended): forget everything without calling the server. */
    reset() {
      if (room) stopRoom(room);
      closeView();
      setError(el.error, "");
      setError(el.composerError, "");
      el.input.value = "";
    },
  };
}
