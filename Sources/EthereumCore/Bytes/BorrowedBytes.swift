/// `Array.withUnsafeBytes` with a typed-throws body: the standard library's version is
/// `rethrows`, which erases the error type.
@inlinable
public func withBorrowedBytes<R, E: Error>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
    let result: Result<R, E> = bytes.withUnsafeBytes { raw in Result { () throws(E) -> R in try body(raw) } }
    return try result.get()
}

/// `Array.withUnsafeMutableBytes` with a typed-throws body.
@inlinable
public func withBorrowedMutableBytes<R, E: Error>(_ bytes: inout [UInt8], _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
    let result: Result<R, E> = bytes.withUnsafeMutableBytes { raw in Result { () throws(E) -> R in try body(raw) } }
    return try result.get()
}
