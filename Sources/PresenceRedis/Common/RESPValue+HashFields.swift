import PresenceCore
import Redis

extension RESPValue {
    /// A flat `HGETALL`-style array (`field, value, field, value ...`) as a dictionary; `[:]` for anything else.
    var hashFields: [String: String] {
        guard let flat = array else { return [:] }
        var result: [String: String] = [:]
        var index = 0
        while index + 1 < flat.count {
            if let key = flat[index].string, let value = flat[index + 1].string { result[key] = value }
            index += 2
        }
        return result
    }
}
