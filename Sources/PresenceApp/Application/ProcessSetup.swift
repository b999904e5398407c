import Foundation
import PresenceCore

/// What the executable does before anything else: the allocator's arena and trim settings (``MemoryRelease``), from
/// the environment and the cores this process may use.
public func configureProcess() {
    MemoryRelease.configureAllocator(
        environment: ProcessInfo.processInfo.environment, cores: ProcessInfo.processInfo.activeProcessorCount
    )
}
