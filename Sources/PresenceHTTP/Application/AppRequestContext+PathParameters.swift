import Foundation
import Hummingbird

extension AppRequestContext {
    /// A path parameter, percent-decoded (`/api/rooms/gen%65ral` names the room `general`, RFC 3986 §6.2.2.2);
    /// `nil` when the route has no such parameter or its encoding is broken, which routes refuse as invalid.
    package func pathParameter(_ name: String) -> String? {
        guard let raw = parameters.get(name) else { return nil }
        guard raw.contains("%") else { return raw }
        return raw.removingPercentEncoding
    }
}
