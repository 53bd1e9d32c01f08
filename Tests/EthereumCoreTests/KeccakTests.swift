import EthereumCore
import Testing
import TestSupport

@Suite("Keccak-256 matches the reference")
struct KeccakTests {
    @Test func knownDigests() throws {
        #expect(Keccak256.hash([UInt8]()).hex == "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
        #expect(Keccak256.hash(utf8: "abc").hex == "0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45")
        // The selector of transfer(address,uint256) is the first 4 bytes of this.
        #expect(Keccak256.hash(utf8: "transfer(address,uint256)").hex.hasPrefix("0xa9059cbb"))
    }

    @Test(.enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
    func randomLengthsAgainstEthUtils() throws {
        let cases = try Oracle.cases("keccak", count: 1000)
        #expect(cases.count == 1000)
        for c in cases {
            let input = try c.bytes("input")
            #expect(Keccak256.hash(input) == (try c.bytes32("hash")), "length \(input.count), seed \(Oracle.seed)")
        }
    }

    @Test func incrementalEqualsOneShotAtEverySplit() {
        var generator = SystemRandomNumberGenerator()
        let message = (0..<700).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let expected = Keccak256.hash(message)
        for split in [0, 1, 135, 136, 137, 272, 300, 699, 700] {
            var hasher = Keccak256()
            hasher.update(Array(message[..<split]))
            hasher.update(Array(message[split...]))
            #expect(hasher.finalize() == expected, "split at \(split)")
        }
        var bytewise = Keccak256()
        for b in message { bytewise.update([b]) }
        #expect(bytewise.finalize() == expected)
    }
}
