import FuzzHarness

/// libFuzzer entry point: one datagram through the per-query path (see `PacketHarness`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPacket(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FileRunner.failIfAny(PacketHarness.run(UnsafeRawBufferPointer(start: data, count: size)))
    return 0
}

// Built with `-D FUZZING` (scripts/fuzz.sh) libFuzzer supplies `main`; otherwise this one
// replays files: `fuzz-packet Tests/Fuzz/corpus/packet Tests/Fuzz/regressions/packet`.
#if !FUZZING
@main
enum FuzzPacketMain {
    static func main() { FileRunner.main(name: "fuzz-packet", harness: PacketHarness.run) }
}
#endif
