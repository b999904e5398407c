/// One socket's subscription to a private room's or ticket's channel (`private-room-<id>`, `presence-room-<id>`),
/// riding on `user`'s access: while it lasts, `user` counts as having seen the room's messages (#32, `message_unseen`).
/// The same value as a presence channel's socket entry: one socket of one user in one room.
public typealias RoomWatch = SocketEntry

extension SocketEntry {
    /// The room whose messages a subscription to `channel` shows: `private-room-<id>` and `presence-room-<id>` name
    /// room `<id>`; any other channel none.
    public static func room(ofChannel channel: String) -> String? {
        for prefix in ["private-room-", "presence-room-"] where channel.hasPrefix(prefix) {
            let room = String(channel.dropFirst(prefix.count))
            return room.isEmpty ? nil : room
        }
        return nil
    }
}
