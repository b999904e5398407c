/// Hands one webhook body to a receiver; returns once the receiver acknowledged it (a 2xx answer) and throws otherwise.
public protocol WebhookSender: Sendable {
    func send(_ body: String, to target: WebhookTarget) async throws
    /// Frees what the sender holds (its HTTP client); called once, when the dispatcher stops.
    func shutdown() async
}

extension WebhookSender {
    public func shutdown() async {}
}

/// Why a receiver did not take a batch.
public enum WebhookDeliveryError: Error, Sendable, CustomStringConvertible {
    /// It answered with this status, not a 2xx.
    case status(Int)
    /// It answered with a redirect (3xx), which is not followed: the batch is sent again to the same URL.
    case redirect(Int)
    /// No answer within `WEBHOOK_TIMEOUT_MS`.
    case timeout
    /// Connection refused or lost, name resolution, TLS.
    case transport(String)

    public var description: String {
        switch self {
        case .status(let code): "HTTP \(code)"
        case .redirect(let code): "HTTP \(code): a redirect, not followed"
        case .timeout: "timeout"
        case .transport(let reason): reason
        }
    }
}
