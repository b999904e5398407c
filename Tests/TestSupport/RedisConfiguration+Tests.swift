import NIOCore
import Redis

extension RedisConfiguration {
    /// How long a test's Redis call may wait, unless the test is about that wait and sets its own: far above the
    /// service's 2 s default, because parallel suites share one Redis and two cores, and a burst from one of them (a
    /// long pipeline, a large reply) can hold another suite's reply back for seconds on a busy CI machine.
    public static let testWait = TimeAmount.seconds(10)

    /// The configuration for `url` that tests use: the service's defaults, with ``testWait`` to connect and to answer.
    public static func forTests(url: String) throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(url: url)
        configuration.commandTimeout = testWait
        configuration.connectTimeout = testWait
        return configuration
    }
}
