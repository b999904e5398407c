import NIOCore
import NIOHTTP1

/// A request refused before it reaches a route: the status, the JSON error and any extra headers, written as raw
/// bytes straight onto the socket and followed by a close.
package struct ConnectionRejection {
    package init(status: HTTPResponseStatus, message: String, headers: [(String, String)] = []) {
        self.status = status
        self.message = message
        self.headers = headers
    }

    package var status: HTTPResponseStatus
    var message: String
    var headers: [(String, String)] = []

    /// `HTTP/1.1 <status>` with a JSON body and `Connection: close`.
    package func bytes(allocator: ByteBufferAllocator) -> ByteBuffer {
        let body = #"{"error":""# + message + #""}"#
        var head = "HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\n"
        head += "Content-Type: application/json; charset=utf-8\r\n"
        head += "Content-Length: \(body.utf8.count)\r\n"
        head += "Connection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        var buffer = allocator.buffer(capacity: head.utf8.count + body.utf8.count)
        buffer.writeString(head)
        buffer.writeString(body)
        return buffer
    }

    /// The answer to a request the HTTP parser refused. `requestLineComplete` tells a long URL (414) from long
    /// headers (431); `firstByte` tells an unknown method (405: it starts like a token) from bytes that are not HTTP;
    /// `bareLineFeed` tells a request line ending in LF alone (400), which the parser reports as a bad version.
    package static func forParserError(
        _ error: HTTPParserError, requestLineComplete: Bool, firstByte: UInt8?, bareLineFeed: Bool = false
    ) -> ConnectionRejection {
        switch error {
        case .invalidVersion where bareLineFeed:
            return ConnectionRejection(status: .badRequest, message: "Malformed request line")
        case .headerOverflow:
            return requestLineComplete
                ? ConnectionRejection(status: .requestHeaderFieldsTooLarge, message: "Request header fields too large")
                : ConnectionRejection(status: .uriTooLong, message: "URI too long")
        case .invalidMethod:
            if let firstByte, (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(firstByte) {
                return ConnectionRejection(
                    status: .methodNotAllowed, message: "Method not allowed",
                    headers: [("Allow", "GET, POST, PUT, PATCH, DELETE, OPTIONS")]
                )
            }
            return ConnectionRejection(status: .badRequest, message: "Malformed request")
        case .invalidVersion:
            return ConnectionRejection(status: .httpVersionNotSupported, message: "HTTP version not supported")
        case .invalidURL:
            return ConnectionRejection(status: .badRequest, message: "Malformed request target")
        case .unexpectedContentLength, .invalidContentLength:
            return ConnectionRejection(status: .badRequest, message: "Malformed message length")
        case .invalidChunkSize, .invalidEOFState:
            return ConnectionRejection(status: .badRequest, message: "Malformed request body")
        default:
            return ConnectionRejection(status: .badRequest, message: "Malformed request")
        }
    }
}
