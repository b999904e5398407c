/// Where Ryo's replies come from and how often a user may ask.
public struct AISettings: Sendable {
    /// Base URL of an OpenAI-compatible API (`AI_BASE_URL`, e.g. `https://api.openai.com/v1` or
    /// `http://127.0.0.1:11434/v1` for Ollama); `nil` uses the built-in offline responder.
    public var baseURL: String?
    /// Bearer key (`AI_API_KEY`).
    public var apiKey: String?
    /// Model name (`AI_MODEL`).
    public var model: String = "gpt-4o-mini"
    /// Bounded wait for the model (`AI_TIMEOUT`, seconds).
    public var timeout: Duration = .seconds(20)
    /// Requests per user per window (`AI_RATE_LIMIT`).
    public var rateLimit: Int = 5
    /// The window (`AI_RATE_WINDOW`, seconds).
    public var rateWindow: Duration = .seconds(60)

    public init() {}
}
