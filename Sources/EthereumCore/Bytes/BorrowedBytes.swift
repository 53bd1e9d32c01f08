/// `Array.withUnsafeBytes` with a typed-throws body: the standard library's version is
/// `rethrows`, which erases the error type.
@inlinable
func withBorrowedBytes<R, E: Error>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
    let result: Result<R, E> = bytes.withUnsafeBytes { raw in Result { () throws(E) -> R in try body(raw) } }
    return try result.get()
}
