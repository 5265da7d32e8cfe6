import Foundation
import Testing

/// `scripts/scale-demo.sh` (also `make scale-demo`), run as a user runs it: two replicas, dnsdist
/// and two VPCs' test hosts each in a network namespace; the script checks each VPC's own
/// answer through dnsdist, no loss on a reload under load, the failover under load, and the
/// merged logs, and prints `ok:`/`FAIL:` lines. It exits 77 (and says why) where namespaces
/// or its tools are missing: this test then prints the reason loudly.
@Suite
struct ScaleDemoTests {
    @Test func scaleDemoRunsAndTearsDown() throws {
        // Bounded: the script takes about 15 s.
        let oks = ["ok: 16 more queries over UDP and TCP: alpha's host always got 10.1.0.10, beta's 10.2.0.20",
                   "ok: no query lost during the reload",
                   "ok: after the reload both replicas answer alpha's host 10.1.0.99",
                   "ok: replica 1 alone answers both hosts, each as its own VPC",
                   "ok: every record of both files is in the merged timeline",
                   "ok: ordered by vpcdns.received_at",
                   "ok: dnsdist moved the load to replica 1"]
        let output = try CLI.checkDemoScript("scale-demo.sh", limit: 120, suite: "ScaleDemoTests",
                                             summary: "scale-demo: every check passed", oks: oks)
        // The transcripts are real: each host's dig shows its own VPC's address from dnsdist.
        #expect(output.contains("api.svc.internal.\t60\tIN\tA\t10.1.0.10") && output.contains("api.svc.internal.\t60\tIN\tA\t10.2.0.20"))
        #expect(output.contains("SERVER: 10.0.0.53#53(10.0.0.53) (UDP)"))
        // Torn down: none of the run's namespaces (vpcdns-sdPID-ROLE) is left.
        let bridge = output.split(separator: "\n").first { $0.contains("the bridge br0") }?.split(separator: " ").first.map(String.init)
        let runPrefix = try #require(bridge?.dropLast("sw".count), "the set-up table is missing:\n\(output)")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: "/var/run/netns")) ?? []
        #expect(!left.contains { $0.hasPrefix(runPrefix) }, "left behind: \(left)")
    }
}
