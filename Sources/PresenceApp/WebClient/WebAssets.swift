import Crypto
import Foundation
import NIOCore
import PresenceCore
import PresenceRedis
import PresenceRealtime
import PresenceHTTP

/// The web client and the operator console: plain HTML, CSS and JavaScript modules from this module's `Web/`
/// resources, read once at start-up.
///
/// Assets are served under a versioned path, `/assets/<version>/<file>`, where the version is a digest of every file,
/// so a browser may cache them for good and a new build gets new URLs. The two pages are templates: `{{ASSETS}}`,
/// `{{PUSHER_KEY}}`, `{{VERSION}}`, `{{CHAT_TTL}}` and `{{SUPPORT_TTL}}` are replaced (HTML-escaped) once, here.
struct WebAssets: Sendable {
    struct Asset: Sendable {
        let body: ByteBuffer
        let contentType: String
    }

    /// Values the pages need.
    struct PageSettings: Sendable {
        var pusherKey: String
        var chatTTLSeconds: Int
        var supportTTLSeconds: Int
    }

    /// First 12 hex digits of the SHA-256 of every file (names and bytes).
    let version: String
    /// Files served under `/assets/<version>/`, by name.
    let assets: [String: Asset]
    /// Rendered pages by template name (`index.html`, `console.html`).
    let pages: [String: ByteBuffer]

    /// Content types by file extension; files of other kinds are not served.
    static let contentTypes: [String: String] = [
        "html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8",
        "svg": "image/svg+xml", "png": "image/png", "json": "application/json", "txt": "text/plain; charset=utf-8",
    ]

    /// Reads the bundled `Web/` directory; `nil` when the build lacks it.
    static func bundled(settings: PageSettings) -> WebAssets? {
        guard let directory = Bundle.module.url(forResource: "Web", withExtension: nil),
              let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return nil }
        var files: [String: [UInt8]] = [:]
        for name in names {
            guard let data = try? Data(contentsOf: directory.appendingPathComponent(name)) else { continue }
            files[name] = [UInt8](data)
        }
        return WebAssets(files: files, settings: settings)
    }

    /// Builds the assets and pages from file contents by name.
    init(files: [String: [UInt8]], settings: PageSettings) {
        var hash = SHA256()
        for name in files.keys.sorted() {
            hash.update(data: Array(name.utf8) + [0])
            hash.update(data: files[name]!)
            hash.update(data: [0])
        }
        let version = String(Hex.encode(Array(hash.finalize())).prefix(12))
        self.version = version
        var assets: [String: Asset] = [:]
        var pages: [String: ByteBuffer] = [:]
        let values: [String: String] = [
            "ASSETS": "/assets/\(version)", "PUSHER_KEY": settings.pusherKey, "VERSION": ServiceVersion.current,
            "CHAT_TTL": String(settings.chatTTLSeconds), "SUPPORT_TTL": String(settings.supportTTLSeconds),
        ]
        for (name, bytes) in files {
            guard Self.isServable(name), let type = Self.contentTypes[String(name.split(separator: ".").last ?? "")] else { continue }
            if name.hasSuffix(".html") {
                pages[name] = ByteBuffer(string: Self.render(String(decoding: bytes, as: UTF8.self), values: values))
            } else {
                assets[name] = Asset(body: ByteBuffer(bytes: bytes), contentType: type)
            }
        }
        self.assets = assets
        self.pages = pages
    }

    /// A plain file name: letters, digits, `.`, `-`, `_`, not starting with a dot.
    static func isServable(_ name: String) -> Bool {
        !name.hasPrefix(".") && !name.isEmpty && name.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2E || $0 == 0x2D || $0 == 0x5F
        }
    }

    /// Replaces each `{{NAME}}` with its value, HTML-escaped.
    static func render(_ template: String, values: [String: String]) -> String {
        var text = template
        for (name, value) in values {
            text = text.replacingOccurrences(of: "{{\(name)}}", with: HTMLText.escape(value))
        }
        return text
    }
}
