extension SplitMix64 {
    /// A random ABI type as a signature writes it: elementary types, lists, fixed arrays of sizes
    /// up to the largest the parser takes, tuples, nested a few levels. Many are too large for
    /// any calldata, which is the point.
    public mutating func abiType(depth: Int = 0) -> String {
        let elementary = ["uint8", "uint256", "int16", "address", "bool", "bytes", "string", "bytes1", "bytes32"]
        var type: String
        if depth < 3, Int.random(in: 0..<4, using: &self) == 0 {
            type = "(" + (0..<Int.random(in: 1...3, using: &self)).map { _ in abiType(depth: depth + 1) }.joined(separator: ",") + ")"
        } else {
            type = elementary.randomElement(using: &self)!
        }
        for _ in 0..<Int.random(in: 0...2, using: &self) {
            type += ["[]", "[1]", "[2]", "[3]", "[1000]", "[65536]", "[1048576]"].randomElement(using: &self)!
        }
        return type
    }
}
