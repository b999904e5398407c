import Glibc
import Logging
import Foundation
import NIOCore

/// The client's address, as the search limiter counts it: the peer, or behind a trusted proxy the last address in
/// `X-Forwarded-For` that is not itself a trusted proxy.
public enum ClientAddress {
    /// An IP address or CIDR block (`10.0.0.0/8`, `::1`, `fd00::/8`).
    public struct Block: Sendable {
        let bytes: [UInt8]
        let prefix: Int

        public init?(_ text: String) {
            let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
            guard let bytes = ClientAddress.parse(parts[0]) else { return nil }
            var prefix = bytes.count * 8
            if parts.count == 2 {
                guard let p = Int(parts[1]), (0...(bytes.count * 8)).contains(p) else { return nil }
                prefix = p
            }
            self.bytes = bytes
            self.prefix = prefix
        }

        func contains(_ address: [UInt8]) -> Bool {
            guard address.count == bytes.count else { return false }
            var remaining = prefix
            for (a, b) in zip(address, bytes) {
                if remaining <= 0 { return true }
                let mask: UInt8 = remaining >= 8 ? 0xff : ~(0xff >> UInt8(remaining))
                if a & mask != b & mask { return false }
                remaining -= 8
            }
            return true
        }
    }

    /// Resolves the client address from the peer address and the `X-Forwarded-For` header.
    public static func resolve(peer: String?, forwardedFor: String?, trusted: [Block]) -> String {
        guard let peer else { return "unknown" }
        guard isTrusted(peer, trusted), let forwardedFor else { return normalized(peer) }
        let hops = forwardedFor.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        for hop in hops.reversed() where !isTrusted(hop, trusted) {
            return normalized(parse(hop) != nil ? hop : peer)
        }
        return normalized(hops.first ?? peer)
    }

    /// One spelling per address, so it can key a count or a limit: IPv4 in dotted decimal (IPv4-mapped IPv6
    /// included), IPv6 in RFC 5952 form (lower case, longest zero run compressed). Text that is not an address is
    /// returned as it is.
    public static func normalized(_ text: String) -> String {
        guard let bytes = parse(text) else { return text }
        if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
            return bytes[12...].map(String.init).joined(separator: ".")
        }
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        var storage = in6_addr()
        withUnsafeMutableBytes(of: &storage) { $0.copyBytes(from: bytes) }
        var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &storage, &out, socklen_t(out.count)) != nil else { return text }
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    package static func isTrusted(_ address: String, _ trusted: [Block]) -> Bool {
        guard let bytes = parse(address) else { return false }
        return trusted.contains { $0.contains(bytes) }
    }

    /// IPv4 or IPv6 text to bytes.
    static func parse(_ text: String) -> [UInt8]? {
        if let address = try? SocketAddress(ipAddress: text, port: 0) {
            switch address {
            case .v4(let v4):
                return withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }
            case .v6(let v6):
                return withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            default:
                return nil
            }
        }
        return nil
    }
}
