import PresenceCore
import Testing

/// Which channels are recoverable, and what a subscribe's `recover` may name.
struct RecoveryPolicyTests {
    @Test func theChatAndTicketChannelsAreRecoverableByDefault() {
        let policy = RecoveryPolicy()
        for channel in ["room-general", "private-room-abc", "presence-room-ticket_1", "private-chats-alice", "chats-public"] {
            #expect(policy.isRecoverable(channel), "\(channel)")
        }
        for channel in ["chats-publicity", "presence-lobby", "private-sync-alice", "firehose", "room"] {
            #expect(!policy.isRecoverable(channel), "\(channel)")
        }
    }

    @Test func extraPatternsAddChannelsAndOffTurnsEverythingOff() {
        let policy = RecoveryPolicy(extraPatterns: ["bench-*", "*-feed", "exact"])
        #expect(policy.isRecoverable("bench-1"))
        #expect(policy.isRecoverable("news-feed"))
        #expect(policy.isRecoverable("exact"))
        #expect(!policy.isRecoverable("exactly"))
        #expect(!RecoveryPolicy(enabled: false).isRecoverable("room-general"))
    }

    @Test func globsMatchAnyRunOfCharacters() {
        #expect(RecoveryPolicy.matches("*", ""))
        #expect(RecoveryPolicy.matches("a*b*c", "aXXbYYc"))
        #expect(RecoveryPolicy.matches("a*b", "ab"))
        #expect(!RecoveryPolicy.matches("a*b", "abc"))
        #expect(RecoveryPolicy.matches("**x", "yyx"))
        #expect(!RecoveryPolicy.matches("room-", "room-x"))
    }

    @Test func aRecoverPositionIsAnEpochAndAWholeOffsetFromZero() {
        #expect(ChannelPosition(json: ["epoch": "e1", "offset": 3]) == ChannelPosition(epoch: "e1", offset: 3))
        #expect(ChannelPosition(json: ["epoch": "e1", "offset": 0]) != nil)
        #expect(ChannelPosition(json: ["epoch": "e1", "offset": -1]) == nil)
        #expect(ChannelPosition(json: ["epoch": "e1", "offset": .number(1.5)]) == nil)
        #expect(ChannelPosition(json: ["epoch": "", "offset": 1]) == nil)
        #expect(ChannelPosition(json: ["epoch": .string(String(repeating: "e", count: 65)), "offset": 1]) == nil)
        #expect(ChannelPosition(json: ["offset": 1]) == nil)
        #expect(ChannelPosition(json: "e1") == nil)
        #expect(ChannelPosition(json: nil) == nil)
    }
}
