import Domain
import Foundation
import Synchronization

/// Asks the relay, over its own Unix socket, whether it is accepting: `GET /healthz`, which the
/// relay answers from an event loop after checking that its storage thread is running rounds.
///
/// Blocking, with a timeout on connect, send and receive; runs on a FastCGI worker thread.
enum RelayProbe {
    /// `requestID` goes along as `X-Request-Id`, so the relay's log line names the same request.
    static func isAccepting(socketPath: String, requestID: String, timeout: TimeInterval = 2) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var interval = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
        // On Linux SO_SNDTIMEO also bounds connect() on a Unix socket whose backlog is full.
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &interval, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &interval, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(socketPath.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: pathBytes)
            buffer[pathBytes.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else { return false }
        let request = Array("GET /healthz HTTP/1.1\r\nHost: relay\r\nX-Request-Id: \(requestID)\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else {
            return false
        }
        // Only the status line matters: "HTTP/1.1 200 OK".
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 256)
        while answer.count < 12 {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            answer += chunk[0..<count]
        }
        return answer.count >= 12 && answer[9..<12].elementsEqual("200".utf8)
    }
}

/// The relays' health as `/healthz` reports it, probed by at most one worker at a time and
/// reused for `maxAge`: `/healthz` needs no token, so a burst of it while a relay hangs must
/// not hold every API worker in a 2 s probe. Touched once per `/healthz`, never per request.
final class RelayHealth: Sendable {
    private struct State {
        var checkedAt: UInt64 = 0
        /// The instance numbers (1-based) of the relays that did not accept.
        var down: [Int] = [1]
        var probing = false
    }

    private let state = Mutex(State())
    /// How long a probe's answer stands; short, so an outage shows within a quarter second.
    static let maxAgeNanoseconds: UInt64 = 250_000_000

    /// The instance numbers of the `relays` that do not accept, in the order given; all are
    /// probed at once, so the answer takes one probe's time at most.
    func downRelays(_ relays: [(instance: Int, path: String)], requestID: String) -> [Int] {
        let now = Elapsed.now()
        let reused: [Int]? = state.withLock { state in
            if state.probing || (state.checkedAt > 0 && now &- state.checkedAt < Self.maxAgeNanoseconds) {
                return state.down
            }
            state.probing = true
            return nil
        }
        if let reused { return reused }
        let accepting = Mutex([Bool](repeating: false, count: relays.count))
        DispatchQueue.concurrentPerform(iterations: relays.count) { index in
            let answer = RelayProbe.isAccepting(socketPath: relays[index].path, requestID: requestID)
            accepting.withLock { $0[index] = answer }
        }
        let down = accepting.withLock { answers in answers.indices.filter { !answers[$0] }.map { relays[$0].instance } }
        state.withLock { $0 = State(checkedAt: Elapsed.now(), down: down, probing: false) }
        return down
    }
}
