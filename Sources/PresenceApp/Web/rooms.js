// The room list (#room-list): loaded from GET /api/rooms, kept live from chats-public and private-chats-<me>.

import { h, setError } from "./dom.js";
import { get, describeError } from "./api.js";

export function createRoomList({ list, error, pusher, onEnter, onRoomGone }) {
  /** id → {room, li} */
  const rooms = new Map();
  let current = null;
  let channels = [];

  function item(room) {
    const enter = h("button", { type: "button", class: "room-enter", title: room.name }, room.name);
    enter.addEventListener("click", () => {
      const entry = rooms.get(room.id);
      if (entry) onEnter(entry.room);
    });
    return h("li", { class: `room ${room.type === "private" ? "private" : "public"}`, dataset: { roomId: room.id } },
      enter,
      room.type === "private" ? h("span", { class: "room-kind" }, "private") : null,
      h("span", { class: "room-count" }));
  }

  function paint(entry) {
    const { room, li } = entry;
    const count = Number(room.userCount) || 0;
    li.dataset.userCount = String(count);
    const enter = li.querySelector(".room-enter");
    enter.textContent = room.name;
    enter.title = room.name;
    const counter = li.querySelector(".room-count");
    counter.textContent = String(count);
    counter.title = `${count} ${count === 1 ? "person" : "people"} here`;
  }

  /** Adds or updates a room; new public rooms go before the private ones. */
  function upsert(room) {
    if (!room || typeof room.id !== "string") return null;
    let entry = rooms.get(room.id);
    if (entry) {
      entry.room = { ...entry.room, ...room };
    } else {
      entry = { room, li: item(room) };
      rooms.set(room.id, entry);
      const firstPrivate = room.type === "public" ? list.querySelector("li.private") : null;
      list.insertBefore(entry.li, firstPrivate);
      if (room.id === current) entry.li.querySelector(".room-enter").setAttribute("aria-current", "true");
    }
    paint(entry);
    return entry.room;
  }

  function remove(id) {
    const entry = rooms.get(id);
    if (!entry) return;
    rooms.delete(id);
    entry.li.remove();
  }

  function onEvent(event, data, message, subscription) {
    if (event === "pusher_internal:subscription_succeeded") {
      // Back after a reconnect without the missed events replayed: the list may be stale.
      if (subscription?.reload) api.load();
    } else if (event === "room-updated" && data?.room) {
      upsert(data.room);
    } else if (event === "room-deleted" && typeof data?.roomId === "string") {
      remove(data.roomId);
      onRoomGone(data.roomId);
    } else if (event === "room-message" && typeof data?.roomId === "string" && data.roomId !== current) {
      rooms.get(data.roomId)?.li.classList.add("unread");
    } else if (event === "pusher:subscription_error") {
      setError(error, `Live room updates are unavailable: ${data?.error ?? "subscription refused"}`);
    }
  }

  const api = {
    /** Loads the list (replacing it); also the check that a stored session is still valid. */
    async load() {
      const result = await get("/api/rooms");
      if (!result.ok) {
        if (result.status !== 401) setError(error, describeError(result));
        return result;
      }
      setError(error, "");
      const fresh = new Set();
      for (const room of result.data?.rooms ?? []) {
        fresh.add(room.id);
        upsert(room);
      }
      for (const id of [...rooms.keys()]) if (!fresh.has(id)) remove(id);
      return result;
    },

    /** Subscribes to the list's live channels. */
    start(username) {
      channels = ["chats-public", `private-chats-${username}`];
      for (const name of channels) pusher.subscribe(name, onEvent);
    },

    reset() {
      for (const name of channels) pusher.unsubscribe(name);
      channels = [];
      rooms.clear();
      list.replaceChildren();
      current = null;
      setError(error, "");
    },

    upsert,
    get: (id) => rooms.get(id)?.room ?? null,

    setCurrent(id) {
      current = id;
      for (const [roomId, entry] of rooms) {
        const button = entry.li.querySelector(".room-enter");
        if (roomId === id) {
          button.setAttribute("aria-current", "true");
          entry.li.classList.remove("unread");
        } else {
          button.removeAttribute("aria-current");
        }
      }
    },
  };
  return api;
}
