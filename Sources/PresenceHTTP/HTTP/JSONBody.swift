import Logging
import Foundation
import Hummingbird
import NIOCore
import PresenceCore

/// A request's JSON object body with field accessors whose errors name the field (400).
public struct JSONBody: Sendable {
    public let fields: [String: JSONValue]

    /// Reads the body: over `limit` (64 KiB unless a route allows more) → 413, not a JSON object → 400 "Invalid JSON
    /// body". An empty body is `{}`.
    public static func read(_ request: Request, context: AppRequestContext, limit: Int? = nil) async throws -> JSONBody {
        var request = request
        let buffer: ByteBuffer
        let limit = limit ?? context.maxUploadSize
        do {
            buffer = try await request.collectBody(upTo: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw APIError(.contentTooLarge, "Request body too large (max \(limit / 1024) KiB)")
        }
        if buffer.readableBytes == 0 { return JSONBody(fields: [:]) }
        guard case .object(let fields) = JSONValue.parse(buffer.readableBytesView) else {
            throw APIError.badRequest("Invalid JSON body")
        }
        return JSONBody(fields: fields)
    }

    public init(fields: [String: JSONValue]) {
        self.fields = fields
    }

    /// A required string.
    public func string(_ name: String) throws -> String {
        guard let value = fields[name], !value.isNull else { throw APIError.badRequest("Missing field: \(name)") }
        guard let text = value.string else { throw APIError.badRequest("Field '\(name)' must be a string") }
        return text
    }

    /// An optional string: absent or `null` → `nil`.
    public func optionalString(_ name: String) throws -> String? {
        guard let value = fields[name], !value.isNull else { return nil }
        guard let text = value.string else { throw APIError.badRequest("Field '\(name)' must be a string") }
        return text
    }

    /// A required boolean.
    public func bool(_ name: String) throws -> Bool {
        guard let value = fields[name], !value.isNull else { throw APIError.badRequest("Missing field: \(name)") }
        guard let flag = value.bool else { throw APIError.badRequest("Field '\(name)' must be a boolean") }
        return flag
    }

    /// An optional boolean.
    public func optionalBool(_ name: String) throws -> Bool? {
        guard let value = fields[name], !value.isNull else { return nil }
        guard let flag = value.bool else { throw APIError.badRequest("Field '\(name)' must be a boolean") }
        return flag
    }

    /// An optional array of strings.
    public func optionalStrings(_ name: String) throws -> [String]? {
        guard let value = fields[name], !value.isNull else { return nil }
        guard case .array(let items) = value, items.allSatisfy({ $0.string != nil }) else {
            throw APIError.badRequest("Field '\(name)' must be an array of strings")
        }
        return items.compactMap(\.string)
    }

    /// `true` when the field is present (even as `null`).
    public func has(_ name: String) -> Bool { fields[name] != nil }
}
