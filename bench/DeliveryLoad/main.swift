// delivery-load: a compiled load generator for WebSocket subscribers (Pusher protocol 7 or nchan), with a built-in
// publisher; reports lost, duplicated and late events as one JSON line. `delivery-load --help` lists the flags.
// Not part of the server binary: its own product, used by the delivery benchmarks in bench/.
import Foundation
import NIOCore
import NIOPosix

let options = Options.parse()
ProcessClock.raiseFileLimit()
guard let endpoint = Endpoint(options.url) else {
    Console.error("--url \(options.url) is not a ws://host:port/path URL")
    exit(2)
}
let publishEndpoint = options.publishMode == .none ? nil : Endpoint(options.publishURL)
if options.publishMode != .none && publishEndpoint == nil {
    Console.error("--publish-url \(options.publishURL) is not an http://host:port/path URL")
    exit(2)
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: options.threads)
let loops = Array(group.makeIterator())
let stats = try await withThrowingTaskGroup(of: (Int, NIOLoopBound<LoopStats>).self) { tasks in
    for (i, loop) in loops.enumerated() {
        tasks.addTask { (i, try await loop.submit { NIOLoopBound(LoopStats(), eventLoop: loop) }.get()) }
    }
    var boxes = [NIOLoopBound<LoopStats>?](repeating: nil, count: loops.count)
    for try await (i, box) in tasks { boxes[i] = box }
    return boxes.map { $0! }
}

/// The counters of every loop, added up.
@Sendable func totals() async -> LoopStats.Snapshot {
    var sum = LoopStats.Snapshot()
    for (i, loop) in loops.enumerated() {
        let box = stats[i]
        if let part = try? await loop.submit({ box.value.snapshot() }).get() { sum = sum + part }
    }
    return sum
}

/// Polls `done` every 10 ms until it holds or `seconds` pass.
func wait(seconds: Double, until done: (LoopStats.Snapshot) -> Bool) async -> LoopStats.Snapshot {
    let deadline = ProcessClock.monotonicNanos() + Int64(seconds * 1e9)
    var now = await totals()
    while !done(now) && ProcessClock.monotonicNanos() < deadline {
        try? await Task.sleep(for: .milliseconds(10))
        now = await totals()
    }
    return now
}

let remote: SocketAddress
let sources: [SocketAddress]
do {
    remote = try SocketAddress.makeAddressResolvingHost(endpoint.host, port: endpoint.port)
    sources = try options.sourceAddresses.map { try SocketAddress(ipAddress: $0, port: 0) }
} catch {
    Console.error("bad address: \(error)")
    exit(2)
}
let connector = SubscriberConnector(options: options, endpoint: endpoint, remote: remote, sources: sources,
                                    loops: loops, stats: stats)
var report = Report()
report.sockets = options.socketCount
report.due = options.eventsPerChannel * options.socketCount

// Connect, at most --connect-concurrency at once.
let connectStart = ProcessClock.monotonicNanos()
await withTaskGroup(of: Bool.self) { tasks in
    var inFlight = 0
    for index in 0..<options.socketCount {
        if inFlight >= options.connectConcurrency {
            _ = await tasks.next()
            inFlight -= 1
        }
        tasks.addTask { await connector.connect(index) }
        inFlight += 1
    }
    await tasks.waitForAll()
}
report.connectSeconds = Double(ProcessClock.monotonicNanos() - connectStart) / 1e9
var now = await totals()
report.established = now.established
Console.phase("connected \(now.established)")
now = await wait(seconds: options.subscribeTimeoutSeconds) { $0.subscribed >= $0.established }
report.subscribed = now.subscribed
Console.phase("subscribed \(now.subscribed)")

if options.idleSeconds > 0 { try? await Task.sleep(for: .milliseconds(Int(options.idleSeconds * 1000))) }

// Publish, then wait for everything due.
let framesBefore = await totals().received
let cpuBefore = ProcessClock.cpuSeconds()
report.publishStartNanos = ProcessClock.wallNanos()
Console.phase("publish-start")
if let publishEndpoint {
    do {
        report.publish = try await Publisher.run(options: options, endpoint: publishEndpoint, on: loops[0]).get()
    } catch {
        Console.error("publishing failed: \(error)")
    }
}
Console.phase("publish-end")
now = await wait(seconds: options.drainTimeoutSeconds) { $0.distinct >= report.due }
report.cpuSeconds = ProcessClock.cpuSeconds() - cpuBefore
report.totals = now
report.framesInWindow = now.received - framesBefore
Console.phase("drained")
Console.line(report.json)
exit(0)
