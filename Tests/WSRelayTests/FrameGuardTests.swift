import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing
@testable import WSRelay

@Suite struct UTF8ValidationTests {
    @Test(arguments: ["", "plain", "café", "日本語", "🎉 emoji", "\u{10FFFF}"])
    func wellFormedTextIsValid(_ text: String) {
        #expect(isValidUTF8(ByteBuffer(string: text)))
    }

    @Test(arguments: [[0xFF], [0xC0, 0xAF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80],
                      [0xE2, 0x82], [0x80], [0x63, 0x61, 0x66, 0xC3]] as [[UInt8]])
    func overlongsSurrogatesTruncationsAndStrayBytesAreNot(_ bytes: [UInt8]) {
        #expect(!isValidUTF8(ByteBuffer(bytes: bytes)))
    }
}

@Suite struct FrameGuardTests {
    private func outcome(_ frame: WebSocketFrame) throws -> (passed: Bool, error: FrameGuard.Violation?) {
        let channel = EmbeddedChannel(handler: FrameGuard())
        defer { _ = try? channel.finish() }
        do {
            try channel.writeInbound(frame)
        } catch let violation as FrameGuard.Violation {
            return (try channel.readInbound(as: WebSocketFrame.self) != nil, violation)
        }
        return (try channel.readInbound(as: WebSocketFrame.self) != nil, nil)
    }

    private let key = WebSocketMaskingKey([1, 2, 3, 4])

    @Test func aMaskedTextFramePasses() throws {
        let result = try outcome(WebSocketFrame(fin: true, opcode: .text, maskKey: key, data: ByteBuffer(string: "{}")))
        #expect(result.passed && result.error == nil)
    }

    @Test func reservedBitsUnknownOpcodesAndUnmaskedFramesAreViolations() throws {
        let rsv = WebSocketFrame(fin: true, rsv1: true, opcode: .text, maskKey: key, data: ByteBuffer(string: "x"))
        #expect(try outcome(rsv) == (false, .reservedBits))
        let opcode = WebSocketFrame(fin: true, opcode: WebSocketOpcode(encodedWebSocketOpcode: 0x3)!, maskKey: key,
                                    data: ByteBuffer())
        #expect(try outcome(opcode) == (false, .unknownOpcode))
        let unmasked = WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: "{}"))
        #expect(try outcome(unmasked) == (false, .unmasked))
    }

    @Test func pingsPastTheLimitInASecondAreAFlood() throws {
        let channel = EmbeddedChannel(handler: FrameGuard())
        defer { _ = try? channel.finish() }
        let ping = WebSocketFrame(fin: true, opcode: .ping, maskKey: key, data: ByteBuffer())
        for _ in 0..<FrameGuard.maxControlFramesPerSecond { try channel.writeInbound(ping) }
        #expect(throws: FrameGuard.Violation.controlFlood) { try channel.writeInbound(ping) }
        // Everything after the violation is dropped.
        for _ in 0..<FrameGuard.maxControlFramesPerSecond { _ = try channel.readInbound(as: WebSocketFrame.self) }
        try channel.writeInbound(WebSocketFrame(fin: true, opcode: .text, maskKey: key, data: ByteBuffer(string: "{}")))
        #expect(try channel.readInbound(as: WebSocketFrame.self) == nil)
    }
}
