/// Chat message text as ryOS stores and sends it: HTML-escaped (`& < > " '`), so that its UI, which decodes
/// entities with a DOM parser that strips tags, shows exactly what the user typed. This service's own web client
/// decodes the same five entities and sets the result as text.
public enum HTMLText {
    /// `text` with `&`, `<`, `>`, `"` and `'` replaced by their entities, as ryOS's `escapeHTML` does.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#039;"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
