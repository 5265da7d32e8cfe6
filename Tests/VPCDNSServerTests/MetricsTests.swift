import DNSWire
import Foundation
import Logging
import NIOCore
import Testing
import VPCDNSConsole
import VPCDNSCore
@testable import VPCDNSServer

@Suite("Metrics: counting tables, reload folding, text, /healthz 503")
struct MetricsTests {
    @Test("every request slot maps back to its own labels")
    func slots() {
        let t = RequestCounters(vpcIDs: ["vpc-a", "vpc-b"])
        var seen = Set<Int>()
        for v in [0, 1, nil] as [Int?] {
            for tcp in [false, true] {
                for k in RequestCounters.kinds {
                    for r in [RCode.noError, .formErr, .servFail, .nxDomain, .notImp, .refused, .badVers] {
                        let slot = t.slot(vpcIndex: v, tcp: tcp, kind: k, rcode: r)
                        #expect(slot >= 0 && slot < t.counters.slots)
                        #expect(seen.insert(slot).inserted)
                        let l = t.labels(ofSlot: slot)
                        #expect(l == .init(vpc: v.map { ["vpc-a", "vpc-b"][$0] } ?? "-", proto: tcp ? "tcp" : "udp",
                                           decision: k.rawValue, rcode: r.description))
                    }
                }
            }
        }
        // An index from another model never reads out of bounds: it counts as "-".
        #expect(t.labels(ofSlot: t.slot(vpcIndex: 7, tcp: false, kind: .upstream, rcode: .noError)).vpc == "-")
    }

    @Test("sharded counters add up over threads")
    func sharded() async {
        let c = ShardedCounters(slots: 3, shards: 4)
        await withTaskGroup(of: Void.self) { g in
            for _ in 0..<4 {
                g.addTask { for i in 0..<10_000 { c.add(i % 3) } }
            }
        }
        #expect(c.totals().reduce(0, +) == 40_000)
        #expect(c.total(0) == 13_336)
    }

    @Test("counts of a retired table are kept across reloads")
    func reloadKeepsCounts() {
        let m = DNSMetrics()
        let t1 = RequestCounters(vpcIDs: ["vpc-a"])
        m.adopt(t1)
        m.countAnswer(t1, vpcIndex: 0, transport: .udp, kind: .privateHostedZone, rcode: .noError, elapsed: .microseconds(30))
        let t2 = RequestCounters(vpcIDs: ["vpc-b", "vpc-a"])
        m.adopt(t2)
        m.countAnswer(t2, vpcIndex: 1, transport: .udp, kind: .privateHostedZone, rcode: .noError, elapsed: .milliseconds(3))
        m.countAnswer(t1, vpcIndex: 0, transport: .udp, kind: .privateHostedZone, rcode: .noError, elapsed: .seconds(3))  // late, old snapshot
        let totals = m.requestTotals()
        #expect(totals[.init(vpc: "vpc-a", proto: "udp", decision: "private-hosted-zone", rcode: "NOERROR")] == 3)
        #expect(totals.count == 1)
        let d = m.durationTotals()
        #expect(d.buckets[0] == 1)                               // ≤ 50 µs
        #expect(d.buckets[6] == 1)                               // ≤ 5 ms
        #expect(d.buckets[DNSMetrics.durationBounds.count] == 1)  // +Inf
        #expect(d.sumNanos == 3_003_030_000)
    }

    @Test("bucket bounds print as plain decimals")
    func bounds() {
        #expect(DNSMetrics.durationBounds.map(MetricsExporter.seconds) ==
                ["0.00005", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2"])
    }

    @Test("/healthz is 200 while serving and 503 once the listeners stop; /metrics keeps answering")
    func healthz() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vpcdns-metrics-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("vpcdns.yaml").path
        try """
            listen: ["127.0.0.2:0"]
            upstreams: ["127.0.0.1:9"]
            metrics: "127.0.0.1:0"
            vpcs:
              - id: vpc-0a11ce0000000001a
                region: us-west-2
                cidrs: [10.0.0.0/16]
                clients: [127.0.0.0/8]
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let runtime = try await ServerRuntime(configPath: config, listenOverride: nil, logger: Logger(label: "test"),
                                              metricsHTTP: MetricsHTTPServer.binder)
        let m = try #require(runtime.metricsAddress)
        #expect(m.port != 0)
        #expect(await runtime.isHealthy())
        #expect(try await Shell.httpOffPool("http://\(m)/healthz").status == 200)
        await runtime.listeners.shutdown(gracePeriod: .zero)
        #expect(!(await runtime.isHealthy()))
        let h = try await Shell.httpOffPool("http://\(m)/healthz")
        #expect(h.status == 503)
        let metrics = try await Shell.httpOffPool("http://\(m)/metrics")
        #expect(metrics.status == 200 && metrics.body.contains("vpcdns_reloads_total"))
        #expect(await runtime.reload() == false)  // the listeners are gone: rejected, counted
        #expect(runtime.metrics.reloads.rejected == 1)
        await runtime.metricsServer.withLock { $0 }?.close()
        try await runtime.group.shutdownGracefully()
    }
}
