/// What Ryo is asked: the user's prompt and the chat around it.
public struct AIRequest: Sendable, Equatable {
    public var roomId: String
    public var username: String
    public var prompt: String
    /// Recent chat lines (oldest first), already cut to the context budget.
    public var recentMessages: String?
    /// The message that mentioned @ryo.
    public var mentionedMessage: String?

    public init(roomId: String, username: String, prompt: String, recentMessages: String?, mentionedMessage: String?) {
        self.roomId = roomId
        self.username = username
        self.prompt = prompt
        self.recentMessages = recentMessages
        self.mentionedMessage = mentionedMessage
    }
}

/// Why a provider produced no reply.
public enum AIProviderError: Error, Sendable, Equatable {
    /// The provider answered with an HTTP error status.
    case status(Int)
    /// No answer within the configured timeout.
    case timeout
    /// The answer could not be understood, or held no text.
    case malformed(String)
    /// The request could not be sent.
    case transport(String)
}

/// Something that writes Ryo's replies.
public protocol AIProvider: Sendable {
    /// A short name for logs (`openai-compatible`, `offline`).
    var name: String { get }
    /// Ryo's reply to `request`; throws ``AIProviderError`` when there is none.
    func reply(to request: AIRequest) async throws -> String
}
