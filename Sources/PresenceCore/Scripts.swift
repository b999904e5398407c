import Foundation
import Redis

/// The Lua scripts of the domain, loaded once from the target's `Scripts/` resources.
public enum Scripts {
    static let presenceJoin = load("presence_join")
    static let presenceRefresh = load("presence_refresh")
    static let presenceLeave = load("presence_leave")
    static let presenceSweep = load("presence_sweep")
    static let presenceList = load("presence_list")
    static let expiryDue = load("expiry_due")
    static let expiryAck = load("expiry_ack")
    static let rateLimitSliding = load("ratelimit_sliding")
    static let roomCreate = load("room_create")
    static let roomGet = load("room_get")
    static let roomDelete = load("room_delete")
    static let roomLeavePrivate = load("room_leave_private")
    static let userRegister = load("user_register")
    static let userTouch = load("user_touch")
    static let userSwitch = load("user_switch")
    static let historyAppend = load("history_append")
    static let supportOpen = load("support_open")
    static let supportMetadata = load("support_metadata")
    static let supportClose = load("support_close")
    static let supportReopen = load("support_reopen")
    public static let expiringTouch = load("expiring_touch")
    public static let expiringMembers = load("expiring_members")
    static let socketDetach = load("socket_detach")
    static let channelRoomOpen = load("channel_room_open")

    private static func load(_ name: String) -> RedisScript {
        do {
            return try RedisScript(resource: name, in: .module, subdirectory: "Scripts")
        } catch {
            fatalError("missing Lua resource \(name).lua: \(error)")
        }
    }
}
