import Logging
@testable import PresenceCore

/// The domain wired over in-memory stores: no Redis, no network.
struct Fixture {
    let world = World()
    let events = RecordingEvents()
    let chat: ChatService
    let support: SupportService
    let users: UserDirectory

    init(chatSettings: ChatSettings = ChatSettings(), supportSettings: SupportSettings = SupportSettings(), admins: Set<String> = ["boss"]) {
        var chatSettings = chatSettings
        chatSettings.admins = admins
        var supportSettings = supportSettings
        supportSettings.admins = admins
        let logger = Logger(label: "test")
        let presence = InMemoryPresenceStore(world: world)
        let limits = InMemoryRateLimitStorage(world: world)
        users = UserDirectory(storage: InMemoryUserStore(world: world), hasher: PlainPasswordHasher())
        chat = ChatService(
            rooms: InMemoryRoomStore(world: world), presence: presence,
            history: InMemoryHistory(world: world, limit: chatSettings.historyLimit, overflow: .trimOldest), users: users,
            events: events, limits: limits, settings: chatSettings, logger: logger
        )
        support = SupportService(
            tickets: InMemorySupportStore(world: world), presence: presence,
            history: InMemoryHistory(world: world, limit: supportSettings.transcriptLimit, overflow: .refuseNew), users: users,
            events: events, limits: limits, settings: supportSettings, logger: logger, presenceLimiter: chat.presenceLimiter,
            waiting: InMemorySupportWaitingStore(world: world)
        )
    }

    /// Registers users without bcrypt work.
    func register(_ names: String...) async throws {
        for name in names { try await users.register(username: name, passwordHash: "unused") }
    }

    var presence: InMemoryPresenceStore { InMemoryPresenceStore(world: world) }

    func present(in room: String) async throws -> [String] {
        try await presence.presentUsers(room: room, ttl: .seconds(90)).map(\.username).sorted()
    }
}

/// The error a call throws, as a ``DomainError``.
func domainError(_ body: () async throws -> Void) async -> DomainError? {
    do {
        try await body()
        return nil
    } catch let error as DomainError {
        return error
    } catch {
        return nil
    }
}
