import Logging
import Synchronization
import Testing
@testable import PresenceCore

@Suite("Limiter arithmetic and sweeper claims (in memory)")
struct LimiterAndSweeperTests {
    @Test func slidingWindowArithmetic() async throws {
        let world = World()
        let limiter = SlidingWindowLimiter(name: "ai", limit: 3, window: .seconds(60), storage: InMemoryRateLimitStorage(world: world))
        for remaining in [2, 1, 0] {
            let decision = try await limiter.check("alice")
            #expect(decision.allowed && decision.remaining == remaining)
            world.advance(.seconds(10))
        }
        // Three in the window (at 0, 10 and 20 s); now 30 s: the oldest leaves at 60 s.
        let refused = try await limiter.check("alice")
        #expect(!refused.allowed && refused.resetMilliseconds == 30_000 && refused.retryAfterSeconds == 30)
        #expect(refused.header == "\"ai\";r=0;t=30" && refused.policyHeader == "\"ai\";q=3;w=60")
        #expect(try await limiter.check("bobby").allowed)  // per subject
        world.advance(.milliseconds(30_001))
        #expect(try await limiter.peek("alice").allowed)
        #expect(try await limiter.check("alice").remaining == 0)
        // A cost is all or none.
        #expect(!(try await limiter.check("carol", cost: 4)).allowed)
        #expect(try await limiter.check("carol", cost: 3).allowed)
        // A refusal is not counted, so it never pushes the window back.
        world.advance(.seconds(61))
        #expect(try await limiter.check("carol").remaining == 2)
    }

    @Test func twoSweepersAnnounceEachExpiryOnce() async throws {
        let f = Fixture()
        try await f.register("alice", "bobby", "carol")
        _ = try await f.chat.rooms.create(id: "general", name: "general", type: .public, createdBy: "system", members: [])
        for user in ["alice", "bobby", "carol"] { try await f.chat.switchRooms(user: user, previous: nil, next: "general") }
        f.world.advance(.seconds(60))
        try await f.chat.heartbeat(user: "carol", room: "general")
        f.world.advance(.seconds(31))  // alice and bobby expired at 90 s; carol lasts until 150 s
        let announced = Mutex<[String]>([])
        let sweepers = (0..<2).map { _ in
            PresenceSweeper(storage: f.presence, interval: .seconds(1), logger: Logger(label: "test")) { expired in
                announced.withLock { $0 += expired.users.map { "\(expired.room):\($0)" } }
            }
        }
        async let first = sweepers[0].sweepOnce()
        async let second = sweepers[1].sweepOnce()
        _ = try await (first, second)
        _ = try await sweepers[0].sweepOnce()
        #expect(announced.withLock { $0.sorted() } == ["general:alice", "general:bobby"])
        #expect(try await f.present(in: "general") == ["carol"])
        // Nothing left to claim, and carol's later expiry is announced once when it comes.
        f.world.advance(.seconds(60))
        _ = try await sweepers[1].sweepOnce()
        _ = try await sweepers[0].sweepOnce()
        #expect(announced.withLock { $0.sorted() } == ["general:alice", "general:bobby", "general:carol"])
    }
}
