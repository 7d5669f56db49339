import Testing

@testable import LoadGen

/// The state scenarios read ops and fields by byte search; READ and READY share a prefix.
@Suite struct ServerFrameScannerOpTests {
    private static func scan<T>(_ text: String, _ body: (UnsafeRawBufferPointer) -> T) -> T {
        Array(text.utf8).withUnsafeBytes(body)
    }

    @Test func readIsNotReadyAndTheOtherWayRound() {
        let read = #"{"op":"READ","seq":7,"d":{"chat_id":1,"user_id":42,"last_read_id":99}}"#
        let ready = #"{"op":"READY","d":{"user_id":42,"seq":7}}"#
        #expect(Self.scan(read) { ServerFrameScanner.isOp(.read, $0) })
        #expect(!Self.scan(read) { ServerFrameScanner.isOp(.ready, $0) })
        #expect(Self.scan(ready) { ServerFrameScanner.isOp(.ready, $0) })
        #expect(!Self.scan(ready) { ServerFrameScanner.isOp(.read, $0) })
        #expect(Self.scan(read) { ServerFrameScanner.userID(in: $0) } == 42)
        #expect(Self.scan(read) { ServerFrameScanner.lastReadID(in: $0) } == 99)
    }

    @Test func anOpNamedInsideAFrameIsNotItsOp() {
        // A message whose content says "op":"PRESENCE" is still a message.
        let message = #"{"id":1,"chat_id":2,"content":"\"op\":\"PRESENCE\""}"#
        #expect(!Self.scan(message) { ServerFrameScanner.isOp(.presence, $0) })
    }

    @Test func reactionsSayWhetherTheyAdded() {
        let added = #"{"op":"REACTION","seq":3,"d":{"chat_id":1,"message_id":2,"user_id":5,"emoji":"x","added":true}}"#
        let removed = #"{"op":"REACTION","seq":4,"d":{"chat_id":1,"message_id":2,"user_id":5,"emoji":"x","added":false}}"#
        #expect(Self.scan(added) { ServerFrameScanner.isOp(.reaction, $0) && ServerFrameScanner.added(in: $0) })
        #expect(!Self.scan(removed) { ServerFrameScanner.added(in: $0) })
    }

    @Test func countFindsEveryOccurrence() {
        #expect(Self.scan("ab ab aab") { ServerFrameScanner.count(Array("ab".utf8), in: $0) } == 3)
        #expect(Self.scan("") { ServerFrameScanner.count(Array("ab".utf8), in: $0) } == 0)
    }
}
