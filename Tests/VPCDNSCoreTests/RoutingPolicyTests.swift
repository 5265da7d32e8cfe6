import DNSWire
import Testing
@testable import VPCDNSCore

/// R18 as a pure function: chance from a fixed seed, health passed in.
@Suite("R18 routing policies")
struct RoutingPolicyTests {
    func a(_ addr: String) -> ResourceRecord {
        ResourceRecord(name: try! DNSName("x.routed.internal"), type: .a, ttl: 60, rdata: IPAddress(addr)!.bytes)
    }
    func member(_ id: String, _ policy: RoutedRecordSet.Policy, _ addr: String, check: Int? = nil) -> RoutingGroup.Member {
        RoutingGroup.Member(setIdentifier: id, policy: policy, check: check, records: [a(addr)], recordChecks: [])
    }
    struct Failing: HealthSource {
        let failing: Set<Int>
        func isHealthy(_ check: Int) -> Bool { !failing.contains(check) }
    }

    @Test("10,000 weighted choices with a fixed seed land within 3% of the weights")
    func weightedProportions() {
        let weights: [UInt8] = [10, 30, 60, 0]
        let group = RoutingGroup(name: try! DNSName("x.routed.internal"), type: .a,
                                 members: weights.enumerated().map { member("s\($0)", .weighted($1), "10.0.0.\($0 + 1)") })
        var seeds = SplitMix64(seed: 42)
        var counts = [0, 0, 0, 0]
        let n = 10_000
        for _ in 0..<n {
            let c = RoutingPolicy.choose(group, input: RoutingInput(seed: seeds.next()))
            #expect(c.chosen.count == 1)
            counts[c.chosen[0]] += 1
        }
        let total = Double(weights.reduce(0) { $0 + Int($1) })
        for (i, w) in weights.enumerated() {
            let share = Double(counts[i]) / Double(n)
            #expect(abs(share - Double(w) / total) < 0.03, "set s\(i): \(share) of answers for weight \(w)/\(Int(total))")
        }
        #expect(counts[3] == 0, "a weight-0 set is never served while a weighted one is healthy")
    }

    @Test("weighted: unhealthy sets get nothing; all weights 0 share equally")
    func weightedHealthAndZeroWeights() {
        let group = RoutingGroup(name: try! DNSName("x.routed.internal"), type: .a, members: [
            member("a", .weighted(200), "10.0.0.1", check: 0), member("b", .weighted(1), "10.0.0.2"),
        ])
        var seeds = SplitMix64(seed: 7)
        for _ in 0..<2_000 {
            let c = RoutingPolicy.choose(group, input: RoutingInput(health: Failing(failing: [0]), seed: seeds.next()))
            #expect(c.chosen == [1])
        }
        let zeros = RoutingGroup(name: try! DNSName("x.routed.internal"), type: .a,
                                 members: (0..<4).map { member("z\($0)", .weighted(0), "10.0.0.\($0 + 1)") })
        var counts = [0, 0, 0, 0]
        for _ in 0..<10_000 { counts[RoutingPolicy.choose(zeros, input: RoutingInput(seed: seeds.next())).chosen[0]] += 1 }
        for c in counts { #expect(abs(Double(c) / 10_000 - 0.25) < 0.03, "all weights 0: equal chance, got \(counts)") }
    }

    @Test("multivalue never returns an unhealthy set while a healthy one exists; none healthy gives up to 8 regardless")
    func multivalue() {
        // 12 sets, checks 0...11; odd ones failing.
        let group = RoutingGroup(name: try! DNSName("x.routed.internal"), type: .a,
                                 members: (0..<12).map { member("m\($0)", .multivalue, "10.0.1.\($0 + 1)", check: $0) })
        var seeds = SplitMix64(seed: 99)
        let odd = Failing(failing: Set((0..<12).filter { $0 % 2 == 1 }))
        var seen = Set<Int>()
        for _ in 0..<2_000 {
            let c = RoutingPolicy.choose(group, input: RoutingInput(health: odd, seed: seeds.next()))
            #expect(c.chosen.count == 6)
            #expect(c.chosen.allSatisfy { $0 % 2 == 0 }, "an unhealthy set was returned: \(c.chosen)")
            #expect(c.records.count == c.chosen.count)
            seen.formUnion(c.chosen)
        }
        #expect(seen == Set(stride(from: 0, to: 12, by: 2)))
        // Only one healthy: only it.
        let oneHealthy = Failing(failing: Set(1..<12))
        #expect(RoutingPolicy.choose(group, input: RoutingInput(health: oneHealthy, seed: 1)).chosen == [0])
        // None healthy: 8 of them, all distinct, at random.
        let none = Failing(failing: Set(0..<12))
        var firsts = Set<Int>()
        for _ in 0..<200 {
            let c = RoutingPolicy.choose(group, input: RoutingInput(health: none, seed: seeds.next()))
            #expect(c.chosen.count == RoutingPolicy.multivalueLimit)
            #expect(Set(c.chosen).count == c.chosen.count)
            firsts.insert(c.chosen[0])
        }
        #expect(firsts.count > 6, "the 8 are chosen at random")
        // Healthy but more than 8: still at most 8.
        #expect(RoutingPolicy.choose(group, input: RoutingInput(seed: 3)).chosen.count == 8)
    }

    @Test("failover: the SECONDARY only while the PRIMARY is unhealthy; a lone unhealthy PRIMARY is still served")
    func failover() {
        let group = RoutingGroup(name: try! DNSName("x.routed.internal"), type: .a, members: [
            member("p", .failover(.primary), "10.0.0.1", check: 0), member("s", .failover(.secondary), "10.0.0.2", check: 1),
        ])
        let up = RoutingPolicy.choose(group, input: RoutingInput(seed: 5))
        #expect(up.recordSet == "p" && !up.primaryUnhealthy)
        let down = RoutingPolicy.choose(group, input: RoutingInput(health: Failing(failing: [0]), seed: 5))
        #expect(down.recordSet == "s" && down.primaryUnhealthy && down.healthy == [false, true])
        let both = RoutingPolicy.choose(group, input: RoutingInput(health: Failing(failing: [0, 1]), seed: 5))
        #expect(both.recordSet == "s" && both.primaryUnhealthy)
        let alone = RoutingGroup(name: try! DNSName("x.routed.internal"), type: .a, members: [member("p", .failover(.primary), "10.0.0.1", check: 0)])
        let c = RoutingPolicy.choose(alone, input: RoutingInput(health: Failing(failing: [0]), seed: 5))
        #expect(c.recordSet == "p" && !c.primaryUnhealthy)
    }

    @Test("evaluate_target_health: a failing subnet's address is left out; with none left the set is unhealthy")
    func evaluateTargetHealth() throws {
        let app = "vpc-0a11ce0000000001a"
        let s = Settings()
        let vpc = VPC(id: app, region: "us-west-2", cidrs: [IPPrefix("10.0.0.0/16")!], clients: [IPPrefix("127.0.0.0/8")!], enableDNSHostnames: true)
        let ep = TestModel.endpoint("vpce-0aaa0000000000001", vpc: app, service: "com.amazonaws.us-west-2.execute-api", privateDNS: false,
                                    subnets: [
                                        Endpoint.Subnet(az: "us-west-2a", ipv4: IPAddress("10.0.1.10"), healthCheck: "az-a"),
                                        Endpoint.Subnet(az: "us-west-2b", ipv4: IPAddress("10.0.2.10"), healthCheck: "az-b"),
                                    ])
        var zone = HostedZone(id: "Z0ROUTED000000000002", name: try DNSName("brand.example"), vpcIDs: [app], records: [], hasOwnSOA: false)
        zone.routedSets = [
            RoutedRecordSet(name: try DNSName("api.brand.example"), type: .a, setIdentifier: "endpoint", policy: .failover(.primary),
                            alias: .endpoint(ep.id), evaluateTargetHealth: true),
            RoutedRecordSet(name: try DNSName("api.brand.example"), type: .a, setIdentifier: "fallback", policy: .failover(.secondary),
                            records: [ResourceRecord(name: try DNSName("api.brand.example"), type: .a, ttl: 60, rdata: IPAddress("10.9.9.9")!.bytes)]),
        ]
        let checks = ["az-a", "az-b"].map { HealthCheck(id: $0, kind: .tcp, ip: IPAddress("127.0.0.1")!, port: 9) }
        let model = Model(settings: s, vpcs: [vpc], endpoints: [ep], endpointServices: [], hostedZones: [zone], healthChecks: checks)
        let resolver = Resolver(model: model)
        func answer(_ failing: Set<Int>) throws -> (addrs: [String], set: String?) {
            let d = resolver.resolve(Question(name: try DNSName("api.brand.example"), type: .a), vpcIndex: 0, via: .source,
                                     routing: RoutingInput(health: Failing(failing: failing), seed: 1))
            guard case .answer(let a) = d.outcome else { return ([], nil) }
            return (a.answer.map { IPAddress(bytes: $0.rdata)!.description }.sorted(), d.routing?.recordSet)
        }
        #expect(try answer([]) == (["10.0.1.10", "10.0.2.10"], "endpoint"))
        #expect(try answer([0]) == (["10.0.2.10"], "endpoint"))
        #expect(try answer([0, 1]) == (["10.9.9.9"], "fallback"))
    }
}
