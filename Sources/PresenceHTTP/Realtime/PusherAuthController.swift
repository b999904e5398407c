import PresenceRealtime
import Foundation
import Hummingbird
import Logging
import PresenceCore

/// `POST /pusher/auth`: signs private and presence channel subscriptions for authenticated users, per
/// ``ChannelAccess``. Each signature is recorded for its socket (``RedisKeys/pusherGrants(_:)``), so the subscription
/// that uses it knows whose access it rides on, is checked again when made, and ends when that access does.
package struct PusherAuthController {
    package init(access: ChannelAccess, signer: PusherSigner, authenticator: Authenticator, maxChannelName: Int = PusherProtocol.defaultMaxChannelName) {
        self.access = access
        self.signer = signer
        self.authenticator = authenticator
        self.maxChannelName = maxChannelName
    }

    let access: ChannelAccess
    let signer: PusherSigner
    let authenticator: Authenticator
    /// `PUSHER_MAX_CHANNEL_NAME`: a longer channel name is refused (400) like a malformed one.
    var maxChannelName: Int = PusherProtocol.defaultMaxChannelName

    package func addRoutes(to router: Router<AppRequestContext>) {
        router.post("/pusher/auth") { request, context in
            try await sign(request, context, forbidden: "Forbidden")
        }
        // ryOS's authorizer calls it here (cookie session, JSON body), and reads its errors.
        router.post("/api/pusher/auth") { request, context in
            try await sign(request, context, forbidden: "Forbidden - channel access denied")
        }
        // Pusher's user authentication for this service's users: the signed-in user's id is their username.
        router.post("/pusher/user-auth") { request, context in
            let user = try await authenticator.authenticate(request)
            let fields = try await Self.fields(request, context: context)
            guard let socketID = fields["socket_id"], Self.isSocketID(socketID) else {
                throw APIError.badRequest("Field 'socket_id' must look like 1234.5678")
            }
            let userData = JSONValue.object(["id": .string(user)]).serialized
            return JSONResponse.make([
                "auth": .string(signer.userAuth(socketID: socketID, userData: userData)), "user_data": .string(userData),
            ] as JSONValue)
        }
    }

    /// Signs `channel_name` for `socket_id` when the caller may hold it now, and records the grant.
    private func sign(_ request: Request, _ context: AppRequestContext, forbidden: String) async throws -> Response {
        let user = try await authenticator.authenticate(request)
        let fields = try await Self.fields(request, context: context)
        guard let socketID = fields["socket_id"], Self.isSocketID(socketID) else {
            throw APIError.badRequest("Field 'socket_id' must look like 1234.5678")
        }
        guard let channel = fields["channel_name"], PusherProtocol.isValidChannel(channel, maxLength: maxChannelName) else {
            if let channel = fields["channel_name"], PusherProtocol.isWellFormedChannel(channel) {
                throw APIError.badRequest("The channel name is longer than the allowed \(maxChannelName) characters.")
            }
            throw APIError.badRequest("Field 'channel_name' must be a valid channel name")
        }
        guard try await access.allows(channel, user: user) else { throw APIError(.forbidden, forbidden) }
        try await access.recordGrant(socket: socketID, channel: channel, user: user)
        if channel.hasPrefix("presence-") {
            // ryOS's global presence carries only the user id, as the `pusher` library it uses builds it.
            let channelData = channel == ChannelPresence.globalChannel
                ? JSONValue.object(["user_id": .string(user)]).serialized : PusherProtocol.channelData(user: user)
            return JSONResponse.make([
                "auth": .string(signer.channelAuth(socketID: socketID, channel: channel, channelData: channelData)),
                "channel_data": .string(channelData),
            ] as JSONValue)
        }
        return JSONResponse.make(["auth": .string(signer.channelAuth(socketID: socketID, channel: channel))] as JSONValue)
    }

    /// Form-encoded or JSON body fields.
    static func fields(_ request: Request, context: AppRequestContext) async throws -> [String: String] {
        var request = request
        let buffer = try await request.collectBody(upTo: context.maxUploadSize)
        let text = String(buffer: buffer)
        if request.headers[.contentType]?.hasPrefix("application/json") == true || text.hasPrefix("{") {
            guard case .object(let object) = JSONValue.parse(buffer.readableBytesView) else {
                throw APIError.badRequest("Invalid JSON body")
            }
            return object.compactMapValues(\.string)
        }
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1).map { String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0) }
            if kv.count == 2 { fields[kv[0]] = kv[1] }
        }
        return fields
    }

    static func isSocketID(_ id: String) -> Bool {
        let parts = id.split(separator: ".", omittingEmptySubsequences: false)
        return id.count <= 40 && parts.count == 2 && parts.allSatisfy { !$0.isEmpty && $0.utf8.allSatisfy { (0x30...0x39).contains($0) } }
    }
}
