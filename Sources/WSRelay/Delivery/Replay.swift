import Domain
import Logging
import NIOCore
import Storage

/// Registers a joining connection between rounds: its READY (protocol 2), the events it
/// missed, then its place in the registry. Storage thread only.
///
/// Because the storage thread alone fans out, a connection registered here gets each event
/// exactly once: in this replay, up to the delivery cursor, or live after it.
struct Replay {
    let store: Store
    let registry: ConnectionRegistry
    let encoder: EventEncoder
    let limits: RelayLimits

    /// Registers `join`, first sending what it is owed through `head`, the delivery cursor.
    func register(_ join: Join, through head: Int64, into outbox: inout Outbox) throws {
        // A socket that closed before its turn must not linger in the registry.
        guard join.handle.channel.isActive else { return }
        switch join.start {
        case .handshake(let after):
            for frame in try missed(join, after: after, through: head) ?? [] { outbox.add(join.handle, frame) }
        case .ready(let after, let resuming):
            let ready = ServerFrame.ready(userID: join.userID, seq: resuming ? head : after)
            outbox.add(join.handle, encoder.encode(ready))
            if resuming, after < (try store.prunedThrough()) || after > head {
                outbox.add(join.handle, encoder.encode(.resync(seq: head)))
            } else if let frames = try missed(join, after: after, through: head) {
                for frame in frames { outbox.add(join.handle, frame) }
            } else {
                outbox.add(join.handle, encoder.encode(.resync(seq: head)))
            }
        }
        registry.add(join.handle, userID: join.userID, version: join.version)
    }

    /// The frames of every event in `after+1 ... head` the user may see, or nil when they
    /// add up to more than `limits.maxReplayBytes` — more than the socket could queue, so the
    /// client is better served by a RESYNC.
    private func missed(_ join: Join, after: Int64, through head: Int64) throws -> [ByteBuffer]? {
        var frames: [ByteBuffer] = []
        var bytes = 0
        var from = after
        while from < head {
            let to = min(head, from + Store.eventWindow)
            for event in try store.events(visibleTo: join.userID, after: from, through: to) {
                guard let frame = try encoder.frame(event, version: join.version, for: join.userID) else { continue }
                bytes += frame.readableBytes
                if bytes > limits.maxReplayBytes { return nil }
                frames.append(frame)
            }
            from = to
        }
        return frames
    }
}
