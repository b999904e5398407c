import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// The built-in publisher: `--publish-connections` keep-alive connections on one event loop, `--rate` events per
/// second in all. Event k goes to channel k % C with seq k / C, so each of the C channels gets seq 0 ..< M. Each body
/// carries `{"seq":N,"t":<wall-clock ns at send>}`: Pusher's signed `POST /apps/<id>/events` (the object as the string
/// `data` of event `bench`), or nchan's raw `POST`. Lives on its loop: make it with `Publisher.run`.
final class Publisher {
    /// What publishing did.
    struct Result: Sendable {
        /// Events answered 2xx.
        var published = 0
        /// Events answered otherwise, or whose connection closed first.
        var failures = 0
        /// From the first send to the last answer.
        var seconds = 0.0
    }

    private let options: Options
    private let endpoint: Endpoint
    private let signer: PusherSigner?
    private let loop: any EventLoop
    private let done: EventLoopPromise<Result>
    private let total: Int
    private var connections: [PublishConnectionHandler] = []
    private var sent = 0
    private var answered = 0
    private var result = Result()
    private var started: Int64 = 0
    private var ticker: RepeatedTask?
    private var reported = 0

    private init(options: Options, endpoint: Endpoint, loop: any EventLoop) {
        self.options = options
        self.endpoint = endpoint
        self.loop = loop
        signer = options.publishMode == .pusher
            ? PusherSigner(appID: options.appID, key: options.key, secret: options.secret) : nil
        done = loop.makePromise()
        total = options.eventsPerChannel * options.channelCount
    }

    /// Connects, publishes every event at the rate, and completes once each has been answered.
    static func run(options: Options, endpoint: Endpoint, on loop: any EventLoop) -> EventLoopFuture<Result> {
        loop.flatSubmit {
            let publisher = Publisher(options: options, endpoint: endpoint, loop: loop)
            return publisher.start()
        }
    }

    private func start() -> EventLoopFuture<Result> {
        let box = NIOLoopBound(self, eventLoop: loop)
        let opened = (0..<options.publishConnections).map { _ in
            ClientBootstrap(group: loop)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let handler = PublishConnectionHandler(publisher: box.value)
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(handler)
                        box.value.connections.append(handler)
                    }
                }
                .connect(host: endpoint.host, port: endpoint.port)
        }
        EventLoopFuture.andAllSucceed(opened, on: loop).whenComplete { connected in
            let publisher = box.value
            if case .failure(let error) = connected {
                publisher.done.fail(error)
                return
            }
            publisher.started = ProcessClock.monotonicNanos()
            if publisher.total == 0 { publisher.finish() }
            publisher.ticker = publisher.loop.scheduleRepeatedTask(initialDelay: .zero, delay: publisher.tickInterval) { _ in
                box.value.tick()
            }
        }
        return done.futureResult
    }

    /// How often `tick` runs: each event's own time at low rates, every millisecond at high ones.
    private var tickInterval: TimeAmount { .nanoseconds(max(1_000_000, Int64(1e9 / options.rate))) }

    /// Queues every event due by now, each on the connection with the shortest backlog.
    private func tick() {
        let elapsed = Double(ProcessClock.monotonicNanos() - started) / 1e9
        let due = min(total, Int(elapsed * options.rate) + 1)
        while sent < due {
            guard let connection = connections.min(by: { $0.backlog < $1.backlog }) else { break }
            connection.enqueue(sent)
            sent += 1
        }
        if sent == total { ticker?.cancel() }
    }

    /// The request of event `index`, its `t` taken now.
    func request(for index: Int, allocator: ByteBufferAllocator) -> (HTTPRequestHead, ByteBuffer) {
        let channel = options.channel(index % options.channelCount)
        let message = #"{"seq":\#(index / options.channelCount),"t":\#(ProcessClock.wallNanos())}"#
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: endpoint.hostHeader)
        let uri: String
        let body: String
        if let signer {
            let escaped = message.replacingOccurrences(of: "\"", with: "\\\"")
            body = #"{"name":"bench","channel":"\#(channel)","data":"\#(escaped)"}"#
            uri = signer.eventsURI(body: Array(body.utf8), timestamp: ProcessClock.wallNanos() / 1_000_000_000)
            headers.add(name: "Content-Type", value: "application/json")
        } else {
            body = message
            uri = endpoint.path(channel: channel)
            headers.add(name: "Content-Type", value: "text/plain")
        }
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        return (HTTPRequestHead(version: .http1_1, method: .POST, uri: uri, headers: headers),
                allocator.buffer(string: body))
    }

    /// Event `index` was answered with `status`.
    func finished(_ index: Int, status: HTTPResponseStatus) {
        if (200..<300).contains(Int(status.code)) {
            result.published += 1
        } else {
            result.failures += 1
            report("event \(index): HTTP \(status.code)")
        }
        answered += 1
        if answered == total { finish() }
    }

    /// A connection closed with `events` still queued or in flight on it: they count as failed.
    func connectionLost(events: Int) {
        guard events > 0 else { return }
        report("a publish connection is closed: \(events) events unanswered")
        result.failures += events
        answered += events
        if answered >= total { finish() }
    }

    /// Prints one of the first ten problems on stderr.
    func report(_ message: String) {
        guard reported < 10 else { return }
        reported += 1
        Console.error(message)
    }

    private func finish() {
        ticker?.cancel()
        result.seconds = Double(ProcessClock.monotonicNanos() - started) / 1e9
        done.succeed(result)
    }
}
