/// Why a domain operation was refused. The HTTP layer maps each case to a status and a message.
public enum DomainError: Error, Sendable, Equatable {
    /// The room does not exist (404 "Room not found").
    case roomNotFound
    /// The caller may not do this; carries the client message (403).
    case forbidden(String)
    /// Conflicts with existing state, e.g. "Username taken" (409).
    case conflict(String)
    /// Bad input, with a message naming what is wrong (400).
    case invalid(String)
    /// Wrong username or password, unknown or expired token (401).
    case unauthorized(String)
    /// The support room is closed (410 "Room closed").
    case roomClosed
    /// A domain-level not-found with its message (404), e.g. "User not found".
    case notFound(String)
    /// The caller is not present in the room (409 "Not in room").
    case notPresent
    /// A rate limit refused the request.
    case rateLimited(SlidingWindowLimiter.Decision)
}
