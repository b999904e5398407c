import PresenceCore
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Chat completions over HTTP (`POST <base>/chat/completions`): OpenAI and servers that speak the same API
/// (Ollama, vLLM, llama.cpp's server).
public struct OpenAICompatibleProvider: AIProvider {
    public let name = "openai-compatible"
    let baseURL: String
    let apiKey: String?
    let model: String
    let timeout: Duration
    let client: HTTPClient

    public init(baseURL: String, apiKey: String?, model: String, timeout: Duration, client: HTTPClient = .shared) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.apiKey = apiKey
        self.model = model
        self.timeout = timeout
        self.client = client
    }

    public func reply(to request: AIRequest) async throws -> String {
        let body: JSONValue = [
            "model": .string(model),
            "messages": [
                ["role": "system", "content": .string(RyoPersona.systemPrompt)],
                ["role": "user", "content": .string(RyoPersona.contextBlock(for: request))],
                ["role": "user", "content": .string(RyoPersona.question(for: request))],
            ],
            "temperature": .number(0.7),
            "max_tokens": 200,
        ]
        var http = HTTPClientRequest(url: baseURL + "/chat/completions")
        http.method = .POST
        http.headers.add(name: "Content-Type", value: "application/json")
        if let apiKey, !apiKey.isEmpty { http.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        http.body = .bytes(ByteBuffer(string: body.serialized))

        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            let deadline = NIODeadline.now() + .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000
                + timeout.components.attoseconds / 1_000_000_000)
            response = try await client.execute(http, deadline: deadline)
            guard response.status == .ok else { throw AIProviderError.status(Int(response.status.code)) }
            bytes = try await response.body.collect(upTo: 1 << 20)
        } catch let error as AIProviderError {
            throw error
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            throw AIProviderError.timeout
        } catch {
            throw AIProviderError.transport(String(describing: error))
        }
        guard let json = JSONValue.parse(bytes.readableBytesView),
              case .array(let choices)? = json["choices"], let first = choices.first,
              let content = first["message"]?["content"]?.string else {
            throw AIProviderError.malformed("no choices[0].message.content in the response")
        }
        return content
    }
}
