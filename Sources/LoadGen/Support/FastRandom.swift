/// xorshift64*: masking keys for client frames without a getrandom(2) call per frame.
/// RFC 6455 wants the key unpredictable to intermediaries; a load generator talking to its
/// own loopback only needs it varied, and a system call per frame would skew the load.
struct FastRandom: RandomNumberGenerator {
    private var state: UInt64

    init() {
        var seed: UInt64 = 0
        while seed == 0 { seed = UInt64.random(in: 1...UInt64.max) }
        state = seed
    }

    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 2_685_821_657_736_338_717
    }
}
