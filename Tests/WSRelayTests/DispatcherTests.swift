import Domain
import Logging
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Storage
import Testing
@testable import WSRelay

/// The storage thread against a real database, with connections on NIO's thread-safe
/// testing channel: group commit, acknowledgements, fan-out order, catch-up.
@Suite struct DispatcherTests {
    let database: TestDatabase
    let store: Store
    let registry = ConnectionRegistry()
    let dispatcher: Dispatcher
    let alice: User
    let bob: User
    let chatID: Int64

    init() throws {
        database = try TestDatabase()
        store = try database.store()
        alice = try store.login(username: "alice")
        bob = try store.login(username: "bob")
        chatID = try store.initiateDirectChat(userID: alice.id, peerID: bob.id).chatID
        dispatcher = try Dispatcher(store: database.store(), registry: registry, limits: RelayLimits(),
                                    logger: Logger(label: "test"), pollInterval: 0.05)
        dispatcher.start()
    }

    func connect(_ user: User) async throws -> (NIOAsyncTestingChannel, ConnectionHandle) {
        let channel = NIOAsyncTestingChannel()
        try await channel.connect(to: SocketAddress(unixDomainSocketPath: "/tmp/none")).get()
        let handle = try await channel.testingEventLoop.submit {
            ConnectionHandle(channel: channel, limits: RelayLimits())
        }.get()
        registry.add(handle, userID: user.id)
        return (channel, handle)
    }

    /// The next frame written to `channel`, which the dispatcher writes pre-encoded
    /// (`TextFrame`): a text frame header, then the JSON.
    func nextJSON(_ channel: NIOAsyncTestingChannel) async throws -> JSON {
        var frame = try await channel.waitForOutboundWrite(as: ByteBuffer.self)
        #expect(frame.readInteger(as: UInt8.self) == 0x81)
        let lengthByte = frame.readInteger(as: UInt8.self)
        let length = Int(try #require(lengthByte))
        if length == 126 { _ = frame.readInteger(as: UInt16.self) }
        return try JSONParser.parse(Array(frame.readableBytesView))
    }

    func send(_ handle: ConnectionHandle, from user: User, _ content: String, nonce: String? = nil,
              chat: Int64? = nil) throws -> Bool {
        dispatcher.submit(PendingSend(sender: handle, senderID: user.id, target: .chat(chat ?? chatID),
                                      draft: try MessageDraft(content: content, nonce: nonce)))
    }

    @Test func echoAckAndDeliveryInIdOrder() async throws {
        let (aliceChannel, aliceHandle) = try await connect(alice)
        let (bobChannel, _) = try await connect(bob)
        for index in 0..<50 {
            #expect(try send(aliceHandle, from: alice, "m\(index)", nonce: "n\(index)"))
        }
        var bobIDs: [Int64] = []
        for _ in 0..<50 {
            guard case .int(let id)? = try await nextJSON(bobChannel)["id"] else { Issue.record("no id"); return }
            bobIDs.append(id)
        }
        #expect(bobIDs == bobIDs.sorted())
        #expect(Set(bobIDs).count == 50)
        // Alice gets each message (the echo) and, after it, the ACK for its nonce.
        var echoed = Set<Int64>()
        var acked = Set<Int64>()
        for _ in 0..<100 {
            let frame = try await nextJSON(aliceChannel)
            if frame["op"] == .string("ACK"), case .int(let id)? = frame["d"]?["id"] {
                #expect(echoed.contains(id))
                acked.insert(id)
            } else if case .int(let id)? = frame["id"] {
                echoed.insert(id)
            }
        }
        #expect(acked == Set(bobIDs) && echoed == Set(bobIDs))
        dispatcher.stop()
    }

    @Test func nonceRetryIsStoredOnce() async throws {
        let (aliceChannel, aliceHandle) = try await connect(alice)
        #expect(try send(aliceHandle, from: alice, "once", nonce: "same"))
        let first = try await nextJSON(aliceChannel)
        let ack = try await nextJSON(aliceChannel)
        #expect(try send(aliceHandle, from: alice, "once", nonce: "same"))
        let second = try await nextJSON(aliceChannel)
        #expect(second == ack)
        #expect(first["id"] == ack["d"]?["id"])
        #expect(try store.messages(chatID: chatID, query: MessageQuery()).count == 1)
        dispatcher.stop()
    }

    @Test func refusedSendInABatchLeavesTheOthersStored() async throws {
        let carol = try store.login(username: "carol")
        let (carolChannel, carolHandle) = try await connect(carol)
        #expect(try send(carolHandle, from: carol, "not a member", nonce: "x"))
        let error = try await nextJSON(carolChannel)
        #expect(error["op"] == .string("ERROR"))
        #expect(error["d"]?["nonce"] == .string("x"))
        #expect(try store.messages(chatID: chatID, query: MessageQuery()).isEmpty)
        dispatcher.stop()
    }

    @Test func messagesCommittedElsewhereAreCaughtUp() async throws {
        let (bobChannel, _) = try await connect(bob)
        // Written by "FCGIApp" (another connection), with no notification at all.
        let posted = try store.post(OutgoingMessage(senderID: alice.id, chatID: chatID,
                                                    draft: try MessageDraft(content: "via REST")))
        let delivered = try await nextJSON(bobChannel)
        #expect(delivered["id"] == .int(posted.message.id))
        #expect(delivered["content"] == .string("via REST"))
        dispatcher.stop()
    }

    /// A connection accepted before a message was fanned out, but registered after, still gets
    /// it — once — and everything later live.
    @Test func lateRegistrationReplaysWhatWasMissedOnce() async throws {
        let acceptedAt = dispatcher.deliveryCursor
        let early = try store.post(OutgoingMessage(senderID: alice.id, chatID: chatID,
                                                   draft: try MessageDraft(content: "during the handshake")))
        // Wait until the dispatcher has fanned it out (to nobody).
        while dispatcher.deliveryCursor < early.seq! { try await Task.sleep(for: .milliseconds(5)) }

        let channel = NIOAsyncTestingChannel()
        try await channel.connect(to: SocketAddress(unixDomainSocketPath: "/tmp/none")).get()
        let handle = try await channel.testingEventLoop.submit { ConnectionHandle(channel: channel, limits: RelayLimits()) }.get()
        dispatcher.join(Join(handle: handle, userID: bob.id, version: .v1, start: .handshake(acceptedAt)))
        let replayed = try await nextJSON(channel)
        #expect(replayed["id"] == .int(early.message.id))

        let later = try store.post(OutgoingMessage(senderID: alice.id, chatID: chatID,
                                                   draft: try MessageDraft(content: "after")))
        let live = try await nextJSON(channel)
        #expect(live["id"] == .int(later.message.id))
        #expect(registry.count == 1)
        dispatcher.stop()
    }

    @Test func newChatsAreAnnouncedToMembersConnectedBeforeThem() async throws {
        let dave = try store.login(username: "dave")
        let (daveChannel, daveHandle) = try await connect(dave)
        let group = try store.createGroup(creatorID: alice.id, name: "team", participants: [dave.id])
        let announcement = try await nextJSON(daveChannel)
        #expect(announcement["op"] == .string("CHAT"))
        #expect(announcement["d"]?["id"] == .int(group.id))
        #expect(try send(daveHandle, from: dave, "first!", chat: group.id))
        let first = try await nextJSON(daveChannel)
        #expect(first["chat_id"] == .int(group.id))
        dispatcher.stop()
    }
}
