import CMalloc
import Foundation

/// Keeps a server's RSS what it uses, not the highest it ever used: two glibc malloc settings
/// at start, then `malloc_trim(0)` every `interval`.
///
/// - **Two arenas.** Each thread that allocates gets an arena of its own (up to 8 per core),
///   and memory freed in one arena serves only that arena's later allocations: with a dozen
///   FastCGI workers, each arena keeps its own high-water mark and its own fragments. Over the
///   30-minute soak FCGIApp's RSS grew by half in steps while its heap in use stayed at a few
///   MB (BENCHMARKS.md, issue 19). Our threads spend their time in SQLite and in I/O, not in
///   malloc, so two shared arenas cost no measurable contention.
/// - **A fixed mmap threshold.** glibc raises its threshold to the size of each mmap'd block
///   freed, so after the first 256 KiB upload chunk every later one comes from an arena and
///   leaves a hole there; fixed at 128 KiB, big buffers are mapped and unmapped each time.
/// - **The trim** releases every free page of every arena (`MADV_DONTNEED`); it takes each
///   arena's lock for the walk, well under a millisecond here.
public enum HeapTrimmer {
    public static let interval: Duration = .seconds(10)
    public static let arenas: Int32 = 2
    public static let mmapThreshold: Int32 = 128 * 1024

    /// Sets the malloc policy and starts the trimming thread; it runs until the process exits.
    /// Called first thing in `main`, before other threads allocate, so that they share the
    /// two arenas.
    public static func start(every interval: Duration = interval) {
        mallopt(M_ARENA_MAX, arenas)
        mallopt(M_MMAP_THRESHOLD, mmapThreshold)
        let thread = Thread {
            let seconds = Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18
            while true {
                Thread.sleep(forTimeInterval: seconds)
                malloc_trim(0)
            }
        }
        thread.name = "heap-trimmer"
        thread.start()
    }
}
