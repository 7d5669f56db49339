import Foundation
import NIOCore
import NIOHTTP1

/// One reactor of ws-reactions: on its own keep-alive connection, `PUT`, then `DELETE`, then
/// `PUT` … its own emoji on the hot message. Each request changes something, so each is one
/// REACTION event; the next goes out once the last was answered 204 and its event reached
/// every member, so every reactor has one change in flight. Lives on its session's loop.
final class ReactionSender {
    private let session: HTTPSession
    private let lane: Int
    private let lanes: Int
    private let path: String
    private let token: String
    private let tracker: FanoutTracker
    private let window: MeasureWindow
    private let done: EventLoopPromise<Void>
    private var change: UInt64 = 0
    private var answered = false
    private var delivered = false

    init(session: HTTPSession, lane: Int, lanes: Int, chatID: Int64, messageID: Int64, token: String,
         tracker: FanoutTracker, window: MeasureWindow) {
        self.session = session
        self.lane = lane
        self.lanes = lanes
        path = "/chats/\(chatID)/messages/\(messageID)/reactions/\(Self.emoji(lane))"
        self.token = token
        self.tracker = tracker
        self.window = window
        done = session.loop.makePromise()
    }

    /// Lane `i`'s emoji, percent-encoded: U+1F600 + i (😀, 😁, …), one per lane, at most 20
    /// (the most a message takes).
    static func emoji(_ lane: Int) -> String {
        let scalar = Unicode.Scalar(0x1F600 + UInt32(lane))!
        return String(Character(scalar)).addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
    }

    /// Completes when the measured window is over and the last change is settled.
    var finished: EventLoopFuture<Void> { done.futureResult }

    func start() { send() }

    /// This lane's change reached every member.
    func changeDelivered() {
        delivered = true
        advance()
    }

    private func send() {
        let now = monotonicNanos()
        guard now < window.end else { return done.succeed() }
        answered = false
        delivered = false
        let sequence = change * UInt64(lanes) + UInt64(lane)
        tracker.sent(sequence, at: now, since: now)
        let call = HTTPCall(method: change.isMultiple(of: 2) ? .PUT : .DELETE, path: path, body: nil, token: token)
        // Idempotent: a retry after a keep-alive race changes nothing twice.
        let this = NIOLoopBound(self, eventLoop: session.loop)
        session.request(call).whenComplete { result in
            if case .success(let answer) = result, answer.status == 204 {
                this.value.answered = true
                this.value.advance()
            } else {
                this.value.failed(sequence)
            }
        }
    }

    /// Counted as an error (the row fails); the next change goes out after a pause.
    private func failed(_ sequence: UInt64) {
        tracker.refused(sequence)
        let this = NIOLoopBound(self, eventLoop: session.loop)
        session.loop.scheduleTask(in: .milliseconds(10)) {
            this.value.answered = true
            this.value.delivered = true
            this.value.advance()
        }
    }

    private func advance() {
        guard answered, delivered else { return }
        change += 1
        send()
    }
}

@available(*, unavailable)
extension ReactionSender: Sendable {}
