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
