import Foundation

extension AppConfiguration {
    /// The repository path of the page ``settingsMarkdown()`` renders, relative to the package root.
    public static let settingsDocumentPath = "docs/configuration.md"

    /// docs/configuration.md: every setting in ``settings``, in table order, with its environment variable, flag,
    /// default (``Setting/shownDefault``, the value ``init()`` applies), accepted range and help, under a header
    /// saying the page is generated. `ConfigurationDocumentTests` fails when the committed page differs;
    /// `./ops/gen-docs` rewrites it.
    public static func settingsMarkdown() -> String {
        let names = Set(settings.map(\.name))
        var lines = [
            "# Configuration",
            "",
            "Generated from the settings table in `Sources/PresenceApp/Configuration` (`AppConfiguration.settings`); do not",
            "edit by hand: run `./ops/gen-docs`.",
            "",
            "Every setting is an environment variable and the matching flag; a flag wins over the variable, which wins over",
            "the default. `presence-server --help` prints the same list. A bad value stops start-up with one line naming the",
            "setting. Numbers are whole numbers within the range shown.",
            "",
            "\(settings.count) settings.",
            "",
            "| Variable | Flag | Default | Range | Description |",
            "|---|---|---|---|---|",
        ]
        for setting in settings {
            let cells = [
                code(setting.name),
                code(setting.flag),
                markdownDefault(setting),
                setting.range.map { "\($0.lowerBound)–\($0.upperBound)" } ?? "",
                markdownText(setting.help, settingNames: names),
            ]
            lines.append("| " + cells.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The default cell: the value as code, any note after it in words; an unset setting as words in italics.
    private static func markdownDefault(_ setting: Setting) -> String {
        switch (setting.defaultValue, setting.defaultNote) {
        case let (value?, note?): "\(code(value)) (\(markdownText(note, settingNames: [])))"
        case let (value?, nil): code(value)
        case let (nil, note?): "*unset: \(markdownText(note, settingNames: Set(settings.map(\.name))))*"
        case (nil, nil): "*unset*"
        }
    }

    /// `text` as a code span inside a table cell (a `|` escaped so it does not end the cell).
    private static func code(_ text: String) -> String {
        "`" + text.replacingOccurrences(of: "|", with: "\\|") + "`"
    }

    /// Help text as Markdown in a table cell: characters Markdown would read as syntax escaped, and any word that
    /// names a setting set as code.
    private static func markdownText(_ text: String, settingNames: Set<String>) -> String {
        var output = ""
        var word = ""
        func flush() {
            if settingNames.contains(word) {
                output += code(word)
            } else {
                // `_` between letters never starts emphasis; only a leading or trailing one is escaped.
                var core = Substring(word)
                let leading = core.prefix(while: { $0 == "_" })
                core = core.dropFirst(leading.count)
                let trailingCount = core.reversed().prefix(while: { $0 == "_" }).count
                let trailing = core.suffix(trailingCount)
                core = core.dropLast(trailingCount)
                output += escaped(String(leading)) + core + escaped(String(trailing))
            }
            word = ""
        }
        for character in text {
            if character.isLetter || character.isNumber || character == "_" {
                word.append(character)
            } else {
                flush()
                output += escaped(String(character))
            }
        }
        flush()
        return output
    }

    private static func escaped(_ text: String) -> String {
        var output = ""
        for character in text {
            if "\\`*_<>[]|".contains(character) { output.append("\\") }
            output.append(character)
        }
        return output
    }
}
