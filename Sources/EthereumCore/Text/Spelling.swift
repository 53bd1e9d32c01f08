/// The known name a misspelt one was likely meant to be, for the errors that refuse an unknown
/// key or field, as git and cargo suggest a command. Only a near name is offered: a far guess
/// would mislead more than none.
public enum Spelling {
    /// " (did you mean `rules`?)" for "rule" among the keys of a configuration, or "" when no
    /// known name is within an edit of a short name, or two of a long one (letter case aside).
    public static func suggestion(for name: String, among known: some Sequence<String>) -> String {
        let typed = Array(name.lowercased())
        let allowed = typed.count < 6 ? 1 : 2
        let nearest = known.map { (name: $0, distance: distance(typed, Array($0.lowercased()))) }
            .filter { $0.distance <= allowed }
            .min { ($0.distance, $0.name) < ($1.distance, $1.name) }
        return nearest.map { " (did you mean `\($0.name)`?)" } ?? ""
    }

    /// The fewest insertions, deletions, substitutions and swaps of two neighbours that turn `a`
    /// into `b` (optimal string alignment): "ruels" is one swap from "rules".
    static func distance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
        // Three rows of the table: the one before the last, the last, and this one.
        var older = [Int](repeating: 0, count: b.count + 1)
        var last = Array(0...b.count)
        var row = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            row[0] = i
            for j in 1...b.count {
                let substitution = last[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                row[j] = min(last[j] + 1, row[j - 1] + 1, substitution)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    row[j] = min(row[j], older[j - 2] + 1)
                }
            }
            (older, last, row) = (last, row, older)
        }
        return last[b.count]
    }
}
