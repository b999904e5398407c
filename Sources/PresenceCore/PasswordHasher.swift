import HummingbirdBcrypt
import NIOPosix

/// bcrypt, run on NIO's thread pool so no event loop or cooperative thread blocks on it.
public struct PasswordHasher: Sendable {
    /// The bcrypt cost (work factor): 2^cost rounds.
    public let cost: UInt8
    let pool: NIOThreadPool

    public init(cost: UInt8 = 10, pool: NIOThreadPool = .singleton) {
        self.cost = cost
        self.pool = pool
    }

    public func hash(_ password: String) async throws -> String {
        let cost = self.cost
        return try await pool.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    public func verify(_ password: String, hash: String) async throws -> Bool {
        try await pool.runIfActive { Bcrypt.verify(password, hash: hash) }
    }
}
