import CMalloc
import CoreMetrics

/// The process's malloc heap, set at scrape time: what its allocations use, and what glibc's
/// arenas hold free for reuse. A process whose RSS grows while `in_use` stays flat is keeping
/// freed memory (a dozen threads, an arena each), not leaking; one whose `in_use` grows is.
public struct HeapMetrics: Sendable {
    /// `messenger_process_heap_in_use_bytes`: bytes allocated and not freed.
    let inUse: Meter
    /// `messenger_process_heap_free_bytes`: bytes the arenas hold free.
    let free: Meter

    public init(factory: any MetricsFactory) {
        inUse = Meter(label: "messenger_process_heap_in_use_bytes", factory: factory)
        free = Meter(label: "messenger_process_heap_free_bytes", factory: factory)
    }

    /// Reads the heap now (glibc's `mallinfo2`, which walks every arena: once per scrape).
    public func record() {
        let heap = cmalloc_heap_now()
        inUse.set(Int(heap.in_use))
        free.set(Int(heap.free))
    }
}
