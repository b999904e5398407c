import Foundation
import Hummingbird
import NIOCore

/// `GET /openapi.yaml`: the service's OpenAPI 3.1 contract (the repository's top-level `openapi.yaml`, bundled).
package struct OpenAPIController {
    package init() {}

    package func addRoutes(to router: Router<AppRequestContext>) {
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
