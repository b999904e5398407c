#if canImport(Glibc)
import Glibc
#endif

/// Keeps the worker's heap close to what it uses.
///
/// glibc's allocator (the Swift runtime's on Linux) keeps freed pages in its arenas, makes up to eight arenas per
/// core, and raises its mmap threshold as large blocks are freed, so blocks of tens of KiB end up between small
/// long-lived ones. After a burst (thousands of sockets come and gone) that is memory the worker no longer uses but
/// still holds, spread so thin that little of it can be handed back. The calls are looked up at run time (the Glibc
/// module does not export `<malloc.h>`) and are no-ops where they do not exist.
public enum MemoryRelease {
    /// One arena per core (at least two) unless `MALLOC_ARENA_MAX` is set, and blocks of 16 KiB and more mapped on
    /// their own (so they go back to the system when freed) unless `MALLOC_MMAP_THRESHOLD_` is set. Call first thing
    /// in `main`, before other threads allocate.
    public static func configureAllocator(environment: [String: String], cores: Int) {
        #if canImport(Glibc)
        guard let mallopt else { return }
        if environment["MALLOC_ARENA_MAX"] == nil { _ = mallopt(mArenaMax, Int32(max(2, cores))) }
        if environment["MALLOC_MMAP_THRESHOLD_"] == nil { _ = mallopt(mMmapThreshold, 16 * 1024) }
        #endif
    }

    /// Hands free heap pages back to the system (`malloc_trim(0)`).
    package static func trim() {
        #if canImport(Glibc)
        _ = mallocTrim?(0)
        #endif
    }

    #if canImport(Glibc)
    /// `M_ARENA_MAX` and `M_MMAP_THRESHOLD` in `<malloc.h>`.
    private static let mArenaMax: Int32 = -8
    private static let mMmapThreshold: Int32 = -3
    private typealias MallocTrim = @convention(c) (Int) -> Int32
    private typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    private static let mallocTrim: MallocTrim? = dlsym(nil, "malloc_trim").map { unsafeBitCast($0, to: MallocTrim.self) }
    private static let mallopt: Mallopt? = dlsym(nil, "mallopt").map { unsafeBitCast($0, to: Mallopt.self) }
    #endif
}
