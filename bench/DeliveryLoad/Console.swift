import Foundation

/// Output: phase lines and the result on stdout, written at once (unbuffered, so a driver sees each as it happens);
/// problems on stderr.
enum Console {
    /// Writes `PHASE <name>` and a newline to stdout.
    static func phase(_ name: String) { line("PHASE \(name)") }

    /// Writes one line to stdout, unbuffered.
    static func line(_ text: String) { FileHandle.standardOutput.write(Data((text + "\n").utf8)) }

    /// Writes one line to stderr, prefixed `delivery-load: `.
    static func error(_ text: String) { FileHandle.standardError.write(Data("delivery-load: \(text)\n".utf8)) }
}
