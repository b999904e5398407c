import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import PresenceApp
import PresenceHTTP
import PresenceRealtime
import PresenceRedis
import Redis
import Testing
import TestSupport

@Suite("OpenAPI contract")
struct OpenAPIContractTests {
    func services() throws -> AppServices {
        var configuration = AppConfiguration()
        configuration.redis = try RedisConfiguration(url: "redis://127.0.0.1:1")
        return AppServices(configuration: configuration, redis: RedisClient(configuration: configuration.redis), logger: Logger(label: "test"))
    }

    /// The repository's top-level openapi.yaml, as the bundle carries it.
    func document() throws -> String {
        let bytes = try #require(OpenAPIDocument.yaml, "openapi.yaml is not in the PresenceHTTP bundle")
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func everyRouteIsInTheSpecAndEveryOperationIsARoute() throws {
        let router = buildRouter(try services())
        let routes = Set(router.routes.map { "\($0.method.rawValue) \($0.path.description)" })
        let operations = OpenAPIDocument.operations(in: try document())
        #expect(routes.count > 30, "the router should list every route: \(routes.sorted())")
        #expect(routes.subtracting(operations).sorted() == [], "routes the spec lacks")
        #expect(operations.subtracting(routes).sorted() == [], "operations the router lacks")
    }

    @Test func theSpecIsOpenAPI31() throws {
        let text = try document()
        #expect(text.split(separator: "\n").contains { $0.hasPrefix("openapi: 3.1") || $0.hasPrefix("openapi: \"3.1") })
    }

    @Test func theLineScanReadsPathsAndOperationsOnly() {
        let yaml = """
        openapi: 3.1.0
        info:
          title: x
        paths:
          /a/{id}:
            parameters: []
            get:
              responses: {}
            delete:
              responses:
                "200":
                  content: {}
          "/b":
            post: {}
        components:
          schemas:
            get:
              type: object
        """
        #expect(OpenAPIDocument.operations(in: yaml) == ["GET /a/{id}", "DELETE /a/{id}", "POST /b"])
    }

    @Test func servedAtOpenAPIYAML() async throws {
        let app = Application(router: buildRouter(try services()))
        let expected = try document()
        try await app.test(.router) { client in
            try await client.execute(uri: "/openapi.yaml", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/yaml; charset=utf-8")
                #expect(String(buffer: response.body) == expected)
            }
        }
    }
}
