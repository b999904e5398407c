import Foundation

/// The command line of `delivery-load`: what to open, how to subscribe, what to publish and how long to wait.
/// `Options.parse` reads `CommandLine.arguments`; `Options.usage` is the `--help` text.
struct Options: Sendable {
    /// How a subscriber socket speaks once the WebSocket upgrade is done.
    enum SubscribeProtocol: String, Sendable {
        /// Pusher protocol 7: `pusher:connection_established`, `pusher:subscribe`, `subscription_succeeded`.
        case pusher
        /// nchan's WebSocket subscriber: the channel is in the URL, each text frame is one published message.
        case nchan
    }

    /// What the built-in publisher sends.
    enum PublishMode: String, Sendable {
        /// Signed `POST /apps/<id>/events` of Pusher's HTTP API.
        case pusher
        /// `POST` of the raw message to nchan's publisher location.
        case nchan
        /// Nothing: the server sends the events itself (tests).
        case none
    }

    var url = ""
    var subscribeProtocol = SubscribeProtocol.pusher
    var sockets: Int?
    var channelPrefix = "bench-room-"
    var channelCount = 100
    var subscribersPerChannel = 100
    var sources: [String] = []
    var connectConcurrency = 500
    var connectTimeoutSeconds = 10.0
    var subscribeTimeoutSeconds = 30.0
    var threads = 1
    var idleSeconds = 0.0
    var publish: PublishMode?
    var publishURL = ""
    var appID = ""
    var key = ""
    var secret = ""
    var publishConnections = 4
    var rate = 1000.0
    var eventsPerChannel = 10
    var drainTimeoutSeconds = 30.0

    /// The number of subscriber sockets: `--sockets`, else channels × subscribers per channel.
    var socketCount: Int { sockets ?? channelCount * subscribersPerChannel }
    /// The publisher in use: `--publish`, else the subscriber protocol's own.
    var publishMode: PublishMode { publish ?? (subscribeProtocol == .pusher ? .pusher : .nchan) }

    /// The source address of socket `index`: round-robin over `--sources`, or over as many of 127.0.0.2, 127.0.0.3, …
    /// as keep each at 50,000 sockets or fewer.
    var sourceAddresses: [String] {
        if !sources.isEmpty { return sources }
        let needed = max(1, (socketCount + 49_999) / 50_000)
        return (0..<needed).map { "127.0.0.\(2 + $0)" }
    }

    /// The name of channel `index` (0 ..< channelCount).
    func channel(_ index: Int) -> String { channelPrefix + String(index) }

    static let usage = """
        usage: delivery-load --url URL [options]

        Opens WebSocket subscriber sockets, subscribes each to one channel, publishes events carrying a per-channel
        seq and their send time, and reports what arrived: lost, duplicates and latency p50/p99/max, as one JSON line.
        Phases are printed as they pass: PHASE connected N, PHASE subscribed N, PHASE publish-start, PHASE publish-end,
        PHASE drained.

        Subscribers:
          --url URL                      WebSocket URL; {channel} is replaced by the socket's channel
                                         (pusher: ws://127.0.0.1:PORT/app/KEY?protocol=7,
                                          nchan:  ws://127.0.0.1:PORT/sub/{channel})
          --protocol pusher|nchan        subscriber protocol (default pusher)
          --channel-prefix P             channel names are P0, P1, ... (default bench-room-)
          --channel-count C              channels (default 100)
          --subscribers-per-channel S    sockets per channel (default 100)
          --sockets N                    sockets, socket i on channel i % C (default C × S)
          --sources A,B,...              loopback source addresses, round-robin (default 127.0.0.2, 127.0.0.3, ...:
                                         as many as keep each at 50,000 sockets or fewer)
          --connect-concurrency K        connects in flight at once (default 500)
          --connect-timeout S            per socket, TCP connect plus upgrade plus Pusher handshake (default 10)
          --subscribe-timeout S          wait for every subscription to succeed (default 30)
          --threads T                    event loops (default 1)
          --idle-seconds S               hold the subscribed sockets idle S seconds before publishing (default 0)

        Publisher:
          --publish pusher|nchan|none    pusher: signed POST /apps/ID/events; nchan: POST raw message;
                                         none: the server sends the events itself (default: as --protocol)
          --publish-url URL              pusher: http://127.0.0.1:PORT; nchan: http://127.0.0.1:PORT/pub?id={channel}
          --app-id A --key K --secret S  Pusher app credentials (--publish pusher)
          --publish-connections N        keep-alive HTTP/1.1 connections (default 4)
          --rate R                       events per second in total, round-robin over channels (default 1000)
          --events-per-channel M         events per channel, seq 0..M-1 (default 10); due = M × sockets
          --drain-timeout S              after publishing, wait at most S seconds for everything due (default 30)

          --help                         this text

        JSON fields: sockets, established, subscribed, connect_seconds, due, received, distinct, lost, duplicates,
        unexpected, errors, closed, p50_ms, p99_ms, max_ms, last_delivery_ms, publish_seconds, events_published,
        publish_failures, generator_cpu_seconds, generator_us_per_frame.
        """

    /// Reads the arguments; prints the usage and exits on `--help` (0) or a bad argument (2).
    static func parse(_ arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> Options {
        var options = Options()
        var rest = arguments.makeIterator()
        func fail(_ message: String) -> Never {
            FileHandle.standardError.write(Data("delivery-load: \(message)\n\n\(usage)\n".utf8))
            exit(2)
        }
        while let flag = rest.next() {
            if flag == "--help" || flag == "-h" {
                print(usage)
                exit(0)
            }
            guard let value = rest.next() else { fail("\(flag) needs a value") }
            func int() -> Int {
                guard let number = Int(value), number >= 0 else { fail("\(flag) wants a whole number, not \(value)") }
                return number
            }
            func double() -> Double {
                guard let number = Double(value), number >= 0 else { fail("\(flag) wants a number, not \(value)") }
                return number
            }
            switch flag {
            case "--url": options.url = value
            case "--protocol":
                guard let kind = SubscribeProtocol(rawValue: value) else { fail("--protocol is pusher or nchan") }
                options.subscribeProtocol = kind
            case "--sockets": options.sockets = int()
            case "--channel-prefix": options.channelPrefix = value
            case "--channel-count": options.channelCount = max(1, int())
            case "--subscribers-per-channel": options.subscribersPerChannel = int()
            case "--sources": options.sources = value.split(separator: ",").map { String($0) }
            case "--connect-concurrency": options.connectConcurrency = max(1, int())
            case "--connect-timeout": options.connectTimeoutSeconds = double()
            case "--subscribe-timeout": options.subscribeTimeoutSeconds = double()
            case "--threads": options.threads = max(1, int())
            case "--idle-seconds": options.idleSeconds = double()
            case "--publish":
                guard let mode = PublishMode(rawValue: value) else { fail("--publish is pusher, nchan or none") }
                options.publish = mode
            case "--publish-url": options.publishURL = value
            case "--app-id": options.appID = value
            case "--key": options.key = value
            case "--secret": options.secret = value
            case "--publish-connections": options.publishConnections = max(1, int())
            case "--rate": options.rate = double()
            case "--events-per-channel": options.eventsPerChannel = int()
            case "--drain-timeout": options.drainTimeoutSeconds = double()
            default: fail("unknown argument \(flag)")
            }
        }
        if options.url.isEmpty { fail("--url is required") }
        if options.publishMode != .none {
            if options.publishURL.isEmpty { fail("--publish-url is required with --publish \(options.publishMode)") }
            if options.rate <= 0 { fail("--rate must be above 0") }
            if options.publishMode == .pusher && (options.appID.isEmpty || options.key.isEmpty || options.secret.isEmpty) {
                fail("--publish pusher needs --app-id, --key and --secret")
            }
        }
        return options
    }
}
