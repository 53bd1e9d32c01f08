@testable import OwnerSigners
import Testing
import TestSupport

/// The card data objects' BER-TLV, as `OpenPGPApplet` reads what a card answers: random trees
/// encoded here (lengths in one, two and three bytes; tags of one and two bytes, primitive and
/// constructed) must be searched as a pre-order walk finds them, and any bytes a card might send
/// must be read without a crash.
struct BERTLVTests {
    indirect enum Node {
        case primitive(UInt16, [UInt8])
        case constructed(UInt16, [Node])

        var tag: UInt16 {
            switch self {
            case .primitive(let tag, _), .constructed(let tag, _): tag
            }
        }

        var value: [UInt8] {
            switch self {
            case .primitive(_, let value): value
            case .constructed(_, let children): children.flatMap(\.encoded)
            }
        }

        var encoded: [UInt8] {
            let value = value
            let tag: [UInt8] = self.tag > 0xFF ? [UInt8(self.tag >> 8), UInt8(self.tag & 0xFF)] : [UInt8(self.tag)]
            let length: [UInt8] = value.count < 0x80 ? [UInt8(value.count)]
                : value.count <= 0xFF ? [0x81, UInt8(value.count)] : [0x82, UInt8(value.count >> 8), UInt8(value.count & 0xFF)]
            return tag + length + value
        }

        /// The value of the first node tagged `tag`, in pre-order.
        func first(_ wanted: UInt16) -> [UInt8]? {
            if tag == wanted { return value }
            if case .constructed(_, let children) = self {
                for child in children { if let found = child.first(wanted) { return found } }
            }
            return nil
        }
    }

    static let primitiveTags: [UInt16] = [0x4F, 0xC1, 0xC4, 0x86, 0x5F52, 0x93]
    static let constructedTags: [UInt16] = [0x6E, 0x73, 0x65, 0x7F49, 0x7F66]

    static func tree(depth: Int, using generator: inout SplitMix64) -> Node {
        if depth == 0 || Int.random(in: 0..<3, using: &generator) == 0 {
            // Now and then long enough for the two- and three-byte lengths.
            let count = [Int.random(in: 0..<20, using: &generator), Int.random(in: 120..<300, using: &generator)][Int.random(in: 0..<4, using: &generator) == 0 ? 1 : 0]
            return .primitive(primitiveTags.randomElement(using: &generator)!, (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) })
        }
        let children = (0..<Int.random(in: 0...3, using: &generator)).map { _ in tree(depth: depth - 1, using: &generator) }
        return .constructed(constructedTags.randomElement(using: &generator)!, children)
    }

    @Test func randomTreesAreSearchedInPreOrder() {
        let seed = UInt64.random(in: 1...UInt64.max)
        var generator = SplitMix64(seed: seed)
        for _ in 0..<500 {
            let forest = (0..<Int.random(in: 1...3, using: &generator)).map { _ in Self.tree(depth: 4, using: &generator) }
            let bytes = forest.flatMap(\.encoded)
            for tag in Self.primitiveTags + Self.constructedTags {
                let expected = forest.lazy.compactMap { $0.first(tag) }.first
                #expect(BERTLV.find(tag, in: bytes) == expected, "seed \(seed), tag \(tag)")
            }
        }
    }

    @Test func whateverACardSendsIsReadWithoutACrash() {
        let seed = UInt64.random(in: 1...UInt64.max)
        var generator = SplitMix64(seed: seed)
        for _ in 0..<5_000 {
            var bytes = Self.tree(depth: 3, using: &generator).encoded
            // Cut short, or with bytes changed: lengths that run past the end, tags cut in two.
            if !bytes.isEmpty, Bool.random(using: &generator) { bytes.removeLast(Int.random(in: 1...bytes.count, using: &generator)) }
            for _ in 0..<Int.random(in: 0...3, using: &generator) where !bytes.isEmpty {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            for tag in Self.primitiveTags + Self.constructedTags {
                if let found = BERTLV.find(tag, in: bytes) { #expect(found.count <= bytes.count, "seed \(seed)") }
            }
        }
        // Lengths in four bytes or more are not card data: nothing is read past them.
        #expect(BERTLV.find(0x4F, in: [0x4F, 0x83, 0x00, 0x00, 0x01, 0xAA]) == nil)
        #expect(BERTLV.find(0x4F, in: [0x73, 0x03, 0x4F, 0x01, 0xAA]) == [0xAA])
    }
}
