/// The sweeper's work list: the rooms that may hold members whose presence expired, spread over ``bucketCount``
/// buckets, each room with the time it is due for a check. A member's own expiry lives with the member, in its room
/// (written in the same atomic step as the presence); a room is registered before any member enters it, so no member
/// is ever in a room the sweeper does not know.
///
/// A pass leases the due rooms of every bucket (so workers share them), claims each room's expired members (each
/// claimed by one caller only), and only then settles the rooms: a room with members is due again at its next expiry,
/// an empty one shortly, and dropped once no join registered it for a while.
public protocol ExpiryStorage: Sendable {
    /// The number of buckets.
    var bucketCount: Int { get }
    /// Leases up to `limit` due rooms of each bucket for `lease` (no other pass gets them until then).
    func due(limit: Int, lease: Duration) async throws -> [DueRoom]
    /// Claims the expired members of each room (a member is claimed by one caller only); `nil` for a room that failed.
    func claimExpired(rooms: [String]) async throws -> [ExpiredClaim?]
    /// Settles rooms after their claims (see the type's description); `recheck` is when an empty room is due again.
    func settle(_ settled: [(room: DueRoom, claim: ExpiredClaim)], recheck: Duration) async throws
}

/// A room leased to one sweeper pass.
public struct DueRoom: Sendable, Equatable {
    public var room: String
    /// The bucket the room is registered in.
    public var bucket: Int
    /// The lease's end (store clock, ms): settling compares it to see whether a join registered meanwhile.
    public var leasedUntil: Int64

    public init(room: String, bucket: Int, leasedUntil: Int64) {
        self.room = room
        self.bucket = bucket
        self.leasedUntil = leasedUntil
    }
}

/// Members of one room whose presence expired, claimed by one sweeper.
public struct ExpiredClaim: Sendable, Equatable {
    public var users: [String]
    public var userCount: Int
    public var meta: [String: String]
    /// When the claim ran (store clock, ms).
    public var claimedAt: Int64
    /// The earliest expiry among the members still present; `nil` when none is.
    public var nextExpiry: Int64?

    public init(users: [String], userCount: Int, meta: [String: String], claimedAt: Int64 = 0, nextExpiry: Int64? = nil) {
        self.users = users
        self.userCount = userCount
        self.meta = meta
        self.claimedAt = claimedAt
        self.nextExpiry = nextExpiry
    }
}
