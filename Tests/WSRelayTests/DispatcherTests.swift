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
        try self.init(busyTimeoutMilliseconds: Connection.defaultBusyTimeoutMilliseconds)
    }

    /// `busyTimeoutMilliseconds`: the dispatcher's own connection's, so that a test can make
    /// its commits fail soon.
    init(busyTimeoutMilliseconds: Int32) throws {
        database = try TestDatabase()
        store = try database.store()
        alice = try store.login(username: "alice")
        bob = try store.login(username: "bob")
        chatID = try store.initiateDirectChat(userID: alice.id, peerID: bob.id).chatID
        let own = Store(connection: try Connection(path: database.path, busyTimeoutMilliseconds: busyTimeoutMilliseconds))
        dispatcher = try Dispatcher(store: own, registry: registry, limits: RelayLimits(),
                                    logger: Logger(label: "test"), pollInterval: 0.05)
        dispatcher.start()
    }

    /// A connection joining through the dispatcher, as `WebSocketHandler` hands it over.
    func join(_ user: User, version: ProtocolVersion, start: Join.Start) async throws -> NIOAsyncTestingChannel {
        let channel = NIOAsyncTestingChannel()
        try await channel.connect(to: SocketAddress(unixDomainSocketPath: "/tmp/none")).get()
        let handle = try await channel.testingEventLoop.submit { ConnectionHandle(channel: channel, limits: RelayLimits()) }.get()
        dispatcher.join(Join(handle: handle, userID: user.id, version: version, start: start))
        return channel
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

    /// Protocol 2 with `since`: READY with the head, every missed event once in seq order
    /// (the chat's creation included), then live ones.
    @Test func resumeReplaysEverythingAfterSinceThenGoesLive() async throws {
        var posted: [PostedMessage] = []
        for index in 0..<3 {
            posted.append(try store.post(OutgoingMessage(senderID: alice.id, chatID: chatID,
                                                         draft: try MessageDraft(content: "missed \(index)"))))
        }
        let head = posted[2].seq!
        while dispatcher.deliveryCursor < head { try await Task.sleep(for: .milliseconds(5)) }

        let channel = try await join(bob, version: .v2, start: .ready(after: 0, resuming: true))
        let ready = try await nextJSON(channel)
        #expect(ready["op"] == .string("READY"))
        #expect(ready["d"]?["seq"] == .int(head))
        let chat = try await nextJSON(channel)
        #expect(chat["op"] == .string("CHAT") && chat["seq"] == .int(1))
        #expect(chat["d"]?["my_role"] == .string("member"))
        #expect(chat["d"]?["unread_count"] == .int(3))
        for message in posted {
            let frame = try await nextJSON(channel)
            #expect(frame["op"] == .string("MESSAGE"))
            #expect(frame["seq"] == .int(message.seq!))
            #expect(frame["d"]?["id"] == .int(message.message.id))
            #expect(frame["d"]?["reactions"] == .array([]))
        }
        let live = try store.post(OutgoingMessage(senderID: alice.id, chatID: chatID, draft: try MessageDraft(content: "live")))
        let frame = try await nextJSON(channel)
        #expect(frame["seq"] == .int(live.seq!))
        dispatcher.stop()
    }

    @Test func aPrunedOrFutureSinceIsToldToResync() async throws {
        for index in 0..<2 {
            _ = try store.post(OutgoingMessage(senderID: alice.id, chatID: chatID, draft: try MessageDraft(content: "\(index)")))
        }
        try store.database.execute("UPDATE events SET created_at = '2000-01-01T00:00:00Z' WHERE seq <= 2")
        _ = try store.pruneEvents(olderThan: 86_400, limit: 100)
        let head = try store.latestSeq()
        while dispatcher.deliveryCursor < head { try await Task.sleep(for: .milliseconds(5)) }

        for since in [Int64(1), head + 5] {
            let channel = try await join(bob, version: .v2, start: .ready(after: since, resuming: true))
            #expect(try await nextJSON(channel)["op"] == .string("READY"))
            let resync = try await nextJSON(channel)
            #expect(resync["op"] == .string("RESYNC"))
            #expect(resync["d"]?["seq"] == .int(head))
        }
        // From the pruned point itself nothing is missing: a plain resume.
        let channel = try await join(bob, version: .v2, start: .ready(after: 2, resuming: true))
        #expect(try await nextJSON(channel)["op"] == .string("READY"))
        #expect(try await nextJSON(channel)["seq"] == .int(3))
        dispatcher.stop()
    }

    /// Protocol 1 never sees the new kinds: a profile change reaches a protocol-2 socket only.
    @Test func protocol1SocketsGetOnlyTheirFrames() async throws {
        let v1 = try await join(bob, version: .v1, start: .handshake(dispatcher.deliveryCursor))
        let v2 = try await join(bob, version: .v2, start: .ready(after: dispatcher.deliveryCursor, resuming: false))
        #expect(try await nextJSON(v2)["op"] == .string("READY"))
        while registry.count < 2 { try await Task.sleep(for: .milliseconds(5)) }
        _ = try store.updateProfile(userID: alice.id, try ProfileUpdate(JSONFields(parsing: Array(#"{"bio":"b"}"#.utf8))))
        let posted = try store.post(OutgoingMessage(senderID: alice.id, chatID: chatID, draft: try MessageDraft(content: "m")))
        #expect(try await nextJSON(v2)["op"] == .string("USER"))
        #expect(try await nextJSON(v2)["seq"] == .int(posted.seq!))
        let bare = try await nextJSON(v1)
        #expect(bare["id"] == .int(posted.message.id))
        #expect(bare["op"] == nil && bare["reactions"] == nil)
        dispatcher.stop()
    }
}

/// A round whose commit fails — another connection holds the write lock past the busy
/// timeout — answers every send with an ERROR carrying its nonce, stores nothing, and the next
/// round works.
@Suite struct FailingCommitRoundTests {
    @Test func everySendIsAnsweredAndTheSocketStaysUsable() async throws {
        let suite = try DispatcherTests(busyTimeoutMilliseconds: 200)
        let (channel, handle) = try await suite.connect(suite.alice)
        let blocker = try Connection(path: suite.database.path)
        try blocker.execute("BEGIN IMMEDIATE")
        for index in 0..<3 {
            #expect(try suite.send(handle, from: suite.alice, "blocked \(index)", nonce: "b\(index)"))
        }
        var nonces: [String] = []
        for _ in 0..<3 {
            let frame = try await suite.nextJSON(channel)
            #expect(frame["op"] == .string("ERROR"))
            #expect(frame["d"]?["message"] == .string("server busy; retry"))
            if case .string(let nonce)? = frame["d"]?["nonce"] { nonces.append(nonce) }
        }
        #expect(nonces.sorted() == ["b0", "b1", "b2"])
        try blocker.execute("ROLLBACK")
        #expect(try suite.store.messages(chatID: suite.chatID, query: MessageQuery()).isEmpty)

        #expect(try suite.send(handle, from: suite.alice, "after", nonce: "ok"))
        let echo = try await suite.nextJSON(channel)
        #expect(echo["content"] == .string("after"))
        let ack = try await suite.nextJSON(channel)
        #expect(ack["op"] == .string("ACK") && ack["d"]?["nonce"] == .string("ok"))
        suite.dispatcher.stop()
    }
}
