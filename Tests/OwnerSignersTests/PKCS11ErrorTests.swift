import Foundation
@testable import OwnerSigners
import Testing

/// What an operator reads of a module's return code is the name they search for: every code
/// p11-kit's header defines, read from the header itself, has its own; a vendor's code says so.
@Suite("PKCS#11 return codes by name")
struct PKCS11ErrorTests {
    /// The header the CPKCS11 target is built against (libp11-kit-dev), so present wherever the
    /// tests build.
    static let header = "/usr/include/p11-kit-1/p11-kit/pkcs11.h"

    @Test func everyReturnCodeOfTheHeaderIsNamed() throws {
        let text = try String(contentsOfFile: Self.header, encoding: .utf8)
        let defined = text.split(separator: "\n").compactMap { line -> (name: String, value: UInt)? in
            let words = line.split(whereSeparator: \.isWhitespace)
            guard words.count == 3, words[0] == "#define", words[1].hasPrefix("CKR_"), words[2].hasPrefix("("), words[2].hasSuffix("UL)") else { return nil }
            let literal = words[2].dropFirst().dropLast(3)
            guard let value = literal.hasPrefix("0x") ? UInt(literal.dropFirst(2), radix: 16) : UInt(literal) else { return nil }
            return (String(words[1]), value)
        }
        #expect(defined.count > 80, "read only \(defined.count) codes from \(Self.header)")
        for (name, value) in defined where name != "CKR_OK" {
            #expect(PKCS11Error("C_Call", value).description == "C_Call failed: \(name)")
        }
    }

    @Test func aVendorsOwnCodeIsShownAsOne() {
        #expect(PKCS11Error("C_Sign", (1 << 31) + 0x42).name == "CKR_VENDOR_DEFINED+0x42 (the module's vendor's own)")
        #expect(PKCS11Error("C_Sign", 0x7777).name == "CKR_0x7777")
    }
}
