import NIOCore
import PresenceCore
import Redis

/// Every Redis key the service uses, in one place (documented in `docs/redis-keys.md`).
///
/// All keys of one room share the hash tag `{<roomId>}`, all keys of one user `{<username>}`, so each Lua script
/// touches a single hash slot and the same code runs on Redis Cluster.
public enum RedisKeys {
    /// Hash: `id`, `name`, `type`, `createdAt`, `createdBy`, kind-specific fields.
    public static func roomMeta(_ room: String) -> String { "room:{\(room)}:meta" }
    /// Sorted set: present user → presence expiry (epoch ms). Counting and listing in O(log N).
    public static func roomMembers(_ room: String) -> String { "room:{\(room)}:members" }
    /// Sorted set: present user → join time (epoch ms), for listing in join order.
    public static func roomJoined(_ room: String) -> String { "room:{\(room)}:joined" }
    /// Hash: present user → their state (JSON), only for states other than `{}`; removed with the member.
    public static func roomStates(_ room: String) -> String { "room:{\(room)}:states" }
    /// Sorted set: one user's WebSockets in a presence channel of the room → expiry (ms), refreshed by their worker.
    public static func roomSockets(_ room: String, _ user: String) -> String { "room:{\(room)}:sockets:\(user)" }
    /// String `1` per present member whose native TTL is the presence deadline: it expires at the member's score in
    /// ``roomMembers(_:)`` (set by the same script, on the same `TIME`), so `redis-cli TTL` shows what is left.
    public static func roomPresence(_ room: String, _ user: String) -> String { "room:{\(room)}:presence:\(user)" }
    /// The prefix of ``roomPresence(_:_:)`` (not a key): passed in `KEYS[]` to the scripts that remove members they
    /// only find inside (sweep, room deletion, support close), which build each member's key from it in the same slot.
    public static func roomPresencePrefix(_ room: String) -> String { "room:{\(room)}:presence:" }
    /// Set: the users allowed in a private room.
    public static func roomAccess(_ room: String) -> String { "room:{\(room)}:access" }
    /// Stream: the room's messages, newest last, capped at `HISTORY_LIMIT`.
    public static func roomHistory(_ room: String) -> String { "room:{\(room)}:history" }

    /// Set: ids of the public rooms, spread over ``spreadBuckets`` keys by room id.
    public static func publicRooms(bucket: Int) -> String { "rooms:public:{\(spreadTags[bucket])}" }
    /// The public rooms' bucket key of room `id`.
    public static func publicRooms(of id: String) -> String { publicRooms(bucket: spreadBucket(of: id)) }
    /// The one set of public rooms before it was spread: moved into the buckets at start-up.
    public static let legacyPublicRooms = "rooms:public"
    /// Sorted set: room id → when the sweeper checks the room next (epoch ms); the sweeper's work list, spread over
    /// ``spreadBuckets`` keys (``spreadBucket(of:)`` picks a room's).
    public static func presenceRooms(bucket: Int) -> String { "presence:rooms:{\(spreadTags[bucket])}" }
    /// Hash: room id → when a join last registered the room (epoch ms), in the bucket's slot.
    public static func presenceRoomsTouched(bucket: Int) -> String { "presence:rooms:{\(spreadTags[bucket])}:touched" }
    /// How many keys an index that would otherwise be one global key is spread over.
    public static let spreadBuckets = 16
    /// The bucket of an index entry (a room id, a channel name): its slot modulo ``spreadBuckets``.
    public static func spreadBucket(of name: String) -> Int { RedisHashSlot.slot(for: name) % spreadBuckets }
    /// Per bucket, the shortest tag `s<bucket>.<n>` whose slot lies in the bucket's sixteenth of the slot range, so
    /// the buckets of each index spread over every primary of a cluster.
    static let spreadTags: [String] = (0..<spreadBuckets).map { bucket in
        let width = RedisHashSlot.count / spreadBuckets
        var n = 0
        while true {
            let tag = "s\(bucket).\(n)"
            if RedisHashSlot.slot(for: tag) / width == bucket { return tag }
            n += 1
        }
    }
    /// The sweeper's work list before sweeper buckets: read once at start-up, its rooms registered, then deleted.
    public static let legacyPresenceExpiries = "presence:expiries"

    /// Hash: `username`, `passwordHash`, `createdAt`, `lastActive`.
    public static func user(_ name: String) -> String { "user:{\(name)}" }
    /// Set: ids of the rooms a user entered and has not left (may lag behind expiry; heartbeats prune it).
    public static func userPresentRooms(_ name: String) -> String { "user:{\(name)}:present" }
    /// Set (90-day TTL, at most 50 entries): client addresses a user signed in from; a correct login from one of
    /// them is never refused by the per-username login limit.
    public static func userLoginAddresses(_ name: String) -> String { "user:{\(name)}:logins" }
    /// Set: ids of the private rooms a user belongs to.
    public static func userRooms(_ name: String) -> String { "user:{\(name)}:rooms" }
    /// String, TTL: the chat room the user's client shows (the last switch's target), so a heartbeat can bring back a
    /// room presence that lapsed while the tab was hidden.
    public static func userCurrentRoom(_ name: String) -> String { "user:{\(name)}:current" }
    /// Sorted set (all scores 0): usernames starting with a 2-character prefix, queried with ZRANGEBYLEX.
    public static func usersPrefix(_ prefix: some StringProtocol) -> String { "users:prefix:\(prefix)" }
    /// String with TTL (sliding): SHA-256 (hex) of a session token → username.
    public static func token(_ sha256Hex: String) -> String { "token:{\(sha256Hex)}" }
    /// String with a 60 s TTL: SHA-256 (hex) of a single-use ryOS realtime ticket (`POST /api/realtime/ticket`) →
    /// username; taken (`GETDEL`) by the `/ws` socket that opens with it.
    public static func realtimeTicket(_ sha256Hex: String) -> String { "realtime:ticket:{\(sha256Hex)}" }
    /// Set, TTL of the newest session (sliding): the digests of a user's session tokens, so logout-all can end them
    /// all. May name tokens that expired since; those are skipped.
    public static func userTokens(_ name: String) -> String { "user:{\(name)}:tokens" }
    /// Sorted set: the channel signatures `/pusher/auth` recorded for a user (``pusherGrants(_:)``), as
    /// `<socket> <channel>` → expiry (ms), so a logout can forget them all.
    public static func userGrants(_ name: String) -> String { "user:{\(name)}:grants" }

    /// String (JSON): the snapshot written when a support room closes.
    public static func roomSnapshot(_ room: String) -> String { "room:{\(room)}:snapshot" }
    /// List (JSON each): a support room's attendance, one interval per presence that ended, oldest first
    /// (`lib/attendance.lua`); kept after close like the transcript. Passed, for support rooms, to every script that
    /// removes members (``RedisPresenceStore/attendance(room:limit:)``).
    public static func roomAttendance(_ room: String) -> String { "room:{\(room)}:attendance" }
    /// Hash {since, notified}: a support ticket's current waiting episode (a customer present, no agent), kept by
    /// `support_waiting.lua`; gone when no customer waits.
    public static func roomWaiting(_ room: String) -> String { "room:{\(room)}:waiting" }
    /// Sorted set: ticket room id → when the watcher looks at it next (epoch ms; `+inf` once its notice went out), the
    /// tickets that may have a customer waiting, spread over ``spreadBuckets`` keys by room id. Entries are hints,
    /// checked against ``roomWaiting(_:)``: the watcher drops the stale ones.
    public static func supportWaiting(bucket: Int) -> String { "support:waiting:{\(spreadTags[bucket])}" }
    /// The waiting index's bucket key of ticket room `room`.
    public static func supportWaiting(of room: String) -> String { supportWaiting(bucket: spreadBucket(of: room)) }
    /// Hash: member → their pending `message_unseen` notice in a private room or ticket (JSON {id, at, from, lastId,
    /// lastAt, count, due}), written by `unseen_post.lua`; dropped when the member is present or subscribes.
    public static func roomUnseen(_ room: String) -> String { "room:{\(room)}:unseen" }
    /// Hash: member → a notice the unseen watcher claimed and is sending (the same JSON plus `lease`).
    public static func roomUnseenSending(_ room: String) -> String { "room:{\(room)}:unseen:sending" }
    /// Sorted set: `<user>\n<socket>` → expiry (ms): who is subscribed to a private room's or ticket's channel
    /// (`private-room-<id>`, `presence-room-<id>`) on any worker (`unseen_watch.lua`).
    public static func roomWatchers(_ room: String) -> String { "room:{\(room)}:watchers" }
    /// Sorted set: room id → when the unseen watcher looks at the room next (ms), rooms that may hold pending notices,
    /// spread over ``spreadBuckets`` keys by room id (`lease_index.lua`). Entries are hints.
    public static func unseenDue(bucket: Int) -> String { "unseen:due:{\(spreadTags[bucket])}" }
    /// The unseen index's bucket key of room `room`.
    public static func unseenDue(of room: String) -> String { unseenDue(bucket: spreadBucket(of: room)) }
    /// Sorted set: marker `<room>\n<member>\n<first message id>` → when its `message_unseen` was written to the
    /// outbox (kept a day), in the slot of the room channel's outbox bucket (`unseen_send.lua`).
    public static func unseenSent(channel: String) -> String { "unseen:sent:{\(spreadTags[spreadBucket(of: channel)])}" }
    /// Set: usernames of support agents (admins count as agents without being listed), for the admin listing only.
    public static let supportAgents = "support:agents"
    /// String `1` while `name` is a support agent, in the user's slot: what access checks read.
    public static func supportAgent(_ name: String) -> String { "user:{\(name)}:agent" }

    /// Sorted set: one sliding-window log per (limit, subject): member per accepted request, scored by time (ms).
    public static func rateLimit(_ name: String, _ subject: String) -> String { "ratelimit:\(name):{\(subject)}" }

    /// Sorted set: client channels with at least one subscribed socket somewhere → expiry (ms), spread over
    /// ``spreadBuckets`` keys by channel name.
    public static func pusherChannels(bucket: Int) -> String { "pusher:channels:{\(spreadTags[bucket])}" }
    /// Sorted set: socket ids subscribed to a client channel → expiry (ms), refreshed by their worker. In the slot of the
    /// channel's spread bucket, like its webhook outbox streams (``webhookOutbox(bucket:target:)``), so the script that
    /// decides the channel occupied or vacated writes the webhook event in the same step.
    public static func pusherChannelSockets(_ channel: String) -> String {
        "pusher:channel:{\(spreadTags[spreadBucket(of: channel)])}:\(channel):sockets"
    }
    /// The pub/sub channel announcing revoked tokens (payload: the token's SHA-256), so that every worker drops
    /// it from its token cache (``TokenStore/cache``) at once.
    public static let tokensRevoked = "tokens:revoked"
    /// The pub/sub channel every worker listens to for control messages (terminate connections, access changes).
    public static let pusherControl = "pusher:control"
    /// Hash: client channel → the user `/pusher/auth` signed it for, per socket (short TTL), so a subscription knows
    /// whose access it rides on and ends when that access does.
    public static func pusherGrants(_ socket: String) -> String { "pusher:grants:{\(socket)}" }
    /// String: a cache channel's last event as its clients receive it, expiring after ``CacheChannels/ttl``.
    public static func channelCache(_ channel: String) -> String { "pusher:cache:{\(channel)}" }

    /// Stream: webhook events waiting for one receiver (`target`: ``WebhookTarget/id``), spread over ``spreadBuckets``
    /// keys by channel name, so one channel's events stay in order in one stream; consumer group `delivery`.
    public static func webhookOutbox(bucket: Int, target: String) -> String { "webhooks:{\(spreadTags[bucket])}:\(target)" }
    /// String with TTL: the id of the worker sending one outbox stream's events now (its lease).
    public static func webhookLease(bucket: Int, target: String) -> String { "webhooks:{\(spreadTags[bucket])}:\(target):lease" }
    /// Counter: events of one outbox stream the receiver acknowledged (what was added and is neither here nor in the
    /// stream was dropped from a full outbox).
    public static func webhookDelivered(bucket: Int, target: String) -> String { "webhooks:{\(spreadTags[bucket])}:\(target):delivered" }

    /// The workers alive, for the operator console: sorted set of worker id → expiry (ms). One slot for the whole
    /// service, written by each worker every few seconds only.
    public static let workersAlive = "workers:{ops}:alive"
    /// Each live worker's last announcement (hash of worker id → JSON), beside ``workersAlive``.
    public static let workersInfo = "workers:{ops}:info"
    /// The pub/sub channel carrying events for one client channel (`chats-public`, `room-general`, ...):
    /// `ch:{<channel>}`, hash-tagged (client channel names have no braces), so it shares its slot with the channel's
    /// recovery keys and a script there may publish on it on a cluster too.
    public static func broadcastChannel(_ clientChannel: String) -> String { "ch:{\(clientChannel)}" }
    /// The client channel of a ``broadcastChannel(_:)`` name; `nil` for another name.
    public static func clientChannel(ofBroadcast name: String) -> String? {
        guard name.hasPrefix("ch:{"), name.hasSuffix("}"), name.utf8.count > 5 else { return nil }
        return String(name.dropFirst(4).dropLast())
    }
    /// A recoverable channel's position: hash {epoch, offset} (``RedisChannelRecovery``).
    public static func recoveryPosition(_ channel: String) -> String { "rec:{\(channel)}" }
    /// A recoverable channel's retained events: stream, entry `<offset>-0` {m: the event, t: ms}.
    public static func recoveryLog(_ channel: String) -> String { "rec:{\(channel)}:log" }
}
