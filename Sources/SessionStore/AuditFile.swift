import EthereumCore

/// The audit log's chain as both of its walks check it, the store's own and an export's: each
/// entry hashes onto the one before, and its number is the one before's plus one. Entry numbers
/// are not hashed, but `audit verify --holds` and `audit prune --through` go by them.
struct AuditChain {
    enum Break: Error {
        case notNext(seq: Int64, after: Int64)
        case mismatch(seq: Int64)
    }

    /// What the first entry follows: its hash, and its number when known (an export checked
    /// from a hash given alone may start at any entry).
    private let startSeq: Int64?
    private let startHash: String
    private(set) var last: (seq: Int64, hash: String)?
    private(set) var count = 0

    init(afterSeq seq: Int64?, hash: String) {
        startSeq = seq
        startHash = hash
    }

    mutating func append(seq: Int64, at: Int64, kind: String, entry: String, hash: String) throws(Break) {
        if let previous = last?.seq ?? startSeq, !(previous < Int64.max && seq == previous + 1) {
            throw .notNext(seq: seq, after: previous)
        }
        guard SessionStore.chainHash(previous: last?.hash ?? startHash, at: at, kind: kind, entry: entry) == hash else {
            throw .mismatch(seq: seq)
        }
        last = (seq, hash)
        count += 1
    }
}

/// Walks a file of audit entries as `audit export` writes them (JSON lines, each as
/// `audit_show` answers it), line by line, without the store: every entry must chain from the
/// one before it, the first from `previous` (the hash of the entry before it) or, when the file
/// starts at entry 1, from zero; and the numbers must count up by one.
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

    private var chain: AuditChain
    /// The entries checked so far, and the last of them.
    public var count: Int { chain.count }
    public var last: (seq: Int64, hash: String)? { chain.last }

    /// `previous`: the hash of the entry before the file's first, when that is not entry 1.
    public init(previous: Bytes32?) { chain = AuditChain(afterSeq: previous == nil ? 0 : nil, hash: (previous ?? .zero).hex) }

    /// Checks the next line (`number` counts from 1, for the errors).
    public mutating func check(_ line: ArraySlice<UInt8>, number: Int) throws(Failure) {
        let e: JSONValue
        do { e = try JSONValue(parsing: Array(line)) } catch { throw .malformed(line: number, "\(error)") }
        guard let seq = e["seq"]?.integerValue, let at = e["at"]?.integerValue, let kind = e["kind"]?.stringValue,
              let entry = e["entry"], let hash = e["hash"]?.stringValue else {
            throw .malformed(line: number, "not an audit entry (seq, at, kind, entry, hash)")
        }
        guard seq > 0 else { throw .malformed(line: number, "entry number \(seq); they start at 1") }
        do { try chain.append(seq: seq, at: at, kind: kind, entry: entry.serialized, hash: hash) } catch {
            switch error {
            // Only a file checked from zero knows the number its first entry must have.
            case .notNext where chain.count == 0: throw .unanchored(firstEntry: seq)
            case .notNext(_, let after): throw .broken(line: number, "entry \(seq) follows entry \(after); entries were left out, repeated or renumbered")
            case .mismatch: throw .broken(line: number, "entry \(seq) does not match the chain")
            }
        }
    }
}
