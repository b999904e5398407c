import Foundation
/// The built-in stand-in used when no model is configured (`AI_BASE_URL` unset): answers in Ryo's voice from the
/// prompt and the chat context, deterministically, without any network. Not a language model.
public struct OfflineRyoResponder: AIProvider {
    public let name = "offline"

    public init() {}

    public func reply(to request: AIRequest) async throws -> String {
        let prompt = request.prompt.trimmingCharacters(in: .whitespacesAndNewlines)
        let lower = prompt.lowercased()
        let words = lower.split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init)
        let nonLatin = prompt.unicodeScalars.contains { $0.value > 0x2FF && $0.properties.isAlphabetic }
        if nonLatin {
            return "👋 \(request.username)! (offline mode: i can only really chat in english right now)"
        }
        let greetings: Set<String> = ["hi", "hey", "hello", "yo", "sup", "hola", "morning"]
        let topic = Self.topic(of: request)
        if words.contains(where: greetings.contains) || lower.contains("what's up") || lower.contains("whats up") {
            return topic.map { "hey \(request.username), not much, just following the \($0) talk here" }
                ?? "hey \(request.username), not much, what's up with you"
        }
        if lower.contains("thank") {
            return "anytime \(request.username)"
        }
        if prompt.hasSuffix("?") {
            let subject = words.filter { $0.count > 3 && !Self.stopwords.contains($0) }.prefix(3).joined(separator: " ")
            if subject.isEmpty { return "good question \(request.username), not sure tbh" }
            return "hmm, \(subject)? i'd need a real model for that one, i'm running offline right now"
        }
        return topic.map { "ha, sounds like the \($0) thread is going strong" } ?? "noted, \(request.username)"
    }

    /// The most frequent meaningful word of the recent chat, if any.
    static func topic(of request: AIRequest) -> String? {
        guard let recent = request.recentMessages else { return nil }
        var counts: [String: Int] = [:]
        for line in recent.split(separator: "\n") {
            let text = line.split(separator: ":", maxSplits: 1).last ?? line
            for word in text.lowercased().split(whereSeparator: { !$0.isLetter }) where word.count > 3 {
                let w = String(word)
                if !stopwords.contains(w) && w != "ryo" { counts[w, default: 0] += 1 }
            }
        }
        return counts.max { ($0.value, $1.key) < ($1.value, $0.key) }?.key
    }

    static let stopwords: Set<String> = [
        "what", "that", "this", "with", "have", "from", "your", "about", "there", "their", "would", "could", "should",
        "where", "when", "which", "been", "were", "they", "them", "then", "than", "just", "like", "does", "know",
    ]
}
