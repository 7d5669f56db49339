import Foundation
import NIOCore

/// ws-resume: how long a protocol-2 client that was away takes to get what it missed.
///
/// Each round: the receiver opens `/ws?v=2`, reads READY's seq and closes; the sender sends
/// `events` messages over its socket and waits for every ACK (all committed); then the
/// receiver reconnects with `?since=<that seq>`, and the clock runs from the connect until
/// the last missed event has arrived. Every round checks the replay: READY first, seqs
/// strictly increasing, exactly `events` messages — anything else counts as an error.
enum ResumeScenario {
    static func run(_ load: LoadContext, events: Int, rounds: Int) throws -> Report {
        let fixtures = load.fixtures()
        let users = try fixtures.login(prefix: load.options.prefix, count: 2)
        let chatID = try fixtures.directChats(pairing: users)[0]
        fixtures.close()
        let (sender, receiver) = (users[0], users[1])
        let loop = load.loops[0]

        var millis: [Double] = []
        var errors = 0
        var received = 0
        for round in 0..<rounds {
            // Where the receiver leaves off.
            let away = ReplayCounter(expected: 0, loop: loop)
            let first = try WebSocketDialer.connect(endpoint: load.endpoint, loop: loop, index: 0, token: receiver.token,
                                                    path: "/ws?v=2") { away }.wait()
            let since = try away.readySeq.futureResult.wait()
            try first.close(on: loop)

            // What it misses: `events` messages, every one acknowledged.
            let sent = BurstSender(chatID: chatID, first: UInt64(round * events), count: events, window: 64,
                                   done: loop.makePromise())
            let senderSocket = try WebSocketDialer.connect(endpoint: load.endpoint, loop: loop, index: 1,
                                                           token: sender.token) { sent }.wait()
            try loop.submit { sent.start(on: senderSocket.value) }.wait()
            errors += try sent.done.futureResult.wait()
            try senderSocket.close(on: loop)

            // The resume.
            let counter = ReplayCounter(expected: events, loop: loop)
            let started = monotonicNanos()
            let back = try WebSocketDialer.connect(endpoint: load.endpoint, loop: loop, index: 2, token: receiver.token,
                                                   path: "/ws?since=\(since)") { counter }.wait()
            let timeout = loop.scheduleTask(in: .seconds(30)) { counter.giveUp() }
            let outcome = try counter.finished.futureResult.wait()
            timeout.cancel()
            millis.append(Double(outcome.at - started) / 1e6)
            errors += outcome.errors
            received += outcome.messages
            try back.close(on: loop)
            say("ws-resume: round \(round + 1): \(outcome.messages) events in "
                + String(format: "%.1f", millis.last!) + " ms, \(outcome.errors) errors")
        }

        millis.sort()
        var report = Report(scenario: "ws-resume")
        report.add("events", events)
        report.add("rounds", rounds)
        report.add("received", received)
        report.add("samples", millis.count)
        report.add("errors", errors)
        report.add("resume_ms_median", millis[millis.count / 2], digits: 1)
        report.add("resume_ms_max", millis.last ?? 0, digits: 1)
        return report
    }
}

private extension NIOLoopBound where Value == WebSocketClient {
    func close(on loop: EventLoop) throws {
        try loop.submit { self.value.close() }.wait()
    }
}

/// Sends `count` messages with at most `window` unacknowledged; completes with the number of
/// sends not acknowledged (errors) once every one is answered. `@unchecked`: created on the
/// scenario's thread, then touched on its socket's event loop only.
private final class BurstSender: SocketBehavior, @unchecked Sendable {
    private let frame: SendFrame
    /// The first sequence number: each round's nonces are new, or the relay would answer
    /// them as retries and store nothing.
    private let first: UInt64
    private let count: Int
    private let window: Int
    let done: EventLoopPromise<Int>
    private var sent = 0
    private var answered = 0
    private var refused = 0

    init(chatID: Int64, first: UInt64, count: Int, window: Int, done: EventLoopPromise<Int>) {
        frame = SendFrame(chatID: chatID, tag: "r")
        self.first = first
        self.count = count
        self.window = window
        self.done = done
    }

    func start(on socket: WebSocketClient) { fill(socket) }

    private func fill(_ socket: WebSocketClient) {
        while sent < count, sent - answered < window {
            socket.send(text: frame.encode(first + UInt64(sent), allocator: socket.allocator))
            sent += 1
        }
    }

    func received(text: UnsafeRawBufferPointer, on socket: WebSocketClient) {
        switch ServerFrameScanner.kind(of: text) {
        case .ack: answered += 1
        case .error: answered += 1; refused += 1
        case .message, .other: return
        }
        if answered == count { done.succeed(refused) } else { fill(socket) }
    }

    func closed(_ socket: WebSocketClient) {
        if answered < count { done.succeed(count - answered) }
    }
}

/// The receiver's side: READY's seq, then protocol-2 MESSAGE frames, checked for order.
/// `@unchecked` as `BurstSender`.
private final class ReplayCounter: SocketBehavior, @unchecked Sendable {
    struct Outcome {
        let messages: Int
        let errors: Int
        /// When the last expected event arrived.
        let at: UInt64
    }

    private let expected: Int
    let readySeq: EventLoopPromise<UInt64>
    let finished: EventLoopPromise<Outcome>
    private var sawReady = false
    private var lastSeq: UInt64 = 0
    private var messages = 0
    private var errors = 0
    private var done = false

    init(expected: Int, loop: EventLoop) {
        self.expected = expected
        readySeq = loop.makePromise()
        finished = loop.makePromise()
    }

    func received(text: UnsafeRawBufferPointer, on socket: WebSocketClient) {
        guard !done else { return }
        let seq = ServerFrameScanner.seq(in: text)
        if !sawReady {
            sawReady = true
            guard let seq else { errors += 1; return }
            readySeq.succeed(seq)
            if expected == 0 { finish() }
            return
        }
        switch ServerFrameScanner.kind(of: text) {
        case .message:
            guard let seq, seq > lastSeq else { errors += 1; return }
            lastSeq = seq
            messages += 1
            if messages == expected { finish() }
        case .other:
            if seq == nil { errors += 1 }  // RESYNC or something unexpected
        case .ack, .error:
            errors += 1
        }
    }

    private func finish() {
        done = true
        finished.succeed(Outcome(messages: messages, errors: errors, at: monotonicNanos()))
    }

    func closed(_ socket: WebSocketClient) {
        if !sawReady { readySeq.fail(ChannelError.ioOnClosedChannel) }
        giveUp()
    }

    /// Ends the round with what arrived; every missing event is an error.
    func giveUp() {
        guard !done else { return }
        done = true
        finished.succeed(Outcome(messages: messages, errors: errors + expected - messages, at: monotonicNanos()))
    }
}
