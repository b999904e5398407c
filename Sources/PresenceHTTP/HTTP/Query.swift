import Hummingbird

/// Query string helpers.
package enum Query {
    static func int(_ request: Request, _ name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = request.uri.queryParameters.get(name) else { return value }
        guard let number = Int(text), number >= range.lowerBound else {
            throw APIError.badRequest("Query parameter '\(name)' must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return min(number, range.upperBound)
    }
}
