/// A request body that stopped arriving at the minimum rate; answered 408.
package struct RequestBodyTimeout: Error {
    package init() {}
}
