@testable import PresenceCore

/// ``RoomStorage`` in memory.
struct InMemoryRoomStore: RoomStorage {
    let world: World

    func create(id: String, name: String, type: Room.Kind, createdBy: String, members: [String]) async throws -> (room: Room, created: Bool) {
        let created: Bool = world.withState { state in
            if type == .public { state.publicRooms.insert(id) } else { for m in members { state.userRooms[m, default: []].insert(id) } }
            guard state.meta[id] == nil else { return false }
            state.meta[id] = ["id": id, "name": name, "type": type.rawValue, "createdAt": String(state.now), "createdBy": createdBy]
            if type == .private { state.access[id] = Set(members) }
            return true
        }
        guard let room = try await get(id) else { throw DomainError.roomNotFound }
        return (room, created)
    }

    func get(_ id: String) async throws -> Room? {
        world.withState { state in
            guard let meta = state.meta[id] else { return nil }
            return Room(meta: meta, userCount: World.present(state, room: id).count, members: state.access[id].map(Array.init))
        }
    }

    func get(_ ids: [String]) async throws -> [Room] {
        var rooms: [Room] = []
        for id in ids { if let room = try await get(id) { rooms.append(room) } }
        return rooms
    }

    func listIDs(for user: String?) async throws -> [String] {
        world.withState { state in Array(state.publicRooms) + (user.map { Array(state.userRooms[$0] ?? []) } ?? []) }
    }

    func delete(_ id: String) async throws -> Room? {
        guard let room = try await get(id) else { return nil }
        world.withState { state in
            state.meta[id] = nil
            state.presence[id] = nil
            state.history[id] = nil
            state.publicRooms.remove(id)
            for member in state.access.removeValue(forKey: id) ?? [] { state.userRooms[member]?.remove(id) }
        }
        return room
    }

    func leavePrivate(_ id: String, user: String) async throws -> PrivateRoomLeave? {
        guard let before = try await get(id) else { return nil }
        return world.withState { state in
            state.access[id]?.remove(user)
            state.userRooms[user]?.remove(id)
            let wasPresent = state.presence[id]?.removeValue(forKey: user) != nil
            if (state.access[id]?.count ?? 0) < 2 {
                for member in state.access[id] ?? [] { state.userRooms[member]?.remove(id) }
                state.meta[id] = nil
                state.access[id] = nil
                state.presence[id] = nil
                state.history[id] = nil
                return PrivateRoomLeave(before: before, deleted: true, userCount: 0, wasPresent: wasPresent)
            }
            return PrivateRoomLeave(before: before, deleted: false, userCount: World.present(state, room: id).count, wasPresent: wasPresent)
        }
    }

    func forget(_ ids: [String], for user: String?) async throws {
        world.withState { state in
            for id in ids {
                state.publicRooms.remove(id)
                if let user { state.userRooms[user]?.remove(id) }
            }
        }
    }
}
