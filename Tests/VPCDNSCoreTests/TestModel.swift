import DNSWire
@testable import VPCDNSCore

/// A model written in Swift for the decision tables: the example's scenarios plus the
/// corner cases each rule needs. Listener and client addresses are loopback ones.
enum TestModel {
    static let app = "vpc-0a11ce0000000001a"
    static let db = "vpc-0db0000000000002b"
    static let legacy = "vpc-01e9ac0000000003c"
    static let nodns = "vpc-0d150ff000000004d"
    static let twin1 = "vpc-07a100000000000e1"
    static let twin2 = "vpc-07a200000000000e2"
    static let listen = SocketEndpoint("127.0.0.1:1053")!

    static func n(_ s: String) -> DNSName { try! DNSName(s) }
    static func ip(_ s: String) -> IPAddress { IPAddress(s)! }
    static func ep(_ s: String) -> SocketEndpoint { SocketEndpoint(s)! }
    static func a(_ name: String, _ addr: String, ttl: UInt32 = 300) -> ResourceRecord {
        ResourceRecord(name: n(name), type: .a, ttl: ttl, rdata: ip(addr).bytes)
    }
    static func cname(_ name: String, _ target: String, ttl: UInt32 = 300) -> ResourceRecord {
        ResourceRecord(name: n(name), type: .cname, ttl: ttl, rdata: n(target).wire)
    }
    static func txt(_ name: String, _ text: String) -> ResourceRecord {
        ResourceRecord(name: n(name), type: .txt, ttl: 300, rdata: [UInt8(text.utf8.count)] + Array(text.utf8))
    }

    static func endpoint(_ id: String, vpc: String, service: String, kind: Endpoint.Kind = .interface, privateDNS: Bool = true,
                         inboundOnly: Bool = false, ipType: Endpoint.IPType = .ipv4, subnets: [Endpoint.Subnet],
                         names: [String]? = nil) -> Endpoint {
        let svc = ServiceName(service)!
        let dnsNames = names.map { $0.map(n) } ?? ServiceCatalog.privateDNSNames(for: svc)
        return Endpoint(id: id, vpcID: vpc, service: svc, kind: kind, privateDNSEnabled: kind == .interface && privateDNS,
                        privateDNSOnlyForInboundResolverEndpoint: inboundOnly, ipType: ipType, dnsSuffix: "abcd1234",
                        subnets: subnets, privateDNSNames: kind == .interface ? dnsNames : [], privateDNSNamesOverridden: names != nil)
    }

    static var model: Model {
        var s = Settings()
        s.listen = [listen]
        s.upstreams = [.address(ep("127.0.0.1:1054"))]
        let vpcs = [
            VPC(id: app, name: "app", region: "us-west-2", cidrs: [IPPrefix("10.0.0.0/16")!], clients: [IPPrefix("127.0.0.1/32")!],
                resolverAddresses: [ep("127.0.10.2:1053")],
                inboundEndpoints: [InboundEndpoint(id: "rslvr-in-0123456789abcdef0", addresses: [ep("127.0.10.53:1053")])],
                enableDNSSupport: true, enableDNSHostnames: true,
                resolverRules: [
                    ResolverRule(id: "rslvr-rr-0000000000000c0a1", domain: n("corp.example.com"), kind: .forward, targets: [ep("127.0.0.1:5300")]),
                    ResolverRule(id: "rslvr-rr-0000000000000c0a2", domain: n("local.corp.example.com"), kind: .system),
                    ResolverRule(id: "rslvr-rr-0000000000000c0a3", domain: n("tie.internal"), kind: .forward, targets: [ep("127.0.0.1:5301")]),
                    ResolverRule(id: "rslvr-rr-0000000000000c0a4", domain: n("amazonaws.com"), kind: .system),
                ]),
            VPC(id: db, name: "database", region: "us-west-2", cidrs: [IPPrefix("10.1.0.0/16")!], clients: [IPPrefix("127.0.0.2/32")!],
                resolverAddresses: [ep("127.0.20.2:1053")], enableDNSSupport: true, enableDNSHostnames: true),
            VPC(id: legacy, name: "legacy", region: "us-west-2", cidrs: [IPPrefix("10.2.0.0/16")!], clients: [IPPrefix("127.0.0.3/32")!],
                resolverAddresses: [ep("127.0.30.2:1053")], enableDNSSupport: true, enableDNSHostnames: false),
            VPC(id: nodns, name: "nodns", region: "us-west-2", cidrs: [IPPrefix("10.3.0.0/16")!], clients: [IPPrefix("127.0.0.4/32")!],
                enableDNSSupport: false, enableDNSHostnames: false),
            VPC(id: twin1, name: "twin1", region: "us-east-1", cidrs: [IPPrefix("10.9.0.0/16")!], resolverAddresses: [ep("127.0.91.2:1053")],
                enableDNSSupport: true, enableDNSHostnames: true),
            VPC(id: twin2, name: "twin2", region: "us-east-1", cidrs: [IPPrefix("10.9.0.0/16")!], resolverAddresses: [ep("127.0.92.2:1053")],
                enableDNSSupport: true, enableDNSHostnames: true),
        ]
        let two = [Endpoint.Subnet(az: "us-west-2a", ipv4: ip("10.0.1.10")), Endpoint.Subnet(az: "us-west-2b", ipv4: ip("10.0.2.10"))]
        let endpoints = [
            endpoint("vpce-0ec2a1b2c3d4e5f60", vpc: app, service: "com.amazonaws.us-west-2.ec2", subnets: two),
            endpoint("vpce-05a3a1b2c3d4e5f61", vpc: app, service: "com.amazonaws.us-west-2.s3", kind: .gateway, subnets: []),
            endpoint("vpce-05a3a1b2c3d4e5f63", vpc: app, service: "com.amazonaws.us-west-2.s3", inboundOnly: true,
                     subnets: [Endpoint.Subnet(az: "us-west-2a", ipv4: ip("10.0.1.30"))]),
            endpoint("vpce-0db5a1b2c3d4e5f62", vpc: app, service: "com.amazonaws.vpce.us-west-2.vpce-svc-0d8b5e7a1c2f3a4b5",
                     subnets: [Endpoint.Subnet(az: "us-west-2a", ipv4: ip("10.0.1.20"))]),
            endpoint("vpce-05aa5a1b2c3d4e5f64", vpc: app, service: "com.amazonaws.vpce.us-west-2.vpce-svc-05aa5000000000001",
                     subnets: [Endpoint.Subnet(az: "us-west-2a", ipv4: ip("10.0.1.40"))]),
            endpoint("vpce-0bad5a1b2c3d4e5f65", vpc: app, service: "com.amazonaws.vpce.us-west-2.vpce-svc-0bad0000000000002",
                     subnets: [Endpoint.Subnet(az: "us-west-2a", ipv4: ip("10.0.1.50"))]),
            endpoint("vpce-0575a1b2c3d4e5f66", vpc: app, service: "com.amazonaws.us-west-2.sts", privateDNS: false,
                     subnets: [Endpoint.Subnet(az: "us-west-2a", ipv4: ip("10.0.1.60"))]),
            endpoint("vpce-0e8ea1b2c3d4e5f67", vpc: app, service: "com.amazonaws.us-west-2.execute-api",
                     subnets: [Endpoint.Subnet(az: "us-west-2a", ipv4: ip("10.0.1.70"))]),
            endpoint("vpce-0c35a1b2c3d4e5f68", vpc: app, service: "com.amazonaws.us-west-2.kms", ipType: .dualstack,
                     subnets: [Endpoint.Subnet(az: "us-west-2a", ipv4: ip("10.0.1.80"), ipv6: ip("2600:1f14::80"))]),
            endpoint("vpce-05d0a1b2c3d4e5f69", vpc: app, service: "com.amazonaws.us-west-2.logs", ipType: .serviceDefined,
                     subnets: [Endpoint.Subnet(az: "us-west-2a", ipv4: ip("10.0.1.90"), ipv6: ip("2600:1f14::90"))]),
            endpoint("vpce-0ec2b1b2c3d4e5f70", vpc: legacy, service: "com.amazonaws.us-west-2.ec2",
                     subnets: [Endpoint.Subnet(az: "us-west-2a", ipv4: ip("10.2.1.10"))]),
            endpoint("vpce-0ec2c1b2c3d4e5f71", vpc: db, service: "com.amazonaws.us-west-2.ecr.dkr",
                     subnets: [Endpoint.Subnet(az: "us-west-2a", ipv4: ip("10.1.1.10"))]),
        ]
        let services = [
            EndpointService(id: "vpce-svc-0d8b5e7a1c2f3a4b5", region: "us-west-2", privateDNSName: n("db.bank.example.com")),
            EndpointService(id: "vpce-svc-05aa5000000000001", region: "us-west-2", privateDNSName: n("api.saas.example.net"), aliasStyle: .flatten),
            EndpointService(id: "vpce-svc-0bad0000000000002", region: "us-west-2", privateDNSName: n("pending.example.net"), verification: .pendingVerification),
        ]
        let phz = HostedZone(id: "Z0MYSERVICE000000001", name: n("myservice.internal"), vpcIDs: [app], records: [
            ResourceRecord(name: n("myservice.internal"), type: .soa, ttl: 3600,
                           rdata: n("ns1.myservice.internal").wire + n("admin.myservice.internal").wire + [0,0,0,1, 0,0,0x1c,0x20, 0,0,0x0e,0x10, 0,0x09,0x3a,0x80, 0,0,0x01,0x2c]),
            a("www.myservice.internal", "10.0.5.5"),
            txt("www.myservice.internal", "hello"),
            a("deep.ent.myservice.internal", "10.0.5.6"),
            a("*.wild.myservice.internal", "10.0.5.7"),
            cname("to-ec2.myservice.internal", "ec2.us-west-2.amazonaws.com"),
            cname("to-public.myservice.internal", "www.example.net"),
            cname("to-www.myservice.internal", "www.myservice.internal"),
            cname("to-missing.myservice.internal", "missing.myservice.internal"),
            cname("loop1.myservice.internal", "loop2.myservice.internal"),
            cname("loop2.myservice.internal", "loop1.myservice.internal"),
        ] + (0..<9).map { cname("c\($0).myservice.internal", "c\($0 + 1).myservice.internal") }
          + [a("c9.myservice.internal", "10.0.5.9")],
        aliases: [
            AliasRecord(name: n("api.myservice.internal"), type: .a, target: .endpoint("vpce-0db5a1b2c3d4e5f62")),
            AliasRecord(name: n("myservice.internal"), type: .a, target: .record(n("www.myservice.internal"))),
        ], hasOwnSOA: true)
        let tie = HostedZone(id: "Z0TIE00000000000000001", name: n("tie.internal"), vpcIDs: [app],
                             records: [a("x.tie.internal", "10.0.6.1")], hasOwnSOA: false)
        let systemZone = HostedZone(id: "Z0CORPSYSTEM000000001", name: n("example.com"), vpcIDs: [app],
                                    records: [a("x.local.corp.example.com", "10.0.7.1"), a("www.example.com", "10.0.7.2")], hasOwnSOA: false)
        let dbZone = HostedZone(id: "Z0DBZONE0000000000001", name: n("db.internal"), vpcIDs: [db],
                                records: [a("primary.db.internal", "10.1.9.9")], hasOwnSOA: false)
        let legacyZone = HostedZone(id: "Z0LEGACY000000000001", name: n("legacy.internal"), vpcIDs: [legacy],
                                    records: [a("host.legacy.internal", "10.2.9.9")], hasOwnSOA: false)
        return Model(settings: s, vpcs: vpcs, endpoints: endpoints, endpointServices: services,
                     hostedZones: [phz, tie, systemZone, dbZone, legacyZone, routedZone],
                     healthChecks: routedChecks)
    }

    // R18: routing-policy groups and the health checks they name.
    static let routedChecks = ["hc-blue", "hc-primary", "hc-secondary", "hc-mv"].map {
        HealthCheck(id: $0, kind: .tcp, ip: ip("127.0.0.1"), port: 9)
    }

    static var routedZone: HostedZone {
        func set(_ name: String, _ id: String, _ policy: RoutedRecordSet.Policy, _ addr: String, check: String? = nil) -> RoutedRecordSet {
            RoutedRecordSet(name: n(name), type: .a, setIdentifier: id, policy: policy, records: [a(name, addr, ttl: 60)], healthCheck: check)
        }
        var z = HostedZone(id: "Z0ROUTED000000000001", name: n("routed.internal"), vpcIDs: [app],
                           records: [a("plain.routed.internal", "10.0.8.99")], hasOwnSOA: false)
        z.routedSets = [
            set("w.routed.internal", "blue", .weighted(255), "10.0.8.1", check: "hc-blue"),
            set("w.routed.internal", "green", .weighted(0), "10.0.8.2"),
            set("zero.routed.internal", "one", .weighted(0), "10.0.8.5", check: "hc-blue"),
            set("zero.routed.internal", "two", .weighted(0), "10.0.8.6", check: "hc-blue"),
            set("f.routed.internal", "primary", .failover(.primary), "10.0.8.11", check: "hc-primary"),
            set("f.routed.internal", "secondary", .failover(.secondary), "10.0.8.12", check: "hc-secondary"),
            set("m.routed.internal", "m1", .multivalue, "10.0.8.21", check: "hc-mv"),
            set("m.routed.internal", "m2", .multivalue, "10.0.8.22"),
            RoutedRecordSet(name: n("cn.routed.internal"), type: .cname, setIdentifier: "to-f", policy: .failover(.primary),
                            records: [cname("cn.routed.internal", "f.routed.internal")], healthCheck: "hc-blue"),
            RoutedRecordSet(name: n("cn.routed.internal"), type: .cname, setIdentifier: "to-plain", policy: .failover(.secondary),
                            records: [cname("cn.routed.internal", "plain.routed.internal")]),
        ]
        return z
    }
}
