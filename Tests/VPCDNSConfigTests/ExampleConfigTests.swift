import DNSWire
import Foundation
import LDNSKit
import Testing
import VPCDNSConfig
import VPCDNSCore

/// The worked example (config/vpcdns.yaml + zones/) must load cleanly and mean what its
/// comments say.
@Suite struct ExampleConfigTests {
    let path = repoRoot + "/config/vpcdns.yaml"

    func example() throws -> LoadedConfig {
        switch ConfigLoader.load(path: path) {
        case .success(let c): return c
        case .failure(let e): Issue.record("example config has errors:\n\(e)"); throw e
        }
    }

    @Test func loadsWithoutErrors() throws {
        let c = try example()
        #expect(c.model.vpcs.map(\.id) == ["vpc-0a11ce0000000001a", "vpc-0db0000000000002b", "vpc-01e9ac0000000003c"])
        #expect(c.model.settings.upstreams == [.address(SocketEndpoint("127.0.0.1:1054")!)])
        #expect(c.model.settings.listen == [SocketEndpoint("127.0.0.1:1053")!])
    }

    @Test func endpointNames() throws {
        let m = try example().model
        let ec2 = try #require(m.endpoint("vpce-0ec2a1b2c3d4e5f60"))
        let suffix = String(SHA256.hex("vpce-0ec2a1b2c3d4e5f60").prefix(8))
        #expect(ec2.dnsSuffix == suffix)
        #expect(ec2.regionalName.text == "vpce-0ec2a1b2c3d4e5f60-\(suffix).ec2.us-west-2.vpce.amazonaws.com")
        #expect(ec2.zonalNames.map(\.name.text) == ["vpce-0ec2a1b2c3d4e5f60-\(suffix)-us-west-2a.ec2.us-west-2.vpce.amazonaws.com",
                                                     "vpce-0ec2a1b2c3d4e5f60-\(suffix)-us-west-2b.ec2.us-west-2.vpce.amazonaws.com"])
        let s3 = try #require(m.endpoint("vpce-05a3a1b2c3d4e5f63"))
        #expect(s3.privateDNSNames.map(\.text) == [
            "s3.us-west-2.amazonaws.com", "*.s3.us-west-2.amazonaws.com",
            "s3-control.us-west-2.amazonaws.com", "*.s3-control.us-west-2.amazonaws.com",
            "s3-accesspoint.us-west-2.amazonaws.com", "*.s3-accesspoint.us-west-2.amazonaws.com",
        ])
        #expect(s3.privateDNSOnlyForInboundResolverEndpoint && s3.ipType == .dualstack)
        let db = try #require(m.endpoint("vpce-0db5a1b2c3d4e5f62"))
        #expect(db.regionalName.text == "vpce-0db5a1b2c3d4e5f62-k3x9q2ab.vpce-svc-0d8b5e7a1c2f3a4b5.us-west-2.vpce.amazonaws.com")
        #expect(m.endpointService("vpce-svc-05aa5000000000001")?.aliasStyle == .flatten)
        #expect(m.endpointService("vpce-svc-0d8b5e7a1c2f3a4b5")?.privateDNSName?.text == "db.bank.example.com")
    }

    @Test func hostedZone() throws {
        let m = try example().model
        let z = try #require(m.hostedZones.first)
        #expect(z.name.text == "myservice.internal")
        #expect(z.id == "Z" + SHA256.hex("myservice.internal").uppercased().prefix(20))
        #expect(z.hasOwnSOA)
        #expect(z.file == repoRoot + "/zones/myservice.internal.zone")
        let types = Set(z.records.map(\.type))
        #expect(types.isSuperset(of: [.soa, .ns, .a, .aaaa, .cname, .mx, .txt, .srv]))
        #expect(z.records.contains { $0.name.isWildcard })
        #expect(z.aliases == [AliasRecord(name: try DNSName("db.myservice.internal"), type: .a, target: .endpoint("vpce-0db5a1b2c3d4e5f62"))])
        #expect(z.vpcIDs == ["vpc-0a11ce0000000001a"])
    }

    @Test func warnsAboutTheLegacyVPC() throws {
        let c = try example()
        let hostnameWarnings = c.warnings.filter { $0.message.contains("enable_dns_hostnames: false") }
        #expect(hostnameWarnings.count == 1)
        #expect(hostnameWarnings.first?.message.contains("vpce-01e9ac1b2c3d4e5f65") == true)
        #expect(hostnameWarnings.first?.message.contains("will resolve publicly") == true)
        #expect(hostnameWarnings.first?.file == path)
    }

    @Test func summaryListsEveryPrivateNameWithItsOrigin() throws {
        let summary = CheckSummary(path: path, result: ConfigLoader.load(path: path))
        #expect(summary.ok)
        let app = try #require(summary.vpcs.first { $0.vpc.id == "vpc-0a11ce0000000001a" })
        let sources = Dictionary(app.names.map { ($0.name, $0.source) }, uniquingKeysWith: { a, _ in a })
        #expect(sources["myservice.internal"] == "phz")
        #expect(sources["ec2.us-west-2.amazonaws.com"] == "endpoint")
        #expect(sources["db.bank.example.com"] == "service")
        #expect(sources["api.saas.example.net"] == "service")
        #expect(sources["corp.example.com"] == "rule")
        #expect(app.names.contains { $0.source == "endpoint-name" && $0.name.hasPrefix("vpce-0ec2a1b2c3d4e5f60-") })
        // R16/R17: app's EC2 domain, its instance's resource name and its reverse zones.
        #expect(sources["us-west-2.compute.internal"] == "ec2")
        #expect(sources["i-0a11ce0123456789a.us-west-2.compute.internal"] == "instance")
        #expect(sources["in-addr.arpa"] == "reverse")
        // database sees none of app's names: only AWS's autodefined ones of its own.
        let database = try #require(summary.vpcs.first { $0.vpc.id == "vpc-0db0000000000002b" })
        #expect(database.names.map(\.source) == ["ec2", "reverse"])
        let legacy = try #require(summary.vpcs.first { $0.vpc.id == "vpc-01e9ac0000000003c" })
        let ec2 = try #require(legacy.names.first { $0.name == "ec2.us-west-2.amazonaws.com" })
        #expect(!ec2.active && ec2.reason?.contains("enable_dns_hostnames") == true)
        #expect(summary.text.contains("VPC vpc-0a11ce0000000001a (app) in us-west-2"))
        let json = summary.json.rendered()
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        #expect(object?["ok"] as? Bool == true)
        #expect((object?["vpcs"] as? [Any])?.count == 3)
    }
}
