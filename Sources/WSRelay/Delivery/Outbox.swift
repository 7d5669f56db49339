import NIOCore

/// Frames collected on the storage thread, handed to each event loop in one task: one
/// hop per loop per batch, and one flush per connection, however many frames it gets.
struct Outbox {
    private var byLoop: [ObjectIdentifier: (loop: EventLoop, frames: [(ConnectionHandle, ByteBuffer)])] = [:]

    var isEmpty: Bool { byLoop.isEmpty }

    mutating func add(_ handle: ConnectionHandle, _ text: ByteBuffer) {
        let key = ObjectIdentifier(handle.eventLoop)
        if byLoop[key] == nil {
            byLoop[key] = (handle.eventLoop, [(handle, text)])
        } else {
            byLoop[key]!.frames.append((handle, text))
        }
    }

    /// Sends everything collected, in order per connection.
    mutating func flush() {
        for (_, entry) in byLoop {
            let frames = entry.frames
            entry.loop.execute {
                var touched: [ConnectionHandle] = []
                touched.reserveCapacity(frames.count)
                var seen = Set<ObjectIdentifier>()
                for (handle, text) in frames {
                    handle.writeOnLoop(text)
                    if seen.insert(ObjectIdentifier(handle)).inserted { touched.append(handle) }
                }
                for handle in touched { handle.channel.flush() }
            }
        }
        byLoop.removeAll(keepingCapacity: true)
    }
}
