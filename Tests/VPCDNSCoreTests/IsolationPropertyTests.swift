import DNSWire
import Testing
@testable import VPCDNSCore

/// R14 as a property: for every private zone, every name in it (and a name below each),
/// every VPC the zone is not associated with, and an unmatched client, in every transport
/// address a client can use, the decision never carries a record of that zone.
@Suite("R14 isolation")
struct IsolationPropertyTests {
    @Test("no VPC and no unmatched client ever receives another VPC's private records")
    func isolation() throws {
        let model = TestModel.model
        let r = Resolver(model: model)
        let types: [RRType] = [.a, .aaaa, .txt, .cname, .mx, .any, .soa, .ns, .srv]
        var checked = 0
        for (zi, zone) in r.zoneSet.zones.enumerated() {
            if case .endpointName = zone.origin { continue } // public by design (R10)
            let owners = r.zoneSet.candidates.indices.filter { v in
                r.zoneSet.candidates[v][NameKey(zone.apex)]?.contains { if case .zone(zi) = $0.action { true } else { false } } ?? false
            }
            let privateRecords = Set(zone.allRecords.filter { $0.type != .soa && $0.type != .ns })
            let names = Set(zone.allRecords.map(\.name)).flatMap { n -> [DNSName] in
                [n, (try? n.prepending("probe")) ?? n, n.isWildcard ? ((try? n.parent!.prepending("w1")) ?? n) : n]
            }
            // Every way a client can reach vpcdns: by source (each VPC's client range), on each
            // VPC's resolver and inbound addresses, and from an address no VPC claims.
            var askers: [(IPAddress, SocketEndpoint, Int?)] = [(IPAddress("203.0.113.77")!, TestModel.listen, nil)]
            for (v, vpc) in model.vpcs.enumerated() where !owners.contains(v) {
                if let c = vpc.clients.first ?? vpc.cidrs.first { askers.append((c.address, TestModel.listen, v)) }
                for a in vpc.resolverAddresses { askers.append((IPAddress("198.51.100.1")!, a, v)) }
                for ib in vpc.inboundEndpoints { for a in ib.addresses { askers.append((IPAddress("198.51.100.1")!, a, v)) } }
            }
            for (client, listener, _) in askers {
                for name in names {
                    for t in types {
                        let d = r.resolve(Question(name: name, type: t), client: client, listener: listener)
                        var seen: [ResourceRecord] = []
                        switch d.outcome {
                        case .answer(let a): seen = a.answer + a.authority + a.additional
                        case .forward(let f): seen = f.chain
                        case .refused: break
                        }
                        // Wildcard answers are renamed: compare by type and rdata too.
                        let leaked = seen.filter { rr in
                            privateRecords.contains(rr) || (privateRecords.contains { $0.type == rr.type && $0.rdata == rr.rdata && $0.name.isWildcard && rr.name.isSubdomain(of: $0.name.parent!) })
                        }
                        #expect(leaked.isEmpty, "\(name) \(t) from \(client) via \(listener) leaked \(leaked.count) record(s) of zone \(zone.apex)")
                        checked += 1
                    }
                }
            }
        }
        #expect(checked > 1000)
    }

    /// R14 for R16/R17: an instance's resource name answers only in its own VPC; a PTR answers
    /// only for the asking VPC's own addresses (or its own instances); an IP name of a
    /// non-RFC 1918 address answers only in a VPC whose CIDRs hold it.
    @Test("EC2 resource names, IP names and PTRs stay with their VPC")
    func autodefinedIsolation() throws {
        let model = TestModel.model
        let r = Resolver(model: model)
        var addresses: [UInt32] = [0x0808_0808]
        for vpc in model.vpcs {
            for p in vpc.cidrs { if case .v4(let n) = p.address { addresses += [n + 5, n + 0x105] } }
        }
        for i in model.instances { if case .v4(let v) = i.ipv4 { addresses.append(v) } }
        var checked = 0
        for (v, vpc) in model.vpcs.enumerated() {
            let domain = AutodefinedNames.ec2Domain(region: vpc.region)
            let owns = { (a: UInt32) in vpc.cidrs.contains { $0.contains(.v4(a)) } }
            for a in addresses {
                let ptr = r.resolve(Question(name: AutodefinedNames.reverseName(a), type: .ptr), vpcIndex: v, via: .source)
                let ownInstance = model.instances.contains { $0.vpcID == vpc.id && $0.ipv4 == .v4(a) }
                if case .answer(let ans) = ptr.outcome, ptr.kind == .reverseDNS, !ans.answer.isEmpty {
                    #expect(owns(a) || ownInstance, "\(vpc.id) got a PTR for \(IPAddress.v4(a)), not its address")
                }
                let ipName = r.resolve(Question(name: AutodefinedNames.ipName(a, domain: domain), type: .a), vpcIndex: v, via: .source)
                if case .answer(let ans) = ipName.outcome, !ans.answer.isEmpty {
                    #expect(owns(a) || AutodefinedNames.isRFC1918(a), "\(vpc.id) got an IP name for \(IPAddress.v4(a))")
                }
                checked += 2
            }
            for inst in model.instances where inst.vpcID != vpc.id {
                let name = try domain.prepending(inst.id)
                for t in [RRType.a, .aaaa, .any] {
                    let d = r.resolve(Question(name: name, type: t), vpcIndex: v, via: .source)
                    if case .answer(let ans) = d.outcome {
                        #expect(ans.answer.isEmpty, "\(vpc.id) received \(name) \(t) of another VPC's instance")
                    }
                    checked += 1
                }
            }
        }
        // An unmatched client is refused before any of it.
        let d = r.resolve(Question(name: try DNSName("ip-10-0-1-5.us-west-2.compute.internal"), type: .a),
                          client: IPAddress("203.0.113.77")!, listener: TestModel.listen)
        #expect(d.kind == .refused)
        #expect(checked > 50)
    }
}
