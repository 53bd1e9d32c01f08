import EthereumCore
import Foundation
import Testing

@Suite("JSON: strict parsing and serialization")
struct JSONTests {
    /// Random strings over the characters that need escaping, plain ASCII and non-ASCII text;
    /// our serialization must read back the same through Foundation's independent parser, and
    /// through ours.
    @Test func stringsRoundTripThroughAnIndependentParser() throws {
        var rng = SystemRandomNumberGenerator()
        let alphabet: [Unicode.Scalar] = ["\"", "\\", "\n", "\r", "\t", "\u{0}", "\u{1}", "\u{1f}", " ", "a", "0", "x", "/", "é", "€", "\u{1F600}", "\u{7f}"]
        for _ in 0..<1000 {
            var s = String.UnicodeScalarView()
            for _ in 0..<Int.random(in: 0...24, using: &rng) { s.append(alphabet.randomElement(using: &rng)!) }
            let text = String(s)
            let serialized = JSONValue.object(JSONObject(["k": .string(text)])).serialized
            let foundation = try JSONSerialization.jsonObject(with: Data(serialized.utf8)) as? [String: String]
            #expect(foundation?["k"] == text, "\(serialized)")
            #expect(try JSONValue(parsing: serialized)["k"]?.stringValue == text)
        }
    }

    @Test func numbersKeepTheirTextAndDuplicateKeysAreRefused() throws {
        let big = "115792089237316195423570985008687907853269984665640564039457584007913129639935"
        #expect(try JSONValue(parsing: "{\"n\": \(big)}").serialized == "{\"n\":\(big)}")
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: "{\"a\": 1, \"a\": 2}") }
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: "{\"a\": 1} x") }
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: "\"\u{1}\"") }
    }
}
