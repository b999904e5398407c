/// A request body that stopped arriving at the minimum rate; answered 408.
struct RequestBodyTimeout: Error {}
