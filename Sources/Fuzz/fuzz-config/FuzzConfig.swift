import FuzzHarness

/// libFuzzer entry point: the bytes as a vpcdns.yaml and as a zone file (see `ConfigHarness`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FileRunner.failIfAny(ConfigHarness.run(UnsafeRawBufferPointer(start: data, count: size)))
    return 0
}

// Built with `-D FUZZING` (scripts/fuzz.sh) libFuzzer supplies `main`; otherwise this one
// replays files: `fuzz-config Tests/Fuzz/corpus/config Tests/Fuzz/regressions/config`.
#if !FUZZING
@main
enum FuzzConfigMain {
    static func main() { FileRunner.main(name: "fuzz-config", harness: ConfigHarness.run) }
}
#endif
