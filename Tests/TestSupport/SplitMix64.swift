import Foundation

/// A random number generator reproducible from its seed (splitmix64), for randomized tests
/// whose failures name the seed that replays them.
public struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Writes random bytes (the same for the same seed) over the third quarter of a file, as a
/// failing disk might: a store's later pages, where a long audit log lives.
public func scribbleOverTheThirdQuarter(of path: String, seed: UInt64 = 11) throws {
    guard let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int, let file = FileHandle(forUpdatingAtPath: path) else {
        throw Oracle.Failure(description: "cannot open \(path) to damage it")
    }
    defer { try? file.close() }
    var random = SplitMix64(seed: seed)
    try file.seek(toOffset: UInt64(size / 2))
    try file.write(contentsOf: Data((0..<(size / 4)).map { _ in UInt8(truncatingIfNeeded: random.next()) }))
}
