import AsyncHTTPClient
import Crypto
import NIOCore
import NIOHTTP1

/// Posts webhook bodies as Pusher does: `Content-Type: application/json`, `X-Pusher-Key`, and `X-Pusher-Signature`, the
/// hex HMAC-SHA256 of the body with the app secret (what `pusher.Pusher.validate_webhook` checks).
public struct HTTPWebhookSender: WebhookSender {
    let key: String
    let secret: SymmetricKey
    let timeout: Duration
    let client: HTTPClient

    public init(key: String, secret: String, timeout: Duration, client: HTTPClient = .shared) {
        self.key = key
        self.secret = SymmetricKey(data: Array(secret.utf8))
        self.timeout = timeout
        self.client = client
    }

    /// The `X-Pusher-Signature` of `body`.
    public func signature(_ body: String) -> String {
        Hex.encode(HMAC<SHA256>.authenticationCode(for: Array(body.utf8), using: secret))
    }

    public func send(_ body: String, to target: WebhookTarget) async throws {
        var request = HTTPClientRequest(url: target.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "presence-server webhooks")
        request.headers.add(name: "X-Pusher-Key", value: key)
        request.headers.add(name: "X-Pusher-Signature", value: signature(body))
        request.body = .bytes(ByteBuffer(string: body))
        do {
            let response = try await client.execute(request, deadline: .now() + TimeAmount(timeout))
            // The answer's body is not used; read a little of it so the connection can be reused.
            _ = try? await response.body.collect(upTo: 64 * 1024)
            guard (200..<300).contains(Int(response.status.code)) else { throw WebhookDeliveryError.status(Int(response.status.code)) }
        } catch let error as WebhookDeliveryError {
            throw error
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            throw WebhookDeliveryError.timeout
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw WebhookDeliveryError.transport(String(describing: error))
        }
    }
}
