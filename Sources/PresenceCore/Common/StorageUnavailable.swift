/// An error that means the shared store (Redis) is out of reach, rather than that the request was wrong: the HTTP
/// layer answers 503 with `Retry-After` for it. PresenceRedis marks the Redis client's errors so.
public protocol StorageUnavailabilityReporting: Error {
    /// `true` when the store could not be reached or did not answer in time.
    var isUnavailability: Bool { get }
}
