import Logging
import Foundation
/// A setting that could not be used; its description is the one line printed at start-up.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The setting's environment name (e.g. `PORT`), or the unknown flag.
    public let setting: String
    /// What is wrong with it.
    public let message: String

    public init(setting: String, message: String) {
        self.setting = setting
        self.message = message
    }

    public var description: String { "invalid \(setting): \(message)" }
}
