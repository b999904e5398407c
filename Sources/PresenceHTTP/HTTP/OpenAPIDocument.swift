import Foundation

/// The bundled OpenAPI document.
public enum OpenAPIDocument {
    /// The bytes of `openapi.yaml`, read once from this module's resources; `nil` if the bundle lacks it.
    public static let yaml: [UInt8]? = Bundle.module.url(forResource: "openapi", withExtension: "yaml")
        .flatMap { try? Data(contentsOf: $0) }
        .map { [UInt8]($0) }

    /// Every operation the document describes, as `"METHOD /path"` with `{parameter}` placeholders. A line scan of
    /// the `paths:` section: paths at two spaces of indent, operations at four.
    public static func operations(in text: String) -> Set<String> {
        let methods: Set<String> = ["get", "put", "post", "delete", "patch", "head", "options", "trace"]
        var result: Set<String> = []
        var inPaths = false
        var path: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" ") && !line.isEmpty && !line.hasPrefix("#") {
                inPaths = line.hasPrefix("paths:")
                path = nil
                continue
            }
            guard inPaths else { continue }
            if line.hasPrefix("  /") || line.hasPrefix("  \"/") || line.hasPrefix("  '/"), line.hasSuffix(":") {
                path = String(line.dropFirst(2).dropLast()).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
            } else if let path, line.hasPrefix("    "), !line.hasPrefix("     "), let colon = line.firstIndex(of: ":") {
                let key = line[line.index(line.startIndex, offsetBy: 4)..<colon]
                if methods.contains(String(key)) { result.insert("\(key.uppercased()) \(path)") }
            }
        }
        return result
    }
}
