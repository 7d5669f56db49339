import CMalloc
import Foundation

/// Hands the memory glibc's arenas hold free back to the kernel, every `interval`, so that a
/// server's RSS is what it uses and not the highest it ever used.
///
/// Each thread that allocates gets an arena of its own (up to 8 per core), and an arena
/// returns freed memory to the kernel only from its top: a burst on one FastCGI worker (an
/// upload, a long chat list) leaves its pages resident though free. Over the 30-minute soak
/// FCGIApp's RSS grew by half in steps while its heap in use stayed at a few MB
/// (BENCHMARKS.md, issue 19). `malloc_trim(0)` releases every free page of every arena
/// (`MADV_DONTNEED`); it takes each arena's lock for the walk, well under a millisecond here.
public enum HeapTrimmer {
    public static let interval: Duration = .seconds(10)

    /// Starts the trimming thread; it runs until the process exits.
    public static func start(every interval: Duration = interval) {
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
