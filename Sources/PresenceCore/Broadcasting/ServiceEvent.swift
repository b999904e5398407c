/// The names of the events this service itself sends to clients. (Client events and events sent through the HTTP API
/// carry names of their own, so ``BroadcastEvent/event`` stays a string.)
public enum ServiceEvent: String, Sendable, CaseIterable {
    /// A chat room's listing changed (user count, name, members), on `chats-public` or a member's private list.
    case roomUpdated = "room-updated"
    /// A chat room is gone.
    case roomDeleted = "room-deleted"
    /// A message in a chat or support room.
    case roomMessage = "room-message"
    /// Someone entered or left a chat room (``PresenceAction``).
    case presenceUpdate = "presence-update"
    /// A support ticket closed, with its transcript snapshot.
    case roomClosed = "room-closed"
    /// A support ticket opened again.
    case roomReopened = "room-reopened"
    /// A support ticket member joined, changed, or left (``LeaveReason``).
    case memberJoined = "member-joined"
    case memberUpdated = "member-updated"
    case memberLeft = "member-left"
    /// A support ticket's customer has waited `SUPPORT_UNATTENDED_AFTER` with no agent present (once per episode), on
    /// the ticket's channel and `private-support-queue`.
    case ticketUnattended = "ticket-unattended"
    /// An agent is present again in a ticket whose customer was waiting: the episode's wait, on the same channels.
    case ticketAttended = "ticket-attended"
    /// A support ticket's assignment metadata changed.
    case metadataUpdated = "metadata-updated"
    /// Someone is typing in a chat room (ryOS: `{username, isTyping}`).
    case userTyping = "user-typing"
    /// An admin deleted a chat message (`{roomId, messageId}`).
    case messageDeleted = "message-deleted"
    /// A signed-in user's client is open (ryOS's global presence, on `presence-global`: `{username, timestamp}`).
    case userHeartbeat = "user-heartbeat"
    /// Pusher presence channel membership, per user.
    case memberAdded = "pusher_internal:member_added"
    case memberRemoved = "pusher_internal:member_removed"
}
