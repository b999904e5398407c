import PresenceCore
import Redis

/// The Redis client's errors tell the HTTP layer when Redis is out of reach (503 rather than 500).
extension RedisError: StorageUnavailabilityReporting {}
