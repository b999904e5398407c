import Foundation
import PresenceApp
import PresenceRealtime
import Testing

/// docs/configuration.md is generated from the settings table (`AppConfiguration.settingsMarkdown()`); these tests fail
/// when the committed page is stale. `UPDATE_DOCS=1` (what `./ops/gen-docs` sets) rewrites the page instead.
@Suite("Configuration document")
struct ConfigurationDocumentTests {
    /// The package root: this file is Tests/PresenceAppTests/ConfigurationDocumentTests.swift.
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The committed page equals what the settings table renders (or, with `UPDATE_DOCS=1`, is rewritten to it).
    @Test func committedPageMatchesTheSettingsTable() throws {
        let url = Self.packageRoot.appendingPathComponent(AppConfiguration.settingsDocumentPath)
        let rendered = AppConfiguration.settingsMarkdown()
        if ProcessInfo.processInfo.environment["UPDATE_DOCS"] == "1" {
            try rendered.write(to: url, atomically: true, encoding: .utf8)
            return
        }
        let committed = try? String(contentsOf: url, encoding: .utf8)
        guard let committed else {
            Issue.record("\(AppConfiguration.settingsDocumentPath) is missing: run ./ops/gen-docs and commit it")
            return
        }
        let firstDifference = zip(committed.split(separator: "\n", omittingEmptySubsequences: false),
                                  rendered.split(separator: "\n", omittingEmptySubsequences: false))
            .enumerated().first { $0.element.0 != $0.element.1 }
        let upToDate = committed == rendered  // compared apart, so a failure does not print both pages
        #expect(
            upToDate,
            """
            \(AppConfiguration.settingsDocumentPath) is stale (it differs from the settings table\
            \(firstDifference.map { " from line \($0.offset + 1): committed '\($0.element.0)', table '\($0.element.1)'" } ?? "")): \
            run ./ops/gen-docs and commit it
            """
        )
    }

    /// Every setting has exactly one row, with its variable, flag and default as the server applies it.
    @Test func everySettingHasOneRow() {
        let rows = AppConfiguration.settingsMarkdown().split(separator: "\n").filter { $0.hasPrefix("| `") }
        #expect(rows.count == AppConfiguration.settings.count)
        for setting in AppConfiguration.settings {
            let matching = rows.filter { $0.hasPrefix("| `\(setting.name)` | `\(setting.flag)` |") }
            #expect(matching.count == 1, "\(setting.name)")
            if let value = setting.defaultValue, let row = matching.first {
                #expect(row.contains("`\(value.replacingOccurrences(of: "|", with: "\\|"))`"), "\(setting.name)")
            }
        }
    }

    /// The table is the only place a default is written: each default is one its setting accepts, and giving every
    /// default explicitly changes nothing from `AppConfiguration()`.
    @Test func defaultsComeFromTheTable() throws {
        var explicit: [String: String] = [:]
        for setting in AppConfiguration.settings {
            if let value = setting.defaultValue { explicit[setting.name] = value }
        }
        guard case .run(let loaded) = try AppConfiguration.load(arguments: [], environment: explicit) else {
            Issue.record("no configuration")
            return
        }
        var fromDefaults = ""
        var fromExplicit = ""
        dump(AppConfiguration(), to: &fromDefaults)
        dump(loaded, to: &fromExplicit)
        #expect(fromDefaults == fromExplicit)
        // A few the server is known to start with, through the table.
        let config = AppConfiguration()
        #expect(config.port == 8080)
        #expect(config.effectiveMetricsPort == 8080 + AppConfiguration.metricsPortOffset)
        #expect(config.ai.baseURL == nil)
        #expect(config.pusher.key == "presence-key")
    }

    /// `--help` shows each default as the page does.
    @Test func helpShowsTheSameDefaults() throws {
        guard case .help(let text) = try AppConfiguration.load(arguments: ["--help"], environment: [:]) else {
            Issue.record("no help")
            return
        }
        for setting in AppConfiguration.settings {
            #expect(text.contains("env \(setting.name), default \(setting.shownDefault)"))
        }
    }
}
