import Foundation
import Logging
import PresenceCore
import PresenceRedis
import PresenceRealtime
import PresenceHTTP
import Redis
import ServiceLifecycle

/// Announces this worker to the operator console every ``interval``: its identity, version and uptime, open sockets
/// and pub/sub channels, requests per second and p99 of the interval, Redis latency (a PING), and the last ten minutes
/// of samples (``WorkerStats``). The announcement lives for ``ttl`` in Redis (``OperationsStorage``), so a worker
/// that dies drops out of the console within it; a worker that stops retires itself at once.
struct WorkerAnnouncer: Service {
    let id: String
    let host: String
    let port: Int
    let storage: any OperationsStorage
    let stats: WorkerStats
    let hub: RealtimeHub
    let redis: RedisClient
    let startedAt: Date
    let interval: Duration
    let logger: Logger

    /// Three missed announcements and the worker counts as gone.
    var ttl: Duration { interval * 3 }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await announceOnce()
                try? await Task.sleep(for: interval)
            }
        }
        do {
            try await storage.announce(worker: id, info: "", ttl: .zero)
        } catch {
            logger.debug("Retiring from the worker list failed; it lapses by itself", metadata: ["error": "\(error)"])
        }
    }

    /// Takes a sample and writes the announcement; a failure is logged and the next interval tries again.
    func announceOnce() async {
        let sample = stats.sample()
        let counts = await hub.counts
        var redisLatency: Double? = nil
        let start = ContinuousClock.now
        if (try? await redis.ping()) != nil {
            let elapsed = ContinuousClock.now - start
            redisLatency = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        }
        let info = announcement(sample: sample, sockets: counts.sockets, channels: counts.channels, redisLatency: redisLatency)
        do {
            try await storage.announce(worker: id, info: info.serialized, ttl: ttl)
        } catch {
            logger.debug("Announcing this worker failed", metadata: ["error": "\(error)"])
        }
    }

    func announcement(sample: WorkerStats.Sample, sockets: Int, channels: Int, redisLatency: Double?) -> JSONValue {
        let history = stats.history
        let perMinute = history.suffix(Int(60 / max(interval.components.seconds, 1)))
        let now = Date()
        return [
            "id": .string(id), "host": .string(host), "port": .int(port), "pid": .int(Int(getpid())),
            "version": .string(ServiceVersion.current),
            "startedAt": .int64(Int64(startedAt.timeIntervalSince1970 * 1000)),
            "uptimeSeconds": .int(Int(now.timeIntervalSince(startedAt))),
            "announcedAt": .int64(Int64(now.timeIntervalSince1970 * 1000)),
            "sockets": .int(sockets), "subscriptions": .int(channels),
            "requestsPerSecond": .number(Self.rounded(sample.requestsPerSecond)),
            "p99Ms": .number(Self.rounded(sample.p99Milliseconds)),
            "redisLatencyMs": redisLatency.map { .number(Self.rounded($0)) } ?? .null,
            "leavesPerMinute": .int(perMinute.reduce(0) { $0 + $1.leaves }),
            "rejectionsPerMinute": .int(perMinute.reduce(0) { $0 + $1.rejections }),
            "history": .array(history.map {
                ["t": .int64($0.time), "rps": .number(Self.rounded($0.requestsPerSecond)), "p99Ms": .number(Self.rounded($0.p99Milliseconds)),
                 "leaves": .int($0.leaves), "rejections": .int($0.rejections)]
            }),
        ]
    }

    static func rounded(_ value: Double) -> Double { (value * 100).rounded() / 100 }
}
