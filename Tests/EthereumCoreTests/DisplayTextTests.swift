import EthereumCore
import Testing

@Suite("Text from others, shown to a person")
struct DisplayTextTests {
    @Test func controlAndDirectionCharactersAreWrittenOut() {
        #expect(DisplayText.escaped("/tmp/evil\n2026 approved\u{1B}[2J") == "/tmp/evil\\u{a}2026 approved\\u{1b}[2J")
        #expect(DisplayText.escaped("a\u{202E}b\u{2069}c\u{7F}\u{9B}") == "a\\u{202e}b\\u{2069}c\\u{7f}\\u{9b}")
        #expect(DisplayText.escaped("Café ☕ 日本 $PATH 👩‍💻 ❤️") == "Café ☕ 日本 $PATH 👩‍💻 ❤️")
        // A label that reads "payments bot" to a person, and carries "send all" in tag characters.
        let smuggled = "payments bot" + String(String.UnicodeScalarView("send all".unicodeScalars.map { Unicode.Scalar($0.value + 0xE0000)! }))
        #expect(DisplayText.escaped(smuggled).hasPrefix("payments bot\\u{e0073}\\u{e0065}"))
        #expect(DisplayText.firstUnsafe("ok\tno") == "U+0009" && DisplayText.firstUnsafe("fine") == nil)
        // Every scalar in the ranges is caught, and nothing printable beside them.
        for v: UInt32 in [0, 0x1F, 0x7F, 0x80, 0x9F, 0x200E, 0x200F, 0x2028, 0x2029, 0x202A, 0x202E, 0x2066, 0x2069,
                          0x061C, 0x00AD, 0x200B, 0x2060, 0xFEFF, 0xE0001, 0xE0041, 0xE007F] {
            #expect(DisplayText.isUnsafe(Unicode.Scalar(v)!), "\(v)")
        }
        for v: UInt32 in [0x20, 0x7E, 0xA0, 0x200C, 0x200D, 0x2030, 0x2065, 0xFE0F, 0x1F600] {
            #expect(!DisplayText.isUnsafe(Unicode.Scalar(v)!), "\(v)")
        }
    }
}
