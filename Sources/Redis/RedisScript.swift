import Crypto
import Foundation

/// A Lua script run with EVALSHA; if Redis answers NOSCRIPT (after a restart or `SCRIPT FLUSH`) the client
/// loads it and retries once, in the same round trip.
///
/// Keep scripts as `.lua` files in a target's resources so operators can read them and run them with
/// `redis-cli --eval file.lua key1 key2 , arg1 arg2`.
public struct RedisScript: Sendable, Hashable {
    /// A name for logs and errors (the file name without `.lua`).
    public let name: String
    /// The Lua source.
    public let source: String
    /// Hex SHA-1 of the source, as Redis computes it.
    public let sha1: String

    /// A script from its source.
    public init(name: String, source: String) {
        self.name = name
        self.source = source
        self.sha1 = Insecure.SHA1.hash(data: Array(source.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    /// A script read from a `.lua` file.
    public init(contentsOf url: URL) throws {
        let source = try String(contentsOf: url, encoding: .utf8)
        self.init(name: url.deletingPathExtension().lastPathComponent, source: source)
    }

    /// Loads `<name>.lua` from a bundle's resources (e.g. `Bundle.module`), looking in `subdirectory` too.
    public init(resource name: String, in bundle: Bundle, subdirectory: String? = nil) throws {
        guard let url = bundle.url(forResource: name, withExtension: "lua", subdirectory: subdirectory)
            ?? bundle.url(forResource: name, withExtension: "lua")
        else {
            throw RedisScriptError.notFound(name)
        }
        try self.init(contentsOf: url)
    }

    /// The `EVALSHA` command that runs this script with `keys` and `arguments`.
    public func evalsha(keys: [String], arguments: [String]) -> RedisCommand {
        var command = RedisCommand("EVALSHA")
        command.append(sha1)
        command.append(keys.count)
        for key in keys { command.append(key) }
        for argument in arguments { command.append(argument) }
        return command
    }
}

/// A script resource that could not be found.
public enum RedisScriptError: Error, Sendable, CustomStringConvertible {
    case notFound(String)

    public var description: String {
        switch self {
        case .notFound(let name): return "Lua script '\(name).lua' not found in the bundle's resources"
        }
    }
}
