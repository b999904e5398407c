import Foundation
import Logging
import PresenceCore
import PresenceRedis
import PresenceRealtime
import PresenceHTTP

/// Writes one line per log event to standard error, rendered only when a line is written (swift-log's
/// `StreamLogHandler` re-renders its metadata on every change, and every request sets its request id).
///
/// - ``Format/text``: `StreamLogHandler`'s format, `<time> <level> <label>: <key=value ...> [<source>] <message>`.
/// - ``Format/json`` (`LOG_FORMAT=json`): `{"ts", "level", "label", "message", ...metadata}`.
public struct LineLogHandler: LogHandler {
    public enum Format: Sendable {
        case text
        case json
    }

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let label: String
    let format: Format

    public init(label: String, level: Logger.Level, format: Format) {
        self.label = label
        self.logLevel = level
        self.format = format
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let explicit = event.metadata { all.merge(explicit) { $1 } }
        if let error = event.error {
            all["error.message"] = "\(error)"
            all["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        let line: String
        switch format {
        case .text:
            let rendered = all.isEmpty ? "" : " " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            line = "\(Self.localTimestamp()) \(event.level) \(label):\(rendered) [\(event.source)] \(event.message)\n"
        case .json:
            var object = all.mapValues(Self.json)
            object["ts"] = .string(ISO8601DateFormatter().string(from: Date()))
            object["level"] = .string(event.level.rawValue)
            object["label"] = .string(label)
            object["message"] = .string(event.message.description)
            line = JSONValue.object(object).serialized + "\n"
        }
        FileHandle.standardError.write(Data(line.utf8))
    }

    static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let s): return .string(s)
        case .stringConvertible(let c): return .string(c.description)
        case .array(let a): return .array(a.map(json))
        case .dictionary(let d): return .object(d.mapValues(json))
        }
    }

    /// Local time, `2026-11-21T22:25:12+0000`.
    static func localTimestamp() -> String {
        var now = time(nil)
        var parts = tm()
        guard localtime_r(&now, &parts) != nil else { return "<unknown>" }
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &parts)
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
