import Foundation
import PresenceApp

/// `presence-server`: reads its configuration, then serves until SIGTERM or SIGINT.
@main
struct App {
    static func main() async {
        configureProcess()
        let configuration: AppConfiguration
        do {
            switch try AppConfiguration.load(
                arguments: Array(CommandLine.arguments.dropFirst()),
                environment: ProcessInfo.processInfo.environment
            ) {
            case .help(let text):
                print(text)
                return
            case .run(let loaded):
                configuration = loaded
            }
        } catch {
            FileHandle.standardError.write(Data("presence-server: \(error)\n".utf8))
            exit(2)
        }

        bootstrapObservability(configuration: configuration)
        do {
            try await runServer(configuration: configuration)
        } catch {
            FileHandle.standardError.write(Data("presence-server: \(error)\n".utf8))
            exit(1)
        }
    }
}
