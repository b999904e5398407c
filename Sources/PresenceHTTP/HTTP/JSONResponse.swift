import Logging
import Foundation
import Hummingbird
import PresenceCore
import NIOCore

/// Builds JSON responses, errors included, the same way everywhere.
public enum JSONResponse {
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// `{"error": message}` with `status`.
    public static func error(_ message: String, status: HTTPResponse.Status, headers: HTTPFields = [:]) -> Response {
        make(JSONValue.object(["error": .string(message)]), status: status, headers: headers)
    }

    /// A JSON value with `status`, serialized without Foundation's encoder.
    public static func make(_ value: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: value.serialized)))
    }

    /// JSON text already written (by a specialised writer such as ``PresentUser/listJSON(_:)``), with `status`.
    public static func make(bytes: [UInt8], status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// `value` encoded as JSON with `status` (disfavoured: a literal such as `["success": true]` takes the faster
    /// ``JSONValue`` overload).
    @_disfavoredOverload
    public static func make(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        let data = (try? encoder.encode(value)) ?? Data(#"{"error":"Internal server error"}"#.utf8)
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
