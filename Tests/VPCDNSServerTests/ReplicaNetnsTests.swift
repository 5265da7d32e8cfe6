import Foundation
import Testing
import VPCDNSCore
@testable import VPCDNSServer

/// Issue 17's scale-out topology on real network namespaces, one per machine, all on one
/// bridge (`Netns.Segment`, 10.0.0.0/8, no other route anywhere):
///
///   lb      10.0.0.53  dnsdist 1.7 (`useProxyProtocol=true`, health checks every second)
///   r1, r2  10.0.0.11, 10.0.0.12  one `vpcdns serve` replica each, trusting only 10.0.0.53
///   alpha   10.1.0.5   a test host in VPC alpha (10.1.0.0/16)
///   beta    10.2.0.5   a test host in VPC beta (10.2.0.0/16)
///
/// The test hosts ask dnsdist with `dig` and dnsperf from their own namespace; a replica only
/// sees dnsdist's address, so it can answer each host as its own VPC only by the PROXY v2
/// header (V2, P9). Then: a zone change and SIGHUP to both replicas under load (no query
/// lost, O2), one replica stopped under load (the other keeps answering; the loss is
/// reported), and both replicas' query logs merged by `vpcdns logs filter`.
@Suite("Replicas and test hosts in network namespaces behind dnsdist (P9, O2)", .serialized)
struct ReplicaNetnsTests {
    typealias Member = Netns.Member
    static let name = DnsdistReplicas.name
    static let alphaAnswer = DnsdistReplicas.alphaAnswer
    static let betaAnswer = DnsdistReplicas.betaAnswer
    static let alphaReloaded = "10.1.0.99"

    struct Replica {
        let host: Member
        let log: String
        let process: ServeProcess
    }

    @Test("two VPCs' hosts through dnsdist to replicas in their own namespaces: own answers, reload and failover under load, merged logs")
    func replicasInNamespaces() async throws {
        try Netns.prepare("ReplicaNetnsTests")
        try DnsdistReplicas.requireTools()
        let segment = Netns.Segment(tag: Netns.newTag(), prefixLength: 8)
        do {
            defer { segment.destroy() }
            do {
                try segment.create()
            } catch {
                // Namespaces work but this kernel has no bridge: the environment, not vpcdns.
                print("\n!!!!! ReplicaNetnsTests SKIPPED: cannot make a bridge in a network namespace: \(error) !!!!!\n")
                try Test.cancel("skipped: cannot make a bridge in a network namespace: \(error)")
            }
            let lb = try segment.attach("lb", address: "10.0.0.53")
            let r1 = try segment.attach("r1", address: "10.0.0.11")
            let r2 = try segment.attach("r2", address: "10.0.0.12")
            let alpha = try segment.attach("alpha", address: "10.1.0.5")
            let beta = try segment.attach("beta", address: "10.2.0.5")
            try await scenario(bridge: segment.bridgeNamespace, lb: lb, replicaHosts: [r1, r2], alpha: alpha, beta: beta)
        }

        // Cleaned up: none of this run's namespaces is left (their links went with them).
        let left = try Netns.run(["netns", "list"]).output
        for ns in segment.members.map(\.namespace) + [segment.bridgeNamespace] {
            #expect(!left.contains(ns), "\(ns) left behind: \(left)")
        }
    }

    private func scenario(bridge: String, lb: Member, replicaHosts: [Member], alpha: Member, beta: Member) async throws {
        // No default route anywhere: the segment is all a namespace can reach.
        for m in [lb, alpha, beta] + replicaHosts {
            let routes = try Netns.run(["-n", m.namespace, "route", "show"]).output
            #expect(!routes.contains("default"), "\(m.namespace): \(routes)")
        }

        let dir = try ServeHarness.makeDirectory("vpcdns-replicas-netns")
        defer { try? FileManager.default.removeItem(at: dir) }
        let zoneFile = dir.appendingPathComponent("svc.internal.zone")
        try DnsdistReplicas.zone(api: Self.alphaAnswer).write(to: zoneFile, atomically: true, encoding: .utf8)
        var replicas: [Replica] = []
        for (i, host) in replicaHosts.enumerated() {
            // The upstream is a port on the replica's own loopback where nothing listens: only
            // private names are asked here.
            let (log, p) = try await DnsdistReplicas.startReplica(i + 1, in: dir, namespace: host.namespace) {
                DnsdistReplicas.config(listen: "\(host.address):53", upstream: "127.0.0.1:9", queryLog: $0,
                                       trustedProxies: ["\(lb.address)/32"], alphaZoneFile: zoneFile.path)
            }
            replicas.append(Replica(host: host, log: log, process: p))
        }
        defer { for r in replicas { r.process.stop() } }

        let dnsdist = try DnsdistReplicas.startDnsdist(in: dir, listen: "\(lb.address):53", acl: ["10.0.0.0/8"],
                                                       backends: replicaHosts.map { "\($0.address):53" }, namespace: lb.namespace)
        defer { dnsdist.stop() }
        print("""
            [replicas-netns] bridge br0 in \(bridge); \
            dnsdist \(lb.address):53 in \(lb.namespace); \
            replicas \(replicas.map { "\($0.host.address):53 in \($0.host.namespace)" }.joined(separator: ", ")); \
            VPC alpha host \(alpha.address) in \(alpha.namespace); VPC beta host \(beta.address) in \(beta.namespace)
            """)

        // Both backends up (their first health check passed) before anything is measured.
        var ready = 0
        for _ in 0..<50 where ready < 4 {
            let r = try alpha.dig(Self.name, server: lb)
            ready = r.rdata("A") == [Self.alphaAnswer] ? ready + 1 : 0
            if ready < 4 { try await Task.sleep(for: .milliseconds(200)) }
        }
        try #require(ready >= 4, "dnsdist never answered steadily: \(DnsdistReplicas.dnsdistErrors(in: dir))")

        // Each host gets its own VPC's answer, over UDP and TCP, several times so that round
        // robin reaches both replicas.
        for round in 0..<4 {
            for opts in [[String](), ["+tcp"]] {
                let a = try alpha.dig(Self.name, server: lb, options: opts)
                #expect(a.rdata("A") == [Self.alphaAnswer] && a.aa, "\(a.output)")
                let b = try beta.dig(Self.name, server: lb, options: opts)
                #expect(b.rdata("A") == [Self.betaAnswer] && b.aa, "\(b.output)")
                if round == 0 && opts.isEmpty {
                    print("[netns \(alpha.namespace)] dig @\(lb.address) \(Self.name)\n\(a.output)")
                    print("[netns \(beta.namespace)] dig @\(lb.address) \(Self.name)\n\(b.output)")
                }
            }
        }

        // Each replica logged the test hosts (the header's source), dnsdist as the proxy and
        // dnsdist's own listener (the header's destination).
        var seen: Set<String> = []
        for r in replicas {
            let records = await QueryLogFile.wait(r.log, count: 2) { $0.string("query_name") == "\(Self.name)." }
            #expect(records.count >= 2, "replica \(r.host.address) logged \(records.count) queries")
            for rec in records {
                let src = rec.string("srcaddr") ?? ""
                seen.insert(src)
                #expect(src == alpha.address || src == beta.address, "\(rec)")
                #expect(rec.string("vpc_id") == (src == alpha.address ? DnsdistReplicas.alpha : DnsdistReplicas.beta), "\(rec)")
                #expect(rec.vpcdns("proxy")?.hasPrefix("\(lb.address):") == true, "\(rec)")
                #expect(rec.vpcdns("listener") == "\(lb.address):53", "\(rec)")
            }
            // dnsdist's health checks (PROXY v2 LOCAL): dnsdist itself, no VPC, REFUSED.
            let checks = await QueryLogFile.wait(r.log) { $0.string("srcaddr") == lb.address }
            #expect(checks.first?.string("rcode") == "REFUSED" && checks.first?.vpcdns("proxy") != nil, "\(checks)")
        }
        #expect(seen == [alpha.address, beta.address], "\(seen)")

        try await reloadUnderLoad(lb: lb, alpha: alpha, replicas: replicas, zoneFile: zoneFile, dir: dir)
        try await failoverUnderLoad(lb: lb, alpha: alpha, beta: beta, replicas: replicas, dir: dir)

        #expect(replicas[0].process.stop() == 0, "\(replicas[0].process.standardError)")
        try mergedLogs(replicas: replicas, alpha: alpha, beta: beta)
    }

    /// O2 behind dnsdist: alpha's zone file changes and both replicas get SIGHUP 1 s into a
    /// bounded load from alpha's host (dnsperf at 1,000 a second, at most 5,000 queries and
    /// 5 s, 2 s timeout; a dig loop of at most 200 queries and 15 s). Nothing may be lost,
    /// and once both replicas said so, every answer is the new record.
    private func reloadUnderLoad(lb: Member, alpha: Member, replicas: [Replica], zoneFile: URL, dir: URL) async throws {
        let (perfPid, perfOut) = try DnsdistReplicas.startDnsperf(server: lb.address, port: 53, ["-n", "5000", "-l", "5", "-Q", "1000", "-c", "2", "-q", "50", "-t", "2"],
                                                                  dir: dir, output: "dnsperf-reload", namespace: alpha.namespace)
        defer { kill(perfPid, SIGKILL); var st: Int32 = 0; waitpid(perfPid, &st, WNOHANG) }
        let start = ContinuousClock.now
        let processes = replicas.map(\.process)
        let reload = DnsdistReplicas.changeZoneAndReload(after: .seconds(1), zoneFile: zoneFile, api: Self.alphaReloaded, replicas: processes)
        defer { reload.cancel() }
        var bothReloaded = false
        var digs = 0, unanswered = 0, oldAfterReload = 0, newAfterReload = 0, other = 0
        // Through the load, and on (at most 15 s in all) until a few answers came after both
        // reloads, since a dig from a namespace can be slow on a loaded machine.
        while digs < 200 && (ContinuousClock.now - start < .milliseconds(4500)
                             || (newAfterReload + oldAfterReload < 5 && ContinuousClock.now - start < .seconds(15))) {
            if !bothReloaded { bothReloaded = DnsdistReplicas.allReloaded(processes) }
            let reloadedBeforeQuery = bothReloaded
            let r = try alpha.dig(Self.name, server: lb)
            digs += 1
            let a = r.rdata("A")
            if r.status != "NOERROR" { unanswered += 1 }
            else if a == [Self.alphaReloaded] { if reloadedBeforeQuery { newAfterReload += 1 } }
            else if a == [Self.alphaAnswer] { if reloadedBeforeQuery { oldAfterReload += 1 } }
            else { other += 1 }
        }
        try await reload.value
        let perf = DnsperfSummary.wait(pid: perfPid, output: perfOut)
        print("[replicas-netns] reload: dnsperf from \(alpha.address) sent \(perf.sent ?? -1), completed \(perf.completed ?? -1), "
              + "lost \(perf.lost ?? -1); dig loop \(digs) queries, \(unanswered) unanswered, "
              + "after both reloads \(newAfterReload) new and \(oldAfterReload) old, \(other) other")

        #expect(bothReloaded, "reload not confirmed: \(replicas.map(\.process.standardError))")
        for r in replicas { #expect(r.process.isRunning && !r.process.standardError.contains("reload rejected"), "\(r.process.standardError)") }
        let sent = try #require(perf.sent, "dnsperf said: \(perf.text)")
        #expect(sent >= 2000 && perf.lost == 0 && perf.completed == sent, "\(perf.text)")
        #expect(perf.text.contains("NOERROR \(sent) (100.00%)"), "not every dnsperf answer was NOERROR: \(perf.text)")
        #expect(unanswered == 0 && other == 0, "\(unanswered) dig queries unanswered, \(other) with another answer")
        #expect(oldAfterReload == 0 && newAfterReload >= 5, "after both reloads: \(newAfterReload) new, \(oldAfterReload) old")
    }

    /// Replica 2 stops (SIGTERM) 1.5 s into a bounded load: dnsperf from alpha's host (2,000 a
    /// second, at most 8,000 queries and 6 s, at most 100 outstanding, 1 s timeout) and a dig
    /// loop from beta's host (one at a time, 1 s timeout, at most 150 queries and 6 s). dnsdist
    /// marks the replica down at its next failed health check (every second, 1 s timeout);
    /// what it sent there until then is lost, everything after is answered by replica 1.
    private func failoverUnderLoad(lb: Member, alpha: Member, beta: Member, replicas: [Replica], dir: URL) async throws {
        let (perfPid, perfOut) = try DnsdistReplicas.startDnsperf(server: lb.address, port: 53, ["-n", "8000", "-l", "6", "-Q", "2000", "-c", "4", "-q", "100", "-t", "1"],
                                                                  dir: dir, output: "dnsperf-failover", namespace: alpha.namespace)
        defer { kill(perfPid, SIGKILL); var st: Int32 = 0; waitpid(perfPid, &st, WNOHANG) }
        let start = ContinuousClock.now
        var stoppedAt: ContinuousClock.Instant? = nil
        var digs = 0, wrong = 0
        // When each failed dig was sent, counted from the stop (negative: before it).
        var failedAt: [Duration] = []
        while digs < 150 && ContinuousClock.now - start < .seconds(6) {
            if stoppedAt == nil && ContinuousClock.now - start > .milliseconds(1500) {
                replicas[1].process.stop()
                stoppedAt = ContinuousClock.now
            }
            let sentAt = ContinuousClock.now
            let r = try beta.dig(Self.name, server: lb)
            digs += 1
            if r.status != "NOERROR" { failedAt.append(sentAt - (stoppedAt ?? .now)) }
            else if r.rdata("A") != [Self.betaAnswer] { wrong += 1 }
        }
        if stoppedAt == nil { replicas[1].process.stop() }
        let digFailed = failedAt.count
        let perf = DnsperfSummary.wait(pid: perfPid, output: perfOut)
        print("[replicas-netns] failover: replica \(replicas[1].host.address) stopped 1.5 s in; dnsperf from \(alpha.address) "
              + "sent \(perf.sent ?? -1), completed \(perf.completed ?? -1), lost \(perf.lost ?? -1); "
              + "dig loop from \(beta.address) \(digs) queries, \(digFailed) failed (sent \(failedAt) after the stop), \(wrong) wrong")

        #expect(replicas[1].process.exitCode == 0, "\(replicas[1].process.standardError)")
        #expect(wrong == 0)
        let sent = try #require(perf.sent, "dnsperf said: \(perf.text)")
        let lost = try #require(perf.lost, "dnsperf said: \(perf.text)")
        #expect(sent > 1000 && lost < sent / 4, "\(perf.text)")
        #expect(!perf.text.contains("REFUSED"), "a proxied query was answered as the proxy: \(perf.text)")
        // Failures only in the switch: after the stop, before dnsdist's check found it (1 s
        // interval + 1 s check timeout, and 1.5 s for a loaded machine).
        #expect(failedAt.allSatisfy { $0 >= .zero && $0 < .milliseconds(3500) }, "dig failures at \(failedAt) from the stop")
        // Afterwards replica 1 alone answers both hosts, each as its own VPC.
        for _ in 0..<3 {
            let a = try alpha.dig(Self.name, server: lb)
            #expect(a.rdata("A") == [Self.alphaReloaded], "\(a.output)")
            let b = try beta.dig(Self.name, server: lb)
            #expect(b.rdata("A") == [Self.betaAnswer], "\(b.output)")
        }
    }

    /// `vpcdns logs filter` over both replicas' logs: every record of both, one timeline by
    /// `vpcdns.received_at`, the files interleaved, each with both test hosts as `srcaddr`.
    private func mergedLogs(replicas: [Replica], alpha: Member, beta: Member) throws {
        typealias Record = QueryLogFile.Record
        func key(_ r: Record) -> String {
            ["srcaddr", "srcport", "transport", "query_name"].map { r.string($0) ?? "" }.joined(separator: " ")
                + " " + (r.vpcdns("received_at") ?? "")
        }
        let perFile = replicas.map { QueryLogFile.records($0.log) }
        var origin: [String: Int] = [:]
        for (i, records) in perFile.enumerated() {
            for r in records { origin[key(r)] = i }
            let sources = Set(records.compactMap { $0.string("srcaddr") })
            #expect(sources.isSuperset(of: [alpha.address, beta.address]), "replica \(i + 1) logged only \(sources)")
        }

        let result = try Command.run(VPCDNSBinary.path, ["logs", "filter"] + replicas.map(\.log), timeout: .seconds(60))
        #expect(result.exitCode == 0, "\(result.error)")
        let merged = result.output.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? Record
        }
        #expect(merged.count == perFile.map(\.count).reduce(0, +), "merged \(merged.count) of \(perFile.map(\.count)) records")
        let times = merged.map { $0.vpcdns("received_at") ?? "" }
        #expect(!times.contains("") && times == times.sorted(), "not ordered by received_at")
        let files = merged.compactMap { origin[key($0)] }
        #expect(files.count == merged.count, "merged records that are in neither file")
        let switches = zip(files, files.dropFirst()).filter { $0 != $1 }.count
        #expect(switches > 2, "the files were not interleaved (\(switches) switches)")

        // Narrowed to VPC beta: only beta's host, from both replicas.
        let betaOnly = try Command.run(VPCDNSBinary.path, ["logs", "filter", "--vpc", DnsdistReplicas.beta] + replicas.map(\.log), timeout: .seconds(60))
        let betaRecords = betaOnly.output.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? Record
        }
        #expect(!betaRecords.isEmpty && betaRecords.allSatisfy { $0.string("srcaddr") == beta.address }, "\(betaOnly.output.prefix(2000))")
        #expect(Set(betaRecords.compactMap { origin[key($0)] }) == [0, 1])
        print("[replicas-netns] vpcdns logs filter replica1/queries.jsonl replica2/queries.jsonl: \(merged.count) records "
              + "(\(perFile.map(\.count).map(String.init).joined(separator: " + "))), \(switches) switches between files; "
              + "--vpc \(DnsdistReplicas.beta): \(betaRecords.count), first ones:")
        for r in betaRecords.prefix(3) {
            print("  replica\((origin[key(r)] ?? -1) + 1) \(r.vpcdns("received_at") ?? "") \(r.string("srcaddr") ?? "") "
                  + "via \(r.vpcdns("proxy") ?? "-") \(r.string("transport") ?? "") \(r.string("query_name") ?? "") \(r.string("rcode") ?? "")")
        }
    }
}
