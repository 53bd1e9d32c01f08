import Foundation

/// Text that others wrote (a client's label, an executable's file name, a token's label) shown
/// to a person. Control characters in it could move the cursor, colour or clear the terminal, or
/// start a line of its own that reads as the agent's; bidirectional overrides could reorder what
/// the person reads. So such text is either refused (a request's label) or shown with those
/// characters written out (`\u{1b}`).
public enum DisplayText {
    /// Whether `scalar` may not be shown as it is: C0 and C1 controls and DEL, line and
    /// paragraph separators, and the invisible format characters: bidirectional marks
    /// (U+061C as well as U+200E, U+200F), embeddings, overrides and isolates, zero-width spaces
    /// and joiners, soft hyphens, and tag characters that carry text nobody sees. The
    /// zero-width (non-)joiner stays: emoji sequences and Persian words need it.
    public static func isUnsafe(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .lineSeparator, .paragraphSeparator: true
        case .format: scalar.value != 0x200C && scalar.value != 0x200D
        default: false
        }
    }

    /// The first character of `text` that may not be shown as it is, as `U+XXXX`.
    public static func firstUnsafe(_ text: String) -> String? {
        text.unicodeScalars.first(where: isUnsafe).map { String(format: "U+%04X", $0.value) }
    }

    /// `text` with every character that may not be shown as it is written as `\u{…}`.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isUnsafe) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if isUnsafe(scalar) { out.append(contentsOf: "\\u{\(String(scalar.value, radix: 16))}".unicodeScalars) } else { out.append(scalar) }
        }
        return String(out)
    }
}
