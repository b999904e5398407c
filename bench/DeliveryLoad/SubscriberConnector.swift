#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// Opens subscriber socket number `index`: on loop `index % loops`, bound to source address `index % sources` before
/// connecting (so the sockets can pass one address's ephemeral ports), upgraded to a WebSocket on the URL with the
/// socket's channel (`index % channelCount`), and then handed to a `SubscriberHandler`.
struct SubscriberConnector: Sendable {
    let options: Options
    let endpoint: Endpoint
    let remote: SocketAddress
    let sources: [SocketAddress]
    let loops: [any EventLoop]
    let stats: [NIOLoopBound<LoopStats>]

    /// A socket that took longer than --connect-timeout to be established.
    struct Timeout: Error, CustomStringConvertible {
        var description: String { "not established within the connect timeout" }
    }

    /// Linux's IP_BIND_ADDRESS_NO_PORT: bind the source address now, choose the port at connect, so one source address
    /// can hold a port for each (destination, port) rather than one in all.
    private static let bindAddressNoPort = ChannelOptions.Types.SocketOption(
        level: NIOBSDSocket.OptionLevel(rawValue: CInt(IPPROTO_IP)), name: NIOBSDSocket.Option(rawValue: 24))

    /// Opens socket `index`; true once it is established (Pusher: `connection_established` came; nchan: upgraded).
    /// Failures are reported on stderr (the first few) and counted.
    func connect(_ index: Int) async -> Bool {
        let loopIndex = index % loops.count
        let loop = loops[loopIndex]
        let box = stats[loopIndex]
        let channelName = options.channel(index % options.channelCount)
        let established = loop.makePromise(of: Void.self)
        let kind = options.subscribeProtocol, capacity = options.eventsPerChannel
        let path = endpoint.path(channel: channelName), host = endpoint.hostHeader
        let timeout = TimeAmount.nanoseconds(Int64(options.connectTimeoutSeconds * 1e9))
        do {
            var bootstrap = ClientBootstrap(group: loop).connectTimeout(timeout)
            #if os(Linux)
            bootstrap = bootstrap.channelOption(Self.bindAddressNoPort, value: 1)
            #endif
            let upgraded: EventLoopFuture<(any Channel)?> = try await bootstrap
                .bind(to: sources[index % sources.count])
                .connect(to: remote) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let upgrader = NIOTypedWebSocketClientUpgrader<(any Channel)?>(maxFrameSize: 1 << 20) { channel, _ in
                            channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(SubscriberHandler(
                                    kind: kind, channelName: channelName, eventsPerChannel: capacity, stats: box.value,
                                    established: established))
                                return channel
                            }
                        }
                        var headers = HTTPHeaders()
                        headers.add(name: "Host", value: host)
                        headers.add(name: "Content-Length", value: "0")
                        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers)
                        let upgrade = NIOTypedHTTPClientUpgradeConfiguration<(any Channel)?>(
                            upgradeRequestHead: head, upgraders: [upgrader],
                            notUpgradingCompletionHandler: { channel in
                                channel.close(promise: nil)
                                return channel.eventLoop.makeSucceededFuture(nil)
                            })
                        // A server may send its first frame in the same read as the 101: forward those bytes.
                        var pipeline = NIOUpgradableHTTPClientPipelineConfiguration(upgradeConfiguration: upgrade)
                        pipeline.leftOverBytesStrategy = .forwardBytes
                        return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(
                            configuration: pipeline)
                    }
                }
            guard let channel = try await upgraded.get() else {
                established.fail(ChannelError.inputClosed)
                loop.execute { box.value.report("\(channelName): the server refused the WebSocket upgrade") }
                return false
            }
            let deadline = loop.scheduleTask(in: timeout) {
                established.fail(Timeout())
                channel.close(promise: nil)
            }
            defer { deadline.cancel() }
            try await established.futureResult.get()
            return true
        } catch {
            established.fail(error)
            loop.execute { box.value.report("socket \(index) (\(channelName)): \(error)") }
            return false
        }
    }
}
