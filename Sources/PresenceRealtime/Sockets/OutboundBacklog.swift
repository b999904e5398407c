import NIOCore

/// A socket's outbound queue as a plain value: what waits for the connection to become writable, in order, and the
/// slow-consumer rule (past `limit` queued the client is too slow and is closed with 4100, instead of memory growing).
/// ``PusherChannelHandler`` feeds it the channel's writability and performs what it answers.
package struct OutboundBacklog<Item> {
    /// What to do with an item offered.
    package enum Offer {
        /// Nothing waits and the channel is writable: write it now.
        case write(Item)
        /// Queued behind what waits, or until the channel is writable.
        case queued
        /// The backlog passed the limit: close the socket (4100); the backlog is dropped.
        case overCapacity
    }

    /// The most items that may wait.
    package let limit: Int
    private var items = CircularBuffer<Item>(initialCapacity: 1)

    /// An empty backlog that takes at most `limit` items.
    package init(limit: Int) {
        self.limit = limit
    }

    /// How many items wait.
    package var count: Int { items.count }

    /// Whether nothing waits.
    package var isEmpty: Bool { items.isEmpty }

    /// Offers an item to send; `writable`: whether the channel takes writes now.
    package mutating func offer(_ item: Item, writable: Bool) -> Offer {
        if items.isEmpty && writable { return .write(item) }
        items.append(item)
        guard items.count > limit else { return .queued }
        items.removeAll()
        return .overCapacity
    }

    /// The oldest waiting item, taken (the channel became writable).
    package mutating func next() -> Item? {
        items.popFirst()
    }

    /// Drops everything waiting (the socket is closing).
    package mutating func removeAll() {
        items.removeAll()
    }
}
