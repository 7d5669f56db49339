#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads what LoadGen needs from a relay frame (or a REST answer, the same message object)
/// by byte search instead of a JSON parse: at
/// 100,000 frames/s a full parse would measure the generator, not the server.
///
/// Frames (DESIGN.md): a bare message `{"id":…,"chat_id":…,"content":"…",…}`, or
/// `{"op":"ACK"|"ERROR"|"CHAT"|"READY","d":{…}}`, or on protocol 2 an event
/// `{"op":"MESSAGE","seq":N,"d":{…}}`. LoadGen's own content and nonces are a
/// letter followed by a decimal sequence number, so both come back as plain digits.
enum ServerFrameScanner {
    enum Kind: Equatable {
        case message
        case ack
        case error
        case other
    }

    static func kind(of bytes: UnsafeRawBufferPointer) -> Kind {
        guard let op = find(opMarker, in: bytes) else {
            return find(idMarker, in: bytes) == 0 ? .message : .other
        }
        let start = op + opMarker.count
        // Protocol 2: `{"op":"MESSAGE","seq":N,"d":{message}}`.
        if op == 1, matches(messageName, in: bytes, at: start) { return .message }
        if matches(ackName, in: bytes, at: start) { return .ack }
        if matches(errorName, in: bytes, at: start) { return .error }
        return .other
    }

    /// Protocol-2 ops the state scenarios watch for, besides the kinds above.
    enum Op {
        /// `{"op":"REACTION","seq":N,"d":{chat_id, message_id, user_id, emoji, added}}`.
        case reaction
        /// `{"op":"PRESENCE","d":{user_id, online, last_seen}}`.
        case presence
        /// `{"op":"READY","d":{user_id, seq}}`.
        case ready
        /// `{"op":"READ","seq":N,"d":{chat_id, user_id, last_read_id}}`.
        case read

        fileprivate var name: [UInt8] {
            switch self {
            case .reaction: ServerFrameScanner.reactionName
            case .presence: ServerFrameScanner.presenceName
            case .ready: ServerFrameScanner.readyName
            case .read: ServerFrameScanner.readName
            }
        }
    }

    /// Whether the frame is `{"op":"<op>",…}`.
    static func isOp(_ op: Op, _ bytes: UnsafeRawBufferPointer) -> Bool {
        find(opMarker, in: bytes) == 1 && matches(op.name, in: bytes, at: 1 + opMarker.count)
    }

    /// The number in `"user_id":N`, if present.
    static func userID(in bytes: UnsafeRawBufferPointer) -> UInt64? {
        number(after: userIDMarker, in: bytes, tagged: false)
    }

    /// The number in a READ event's `"last_read_id":N`, if present.
    static func lastReadID(in bytes: UnsafeRawBufferPointer) -> UInt64? {
        number(after: lastReadIDMarker, in: bytes, tagged: false)
    }

    /// Whether a REACTION's `d` says `"added":true`.
    static func added(in bytes: UnsafeRawBufferPointer) -> Bool {
        find(addedMarker, in: bytes) != nil
    }

    /// How many times `marker` occurs (non-overlapping).
    static func count(_ marker: [UInt8], in bytes: UnsafeRawBufferPointer) -> Int {
        guard let base = bytes.baseAddress else { return 0 }
        var total = 0
        var offset = 0
        while offset < bytes.count,
              let at = find(marker, in: UnsafeRawBufferPointer(start: base + offset, count: bytes.count - offset)) {
            total += 1
            offset += at + marker.count
        }
        return total
    }

    /// The sequence number in `"nonce":"<letter><digits>"`, if present.
    static func nonceSequence(in bytes: UnsafeRawBufferPointer) -> UInt64? {
        number(after: nonceMarker, in: bytes)
    }

    /// A protocol-2 frame's `"seq":N`, or READY's, if present.
    static func seq(in bytes: UnsafeRawBufferPointer) -> UInt64? {
        number(after: seqMarker, in: bytes, tagged: false)
    }

    /// The sequence number in `"content":"<letter><digits>"`, if present.
    static func contentSequence(in bytes: UnsafeRawBufferPointer) -> UInt64? {
        number(after: contentMarker, in: bytes)
    }

    /// The `id` of a bare message object (one that starts with `{"id":`).
    static func messageID(in bytes: UnsafeRawBufferPointer) -> UInt64? {
        guard find(idMarker, in: bytes) == 0 else { return nil }
        return number(after: idMarker, in: bytes, tagged: false)
    }

    /// The number in `"chat_id":N`, if present.
    static func chatID(in bytes: UnsafeRawBufferPointer) -> UInt64? {
        number(after: chatIDMarker, in: bytes, tagged: false)
    }

    private static let opMarker = Array(#""op":""#.utf8)
    private static let idMarker = Array(#"{"id":"#.utf8)
    private static let ackName = Array(#"ACK""#.utf8)
    private static let messageName = Array(#"MESSAGE""#.utf8)
    private static let seqMarker = Array(#""seq":"#.utf8)
    private static let errorName = Array(#"ERROR""#.utf8)
    private static let nonceMarker = Array(#""nonce":""#.utf8)
    private static let contentMarker = Array(#""content":""#.utf8)
    private static let chatIDMarker = Array(#""chat_id":"#.utf8)
    private static let userIDMarker = Array(#""user_id":"#.utf8)
    private static let addedMarker = Array(#""added":true"#.utf8)
    private static let reactionName = Array(#"REACTION""#.utf8)
    private static let presenceName = Array(#"PRESENCE""#.utf8)
    private static let readyName = Array(#"READY""#.utf8)
    private static let readName = Array(#"READ""#.utf8)
    private static let lastReadIDMarker = Array(#""last_read_id":"#.utf8)

    /// The digits after `marker`; `tagged`: after one tag letter (LoadGen's content, nonces).
    private static func number(after marker: [UInt8], in bytes: UnsafeRawBufferPointer, tagged: Bool = true) -> UInt64? {
        guard let at = find(marker, in: bytes) else { return nil }
        var index = at + marker.count + (tagged ? 1 : 0)
        var value: UInt64 = 0
        var digits = 0
        while index < bytes.count, digits < 19 {
            let byte = bytes[index]
            guard byte >= 0x30 && byte <= 0x39 else { break }
            value = value * 10 + UInt64(byte - 0x30)
            digits += 1
            index += 1
        }
        return digits > 0 ? value : nil
    }

    private static func matches(_ word: [UInt8], in bytes: UnsafeRawBufferPointer, at offset: Int) -> Bool {
        guard offset + word.count <= bytes.count else { return false }
        for (index, byte) in word.enumerated() where bytes[offset + index] != byte { return false }
        return true
    }

    /// First occurrence of `needle`: memchr for its first byte, then a compare. Frames are
    /// a few hundred bytes and needles a dozen, so nothing cleverer pays off.
    private static func find(_ needle: [UInt8], in bytes: UnsafeRawBufferPointer) -> Int? {
        guard let base = bytes.baseAddress, !needle.isEmpty, bytes.count >= needle.count else { return nil }
        let last = bytes.count - needle.count
        var offset = 0
        while offset <= last {
            guard let hit = memchr(base + offset, Int32(needle[0]), last - offset + 1) else { return nil }
            let at = UnsafeRawPointer(hit) - base
            if matches(needle, in: bytes, at: at) { return at }
            offset = at + 1
        }
        return nil
    }
}
