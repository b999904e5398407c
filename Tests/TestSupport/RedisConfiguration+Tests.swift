import NIOCore
import Redis

extension RedisConfiguration {
    /// The configuration for `url` that tests use: the service's defaults, but 10 s to connect and to answer instead of
    /// 2 s, unless a test is about that wait and sets its own. Parallel suites share one Redis and two cores, and a
    /// burst from one of them (a long pipeline, a large reply) can hold another suite's reply back for seconds on a
    /// busy CI machine.
    public static func forTests(url: String) throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(url: url)
        configuration.commandTimeout = .seconds(10)
        configuration.connectTimeout = .seconds(10)
        return configuration
    }
}
