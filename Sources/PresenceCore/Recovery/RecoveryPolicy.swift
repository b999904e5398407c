/// Which channels keep a recoverable history, and for how long: on these, every published event is appended to a
/// bounded per-channel log and carries an offset and the channel's epoch, so a client that reconnects can ask for
/// exactly what it missed (``ChannelRecoveryStorage``).
///
/// By default the chat and ticket channels (``defaultPatterns``); `RECOVERY_CHANNELS` adds glob patterns (`*` for any
/// run of characters), `RECOVERY_WINDOW` and `RECOVERY_MAX_EVENTS` bound the log, `RECOVERY_ENABLED=false` turns it off.
public struct RecoveryPolicy: Sendable, Equatable {
    /// The channels that are recoverable without configuration.
    public static let defaultPatterns = ["room-*", "private-room-*", "presence-room-*", "private-chats-*", "chats-public"]
    /// How long a channel's position (epoch and latest offset) lives unused: a position older than that is of a
    /// forgotten epoch, and its client reloads.
    public static let positionTTL: Duration = .seconds(86_400)

    /// Off: no channel is recoverable, events carry no offset and publishing is as before.
    public var enabled = true
    /// Patterns beyond ``defaultPatterns`` (`RECOVERY_CHANNELS`).
    public var extraPatterns: [String] = []
    /// How long an event stays recoverable (`RECOVERY_WINDOW`).
    public var window: Duration = .seconds(300)
    /// The most events a channel keeps (`RECOVERY_MAX_EVENTS`).
    public var maxEvents = 1000

    public init(enabled: Bool = true, extraPatterns: [String] = [], window: Duration = .seconds(300), maxEvents: Int = 1000) {
        self.enabled = enabled
        self.extraPatterns = extraPatterns
        self.window = window
        self.maxEvents = maxEvents
    }

    /// Whether events on `channel` are kept for recovery.
    public func isRecoverable(_ channel: String) -> Bool {
        guard enabled else { return false }
        return Self.defaultPatterns.contains { Self.matches($0, channel) } || extraPatterns.contains { Self.matches($0, channel) }
    }

    /// Glob matching: `*` stands for any run of characters (none included); everything else for itself.
    public static func matches(_ pattern: String, _ name: String) -> Bool {
        let p = Array(pattern.utf8), n = Array(name.utf8)
        var pi = 0, ni = 0
        var star = -1, resume = 0
        while ni < n.count {
            if pi < p.count, p[pi] != UInt8(ascii: "*"), p[pi] == n[ni] {
                pi += 1
                ni += 1
            } else if pi < p.count, p[pi] == UInt8(ascii: "*") {
                star = pi
                resume = ni
                pi += 1
            } else if star >= 0 {
                pi = star + 1
                resume += 1
                ni = resume
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }
}
