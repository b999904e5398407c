import PresenceRealtime
import Foundation
import Hummingbird
import Logging
import PresenceCore

/// The Pusher HTTP API for app backends (`/apps/{app_id}/...`), signed as Pusher specifies. Occupancy, user counts
/// and presence members come from Redis, so every worker answers the same.
package struct PusherAPIController {
    package init(events: any EventPublisher, occupancy: any OccupancyStorage, presence: ChannelPresence, settings: PusherSettings, signer: PusherSigner) {
        self.events = events
        self.occupancy = occupancy
        self.presence = presence
        self.settings = settings
        self.signer = signer
    }

    let events: any EventPublisher
    let occupancy: any OccupancyStorage
    let presence: ChannelPresence
    let settings: PusherSettings
    let signer: PusherSigner

    package func addRoutes(to router: Router<AppRequestContext>) {
        router.post("/apps/:appId/events") { request, context in
            let body = try await verified(request, context)
            guard case .object(let event) = JSONValue.parse(body.readableBytesView) else { throw APIError.badRequest("Invalid JSON body") }
            try await trigger([event])
            return JSONResponse.make([:] as JSONValue)
        }
        router.post("/apps/:appId/batch_events") { request, context in
            let body = try await verified(request, context)
            guard case .array(let batch)? = JSONValue.parse(body.readableBytesView)?["batch"] else {
                throw APIError.badRequest("Expected {\"batch\": [...]}")
            }
            guard batch.count <= 10 else { throw APIError.badRequest("At most 10 events per batch") }
            try await trigger(batch.map { $0.object ?? [:] })
            return JSONResponse.make(["batch": .array(batch.map { _ in [:] as JSONValue })] as JSONValue)
        }
        router.get("/apps/:appId/channels") { request, context in
            _ = try await verified(request, context)
            let prefix = request.uri.queryParameters.get("filter_by_prefix") ?? ""
            let info = Set((request.uri.queryParameters.get("info") ?? "").split(separator: ",").map(String.init))
            if info.contains("user_count") && !prefix.hasPrefix("presence-") {
                throw APIError.badRequest("info=user_count needs filter_by_prefix=presence-")
            }
            // Two round trips whatever the number of channels: the live list, then every count in one step.
            // Users' own channels (#server-to-user-) are not listed, as on Pusher.
            let candidates = try await occupancy.liveChannels().filter { $0.hasPrefix(prefix) && !$0.hasPrefix("#") }
            let counts = try await occupancy.counts(candidates, users: info.contains("user_count"))
            var channels: [String: JSONValue] = [:]
            for (channel, count) in zip(candidates, counts) where count.subscriptions > 0 {
                var attributes: [String: JSONValue] = [:]
                if let users = count.users { attributes["user_count"] = .int(users) }
                if info.contains("subscription_count") { attributes["subscription_count"] = .int(count.subscriptions) }
                channels[channel] = .object(attributes)
            }
            return JSONResponse.make(["channels": .object(channels)] as JSONValue)
        }
        router.get("/apps/:appId/channels/:channel") { request, context in
            _ = try await verified(request, context)
            let channel = try channelName(context)
            let info = Set((request.uri.queryParameters.get("info") ?? "").split(separator: ",").map(String.init))
            let users = info.contains("user_count")
            if users && !channel.hasPrefix("presence-") { throw APIError.badRequest("user_count is only for presence channels") }
            // One round trip: the socket count and, on a presence channel, the user count together.
            let count = try await occupancy.counts([channel], users: users).first
            let subscriptions = count?.subscriptions ?? 0
            var result: [String: JSONValue] = ["occupied": .bool(subscriptions > 0)]
            if info.contains("subscription_count") { result["subscription_count"] = .int(subscriptions) }
            if users { result["user_count"] = .int(count?.users ?? 0) }
            return JSONResponse.make(JSONValue.object(result))
        }
        router.get("/apps/:appId/channels/:channel/users") { request, context in
            _ = try await verified(request, context)
            let channel = try channelName(context)
            guard channel.hasPrefix("presence-") else { throw APIError.badRequest("Users are only listed for presence channels") }
            let users = try await presence.members(channel: channel)
            return JSONResponse.make(["users": .array(users.map { ["id": .string($0)] })] as JSONValue)
        }
        let terminate: @Sendable (Request, AppRequestContext) async throws -> Response = { request, context in
            _ = try await verified(request, context)
            let user = context.pathParameter("userId") ?? ""
            try await events.terminate(user: user)
            return JSONResponse.make([:] as JSONValue)
        }
        router.post("/apps/:appId/users/:userId/terminate_connections", use: terminate)
        // The official Python library signs and sends this path, without the app id.
        router.post("/users/:userId/terminate_connections", use: terminate)
    }

    func channelName(_ context: AppRequestContext) throws -> String {
        let channel = context.pathParameter("channel") ?? ""
        try checkChannel(channel)
        return channel
    }

    /// A valid channel name of at most `PUSHER_MAX_CHANNEL_NAME` characters, else 400.
    func checkChannel(_ channel: String) throws {
        guard PusherProtocol.isValidChannel(channel, maxLength: settings.maxChannelName) else {
            if PusherProtocol.isWellFormedChannel(channel) {
                throw APIError.badRequest("The channel name is longer than the allowed \(settings.maxChannelName) characters.")
            }
            throw APIError.badRequest("Invalid channel name")
        }
    }

    /// Publishes events given as Pusher's `{name, data, channel | channels, socket_id?}`, within Pusher's limits
    /// (`PUSHER_MAX_EVENT_NAME` characters of name: 400 beyond; `PUSHER_MAX_EVENT_BYTES` of data: 413 beyond).
    func trigger(_ events: [[String: JSONValue]]) async throws {
        var out: [BroadcastEvent] = []
        for event in events {
            guard let name = event["name"]?.string, !name.isEmpty else { throw APIError.badRequest("Event 'name' is required") }
            guard name.unicodeScalars.count <= settings.maxEventName else {
                throw APIError.badRequest("Event name is too long. Maximum allowed size is \(settings.maxEventName).")
            }
            guard let data = event["data"]?.string else { throw APIError.badRequest("Event 'data' must be a string") }
            guard data.utf8.count <= settings.maxEventBytes else {
                throw APIError(.contentTooLarge, "The event data should be less than \(PusherProtocol.sizeText(settings.maxEventBytes)).")
            }
            var channels: [String] = []
            if let channel = event["channel"]?.string { channels = [channel] }
            if case .array(let list)? = event["channels"] { channels += list.compactMap(\.string) }
            guard !channels.isEmpty, channels.count <= 100 else { throw APIError.badRequest("Give 1 to 100 channels") }
            for channel in channels { try checkChannel(channel) }
            out += channels.map {
                BroadcastEvent(event: name, channel: $0, data: .string(data), socketID: event["socket_id"]?.string)
            }
        }
        // The app's backend is told when its events could not be handed over (503 while Redis is away).
        try await self.events.deliver(out)
    }

    /// Checks Pusher's request signature and returns the body: `auth_key`, `auth_timestamp` (±600 s),
    /// `auth_version=1.0`, `body_md5` when there is a body, and `auth_signature` = HMAC-SHA256 of
    /// `METHOD\nPATH\n<sorted query without auth_signature>`. Anything wrong → 401.
    func verified(_ request: Request, _ context: AppRequestContext) async throws -> ByteBuffer {
        // Every route names the app but one (`/users/:userId/terminate_connections`, the path the Python library uses).
        if let appId = context.pathParameter("appId"), appId != settings.appId { throw APIError(.notFound, "Unknown app") }
        var request = request
        let body = try await request.collectBody(upTo: 1 << 20)
        var params: [(String, String)] = []
        var signature: String?
        for (key, value) in request.uri.queryParameters {
            if key == "auth_signature" { signature = String(value) } else { params.append((String(key).lowercased(), String(value))) }
        }
        let lookup = Dictionary(params, uniquingKeysWith: { a, _ in a })
        guard lookup["auth_key"] == settings.key, lookup["auth_version"] == "1.0", let signature else {
            throw APIError(.unauthorized, "Invalid authentication: auth_key, auth_version=1.0 and auth_signature are required")
        }
        guard let timestamp = lookup["auth_timestamp"].flatMap(Int.init),
              abs(Int(Date().timeIntervalSince1970) - timestamp) <= 600 else {
            throw APIError(.unauthorized, "Invalid authentication: auth_timestamp missing or more than 600 s off")
        }
        if body.readableBytes > 0, lookup["body_md5"] != PusherSigner.md5(body.readableBytesView) {
            throw APIError(.unauthorized, "Invalid authentication: body_md5 does not match the body")
        }
        let query = params.sorted { $0.0 < $1.0 }.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
        let expected = signer.hmac("\(request.method.rawValue)\n\(request.uri.path)\n\(query)")
        guard PusherSigner.constantTimeEqual(signature, expected) else {
            throw APIError(.unauthorized, "Invalid signature")
        }
        return body
    }
}
