import Crypto
import EthereumCore
import Foundation
import GRDB
import OwnerSigners

/// The store remembers the unattended PINs tokens rejected (see `RejectedPINMemory`), as
/// HMAC-SHA256 under a random key kept in the store: what a reader of the file learns of a
/// wrong PIN is no more than the PIN file it came from showed.
extension SessionStore: RejectedPINMemory {
    public func fingerprint(of pin: SecretBytes) -> [UInt8] {
        pin.withUnsafeBytes { Array(HMAC<SHA256>.authenticationCode(for: $0, using: fingerprintKey)) }
    }

    public func rejectedPIN(of token: String) -> RejectedPIN? {
        try? run { db in
            try Row.fetchOne(db, sql: "SELECT fingerprint, at, token_showed_it, tries_left FROM rejected_pins WHERE token = ?", arguments: [token]).map { row in
                RejectedPIN(fingerprint: Array(row["fingerprint"] as Data), at: UInt64(row["at"] as Int64), tokenShowedIt: row["token_showed_it"],
                            triesLeft: row["tries_left"])
            }
        }
    }

    public func remember(_ rejected: RejectedPIN?, of token: String) {
        _ = try? run { db in
            if let rejected {
                try db.execute(sql: "INSERT OR REPLACE INTO rejected_pins (token, fingerprint, at, token_showed_it, tries_left) VALUES (?, ?, ?, ?, ?)",
                               arguments: [token, Data(rejected.fingerprint), Int64(rejected.at), rejected.tokenShowedIt, rejected.triesLeft])
            } else {
                try db.execute(sql: "DELETE FROM rejected_pins WHERE token = ?", arguments: [token])
            }
        }
    }

    /// Made on first use and kept in `meta`.
    private var fingerprintKey: SymmetricKey {
        let stored = try? run { db -> String in
            if let hex = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'pin_fingerprint_key'") { return hex }
            let hex = Hex.encode(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
            try db.execute(sql: "INSERT INTO meta (key, value) VALUES ('pin_fingerprint_key', ?)", arguments: [hex])
            return hex
        }
        // Without the store's key (a database that cannot be written) a fingerprint matches nothing remembered.
        return SymmetricKey(data: stored.flatMap { try? Hex.decode($0) } ?? SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
    }
}
