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
