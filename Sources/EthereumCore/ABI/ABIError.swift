/// Why an ABI type, value or encoding was rejected, and where: `path` names the value
/// (`arg 0`, `[3]`, `.amount`), `offset` is the byte offset in the encoded data when decoding.
public struct ABIError: Error, Equatable, Sendable, CustomStringConvertible {
    public var reason: String
    public var path: [String]
    public var offset: Int?

    public init(_ reason: String, path: [String] = [], offset: Int? = nil) {
        self.reason = reason
        self.path = path
        self.offset = offset
    }

    public var description: String {
        var where_: [String] = []
        if !path.isEmpty { where_.append(path.joined(separator: " ")) }
        if let offset { where_.append("at byte \(offset)") }
        return where_.isEmpty ? reason : "\(where_.joined(separator: ", ")): \(reason)"
    }
}
