import Foundation
import Logging

/// Ryo's replies in chat rooms: ask the provider, clean the answer, store it in the room's history as `ryo` and
/// broadcast it like any message.
public struct RyoService: Sendable {
    /// Most of the recent chat sent to the model, in UTF-8 bytes; older lines are dropped first.
    public static let contextBudget = 16 * 1024
    /// Longest reply kept, in characters.
    public static let maxReply = 2000
    /// The AI's name in rooms: reserved, no account can take it.
    public static let username = "ryo"

    public let provider: any AIProvider
    public let limiter: SlidingWindowLimiter
    let chat: ChatService
    let logger: Logger

    public init(provider: any AIProvider, limiter: SlidingWindowLimiter, chat: ChatService, logger: Logger) {
        self.provider = provider
        self.limiter = limiter
        self.chat = chat
        self.logger = logger
    }

    /// The room check, the AI call, storage and broadcast (the caller has passed the limiter).
    /// Throws ``DomainError`` for room problems and ``AIProviderError`` when no usable reply came.
    public func reply(user: String, roomId: String, prompt: String, recentMessages: String?, mentionedMessage: String?) async throws -> ChatMessage {
        let room = try await chat.room(roomId, viewer: user, forbidden: "Forbidden - not a room member")
        let request = AIRequest(
            roomId: roomId, username: user, prompt: prompt,
            recentMessages: recentMessages.map(Self.trimContext), mentionedMessage: mentionedMessage
        )
        let raw: String
        do {
            raw = try await provider.reply(to: request)
        } catch {
            logger.warning("AI provider failed", metadata: ["provider": "\(provider.name)", "error": "\(error)"])
            throw error as? AIProviderError ?? AIProviderError.transport("\(error)")
        }
        let content = Self.clean(raw)
        guard !content.isEmpty else { throw AIProviderError.malformed("empty reply") }
        let message = try await chat.history.append(room: roomId, username: Self.username, content: HTMLText.escape(content), role: nil, isAI: true)
        await chat.broadcaster.publish(chat.messageEvents(room: room, message: message))
        await chat.noteUnseen(room: room, message: message)
        return message
    }

    /// Keeps the newest lines within ``contextBudget`` bytes.
    public static func trimContext(_ text: String) -> String {
        guard text.utf8.count > contextBudget else { return text }
        var kept: [Substring] = []
        var size = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).reversed() {
            let cost = line.utf8.count + 1
            if size + cost > contextBudget { break }
            kept.append(line)
            size += cost
        }
        return kept.reversed().joined(separator: "\n")
    }

    /// Reply hygiene: control characters removed (newlines kept), trimmed, at most ``maxReply`` characters.
    public static func clean(_ text: String) -> String {
        let scalars = text.unicodeScalars.filter { $0 == "\n" || $0.properties.generalCategory != .control }
        var cleaned = String(String.UnicodeScalarView(scalars)).trimmingCharacters(in: .whitespacesAndNewlines)
        if cleaned.count > maxReply {
            cleaned = String(cleaned.prefix(maxReply)).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return cleaned
    }
}
