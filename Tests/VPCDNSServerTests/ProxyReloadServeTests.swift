import Foundation
import Testing
import VPCDNSCore
@testable import VPCDNSServer

/// O2 behind dnsdist: two `vpcdns serve` replicas read one zone file; the file changes and
/// both replicas get SIGHUP while a bounded load runs through dnsdist. No query of the load may
/// be lost (a reload swaps the model atomically and never closes a socket), and once both
/// replicas said "configuration reloaded", every answer carries the new record.
@Suite("reload of both replicas behind dnsdist under load (O2, P9)", .serialized)
struct ProxyReloadServeTests {
    @Test("a changed zone file and SIGHUP to both replicas under load: no query lost, then only the new record")
    func reloadUnderLoad() async throws {
        try DnsdistReplicas.requireTools()
        _ = try VPCDNSBinary.require()
        let dir = try ServeHarness.makeDirectory("vpcdns-proxy-reload")
        defer { try? FileManager.default.removeItem(at: dir) }
        let dead = try await freePort(host: "127.0.0.1")
        let zoneFile = dir.appendingPathComponent("svc.internal.zone")
        try DnsdistReplicas.zone(api: "10.1.0.10").write(to: zoneFile, atomically: true, encoding: .utf8)
        var replicas: [ServeProcess] = []
        var ports: [Int] = []
        for i in 1...2 {
            let port = try await freePort(host: "127.0.0.1")
            let (_, p) = try await DnsdistReplicas.startReplica(i, in: dir) {
                ProxyProtocolServeTests.config(port: port, queryLog: $0, upstream: dead, alphaZoneFile: zoneFile.path)
            }
            replicas.append(p)
            ports.append(port)
        }
        defer { for r in replicas { r.stop() } }

        let front = try await freePort(host: "127.0.0.1")
        let dnsdistProcess = try ProxyProtocolServeTests.startDnsdist(in: dir, listen: front, backends: ports)
        defer { dnsdistProcess.stop() }
        let at = SocketEndpoint(ip: IPAddress("127.0.0.1")!, port: UInt16(front))
        // Both backends up (the first health check passed) before the load starts: a query
        // dnsdist cannot place would count as lost for a reason that is not the reload.
        var ready = 0
        for _ in 0..<50 where ready < 4 {
            let r = try DigRun.query("api.svc.internal", server: at, source: "127.0.0.11")
            ready = r.rdata("A") == ["10.1.0.10"] ? ready + 1 : 0
            if ready < 4 { try await Task.sleep(for: .milliseconds(200)) }
        }
        try #require(ready >= 4, "dnsdist never answered steadily: \(DnsdistReplicas.dnsdistErrors(in: dir))")

        // Bounded load from VPC alpha: dnsperf at 1,000 queries a second, at most 5,000 queries
        // and 5 s, 2 s timeout; beside it a dig loop (one query at a time, at most 200, 4.5 to 15 s).
        // 1 s in, the zone file is replaced (rename, so no replica reads half a file) and both
        // replicas get SIGHUP.
        let (perfPid, perfOut) = try DnsdistReplicas.startDnsperf(server: "127.0.0.1", port: front,
                                                                  ["-a", "127.0.0.11", "-n", "5000", "-l", "5", "-Q", "1000", "-c", "2", "-q", "50", "-t", "2"],
                                                                  dir: dir)
        defer { kill(perfPid, SIGKILL); var st: Int32 = 0; waitpid(perfPid, &st, WNOHANG) }
        let start = ContinuousClock.now
        let reload = DnsdistReplicas.changeZoneAndReload(after: .seconds(1), zoneFile: zoneFile, api: "10.1.0.99", replicas: replicas)
        defer { reload.cancel() }
        var bothReloaded = false
        var digs = 0, unanswered = 0, oldAfterReload = 0, newAfterReload = 0, other = 0
        var firstNewAt: Int? = nil
        // Through the load, and on (at most 15 s in all) until ten answers came after both
        // reloads: a dig can be slow on a loaded machine.
        while digs < 200 && (ContinuousClock.now - start < .milliseconds(4500)
                             || (newAfterReload + oldAfterReload < 10 && ContinuousClock.now - start < .seconds(15))) {
            if !bothReloaded { bothReloaded = DnsdistReplicas.allReloaded(replicas) }
            let reloadedBeforeQuery = bothReloaded
            let r = try DigRun.query("api.svc.internal", server: at, source: "127.0.0.11")
            digs += 1
            let a = r.rdata("A")
            if r.status != "NOERROR" { unanswered += 1 }
            else if a == ["10.1.0.99"] { if reloadedBeforeQuery { newAfterReload += 1 }; firstNewAt = firstNewAt ?? digs }
            else if a == ["10.1.0.10"] { if reloadedBeforeQuery { oldAfterReload += 1 } }
            else { other += 1 }
        }
        try await reload.value
        let perf = DnsperfSummary.wait(pid: perfPid, output: perfOut)
        let sent = perf.sent, lost = perf.lost, completed = perf.completed
        print("O2 reload behind dnsdist: dnsperf sent \(sent ?? -1), completed \(completed ?? -1), lost \(lost ?? -1); "
              + "dig loop \(digs) queries, \(unanswered) unanswered, first new answer at dig \(firstNewAt ?? -1), "
              + "after both reloads \(newAfterReload) new and \(oldAfterReload) old, \(other) other")

        #expect(bothReloaded, "reload not confirmed: \(replicas.map(\.standardError))")
        for r in replicas { #expect(r.isRunning && !r.standardError.contains("reload rejected"), "\(r.standardError)") }
        let s = try #require(sent, "dnsperf said: \(perf.text)")
        let l = try #require(lost, "dnsperf said: \(perf.text)")
        #expect(s >= 2000 && l == 0 && completed == s, "\(perf.text)")
        #expect(perf.text.contains("NOERROR \(s) (100.00%)"), "not every dnsperf answer was NOERROR: \(perf.text)")
        #expect(unanswered == 0 && other == 0, "\(unanswered) dig queries unanswered, \(other) with another answer")
        #expect(oldAfterReload == 0 && newAfterReload >= 10, "after both reloads: \(newAfterReload) new, \(oldAfterReload) old")

        // After the load: both replicas, through dnsdist (round robin) and directly, over UDP
        // and TCP, answer the new record; beta's inline zone is unchanged.
        for _ in 0..<3 {
            for opts in [[String](), ["+tcp"]] {
                // Two in a row, so that round robin gives one to each replica.
                for _ in 0..<2 {
                    let a = try DigRun.query("api.svc.internal", server: at, source: "127.0.0.11", options: opts)
                    #expect(a.rdata("A") == ["10.1.0.99"] && a.aa, "\(a.output)")
                }
                let b = try DigRun.query("api.svc.internal", server: at, source: "127.0.0.12", options: opts)
                #expect(b.rdata("A") == ["10.2.0.20"], "\(b.output)")
            }
        }
        for port in ports {
            let d = try DigRun.query("api.svc.internal", server: SocketEndpoint(ip: IPAddress("127.0.0.1")!, port: UInt16(port)),
                                     source: "127.0.0.11")
            #expect(d.rdata("A") == ["10.1.0.99"], "replica on \(port): \(d.output)")
        }
        for r in replicas { #expect(r.stop() == 0, "\(r.standardError)") }
    }
}
