internal import COpenSSL

/// CKA_EC_PARAMS as OpenSSL reads them: a named curve's OID, or explicit parameters (the prime,
/// coefficients, generator and order), which it matches against the curves it knows. OpenSSL
/// writes the explicit form with `-param_enc explicit`, and `pkcs11-tool --write-object` keeps it.
package enum ECParameters {
    /// OpenSSL's short name of the curve (`secp256k1`, `prime256v1`, `secp384r1` …); nil when the
    /// parameters do not parse or are explicit parameters of no curve OpenSSL knows.
    package static func curveName(_ der: [UInt8]) -> String? {
        let nid = der.withUnsafeBufferPointer { buffer -> Int32 in
            var cursor = buffer.baseAddress
            guard let group = d2i_ECPKParameters(nil, &cursor, buffer.count) else {
                ERR_clear_error()   // left on the thread's queue it would be blamed on a later call
                return NID_undef
            }
            defer { EC_GROUP_free(group) }
            let named = EC_GROUP_get_curve_name(group)
            return named != NID_undef ? named : max(EC_GROUP_check_named_curve(group, 0, nil), NID_undef)
        }
        guard nid != NID_undef, let name = OBJ_nid2sn(nid) else { return nil }
        return String(cString: name)
    }
}
