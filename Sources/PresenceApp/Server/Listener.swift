#if canImport(Glibc)
import PresenceRealtime
import PresenceHTTP
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Hummingbird
import NIOCore
import ServiceLifecycle

/// Runs an application whose listener is named by a setting, so that a failure to bind says which address and which
/// setting in one line (`PORT: cannot listen on 127.0.0.1:8080: Address already in use (errno 98) ...`) instead of
/// NIO's `bind(descriptor:ptr:bytes:)`.
struct Listener<App: ApplicationProtocol>: Service {
    let app: App
    /// The setting that names the port (`PORT`, `METRICS_PORT`).
    let setting: String
    let host: String
    let port: Int

    func run() async throws {
        do {
            try await app.run()
        } catch let error as IOError where error.errnoCode != 0 {
            let reason = String(cString: strerror(error.errnoCode))
            throw ListenerError(setting: setting, host: host, port: port, reason: "\(reason) (errno \(error.errnoCode))")
        }
    }
}

/// A listener that could not start, named by its setting.
struct ListenerError: Error, CustomStringConvertible {
    let setting: String
    let host: String
    let port: Int
    let reason: String

    var description: String {
        "\(setting): cannot listen on \(host):\(port): \(reason). Another process (another worker on this host?) holds "
            + "it: give each worker its own \(setting)" + (setting == "METRICS_PORT" ? " (or 0 for none)" : "")
    }
}
