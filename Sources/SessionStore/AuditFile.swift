import EthereumCore

/// Walks a file of audit entries as `audit export` writes them (JSON lines, each as
/// `audit_show` answers it), line by line, without the store: every entry must chain from the
/// one before it, the first from `previous` (the hash of the entry before it) or, when the file
/// starts at entry 1, from zero. Entry numbers are not hashed, but `audit verify --holds` and
/// `audit prune --through` go by them, so they must count up by one.
public struct AuditFileCheck: Sendable {
    public enum Failure: Error, Equatable, Sendable, CustomStringConvertible {
        /// A line that is not an entry, or an entry number below 1.
        case malformed(line: Int, String)
        /// The file starts after entry 1 and no `previous` hash was given to chain it from.
        case unanchored(firstEntry: Int64)
        /// The entries were changed, left out, repeated or renumbered.
        case broken(line: Int, String)

        public var description: String {
            switch self {
            case .malformed(let line, let problem), .broken(let line, let problem): "line \(line): \(problem)"
            case .unanchored(let first): "starts at entry \(first): the hash of entry \(first - 1) is needed to check it"
            }
        }
    }

    /// The entries checked so far, and the last of them.
    public private(set) var count = 0
    public private(set) var last: (seq: Int64, hash: String)?
    private var previousHash: String?

    /// `previous`: the hash of the entry before the file's first, when that is not entry 1.
    public init(previous: Bytes32?) { previousHash = previous?.hex }

    /// Checks the next line (`number` counts from 1, for the errors).
    public mutating func check(_ line: ArraySlice<UInt8>, number: Int) throws(Failure) {
        let e: JSONValue
        do { e = try JSONValue(parsing: Array(line)) } catch { throw .malformed(line: number, "\(error)") }
        guard let seq = e["seq"]?.integerValue, let at = e["at"]?.integerValue, let kind = e["kind"]?.stringValue,
              let entry = e["entry"], let hash = e["hash"]?.stringValue else {
            throw .malformed(line: number, "not an audit entry (seq, at, kind, entry, hash)")
        }
        guard seq > 0 else { throw .malformed(line: number, "entry number \(seq); they start at 1") }
        if let last, seq - 1 != last.seq {
            throw .broken(line: number, "entry \(seq) follows entry \(last.seq); entries were left out, repeated or renumbered")
        }
        if previousHash == nil {
            guard seq == 1 else { throw .unanchored(firstEntry: seq) }
            previousHash = Bytes32.zero.hex
        }
        guard SessionStore.chainHash(previous: previousHash!, at: at, kind: kind, entry: entry.serialized) == hash else {
            throw .broken(line: number, "entry \(seq) does not match the chain")
        }
        previousHash = hash
        last = (seq, hash)
        count += 1
    }
}
