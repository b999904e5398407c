/// Where Ryo's replies come from and how often a user may ask.
public struct AISettings: Sendable {
    /// Base URL of an OpenAI-compatible API (`AI_BASE_URL`, e.g. `https://api.openai.com/v1` or
    /// `http://127.0.0.1:11434/v1` for Ollama); `nil` uses the built-in offline responder.
    public var baseURL: String?
    /// Bearer key (`AI_API_KEY`).
    public var apiKey: String?
    /// Model name (`AI_MODEL`).
    public var model: String
    /// Bounded wait for the model (`AI_TIMEOUT`, seconds).
    public var timeout: Duration
    /// Requests per user per window (`AI_RATE_LIMIT`).
    public var rateLimit: Int
    /// The window (`AI_RATE_WINDOW`, seconds).
    public var rateWindow: Duration

    /// These values as given; the server's defaults are in `AppConfiguration`'s settings table (`AI_*`).
    public init(
        baseURL: String? = nil, apiKey: String? = nil, model: String, timeout: Duration, rateLimit: Int, rateWindow: Duration
    ) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.model = model
        self.timeout = timeout
        self.rateLimit = rateLimit
        self.rateWindow = rateWindow
    }
}
