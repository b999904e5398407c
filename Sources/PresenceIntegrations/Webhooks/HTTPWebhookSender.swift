import PresenceCore
import AsyncHTTPClient
import Crypto
import NIOCore
import NIOHTTP1
import Synchronization

/// Posts webhook bodies as Pusher does: `Content-Type: application/json`, `X-Pusher-Key`, and `X-Pusher-Signature`, the
/// hex HMAC-SHA256 of the body with the app secret (what `pusher.Pusher.validate_webhook` checks).
///
/// It has an HTTP client of its own that follows no redirect: a 3xx is a failed delivery (retried with the backoff),
/// never a `GET` of the `Location` whose 2xx would acknowledge a batch the receiver never got, and the `X-Pusher-*`
/// headers never go to another host. The client is made on the first send and shut down by ``shutdown()`` (the
/// dispatcher calls it when it stops).
public final class HTTPWebhookSender: WebhookSender {
    /// How this sender's own HTTP clients are configured: no redirect followed, certificates verified.
    public static var clientConfiguration: HTTPClient.Configuration {
        // No TLS configuration of our own: the default one, which verifies certificates.
        HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: .seconds(10)),
            connectionPool: .init(idleTimeout: .seconds(60))
        )
    }

    private enum ClientState {
        case notMade
        case running(HTTPClient)
        case stopped
    }

    let key: String
    let secret: SymmetricKey
    let timeout: Duration
    /// A client given by the caller (who shuts it down), or `nil`: this sender makes and shuts down its own.
    private let given: HTTPClient?
    private let state = Mutex<ClientState>(.notMade)

    public init(key: String, secret: String, timeout: Duration, client: HTTPClient? = nil) {
        self.key = key
        self.secret = SymmetricKey(data: Array(secret.utf8))
        self.timeout = timeout
        self.given = client
    }

    /// The `X-Pusher-Signature` of `body`.
    public func signature(_ body: String) -> String {
        Hex.encode(HMAC<SHA256>.authenticationCode(for: Array(body.utf8), using: secret))
    }

    private func client() throws -> HTTPClient {
        if let given { return given }
        return try state.withLock { state throws -> HTTPClient in
            switch state {
            case .running(let client):
                return client
            case .notMade:
                let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: Self.clientConfiguration)
                state = .running(client)
                return client
            case .stopped:
                throw CancellationError()
            }
        }
    }

    /// Shuts down the client this sender made (if it made one); later sends throw `CancellationError`.
    public func shutdown() async {
        let client = state.withLock { state -> HTTPClient? in
            defer { state = .stopped }
            if case .running(let client) = state { return client }
            return nil
        }
        try? await client?.shutdown()
    }

    /// One POST, answered within `timeout` (connecting, the answer's head and the little of its body that is read):
    /// a send never outlasts `WEBHOOK_TIMEOUT_MS`, which the lease check at start-up relies on
    /// (``WebhookSettings/timeoutProblem``).
    public func send(_ body: String, to target: WebhookTarget) async throws {
        var request = HTTPClientRequest(url: target.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "presence-server webhooks")
        request.headers.add(name: "X-Pusher-Key", value: key)
        request.headers.add(name: "X-Pusher-Signature", value: signature(body))
        request.body = .bytes(ByteBuffer(string: body))
        let client = try client()
        let post = request
        let timeout = self.timeout
        let deadline = ContinuousClock.now + timeout
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    let response = try await client.execute(post, deadline: .now() + TimeAmount(timeout))
                    // The answer's body is not used; read a little of it so the connection can be reused.
                    _ = try? await response.body.collect(upTo: 64 * 1024)
                    let code = Int(response.status.code)
                    if (300..<400).contains(code) { throw WebhookDeliveryError.redirect(code) }
                    guard (200..<300).contains(code) else { throw WebhookDeliveryError.status(code) }
                }
                group.addTask {
                    try await Task.sleep(until: deadline, clock: .continuous)
                    throw WebhookDeliveryError.timeout
                }
                defer { group.cancelAll() }
                try await group.next()
            }
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
