import Foundation
import Hummingbird
import NIOCore

/// `GET /openapi.yaml`: the service's OpenAPI 3.1 contract (the repository's top-level `openapi.yaml`, bundled).
struct OpenAPIController {
    func addRoutes(to router: Router<AppRequestContext>) {
        // One buffer for every response (copy-on-write: each response reads its own view of the same bytes).
        let document = OpenAPIDocument.yaml.map { ByteBuffer(bytes: $0) }
        router.get("/openapi.yaml") { _, _ in
            guard let document else {
                throw APIError(.internalServerError, "OpenAPI document not bundled with this build")
            }
            return Response(
                status: .ok,
                headers: [.contentType: "application/yaml; charset=utf-8", .cacheControl: "public, max-age=300"],
                body: .init(byteBuffer: document)
            )
        }
    }
}

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
