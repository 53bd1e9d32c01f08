// Built by `scripts/fuzz.sh` (`--sanitize fuzzer -DFUZZING`), this is a libFuzzer target: the
// driver calls the harness FUZZ_HARNESS names with the inputs it generates. Built plainly, it
// runs that harness once on each file it is given, so a finding can be replayed under a
// debugger or kept as a regression.
import Foundation

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    Harnesses.run(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
#else
@main
enum Replay {
    static func main() {
        for path in CommandLine.arguments.dropFirst() {
            guard let input = FileManager.default.contents(atPath: path) else { fatalError("cannot read \(path)") }
            Harnesses.run(Array(input))
        }
    }
}
#endif
