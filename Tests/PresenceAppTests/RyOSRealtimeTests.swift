import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
@testable import PresenceCore
@testable import PresenceApp
@testable import PresenceHTTP
@testable import PresenceRealtime
@testable import PresenceRedis
import Redis
import Synchronization
import Testing

/// ryOS's `local` realtime provider without sockets: its frames, who may subscribe to what, tickets, and
/// `/app-config.js`.
@Suite("ryOS realtime")
struct RyOSRealtimeTests {
    // MARK: - Frames

    @Test func serverFrames() {
        #expect(RyOSRealtimeProtocol.pong == #"{"type":"pong"}"#)
        #expect(RyOSRealtimeProtocol.subscriptionError(channel: "private-room-x") == #"{"channel":"private-room-x","type":"subscription_error"}"#)
        #expect(RyOSRealtimeProtocol.subscriptionError(channel: #"a"b"#) == #"{"channel":"a\"b","type":"subscription_error"}"#)
    }

    @Test func eventDataIsAJSONValueNotAString() throws {
        // This service publishes `data` as a string holding JSON: ryOS gets the object.
        let text = RyOSRealtimeProtocol.event("room-message", channel: "room-general", data: .string(#"{"message":{"content":"hi <b>"}}"#))
        let frame = try #require(JSONValue.parse(Array(text.utf8))?.object)
        #expect(frame["type"] == "event")
        #expect(frame["channel"] == "room-general")
        #expect(frame["event"] == "room-message")
        #expect(frame["data"]?["message"]?["content"] == "hi <b>")
        #expect(text == #"{"channel":"room-general","data":{"message":{"content":"hi <b>"}},"event":"room-message","type":"event"}"#)
    }

    @Test func eventDataShapes() {
        #expect(RyOSRealtimeProtocol.eventData(["a": 1]) == ["a": 1])
        #expect(RyOSRealtimeProtocol.eventData([1, 2]) == [1, 2])
        #expect(RyOSRealtimeProtocol.eventData(.string("[1,2]")) == [1, 2])
        #expect(RyOSRealtimeProtocol.eventData(.string("plain text")) == .string("plain text"))
        #expect(RyOSRealtimeProtocol.eventData(.string("")) == .string(""))
        #expect(RyOSRealtimeProtocol.eventData(nil) == [:])
    }

    @Test func pusherEventsAreNotForRyOS() {
        #expect(RyOSRealtimeProtocol.isDeliverable("room-message"))
        #expect(RyOSRealtimeProtocol.isDeliverable("user-heartbeat"))
        #expect(RyOSRealtimeProtocol.isDeliverable("client-typing"))
        #expect(!RyOSRealtimeProtocol.isDeliverable("pusher_internal:member_added"))
        #expect(!RyOSRealtimeProtocol.isDeliverable("pusher:cache_miss"))
    }

    @Test func clientFrames() {
        #expect(RyOSRealtimeProtocol.request(#"{"type":"ping"}"#) == .ping)
        #expect(RyOSRealtimeProtocol.request(#"{"type":"subscribe","channel":"room-abc"}"#) == .subscribe("room-abc"))
        #expect(RyOSRealtimeProtocol.request(#"{"type":"unsubscribe","channel":"room-abc"}"#) == .unsubscribe("room-abc"))
        // Ignored, as ryOS's server ignores them.
        for text in ["", "not json", "[]", #"{"event":"pusher:ping"}"#, #"{"type":"pong"}"#, #"{"type":"subscribe"}"#,
                     #"{"type":"subscribe","channel":""}"#, #"{"type":"subscribe","channel":5}"#, #"{"type":1}"#] {
            #expect(RyOSRealtimeProtocol.request(text) == nil, "\(text)")
        }
    }

    // MARK: - Access

    @Test func publicChannelsForAnyone() {
        for channel in ["room-general", "chats-public", "listen-abc", "cache-x"] {
            #expect(RyOSRealtimeProtocol.access(to: channel, user: nil) == .allowed)
            #expect(RyOSRealtimeProtocol.access(to: channel, user: "alice") == .allowed)
        }
    }

    @Test func globalPresenceForAnyTicketUser() {
        #expect(RyOSRealtimeProtocol.access(to: "presence-global", user: "alice") == .allowed)
        #expect(RyOSRealtimeProtocol.access(to: "presence-global", user: nil) == .denied)
    }

    @Test func governedChannelsNeedATicketUserWithAccess() {
        for channel in ["private-chats-alice", "private-room-abc", "presence-room-abc", "private-room-ticket_T-1"] {
            #expect(RyOSRealtimeProtocol.access(to: channel, user: "alice") == .governed(user: "alice"))
            #expect(RyOSRealtimeProtocol.access(to: channel, user: nil) == .denied)
        }
    }

    @Test func otherPrivateAndPresenceChannelsAndInvalidNamesAreDenied() {
        for channel in ["private-sync-alice", "private-ai-alice", "private-encrypted-x", "private-x", "presence-x",
                        "presence-cache-x", "#server-to-user-alice", "#signed-in", "", "room general",
                        String(repeating: "a", count: 201), "room-<script>"] {
            #expect(RyOSRealtimeProtocol.access(to: channel, user: "alice") == .denied, "\(channel)")
        }
    }

    // MARK: - Tickets

    /// Tickets in memory: what the storage was given.
    final class MemoryTickets: RealtimeTicketStorage {
        let saved = Mutex<[String: (user: String, ttl: Duration)]>([:])
        let takes = Mutex(0)

        func save(digest: String, user: String, ttl: Duration) async throws {
            saved.withLock { $0[digest] = (user, ttl) }
        }

        func take(digest: String) async throws -> String? {
            takes.withLock { $0 += 1 }
            return saved.withLock { $0.removeValue(forKey: digest)?.user }
        }
    }

    @Test func ticketsAreSingleUseAndStoredByDigest() async throws {
        let storage = MemoryTickets()
        let tickets = RealtimeTickets(storage: storage)
        let ticket = try await tickets.issue(for: "alice")
        #expect(RealtimeTickets.isWellFormed(ticket))
        let stored = storage.saved.withLock { $0 }
        #expect(stored.count == 1)
        #expect(stored[RealtimeTickets.digest(ticket)]?.user == "alice")
        #expect(stored[RealtimeTickets.digest(ticket)]?.ttl == .seconds(60))
        #expect(stored[ticket] == nil, "the ticket itself is never stored")
        #expect(try await tickets.redeem(ticket) == "alice")
        #expect(try await tickets.redeem(ticket) == nil)
        #expect(try await tickets.issue(for: "alice") != ticket)
    }

    @Test func malformedTicketsAreNotLookedUp() async throws {
        let storage = MemoryTickets()
        let tickets = RealtimeTickets(storage: storage)
        for ticket in ["", "abc", String(repeating: "G", count: 64), String(repeating: "A", count: 64), String(repeating: "a", count: 65)] {
            #expect(try await tickets.redeem(ticket) == nil)
        }
        #expect(storage.takes.withLock { $0 } == 0)
    }

    @Test func ticketKeyIsHashTagged() {
        #expect(RedisKeys.realtimeTicket("ab12") == "realtime:ticket:{ab12}")
    }

    // MARK: - /app-config.js

    @Test func localProviderConfig() {
        let config = RuntimeConfigController.config(origin: "https://os.example", realtimeProvider: "local", pusherKey: "k")
        #expect(config == [
            "appPublicOrigin": "https://os.example", "docsBaseUrl": "https://os.example/docs", "realtimeProvider": "local",
            "websocketPath": "/ws", "websocketUrl": "wss://os.example/ws", "pusher": nil, "ieLiveBrowserAvailable": false,
        ])
        let plain = RuntimeConfigController.config(origin: "http://localhost:8080", realtimeProvider: "local", pusherKey: "k")
        #expect(plain["websocketUrl"] == "ws://localhost:8080/ws")
    }

    @Test func pusherProviderConfig() {
        let config = RuntimeConfigController.config(origin: "https://os.example", realtimeProvider: "pusher", pusherKey: "app-key")
        #expect(config["realtimeProvider"] == "pusher")
        #expect(config["websocketUrl"] == .null)
        #expect(config["pusher"] == ["key": "app-key", "cluster": "local", "forceTLS": true])
        let plain = RuntimeConfigController.config(origin: "http://h", realtimeProvider: "pusher", pusherKey: "app-key")
        #expect(plain["pusher"]?["forceTLS"] == false)
    }

    @Test func scriptIsOneAssignmentOfJSON() throws {
        let script = RuntimeConfigController.script(origin: "http://h", realtimeProvider: "local", pusherKey: #"k"</script>"#)
        #expect(script.hasPrefix("window.__RYOS_RUNTIME_CONFIG__ = {"))
        #expect(script.hasSuffix("};"))
        let json = script.dropFirst("window.__RYOS_RUNTIME_CONFIG__ = ".count).dropLast()
        #expect(JSONValue.parse(Array(json.utf8))?["appPublicOrigin"] == "http://h")
    }

    @Test func originFromTheRequest() {
        #expect(RuntimeConfigController.requestOrigin(host: "os.example", forwardedProto: nil, fromTrustedProxy: false) == "http://os.example")
        #expect(RuntimeConfigController.requestOrigin(host: "os.example", forwardedProto: "https", fromTrustedProxy: false) == "http://os.example")
        #expect(RuntimeConfigController.requestOrigin(host: "OS.example:8443", forwardedProto: "https, http", fromTrustedProxy: true) == "https://os.example:8443")
        #expect(RuntimeConfigController.requestOrigin(host: "[::1]:8080", forwardedProto: "http", fromTrustedProxy: true) == "http://[::1]:8080")
        #expect(RuntimeConfigController.requestOrigin(host: #"evil"};alert(1);//"#, forwardedProto: nil, fromTrustedProxy: false) == "http://localhost")
        #expect(RuntimeConfigController.requestOrigin(host: nil, forwardedProto: nil, fromTrustedProxy: false) == "http://localhost")
    }

    @Test func servedAsJavaScript() async throws {
        var configuration = AppConfiguration()
        configuration.redis = try RedisConfiguration(url: "redis://127.0.0.1:1")
        configuration.appPublicOrigin = "https://os.example"
        configuration.realtimeProvider = "local"
        let services = AppServices(configuration: configuration, redis: RedisClient(configuration: configuration.redis), logger: Logger(label: "test"))
        let app = Application(router: buildRouter(services))
        let expected = RuntimeConfigController.script(origin: "https://os.example", realtimeProvider: "local", pusherKey: configuration.pusher.key)
        try await app.test(.router) { client in
            try await client.execute(uri: "/app-config.js", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/javascript; charset=utf-8")
                #expect(response.headers[.cacheControl] == "no-cache")
                #expect(String(buffer: response.body) == expected)
            }
            try await client.execute(uri: "/ws", method: .get) { response in
                #expect(response.status == .ok)
            }
        }
    }
}
