import EthereumCore
import Testing

@Suite("Hex, addresses and 256-bit integers parse strictly")
struct HexAddressIntegerTests {
    @Test func hexRoundTripAndErrors() throws {
        #expect(try Hex.decode("0xDEADbeef") == [0xde, 0xad, 0xbe, 0xef])
        #expect(try Hex.decode("") == [])
        #expect(try Hex.decode("0x") == [])
        #expect(Hex.encode([0x00, 0xff]) == "0x00ff")
        #expect(throws: HexError.oddLength(3)) { try Hex.decode("0xabc") }
        #expect(throws: HexError.invalidCharacter("g", position: 3)) { try Hex.decode("0x0g") }
        #expect(throws: HexError.invalidCharacter("Ｆ", position: 2)) { try Hex.decode("0xＦＦ") }
        #expect(try Hex.decode("0XaBcDeF") == [0xab, 0xcd, 0xef])
        #expect(try Hex.decode("09AF") == [0x09, 0xaf])
        // The letters next to each range of digits.
        for (text, bad) in [("0xG0", "G"), ("0x0g", "g"), ("0x/0", "/"), ("0x:0", ":"), ("0x@0", "@"), ("0x`0", "`")] as [(String, Character)] {
            #expect(throws: HexError.invalidCharacter(bad, position: text.firstIndex(of: bad)!.utf16Offset(in: text)), "\(text)") { try Hex.decode(text) }
        }
    }

    // The test vectors of EIP-55.
    @Test(arguments: [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB", "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ])
    func eip55Checksums(_ text: String) throws {
        let a = try Address(text)
        #expect(a.checksummed == text)
        #expect(try Address(text.lowercased()) == a)
        #expect(try Address("0x" + text.dropFirst(2).uppercased()) == a)
    }

    @Test func badChecksumIsAnError() {
        #expect(throws: AddressError.badChecksum(expected: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")) {
            try Address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD")
        }
        #expect(throws: AddressError.wrongLength(19)) { try Address("0x" + String(repeating: "ab", count: 19)) }
        #expect(throws: AddressError.wrongLength(21)) { try Address("0x" + String(repeating: "ab", count: 21)) }
        #expect(throws: AddressError.missingPrefix) { try Address(String(repeating: "ab", count: 20)) }
    }

    @Test func uint256Extremes() throws {
        let max = try UInt256(parsing: "115792089237316195423570985008687907853269984665640564039457584007913129639935")
        #expect(max == UInt256.max)
        #expect(max.description == "115792089237316195423570985008687907853269984665640564039457584007913129639935")
        #expect(max.hexQuantity == "0x" + String(repeating: "f", count: 64))
        #expect(UInt256.zero.hexQuantity == "0x0")
        #expect(throws: IntegerParseError.outOfRange("115792089237316195423570985008687907853269984665640564039457584007913129639936", bits: 256, signed: false)) {
            try UInt256(parsing: "115792089237316195423570985008687907853269984665640564039457584007913129639936")
        }
        #expect(throws: IntegerParseError.invalidDigit("_", in: "1_000")) { try UInt256(parsing: "1_000") }
        // Hex digits are no decimal ones.
        #expect(throws: IntegerParseError.invalidDigit("a", in: "1a")) { try UInt256(parsing: "1a") }
        #expect(throws: IntegerParseError.invalidDigit("g", in: "0x1g")) { try UInt256(parsing: "0x1g") }
        #expect(try UInt256(parsing: "0XfF") == 255)
        #expect(UInt256(UInt64(Int.max)).int == Int.max && UInt256(UInt64(Int.max) + 1).int == nil)
        // Digits and letters that are not ASCII, though Unicode gives them values (fullwidth forms).
        #expect(throws: IntegerParseError.invalidDigit("１", in: "１00")) { try UInt256(parsing: "１00") }
        #expect(throws: IntegerParseError.invalidDigit("Ｆ", in: "0xＦF")) { try UInt256(parsing: "0xＦF") }
        #expect(max.addingReportingOverflow(.one).overflow)
        #expect(UInt256.zero.subtractingReportingOverflow(.one).overflow)
        #expect(max.multipliedReportingOverflow(by: 2).overflow)
        #expect(!UInt256(1 << 63).multipliedReportingOverflow(by: UInt256(1 << 63)).overflow)
    }

    @Test func arithmeticAgreesWithUInt128() throws {
        var g = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let a = UInt64.random(in: 0...UInt64.max, using: &g), b = UInt64.random(in: 1...UInt64.max, using: &g)
            let wide = UInt128(a) * UInt128(b)
            let product = UInt256(a).multipliedReportingOverflow(by: UInt256(b)).partialValue
            #expect(product.description == wide.description)
            let (q, r) = product.quotientAndRemainder(dividingBy: UInt256(b))
            #expect(q == UInt256(a) && r.isZero)
            #expect(try UInt256(parsing: product.description) == product)
            #expect(try UInt256(parsing: product.hexQuantity) == product)
            #expect(product.shiftedLeft(7).shiftedRight(7) == product)
        }
    }

    @Test func int256Ranges() throws {
        #expect(Int256.min.description == "-57896044618658097711785492504343953926634992332820282019728792003956564819968")
        #expect(try Int256(parsing: Int256.min.description) == Int256.min)
        #expect(try Int256(parsing: Int256.max.description) == Int256.max)
        #expect(Int256(-128).fits(bits: 8) && !Int256(-129).fits(bits: 8) && Int256(127).fits(bits: 8) && !Int256(128).fits(bits: 8))
        #expect(Int256(-1).bitPattern == UInt256.max)
        #expect(Int256(-5) < Int256(3) && Int256(-5) < Int256(-4))
    }
}
