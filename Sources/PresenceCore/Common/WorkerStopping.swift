/// Work cut short because the worker is stopping; answered 503 with `Retry-After`.
public struct WorkerStopping: Error {}
