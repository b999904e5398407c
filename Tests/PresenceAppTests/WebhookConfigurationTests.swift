import PresenceApp
@testable import PresenceCore
import Testing

/// The webhook settings' rules, checked where the configuration is loaded (start-up refuses what cannot work).
@Suite("Webhook configuration")
struct WebhookConfigurationTests {
    /// The rule: `WEBHOOK_TIMEOUT_MS + min(WEBHOOK_LEASE_MS / 4, 2000) + 250 ≤ WEBHOOK_LEASE_MS` (a POST may start a
    /// renewal interval after the lease was renewed, and must be answered and acknowledged before it lapses).
    @Test func aTimeoutThatDoesNotFitTheLeaseIsRefusedAtStartUp() throws {
        func problem(timeout: Int?, lease: Int?, flags: Bool = false) -> ConfigurationError? {
            var environment: [String: String] = [:]
            var arguments: [String] = []
            if let timeout, flags { arguments += ["--webhook-timeout-ms", "\(timeout)"] }
            if let timeout, !flags { environment["WEBHOOK_TIMEOUT_MS"] = "\(timeout)" }
            if let lease { environment["WEBHOOK_LEASE_MS"] = "\(lease)" }
            do {
                _ = try AppConfiguration.load(arguments: arguments, environment: environment)
                return nil
            } catch {
                return error
            }
        }
        #expect(problem(timeout: nil, lease: nil) == nil, "the defaults fit: 5000 + 2000 + 250 <= 10000")
        // Leases of 8 s and more are renewed every 2 s.
        #expect(problem(timeout: 7750, lease: 10000) == nil)
        #expect(problem(timeout: 7751, lease: 10000) != nil)
        #expect(problem(timeout: 57750, lease: 60000) == nil)
        #expect(problem(timeout: 57751, lease: 60000) != nil)
        // Shorter ones every quarter: the timeout gets three quarters of the lease, less the 250 ms.
        #expect(problem(timeout: 1250, lease: 2000) == nil)
        #expect(problem(timeout: 1251, lease: 2000) != nil)
        #expect(problem(timeout: 5000, lease: nil, flags: true) == nil)
        #expect(problem(timeout: 100, lease: 1000) == nil)
        #expect(problem(timeout: 501, lease: 1000) != nil)
        // A lease the defaults-but-one used to accept: refused with one line naming both settings.
        let error = try #require(problem(timeout: 5000, lease: 2000))
        #expect(error.setting == "WEBHOOK_TIMEOUT_MS")
        #expect("\(error)".contains("WEBHOOK_TIMEOUT_MS") && "\(error)".contains("WEBHOOK_LEASE_MS"))
        #expect(!"\(error)".contains("\n"))
        #expect("\(error)".contains("at most 1250"), "\(error)")
        // WEBHOOK_OUTBOX_MAX_BYTES must leave half of itself for events beside a batch handed out.
        func load(_ environment: [String: String]) throws(ConfigurationError) {
            _ = try AppConfiguration.load(arguments: [], environment: environment)
        }
        #expect(throws: Never.self) { try load(["WEBHOOK_OUTBOX_MAX_BYTES": "65536", "WEBHOOK_BATCH_SIZE": "10"]) }
        #expect(throws: Never.self) { try load(["WEBHOOK_OUTBOX_MAX_BYTES": "\(2 * (16384 + 1536 * 100))"]) }
        #expect(throws: ConfigurationError.self) { try load(["WEBHOOK_OUTBOX_MAX_BYTES": "\(2 * (16384 + 1536 * 100) - 1)"]) }
        do {
            try load(["WEBHOOK_OUTBOX_MAX_BYTES": "65536"])
            Issue.record("a bound smaller than twice what a batch of 100 leaves in Redis was accepted")
        } catch {
            #expect(error.setting == "WEBHOOK_OUTBOX_MAX_BYTES" && "\(error)".contains("WEBHOOK_BATCH_SIZE") && !"\(error)".contains("\n"))
        }
        // The lease it suggests is the shortest that fits.
        for timeout in [1000, 1250, 5000, 5750, 5751, 7000, 120_000] {
            let lease = WebhookSettings.shortestLease(for: .milliseconds(timeout)).milliseconds
            #expect("\(try #require(problem(timeout: timeout, lease: Int(lease) - 1)))".contains("at least \(lease)"))
            #expect(problem(timeout: timeout, lease: Int(lease)) == nil, "\(timeout) in \(lease)")
        }
    }
}
