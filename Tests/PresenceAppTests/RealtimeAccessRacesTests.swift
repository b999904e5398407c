import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOWebSocket
@testable import PresenceCore
@testable import PresenceApp
@testable import PresenceHTTP
@testable import PresenceRealtime
@testable import PresenceRedis
import Redis
import Synchronization
import AsyncTestSupport
import Testing
import TestSupport

/// Issue 28, access and refresh races on the hub, driven step by step: real sockets' handlers on in-process channels
/// (``NIOAsyncTestingChannel``), the domain on the test Redis, and a gate in one storage call to hold a subscribe or a
/// refresh exactly where the race needs it. The worker's pub/sub is a stand-in; control messages are handed to the hub
/// the way its subscriber would (``RealtimeHub/control(_:)``).
@Suite("Realtime access and refresh races", .serialized)
struct RealtimeAccessRacesTests {
    // MARK: - 1. Old signatures

    @Test func aSignatureWithoutAGrantIsRefusedAndTheRecheckEndsHolderlessSubscriptions() async throws {
        let world = try await RaceWorld()
        let (alice, bob) = (try await world.user("alice"), try await world.user("bob"))
        let room = try await world.services.chat.createRoom(name: "pair", type: .private, members: [bob], by: alice)
        let channel = "private-room-\(room.id)"
        let client = try await world.client()
        // A correct signature for this socket, but no grant record: lapsed (600 s), or never made by /pusher/auth.
        let reply = try await client.subscribe(channel, auth: world.signer.channelAuth(socketID: client.id, channel: channel))
        #expect(reply["event"] == "pusher:subscription_error")
        #expect(reply["data"]?["status"] == 401 && reply["data"]?["type"] == "AuthError")
        // With the grant, the same signature subscribes.
        try await world.services.channelAccess.recordGrant(socket: client.id, channel: channel, user: alice)
        let again = try await client.subscribe(channel, auth: world.signer.channelAuth(socketID: client.id, channel: channel))
        #expect(again["event"] == "pusher_internal:subscription_succeeded")
        // A governed subscription with no holder (none can be made now) is ended by any re-check of its channel.
        let socket = try #require(await world.hub.socket(client.id))
        socket.state.withLock { _ = $0.holders.removeValue(forKey: channel) }
        await world.hub.recheck(AccessChange(user: "someone-else", channels: [channel]))
        let revoked = try await client.next { $0["event"] == "pusher:subscription_error" }
        #expect(revoked["data"]?["type"] == "AccessRevoked")
        #expect(socket.state.withLock { $0.channels[channel] == nil })
        await client.close()
    }

    // MARK: - 2. A subscribe racing a revocation

    @Test func anAccessChangeBetweenTheCheckAndTheRegistrationEndsTheSubscription() async throws {
        let world = try await RaceWorld()
        let alice = try await world.user("alice"), bob = try await world.user("bob"), carol = try await world.user("carol")
        let room = try await world.services.chat.createRoom(name: "trio", type: .private, members: [bob, carol], by: alice)
        let channel = "presence-room-\(room.id)"
        let client = try await world.client()
        try await world.services.channelAccess.recordGrant(socket: client.id, channel: channel, user: alice)
        let data = PusherProtocol.channelData(user: alice)
        // The subscribe passes its access check, then waits at the presence limit, before the hub registers it.
        world.limits.arm()
        try await client.send(subscribe: channel, auth: world.signer.channelAuth(socketID: client.id, channel: channel, channelData: data), channelData: data)
        await world.limits.entered()
        // Now alice leaves the room, and the access change reaches this worker: nothing is registered to re-check.
        try await world.services.chat.deleteRoom(room.id, by: alice)
        await world.hub.control(try #require(JSONValue.parse(Array(AccessChange(user: alice, channels: ["private-room-\(room.id)", channel]).payload.utf8))?.object))
        try await Task.sleep(for: .milliseconds(50))  // the hub's re-check task runs and finds nothing
        world.limits.release()
        // The subscribe checks again once registered: refused, and nothing of it is left.
        let reply = try await client.next { $0["channel"]?.string == channel }
        #expect(reply["event"] == "pusher:subscription_error", "\(reply)")
        #expect(reply["data"]?["status"] == 403)
        let socket = try #require(await world.hub.socket(client.id))
        #expect(socket.state.withLock { $0.channels[channel] == nil && $0.holders[channel] == nil })
        #expect(await world.hub.counts.channels == 0)
        #expect(try await world.services.channelPresence.members(channel: channel).contains(alice) == false)
        await client.close()
    }

    @Test func aChangeForSomeoneElseDoesNotCostASecondCheck() async throws {
        let world = try await RaceWorld()
        let alice = try await world.user("alice"), bob = try await world.user("bob")
        let room = try await world.services.chat.createRoom(name: "pair", type: .private, members: [bob], by: alice)
        let channel = "presence-room-\(room.id)"
        let client = try await world.client()
        try await world.services.channelAccess.recordGrant(socket: client.id, channel: channel, user: alice)
        let data = PusherProtocol.channelData(user: alice)
        world.limits.arm()
        try await client.send(subscribe: channel, auth: world.signer.channelAuth(socketID: client.id, channel: channel, channelData: data), channelData: data)
        await world.limits.entered()
        let epoch = await world.hub.accessEpoch
        await world.hub.control(try #require(JSONValue.parse(Array(AccessChange(user: bob, channels: [channel]).payload.utf8))?.object))
        #expect(await world.hub.accessEpoch == epoch + 1)
        #expect(await world.hub.accessChanged(since: epoch, channel: channel, holder: alice) == false)
        #expect(await world.hub.accessChanged(since: epoch, channel: channel, holder: bob))
        world.limits.release()
        let reply = try await client.next { $0["channel"]?.string == channel }
        #expect(reply["event"] == "pusher_internal:subscription_succeeded", "\(reply)")
        await client.close()
    }

    // MARK: - 3. Sign-out

    @Test func aSignOutEndsGovernedSubscriptionsSignInsAndTicketUsersAndForgetsGrants() async throws {
        let world = try await RaceWorld()
        let alice = try await world.user("alice"), bob = try await world.user("bob")
        let own = "private-chats-\(alice)"
        // A Pusher socket on her own channel and a public one; one signed in as her; one of bob's; a ryOS socket.
        let plain = try await world.client()
        try await world.services.channelAccess.recordGrant(socket: plain.id, channel: own, user: alice)
        #expect(try await plain.subscribe(own, auth: world.signer.channelAuth(socketID: plain.id, channel: own))["event"] == "pusher_internal:subscription_succeeded")
        #expect(try await plain.subscribe("room-general")["event"] == "pusher_internal:subscription_succeeded")
        let signed = try await world.client()
        let userData = JSONValue.object(["id": .string(alice)]).serialized
        try await signed.send(["event": "pusher:signin", "data": ["auth": .string(world.signer.userAuth(socketID: signed.id, userData: userData)), "user_data": .string(userData)]])
        _ = try await signed.next { $0["event"] == "pusher:signin_success" }
        let others = try await world.client()
        try await world.services.channelAccess.recordGrant(socket: others.id, channel: "private-chats-\(bob)", user: bob)
        #expect(try await others.subscribe("private-chats-\(bob)", auth: world.signer.channelAuth(socketID: others.id, channel: "private-chats-\(bob)"))["event"] == "pusher_internal:subscription_succeeded")
        let ticket = try await world.services.realtimeTickets.issue(for: alice)
        let ryos = try await world.client(face: .ryos, ticket: ticket)
        let ryosSocket = try #require(await world.hub.openSockets.first { $0.face == .ryos })
        try await world.waitUntil { ryosSocket.ryosUser == alice }
        try await ryos.send(["type": "subscribe", "channel": .string(own)])
        try await world.waitUntil { ryosSocket.state.withLock { $0.holders[own] } == alice }

        // Her logout: the grants go, then every worker hears of it.
        try await world.services.channelAccess.endGrants(of: alice)
        await world.hub.control(["signout": .string(alice)])
        let revoked = try await plain.next { $0["event"] == "pusher:subscription_error" }
        #expect(revoked["channel"]?.string == own && revoked["data"]?["type"] == "AccessRevoked")
        let ryosError = try await ryos.next { $0["type"] == "subscription_error" }
        #expect(ryosError["channel"]?.string == own)
        #expect(ryosSocket.ryosUser == nil)
        #expect(try await signed.closeCode() == 4009)
        // The public subscription stays, and bob is untouched.
        let plainSocket = try #require(await world.hub.socket(plain.id)), othersSocket = try #require(await world.hub.socket(others.id))
        #expect(plainSocket.state.withLock { Array($0.channels.keys) } == ["room-general"])
        #expect(othersSocket.state.withLock { $0.channels["private-chats-\(bob)"] != nil })
        // The old signature, still correctly signed for this socket, gives nothing back: its grant was forgotten.
        let reply = try await plain.subscribe(own, auth: world.signer.channelAuth(socketID: plain.id, channel: own))
        #expect(reply["event"] == "pusher:subscription_error" && reply["data"]?["status"] == 401, "\(reply)")
        for client in [plain, signed, others, ryos] { await client.close() }
    }

    @Test func aSignOutDuringASubscribeEndsIt() async throws {
        let world = try await RaceWorld()
        let alice = try await world.user("alice")
        let channel = "presence-room-general"
        let client = try await world.client()
        try await world.services.channelAccess.recordGrant(socket: client.id, channel: channel, user: alice)
        let data = PusherProtocol.channelData(user: alice)
        world.limits.arm()
        try await client.send(subscribe: channel, auth: world.signer.channelAuth(socketID: client.id, channel: channel, channelData: data), channelData: data)
        await world.limits.entered()
        try await world.services.channelAccess.endGrants(of: alice)
        await world.hub.control(["signout": .string(alice)])
        world.limits.release()
        let reply = try await client.next { $0["channel"]?.string == channel }
        #expect(reply["event"] == "pusher:subscription_error" && reply["data"]?["status"] == 401, "\(reply)")
        #expect(try await world.services.channelPresence.members(channel: channel).contains(alice) == false)
        await client.close()
    }

    // MARK: - 4. Refreshes racing leaves

    @Test func anOccupancyRefreshHeldWhileTheLastSubscriberLeavesDoesNotBringTheChannelBack() async throws {
        let world = try await RaceWorld()
        let solo = "solo-\(UUID().uuidString.prefix(8))"
        // Subscriptions for several refresh batches (of 2 here): the leaver's, alone on its channel, is in the held
        // first batch (the write in Redis must be conditional) or in a later one (it must not be sent at all).
        var clients: [RaceClient] = []
        for n in 0..<2 {
            let client = try await world.client()
            for c in 0..<3 { _ = try await client.subscribe("busy-\(n)-\(c)") }
            clients.append(client)
        }
        let leaver = try await world.client()
        _ = try await leaver.subscribe(solo)
        #expect(try await world.services.occupancy.counts([solo], users: false).first?.subscriptions == 1)
        world.occupancy.changes.withLock { $0.removeAll() }

        world.occupancy.arm()
        let refresh = Task { await world.hub.refreshOccupancy() }
        await world.occupancy.entered()  // the first batch is held before it reaches Redis
        try await leaver.send(["event": "pusher:unsubscribe", "data": ["channel": .string(solo)]])
        try await world.waitUntil { try await world.services.occupancy.counts([solo], users: false).first?.subscriptions == 0 }
        world.occupancy.release()
        await refresh.value

        #expect(try await world.services.occupancy.counts([solo], users: false).first?.subscriptions == 0)
        #expect(world.occupancy.changes.withLock { $0 }.filter { $0.channel == solo } == [OccupancyChange(channel: solo, occupied: false)])
        for client in clients + [leaver] { await client.close() }
    }

    @Test func aPresenceRefreshHeldWhileASocketLeavesLetsTheLastLeaveAnnounceTheUser() async throws {
        let world = try await RaceWorld()
        let alice = try await world.user("alice")
        let channel = "presence-lobby-\(UUID().uuidString.prefix(8))"
        let data = PusherProtocol.channelData(user: alice)
        let first = try await world.client(), second = try await world.client()
        for client in [first, second] {
            let reply = try await client.subscribe(channel, auth: world.signer.channelAuth(socketID: client.id, channel: channel, channelData: data), channelData: data)
            #expect(reply["event"] == "pusher_internal:subscription_succeeded")
        }
        world.sockets.arm()
        let refresh = Task { await world.hub.refreshPresence() }
        // One socket per batch here: the first batch is held before it reaches Redis, whichever socket it has.
        await world.sockets.entered()
        try await first.send(["event": "pusher:unsubscribe", "data": ["channel": .string(channel)]])
        let room = ChannelPresence.room(for: channel).id
        try await world.waitUntil {
            try await world.services.redis.send(RedisCommand("ZSCORE", RedisKeys.roomSockets(room, alice), first.id)).string == nil
        }
        world.sockets.release()
        await refresh.value
        // The first socket is not back, so the second one's leave is alice's last: she is gone at once.
        #expect(try await world.services.redis.send(RedisCommand("ZSCORE", RedisKeys.roomSockets(room, alice), first.id)).string == nil)
        try await second.send(["event": "pusher:unsubscribe", "data": ["channel": .string(channel)]])
        try await world.waitUntil { try await world.presence.members(channel: channel).isEmpty }
        await first.close()
        await second.close()
    }

    /// The live-channel index keeps a lapsed channel for the settle pass, whatever else of its bucket is touched first:
    /// a dead worker's channel is vacated (and `channel_vacated` sent) by the settle, not pruned away unannounced.
    @Test func aTouchInTheSameBucketLeavesALapsedChannelForTheSettle() async throws {
        let redis = RedisClient(configuration: try SharedRedis.configuration())
        let store = RedisOccupancyStore(redis: redis)
        let lapsing = "lapsing-\(UUID().uuidString.prefix(8))"
        let bucket = RedisKeys.spreadBucket(of: lapsing)
        var other = ""
        repeat { other = "other-\(UUID().uuidString.prefix(8))" } while RedisKeys.spreadBucket(of: other) != bucket
        _ = try await store.touch([(lapsing, "s1")], ttl: .seconds(30))
        // Its worker stopped refreshing it: the entry lapsed (its score in the past; set directly rather than waiting out
        // a short TTL, which a busy machine can stretch past the key's own expiry).
        _ = try await redis.send(RedisCommand("ZADD", RedisKeys.pusherChannels(bucket: bucket), "XX", "1", lapsing))
        _ = try await store.touch([(other, "s2")], ttl: .seconds(30))
        #expect(try await redis.send(RedisCommand("ZSCORE", RedisKeys.pusherChannels(bucket: bucket), lapsing)).string != nil)
        _ = try await store.remove(channel: other, socket: "s2")
        await redis.close()
    }

    // MARK: - 5. The feed's requests in the registry's order

    /// A socket on two channels closes; the unsubscribe of its first channel is slow to confirm. Meanwhile another
    /// socket subscribes to the second channel. The removal's unsubscribe of that channel must reach the feed before
    /// the new subscribe, or the worker would believe itself subscribed to a channel the feed has dropped (and its
    /// sockets there would get nothing, as a cluster run through nginx once showed: a typing event never arrived).
    @Test func aRemovalsUnsubscribesReachTheFeedBeforeASubscribeMadeDuringIt() async throws {
        let world = try await RaceWorld()
        let first = "room-one-\(UUID().uuidString.prefix(8).lowercased())", second = "room-two-\(UUID().uuidString.prefix(8).lowercased())"
        let leaving = try await world.client()
        #expect(try await leaving.subscribe(first)["event"] == "pusher_internal:subscription_succeeded")
        #expect(try await leaving.subscribe(second)["event"] == "pusher_internal:subscription_succeeded")
        #expect(world.feed.subscribedTopics.isSuperset(of: [.channel(first), .channel(second)]))
        let staying = try await world.client()
        world.feed.holdUnsubscribe(of: .channel(first))
        await leaving.close()
        try await world.waitUntil { world.feed.unsubscribeIsHeld }
        // The hub waits for the first unsubscribe's confirmation; the new subscribe runs meanwhile.
        #expect(try await staying.subscribe(second)["event"] == "pusher_internal:subscription_succeeded")
        world.feed.releaseUnsubscribe()
        // The removal has left every channel (its feed requests all made and confirmed).
        try await world.waitUntil { await world.hub.socket(leaving.id) == nil }
        try await world.waitUntil { await world.hub.removalsInFlight == 0 }
        #expect(await world.hub.counts.channels == 1)
        #expect(world.feed.subscribedTopics.contains(.channel(second)), "\(world.feed.subscribedTopics)")
        #expect(!world.feed.subscribedTopics.contains(.channel(first)))
        await staying.close()
    }

    // MARK: - 7. Room watches (message_unseen)

    /// A governed subscription to a private room's channel is recorded in the room's slot with the user it rides on
    /// (`room:{<id>}:watchers`), drops that user's pending notice, and goes with an unsubscribe, a revocation and the
    /// socket's close; a public room's presence channel records nothing.
    @Test func aRoomWatchLastsAsLongAsItsSubscription() async throws {
        let world = try await RaceWorld(unseen: true)
        let redis = world.services.redis
        let (alice, bob) = (try await world.user("alice"), try await world.user("bob"))
        let room = try await world.services.chat.createRoom(name: "watched", type: .private, members: [bob], by: alice)
        let channel = "private-room-\(room.id)"
        func watchers() async throws -> [String] {
            try await redis.send(RedisCommand("ZRANGE", RedisKeys.roomWatchers(room.id), "0", "-1")).array?.compactMap(\.string) ?? []
        }
        func subscribed(_ client: RaceClient) async throws {
            try await world.services.channelAccess.recordGrant(socket: client.id, channel: channel, user: bob)
            let reply = try await client.subscribe(channel, auth: world.signer.channelAuth(socketID: client.id, channel: channel))
            #expect(reply["event"] == "pusher_internal:subscription_succeeded", "\(reply)")
        }

        // alice posts while bob is away: a pending notice; bob's subscription drops it and is recorded.
        _ = try await world.services.chat.postMessage(room: room.id, user: alice, content: "are you there?")
        #expect(try await redis.send(RedisCommand("HEXISTS", RedisKeys.roomUnseen(room.id), bob)).int == 1)
        let first = try await world.client()
        try await subscribed(first)
        try await world.waitUntil { try await watchers() == ["\(bob)\n\(first.id)"] }
        #expect(try await redis.send(RedisCommand("HEXISTS", RedisKeys.roomUnseen(room.id), bob)).int == 0)
        // Also on the room's presence channel: one watch; leaving one of the two channels keeps it.
        let presenceChannel = "presence-room-\(room.id)"
        let data = PusherProtocol.channelData(user: bob)
        try await world.services.channelAccess.recordGrant(socket: first.id, channel: presenceChannel, user: bob)
        #expect(try await first.subscribe(
            presenceChannel, auth: world.signer.channelAuth(socketID: first.id, channel: presenceChannel, channelData: data), channelData: data
        )["event"] == "pusher_internal:subscription_succeeded")
        let held = await world.hub.roomWatches()
        #expect(held == [RoomWatch(room: room.id, user: bob, socket: first.id)], "\(held)")
        try await first.send(["event": "pusher:unsubscribe", "data": ["channel": .string(presenceChannel)]])
        try await world.waitUntil { await world.hub.watching[first.id]?[presenceChannel] == nil }
        // The worker's refresh pushes the watch's expiry on (and keeps the one watch).
        func expiry() async throws -> Double? {
            try await redis.send(RedisCommand("ZSCORE", RedisKeys.roomWatchers(room.id), "\(bob)\n\(first.id)")).string.flatMap(Double.init)
        }
        let before = try #require(try await expiry())
        try await Task.sleep(for: .milliseconds(20))
        await world.hub.maintenance.refreshRoomWatches()
        #expect(try await watchers() == ["\(bob)\n\(first.id)"])
        #expect(try #require(try await expiry()) > before)
        // Unsubscribed from both: gone.
        try await first.send(["event": "pusher:unsubscribe", "data": ["channel": .string(channel)]])
        try await world.waitUntil { try await watchers().isEmpty }
        // Revoked (bob leaves the room): gone.
        try await subscribed(first)
        try await world.waitUntil { try await watchers().count == 1 }
        try await world.services.chat.deleteRoom(room.id, by: bob)
        await world.hub.control(try #require(JSONValue.parse(Array(AccessChange(user: bob, channels: [channel]).payload.utf8))?.object))
        try await world.waitUntil { try await watchers().isEmpty }
        // The socket closes: gone.
        let room2 = try await world.services.chat.createRoom(name: "watched2", type: .private, members: [bob], by: alice)
        let second = try await world.client()
        let channel2 = "private-room-\(room2.id)"
        try await world.services.channelAccess.recordGrant(socket: second.id, channel: channel2, user: bob)
        #expect(try await second.subscribe(channel2, auth: world.signer.channelAuth(socketID: second.id, channel: channel2))["event"]
            == "pusher_internal:subscription_succeeded")
        try await world.waitUntil { try await redis.send(RedisCommand("ZCARD", RedisKeys.roomWatchers(room2.id))).int == 1 }
        await second.close()
        try await world.waitUntil { try await redis.send(RedisCommand("ZCARD", RedisKeys.roomWatchers(room2.id))).int == 0 }
        await first.close()
    }
}

// MARK: - Harness

/// The domain on the test Redis, and a hub and connection whose storage has gates.
struct RaceWorld {
    let services: AppServices
    let hub: RealtimeHub
    let connection: PusherEndpoint
    let signer: PusherSigner
    let presence: ChannelPresence
    let limits: GatedLimits
    let occupancy: GatedOccupancy
    let sockets: GatedSockets
    let feed = QuietFeed()

    /// `unseen`: a receiver wants `message_unseen`, and the hub records room watches.
    init(unseen: Bool = false) async throws {
        var configuration = AppConfiguration()
        if unseen { configuration.webhooks.targets = [WebhookTarget(url: "http://127.0.0.1:9/unseen", events: [.messageUnseen])] }
        configuration.redis = try SharedRedis.configuration()
        configuration.redis.commandTimeout = .seconds(5)
        configuration.bcryptCost = 4
        let redis = RedisClient(configuration: configuration.redis)
        services = AppServices(configuration: configuration, redis: redis, logger: Logger(label: "test"))
        try await services.chat.ensureDefaultRooms()
        let store = RedisPresenceStore(redis: redis, logger: Logger(label: "test"))
        sockets = GatedSockets(base: store)
        presence = ChannelPresence(sockets: sockets, presence: store, chat: services.chat, ttl: configuration.chat.presenceTTL)
        limits = GatedLimits(base: RedisRateLimitStorage(redis: redis))
        occupancy = GatedOccupancy(base: services.occupancy)
        signer = services.signer
        hub = RealtimeHub(
            subscriber: feed, occupancy: occupancy, presence: presence, access: services.channelAccess,
            settings: configuration.pusher, tokenCache: ExpiringCache(lifetime: .seconds(1)),
            unseen: unseen ? UnseenMessages(
                storage: RedisUnseenStore(redis: redis, webhooks: configuration.webhooks), grace: .seconds(30), logger: Logger(label: "test")
            ) : nil,
            logger: Logger(label: "test"), refreshBatch: 2
        )
        connection = PusherEndpoint(
            hub: hub, events: services.events, presence: presence, access: services.channelAccess,
            presenceLimiter: SlidingWindowLimiter(name: "presence-race", limit: 10_000, window: .seconds(60), storage: limits),
            settings: configuration.pusher, signer: signer, cache: RedisChannelCache(redis: redis),
            tickets: services.realtimeTickets, logger: Logger(label: "test")
        )
    }

    /// Registers a user with a name of its own (the tests share a Redis).
    func user(_ name: String) async throws -> String {
        let user = name + UUID().uuidString.prefix(8).lowercased()
        try await services.users.register(username: user, password: "password123")
        return user
    }

    func client(face: SocketFace = .pusher, ticket: String? = nil) async throws -> RaceClient {
        try await RaceClient(connection: connection, face: face, ticket: ticket)
    }

    func waitUntil(timeout: Duration = .seconds(5), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await !condition() {
            guard ContinuousClock.now < deadline else { throw TestHarnessError("condition not met in \(timeout)") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}

/// One client socket: its handler on an in-process channel; frames in and out as JSON.
final class RaceClient: Sendable {
    let channel: NIOAsyncTestingChannel
    let id: String
    private let backlog = Mutex<[JSONValue]>([])

    init(connection: PusherEndpoint, face: SocketFace, ticket: String?) async throws {
        channel = NIOAsyncTestingChannel()
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9))
        let channel = self.channel
        try await channel.testingEventLoop.executeInContext {
            let handler = PusherChannelHandler(connection: connection, opening: .init(key: connection.settings.key, protocolVersion: 7, overQuota: nil, face: face, ticket: ticket))
            try channel.pipeline.syncOperations.addHandler(handler)
        }
        if face == .pusher {
            id = try await Self.read(channel, timeout: .seconds(5)).flatMap { $0["data"]?.string.flatMap { JSONValue.parse(Array($0.utf8)) }?["socket_id"]?.string } ?? ""
        } else {
            try await Task.sleep(for: .milliseconds(20))
            id = ""
        }
    }

    func send(_ message: JSONValue) async throws {
        let frame = WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: message.serialized))
        try await channel.writeInbound(frame)
    }

    func send(subscribe channel: String, auth: String? = nil, channelData: String? = nil) async throws {
        var data: [String: JSONValue] = ["channel": .string(channel)]
        if let auth { data["auth"] = .string(auth) }
        if let channelData { data["channel_data"] = .string(channelData) }
        try await send(["event": "pusher:subscribe", "data": .object(data)])
    }

    /// Subscribes and returns the answer for that channel (succeeded or an error).
    func subscribe(_ name: String, auth: String? = nil, channelData: String? = nil) async throws -> JSONValue {
        try await send(subscribe: name, auth: auth, channelData: channelData)
        return try await next { $0["channel"]?.string == name && ($0["event"]?.string ?? "").contains("subscription") }
    }

    /// The first message (kept from before or arriving within `timeout`) that matches; the others stay for later.
    func next(timeout: Duration = .seconds(5), _ matching: (JSONValue) -> Bool) async throws -> JSONValue {
        if let found = backlog.withLock({ backlog -> JSONValue? in
            guard let index = backlog.firstIndex(where: matching) else { return nil }
            return backlog.remove(at: index)
        }) { return found }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard let message = try await Self.read(channel, timeout: deadline - ContinuousClock.now) else { break }
            if matching(message) { return message }
            backlog.withLock { $0.append(message) }
        }
        throw TestHarnessError("no matching message; got \(backlog.withLock { $0 })")
    }

    /// The code of the close frame the server sent.
    func closeCode(timeout: Duration = .seconds(5)) async throws -> Int? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let frame = try await channel.readOutbound(as: WebSocketFrame.self) {
                if frame.opcode == .connectionClose {
                    var data = frame.unmaskedData
                    return data.readInteger(as: UInt16.self).map(Int.init)
                }
                continue
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }

    func close() async {
        _ = try? await channel.close()
    }

    private static func read(_ channel: NIOAsyncTestingChannel, timeout: Duration) async throws -> JSONValue? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let frame = try await channel.readOutbound(as: WebSocketFrame.self) {
                guard frame.opcode == .text else { continue }
                return JSONValue.parse(Array(frame.unmaskedData.readableBytesView))
            }
            try await Task.sleep(for: .milliseconds(2))
        }
        return nil
    }
}

final class GatedLimits: RateLimitStorage {
    let base: any RateLimitStorage
    private let gate = Gate()
    init(base: any RateLimitStorage) { self.base = base }
    func arm() { gate.arm() }
    func entered() async { await gate.entered() }
    func release() { gate.release() }

    func evaluate(limit name: String, subject: String, limit: Int, window: Duration, cost: Int, peek: Bool) async throws
        -> (allowed: Bool, remaining: Int, resetMilliseconds: Int) {
        await gate.pass()
        return try await base.evaluate(limit: name, subject: subject, limit: limit, window: window, cost: cost, peek: peek)
    }
}

final class GatedOccupancy: OccupancyStorage {
    let base: any OccupancyStorage
    private let gate = Gate()
    /// Every change the store reported, in order.
    let changes = Mutex<[OccupancyChange]>([])
    init(base: any OccupancyStorage) { self.base = base }
    func arm() { gate.arm() }
    func entered() async { await gate.entered() }
    func release() { gate.release() }

    func touch(_ subscriptions: [(channel: String, socket: String)], ttl: Duration) async throws -> [OccupancyChange] {
        await gate.pass()
        let made = try await base.touch(subscriptions, ttl: ttl)
        changes.withLock { $0 += made }
        return made
    }

    func refresh(_ subscriptions: [(channel: String, socket: String)], ttl: Duration) async throws -> [Int] {
        await gate.pass()
        return try await base.refresh(subscriptions, ttl: ttl)
    }

    func remove(channel: String, socket: String) async throws -> Bool {
        let vacated = try await base.remove(channel: channel, socket: socket)
        if vacated { changes.withLock { $0.append(OccupancyChange(channel: channel, occupied: false)) } }
        return vacated
    }

    func liveChannels() async throws -> [String] { try await base.liveChannels() }
    func counts(_ channels: [String], users: Bool) async throws -> [(subscriptions: Int, users: Int?)] { try await base.counts(channels, users: users) }
    func settleLapsed(limit: Int) async throws -> [String] { try await base.settleLapsed(limit: limit) }
}

final class GatedSockets: SocketPresenceStorage {
    let base: any SocketPresenceStorage
    private let gate = Gate()
    init(base: any SocketPresenceStorage) { self.base = base }
    func arm() { gate.arm() }
    func entered() async { await gate.entered() }
    func release() { gate.release() }

    func attachSocket(
        _ socket: String, user: String, room: String, openingChannel: String?, ttl: Duration, state: JSONValue?, maxMembers: Int?
    ) async throws -> PresenceJoin {
        try await base.attachSocket(socket, user: user, room: room, openingChannel: openingChannel, ttl: ttl, state: state, maxMembers: maxMembers)
    }

    func detachSocket(_ socket: String, user: String, room: String) async throws -> PresenceLeave? {
        try await base.detachSocket(socket, user: user, room: room)
    }

    func refreshSockets(_ entries: [SocketEntry], ttl: Duration) async throws -> [Int] {
        await gate.pass()
        return try await base.refreshSockets(entries, ttl: ttl)
    }
}

/// The worker's pub/sub, without Redis: subscriptions are confirmed at once, nothing arrives. What it is subscribed to
/// changes when a request is made, in request order, as Redis applies commands in the order they are sent; an
/// unsubscribe can be held unconfirmed (``holdUnsubscribe(of:)``) to stop the hub mid-removal.
final class QuietFeed: RealtimeFeed {
    let stream: AsyncStream<RealtimeFeedEvent>
    private let continuation: AsyncStream<RealtimeFeedEvent>.Continuation
    private let wanted = Mutex<Set<RealtimeTopic>>([])
    private let held = Mutex<(topic: RealtimeTopic?, promise: EventLoopPromise<Void>?)>((nil, nil))
    private let loop = NIOAsyncTestingEventLoop()

    init() {
        (stream, continuation) = AsyncStream.makeStream()
    }

    var events: any AsyncSequence<RealtimeFeedEvent, Never> { stream }

    func requestSubscribe(_ topics: [RealtimeTopic]) -> EventLoopFuture<Void> {
        wanted.withLock { $0.formUnion(topics) }
        return loop.makeSucceededVoidFuture()
    }

    func requestUnsubscribe(_ topics: [RealtimeTopic]) -> EventLoopFuture<Void> {
        wanted.withLock { $0.subtract(topics) }
        let promise: EventLoopPromise<Void>? = held.withLock { held in
            guard let topic = held.topic, topics.contains(topic), held.promise == nil else { return nil }
            let promise = loop.makePromise(of: Void.self)
            held.promise = promise
            return promise
        }
        return promise?.futureResult ?? loop.makeSucceededVoidFuture()
    }

    /// The next unsubscribe of `topic` is applied but not confirmed until ``releaseUnsubscribe()``.
    func holdUnsubscribe(of topic: RealtimeTopic) {
        held.withLock { $0 = (topic, nil) }
    }

    /// Whether the held unsubscribe has been requested.
    var unsubscribeIsHeld: Bool { held.withLock { $0.promise != nil } }

    func releaseUnsubscribe() {
        let promise = held.withLock { held -> EventLoopPromise<Void>? in
            defer { held = (nil, nil) }
            return held.promise
        }
        promise?.succeed()
    }

    var subscribedTopics: Set<RealtimeTopic> { wanted.withLock { $0 } }
    func compact() {}
    func close() async { continuation.finish() }
    func run() async {}
}
