/// The result of entering a room (or refreshing presence there by joining again).
public struct PresenceJoin: Sendable {
    /// `true` when the user was not present before (announce it).
    public var isNew: Bool
    public var userCount: Int
    public var member: PresenceMember
    /// The state before this call (`{}` for a new member).
    public var previousState: JSONValue
    /// The room's metadata.
    public var meta: [String: String]

    public init(isNew: Bool, userCount: Int, member: PresenceMember, previousState: JSONValue, meta: [String: String]) {
        self.isNew = isNew
        self.userCount = userCount
        self.member = member
        self.previousState = previousState
        self.meta = meta
    }
}

/// The result of leaving a room.
public struct PresenceLeave: Sendable {
    /// `true` when this call removed a present member (announce it); `false` when the user was not there.
    public var wasPresent: Bool
    public var userCount: Int
    public var state: JSONValue
    public var meta: [String: String]

    public init(wasPresent: Bool, userCount: Int, state: JSONValue, meta: [String: String]) {
        self.wasPresent = wasPresent
        self.userCount = userCount
        self.state = state
        self.meta = meta
    }
}

/// The result of a refresh of a present member.
public struct PresenceRefresh: Sendable {
    public var member: PresenceMember
    public var previousState: JSONValue

    public init(member: PresenceMember, previousState: JSONValue) {
        self.member = member
        self.previousState = previousState
    }
}

/// The result of a chat switch: the leave (when there was a previous room) and the join (when there was a next
/// one), which may have failed on its own (the room deleted meanwhile) after the leave happened.
public struct PresenceSwitch: Sendable {
    public var left: PresenceLeave?
    public var joined: Result<PresenceJoin, any Error>?
    /// Whether the storage announced the changes on the rooms' own channels itself (`presence-update` and the
    /// `presence-room-` member events), in the same step as the change; the caller announces the rest.
    public var announced: Bool

    public init(left: PresenceLeave?, joined: Result<PresenceJoin, any Error>?, announced: Bool = false) {
        self.left = left
        self.joined = joined
        self.announced = announced
    }
}
