import NIOCore

/// What one HTTP connection may take of a worker: how long it may dawdle and how many connections a worker and one
/// client address may hold. See docs/operations.md, "Connections and limits".
public struct ConnectionSettings: Sendable {
    /// A request head must arrive within this, counted from its first byte (`HEADER_TIMEOUT`); a new connection
    /// must start its first request within it too. Past it: 408 and close.
    public var headerTimeout: Duration = .seconds(10)
    /// A keep-alive connection with no request under way is closed after this (`IDLE_TIMEOUT`).
    public var idleTimeout: Duration = .seconds(60)
    /// A request body must arrive at `bodyMinRate` bytes per second on average over each window of this length
    /// (`BODY_TIMEOUT`) while the server is reading it. Past it: 408 and close.
    public var bodyTimeout: Duration = .seconds(10)
    /// Minimum body rate in bytes per second (`BODY_MIN_RATE`).
    public var bodyMinRate: Int = 1024
    /// Largest request head, request line and header fields together (`MAX_HEADER_BYTES`): 431 beyond.
    public var maxHeaderBytes: Int = 32 * 1024
    /// Largest request line (method, target, version): 414 beyond. Fixed at 8 KiB, like nginx's default.
    public var maxRequestLineBytes: Int = 8 * 1024
    /// Open connections one worker serves, HTTP and WebSocket together (`MAX_CONNECTIONS`).
    public var maxConnections: Int = 10_000
    /// Open connections one client address may hold on one worker (`MAX_CONNECTIONS_PER_ADDRESS`). Behind a trusted
    /// proxy the address is the one `X-Forwarded-For` names.
    public var maxConnectionsPerAddress: Int = 100
    /// Seconds a refused client is told to wait (`Retry-After`).
    public var retryAfterSeconds: Int = 5

    public init() {}
}
