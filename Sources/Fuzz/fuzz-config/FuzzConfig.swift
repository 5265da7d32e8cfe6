import FuzzHarness

/// libFuzzer entry point: the bytes as a vpcdns.yaml and as a zone file (see `ConfigHarness`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FileRunner.failIfAny(ConfigHarness.run(UnsafeRawBufferPointer(start: data, count: size)))
    return 0
}

#if FUZZING
import CFuzzerDriver

/// Built with `-D FUZZING -sanitize=fuzzer` (scripts/fuzz.sh): SwiftPM links executables with
/// `--defsym main=fuzz_config_main`, so this is `main`, and it hands over to libFuzzer's driver.
@_cdecl("fuzz_config_main")
public func fuzzConfigMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzConfig(data, size) }
}
#else
/// A normal build: replays files, `fuzz-config Tests/Fuzz/corpus/config Tests/Fuzz/regressions/config`.
@main
enum FuzzConfigMain {
    static func main() { FileRunner.main(name: "fuzz-config", harness: ConfigHarness.run) }
}
#endif
