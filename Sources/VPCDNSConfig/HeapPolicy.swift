#if canImport(Glibc)
import CMalloc
#endif

/// How the C heap is managed while a configuration and its zones are loaded.
///
/// Loading a million records allocates and frees tens of millions of small blocks on every
/// core (zone files are parsed in parallel). glibc gives the top of a thread's heap back to
/// the kernel whenever more than the trim threshold (128 KiB by default) is free there; each
/// give-back is an `madvise` whose TLB shootdown interrupts the other core. Measured on the
/// 1M-record benchmark: 8% of the load's CPU in `madvise` and its page faults. While loading,
/// freed memory is kept for the next allocation instead; afterwards one `malloc_trim` returns
/// what is left over at once, so the steady-state RSS stays what the model needs.
public enum HeapPolicy {
    /// Runs `body` with heap trimming off, then returns the free memory to the kernel once.
    public static func loading<T>(_ body: () throws -> T) rethrows -> T {
        #if canImport(Glibc)
        mallopt(M_TRIM_THRESHOLD, 1 << 30)
        defer {
            mallopt(M_TRIM_THRESHOLD, 128 * 1024)
            malloc_trim(0)
        }
        #endif
        return try body()
    }
}
