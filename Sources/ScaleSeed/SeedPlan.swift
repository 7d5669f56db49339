/// How big each part of the seeded database is.
struct SeedPlan {
    let messages: Int
    let users: Int
    let chats: Int
    let bigGroupMembers: Int
    let bigGroupMessages: Int
    let busyChats: Int
    let events: Int
    let unread: Int
    let seed: UInt64

    /// Chat 1 is the big group (users 1…bigGroupMembers, owned by user 1); chats
    /// 2…busyChats+1 are the busy user's (user 1) direct chats with users 2…; of the rest,
    /// one in twenty is a small group, the others direct chats of random pairs.
    static let bigGroupID: Int64 = 1
    static let busyUserID: Int64 = 1
}

/// xorshift64*: fast, seeded, reproducible.
struct SeedRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed
    }

    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 2_685_821_657_736_338_717
    }

    /// 0..<bound, without the cost of unbiased rejection (the bias is far below 2⁻³²).
    mutating func below(_ bound: Int) -> Int {
        Int(truncatingIfNeeded: ((next() >> 32) &* UInt64(bound)) >> 32)
    }
}
