@testable import PresenceRealtime
import Testing

@Suite("Pusher protocol rules")
struct PusherProtocolTests {
    @Test func channelNamesFollowPushersAlphabetAndLength() {
        #expect(PusherProtocol.isValidChannel("presence-room-abc"))
        #expect(PusherProtocol.isValidChannel("private-chats-ann"))
        #expect(!PusherProtocol.isValidChannel(""))
        #expect(!PusherProtocol.isValidChannel("room with space"))
        #expect(!PusherProtocol.isValidChannel(String(repeating: "a", count: PusherProtocol.defaultMaxChannelName + 1)))
        #expect(PusherProtocol.isWellFormedChannel(String(repeating: "a", count: PusherProtocol.defaultMaxChannelName + 1)))
    }
}
