@testable import PresenceCore

/// ``PresenceStorage`` and ``ExpiryStorage`` in memory, on the world's clock.
struct InMemoryPresenceStore: PresenceStorage, ExpiryStorage {
    let world: World

    func join(room: String, user: String, ttl: Duration, state newState: JSONValue?) async throws -> PresenceJoin {
        try world.withState { state in
            guard let meta = state.meta[room] else { throw DomainError.roomNotFound }
            if meta["closed"] == "1" { throw DomainError.roomClosed }
            let present = World.present(state, room: room)
            let previous = present[user]
            if previous == nil, let lapsed = state.presence[room]?[user] {
                World.endPresence(&state, room: room, user: user, lapsed, reason: .expired)
            }
            let member = World.Presence(
                joinedAt: previous?.joinedAt ?? state.now, expiresAt: state.now + ttl.milliseconds,
                state: newState ?? previous?.state ?? [:]
            )
            state.presence[room, default: [:]][user] = member
            let planned = state.sweepRooms[room]?.due ?? .max
            state.sweepRooms[room] = (min(planned, member.expiresAt), state.now)
            return PresenceJoin(
                isNew: previous == nil, userCount: World.present(state, room: room).count,
                member: Self.member(user, member, ttl: ttl), previousState: previous?.state ?? [:], meta: meta
            )
        }
    }

    func leave(room: String, user: String) async throws -> PresenceLeave {
        world.withState { state in
            let wasPresent = World.present(state, room: room)[user] != nil
            let removed = state.presence[room]?.removeValue(forKey: user)
            if let removed { World.endPresence(&state, room: room, user: user, removed, reason: .left) }
            return PresenceLeave(
                wasPresent: wasPresent, userCount: World.present(state, room: room).count,
                state: removed?.state ?? [:], meta: state.meta[room] ?? [:]
            )
        }
    }

    func refresh(room: String, user: String, ttl: Duration, state newState: JSONValue?) async throws -> PresenceRefresh? {
        world.withState { state in
            guard var member = World.present(state, room: room)[user] else { return nil }
            let previous = member.state
            member.expiresAt = state.now + ttl.milliseconds
            if let newState { member.state = newState }
            state.presence[room]?[user] = member
            return PresenceRefresh(member: Self.member(user, member, ttl: ttl), previousState: previous)
        }
    }

    func members(room: String, ttl: Duration, limit: Int, cursor: String?) async throws -> (members: [PresenceMember], nextCursor: String?) {
        let start = try cursor.map { text -> Int in
            guard let index = Int(text) else { throw DomainError.invalid("Invalid cursor") }
            return index
        } ?? 0
        let all = world.withState { state in
            World.present(state, room: room).sorted { ($0.value.joinedAt, $0.key) < ($1.value.joinedAt, $1.key) }
                .map { Self.member($0.key, $0.value, ttl: ttl) }
        }
        let page = Array(all.dropFirst(start).prefix(limit))
        return (page, start + page.count < all.count ? String(start + page.count) : nil)
    }

    func presentUsers(room: String, ttl: Duration) async throws -> [PresentUser] {
        world.withState { state in
            World.present(state, room: room).map { PresentUser(username: $0.key, lastSeen: $0.value.expiresAt - ttl.milliseconds) }
        }
    }

    func presentCount(room: String) async throws -> Int {
        world.withState { World.present($0, room: room).count }
    }

    func present(room: String, among users: [String]) async throws -> [String] {
        world.withState { state in
            let present = World.present(state, room: room)
            return users.filter { present[$0] != nil }
        }
    }

    func states(room: String, users: [String]) async throws -> [JSONValue] {
        world.withState { state in users.map { World.present(state, room: room)[$0]?.state ?? [:] } }
    }

    func switchRooms(
        user: String, previous: String?, next: String?, ttl: Duration, nextIsPublic: Bool, limit: SlidingWindowLimiter?
    ) async throws -> PresenceSwitch {
        if let limit {
            let decision = try await limit.check(user)
            guard decision.allowed else { throw DomainError.rateLimited(decision) }
        }
        let left = try await previous.asyncMap { try await leave(room: $0, user: user) }
        var joined: Result<PresenceJoin, any Error>?
        if let next {
            do { joined = .success(try await join(room: next, user: user, ttl: ttl)) } catch { joined = .failure(error) }
        }
        world.withState { state in
            if let previous { state.presentRooms[user]?.remove(previous) }
            if let next { state.presentRooms[user, default: []].insert(next) }
        }
        return PresenceSwitch(left: left, joined: joined)
    }

    func presentRooms(of user: String) async throws -> [String] {
        world.withState { Array($0.presentRooms[user] ?? []) }
    }

    func forgetPresentRooms(_ rooms: [String], of user: String) async throws {
        world.withState { state in for room in rooms { state.presentRooms[user]?.remove(room) } }
    }

    func forgetPresentRoom(_ room: String, of users: [String]) async throws {
        world.withState { state in for user in users { state.presentRooms[user]?.remove(room) } }
    }

    // MARK: ExpiryStorage (one bucket)

    var bucketCount: Int { 1 }

    func due(limit: Int, lease: Duration) async throws -> [DueRoom] {
        world.withState { state in
            let due = state.sweepRooms.filter { $0.value.due <= state.now }.sorted { ($0.value.due, $0.key) < ($1.value.due, $1.key) }
            return due.prefix(limit).map { room, entry in
                state.sweepRooms[room] = (state.now + lease.milliseconds, entry.touched)
                return DueRoom(room: room, bucket: 0, leasedUntil: state.now + lease.milliseconds)
            }
        }
    }

    func claimExpired(rooms: [String]) async throws -> [ExpiredClaim?] {
        world.withState { state in
            rooms.map { room in
                let expired = (state.presence[room] ?? [:]).filter { $0.value.expiresAt <= state.now }
                    .sorted { ($0.value.expiresAt, $0.key) < ($1.value.expiresAt, $1.key) }.map(\.key)
                for user in expired {
                    if let lapsed = state.presence[room]?.removeValue(forKey: user) {
                        World.endPresence(&state, room: room, user: user, lapsed, reason: .expired)
                    }
                }
                let present = World.present(state, room: room)
                return ExpiredClaim(
                    users: expired, userCount: present.count, meta: state.meta[room] ?? [:],
                    claimedAt: state.now, nextExpiry: present.values.map(\.expiresAt).min()
                )
            }
        }
    }

    func settle(_ settled: [(room: DueRoom, claim: ExpiredClaim)], recheck: Duration) async throws {
        world.withState { state in
            for (room, claim) in settled {
                guard let entry = state.sweepRooms[room.room] else {
                    if let next = claim.nextExpiry { state.sweepRooms[room.room] = (next, claim.claimedAt) }
                    continue
                }
                let unchanged = entry.due == room.leasedUntil
                if let next = claim.nextExpiry {
                    state.sweepRooms[room.room]?.due = unchanged ? next : min(entry.due, next)
                } else if unchanged {
                    if claim.claimedAt - entry.touched > 60_000 {
                        state.sweepRooms[room.room] = nil
                    } else {
                        state.sweepRooms[room.room]?.due = claim.claimedAt + recheck.milliseconds
                    }
                }
            }
        }
    }

    static func member(_ user: String, _ presence: World.Presence, ttl: Duration) -> PresenceMember {
        PresenceMember(
            username: user, joinedAt: presence.joinedAt, expiresAt: presence.expiresAt,
            lastSeen: presence.expiresAt - ttl.milliseconds, state: presence.state
        )
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}
