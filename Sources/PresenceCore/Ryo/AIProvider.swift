/// Something that writes Ryo's replies.
public protocol AIProvider: Sendable {
    /// A short name for logs (`openai-compatible`, `offline`).
    var name: String { get }
    /// Ryo's reply to `request`; throws ``AIProviderError`` when there is none.
    func reply(to request: AIRequest) async throws -> String
}
