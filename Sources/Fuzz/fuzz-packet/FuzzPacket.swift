import FuzzHarness

/// libFuzzer entry point: one datagram through the per-query path (see `PacketHarness`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPacket(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FileRunner.failIfAny(PacketHarness.run(UnsafeRawBufferPointer(start: data, count: size)))
    return 0
}

#if FUZZING
import CFuzzerDriver

/// Built with `-D FUZZING -sanitize=fuzzer` (scripts/fuzz.sh): SwiftPM links executables with
/// `--defsym main=fuzz_packet_main`, so this is `main`, and it hands over to libFuzzer's driver.
@_cdecl("fuzz_packet_main")
public func fuzzPacketMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzPacket(data, size) }
}
#else
/// A normal build: replays files, `fuzz-packet Tests/Fuzz/corpus/packet Tests/Fuzz/regressions/packet`.
@main
enum FuzzPacketMain {
    static func main() { FileRunner.main(name: "fuzz-packet", harness: PacketHarness.run) }
}
#endif
