// redis-bench: the redis-benchmark workload (N concurrent clients doing GET or SET on one key, optionally with
// P commands in flight per client) driven through this project's Redis client.
// Prints one CSV line per test: "test","requests_per_second" — the same shape as `redis-benchmark --csv`.
import Foundation
import NIOCore
import Redis

struct Options {
    var url = "redis://127.0.0.1:6379"
    var clients = 50
    var requests = 100_000
    var pipeline = 1
    var connections = 2
    var tests = ["SET", "GET"]
}

func parse() -> Options {
    var options = Options()
    var arguments = CommandLine.arguments.dropFirst().makeIterator()
    while let argument = arguments.next() {
        let value = arguments.next() ?? ""
        switch argument {
        case "--url": options.url = value
        case "-c": options.clients = Int(value) ?? options.clients
        case "-n": options.requests = Int(value) ?? options.requests
        case "-P": options.pipeline = max(1, Int(value) ?? 1)
        case "--connections": options.connections = max(1, Int(value) ?? 1)
        case "-t": options.tests = value.uppercased().split(separator: ",").map(String.init)
        default:
            FileHandle.standardError.write(Data("usage: redis-bench [--url U] [-c clients] [-n requests] [-P inflight] [--connections K] [-t set,get]\n".utf8))
            exit(2)
        }
    }
    return options
}

let options = parse()
var configuration = try RedisConfiguration(url: options.url)
configuration.connectionCount = options.connections
configuration.commandTimeout = .seconds(30)
let client = RedisClient(configuration: configuration)
client.connect()
try await client.set("key:__rand_int__", to: "xxx")

for test in options.tests {
    let command = test == "SET" ? RedisCommand("SET", "key:__rand_int__", "xxx") : RedisCommand("GET", "key:__rand_int__")
    let batch = Array(repeating: command, count: options.pipeline)
    let perClient = options.requests / options.clients
    // Warm-up: a short run so connections and caches are hot.
    try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<options.clients {
            group.addTask { for _ in 0..<100 { try await client.send(command) } }
        }
        try await group.waitForAll()
    }
    let start = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<options.clients {
            group.addTask {
                var done = 0
                while done < perClient {
                    if options.pipeline == 1 {
                        try await client.send(command)
                        done += 1
                    } else {
                        let replies = try await client.pipeline(batch)
                        if let error = replies.first(where: { $0.errorMessage != nil }) { throw RedisError.server("\(error)") }
                        done += batch.count
                    }
                }
            }
        }
        try await group.waitForAll()
    }
    let elapsed = ContinuousClock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let rps = Double(perClient * options.clients) / seconds
    print("\"\(test)\",\"\(String(format: "%.2f", rps))\"")
}
await client.close()
