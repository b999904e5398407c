import Crypto

/// Tickets for ryOS's `local` realtime provider: the session cookie is HttpOnly and scoped to `/api`, so a browser
/// opening `/ws` cannot present it; it asks `POST /api/realtime/ticket` for a ticket instead and opens
/// `/ws?ticket=<ticket>`. A ticket is 32 random bytes (64 hex digits), stored only as its SHA-256, good for
/// ``ttl`` and for one socket: the socket that opens with it takes it.
public struct RealtimeTickets: Sendable {
    /// How long a ticket waits for its socket (ryOS: 60 s).
    public static let ttl = Duration.seconds(60)

    let storage: any RealtimeTicketStorage

    public init(storage: any RealtimeTicketStorage) {
        self.storage = storage
    }

    /// Issues a new ticket for `user`.
    public func issue(for user: String) async throws -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let ticket = Hex.encode(bytes)
        try await storage.save(digest: Self.digest(ticket), user: user, ttl: Self.ttl)
        return ticket
    }

    /// The user a ticket was issued to, taking the ticket (it works once); `nil` for a malformed, unknown, expired or
    /// already used ticket.
    public func redeem(_ ticket: String) async throws -> String? {
        guard Self.isWellFormed(ticket) else { return nil }
        return try await storage.take(digest: Self.digest(ticket))
    }

    /// 64 lowercase hex digits, as ``issue(for:)`` makes them.
    public static func isWellFormed(_ ticket: String) -> Bool {
        ticket.utf8.count == 64
            && ticket.utf8.allSatisfy { ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "f")) }
    }

    /// The hex SHA-256 of a ticket: its key in storage.
    public static func digest(_ ticket: String) -> String {
        Hex.encode(SHA256.hash(data: Array(ticket.utf8)))
    }
}
