import Hummingbird

/// The request context of every route.
public struct AppRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
    }

    /// Bodies larger than this are refused with 413.
    public var maxUploadSize: Int { 64 * 1024 }
}
