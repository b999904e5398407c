/// The service's version, as workers announce it and the pages show it.
public enum ServiceVersion {
    public static let current = "0.18.0"
}
