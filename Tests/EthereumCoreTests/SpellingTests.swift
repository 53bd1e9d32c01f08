@testable import EthereumCore
import Testing
import TestSupport

@Suite("Did you mean: the known name nearest a misspelt one")
struct SpellingTests {
    /// The edit distance by its definition, recursively: the fewest insertions, deletions,
    /// substitutions and swaps of two neighbours (no substring edited twice).
    func reference(_ a: [Character], _ b: [Character]) -> Int {
        var memo: [[Int?]] = Array(repeating: Array(repeating: nil, count: b.count + 1), count: a.count + 1)
        func d(_ i: Int, _ j: Int) -> Int {
            if let known = memo[i][j] { return known }
            var best: Int
            if i == 0 || j == 0 {
                best = max(i, j)
            } else {
                best = min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + (a[i - 1] == b[j - 1] ? 0 : 1))
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { best = min(best, d(i - 2, j - 2) + 1) }
            }
            memo[i][j] = best
            return best
        }
        return d(a.count, b.count)
    }

    @Test func theDistanceIsTheDefinitionsOnRandomWords() {
        var random = SplitMix64(seed: 0x5_9e11)
        // Three letters, so that runs, repeats and swaps come up often.
        func word() -> [Character] { (0..<Int.random(in: 0...9, using: &random)).map { _ in "abc".randomElement(using: &random)! } }
        for _ in 0..<3_000 {
            let a = word(), b = word()
            #expect(Spelling.distance(a, b) == reference(a, b), "\(String(a)) \(String(b))")
        }
        #expect(Spelling.distance(Array("ruels"), Array("rules")) == 1 && Spelling.distance(Array("rules"), Array("rule")) == 1)
    }

    @Test func onlyANearNameIsOffered() {
        let config = ["data_dir", "socket_dir", "rules", "pinentry", "store_passphrase_file"]
        #expect(Spelling.suggestion(for: "rule", among: config) == " (did you mean `rules`?)")
        #expect(Spelling.suggestion(for: "pinetnry", among: config) == " (did you mean `pinentry`?)", "a swap")
        #expect(Spelling.suggestion(for: "datadir", among: config) == " (did you mean `data_dir`?)")
        #expect(Spelling.suggestion(for: "maxpriorityfeepergas", among: ["maxPriorityFeePerGas"]) == " (did you mean `maxPriorityFeePerGas`?)", "letter case aside")
        #expect(Spelling.suggestion(for: "rul", among: config) == "", "two edits from a short name is a guess")
        #expect(Spelling.suggestion(for: "passphrase", among: config) == "")
        #expect(Spelling.suggestion(for: "zzz", among: [String]()) == "")
        #expect(Spelling.suggestion(for: "abx", among: ["abd", "abc"]) == " (did you mean `abc`?)", "of two as near, the first in order")
    }
}
