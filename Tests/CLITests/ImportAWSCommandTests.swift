import Foundation
import Testing

/// `vpcdns import aws` on the fixture account (Tests/VPCDNSImportTests/Fixtures/aws-account),
/// then `vpcdns check --json` on what it wrote, compared with the account item for item.
@Suite
struct ImportAWSCommandTests {
    static let account = CLI.root + "/Tests/VPCDNSImportTests/Fixtures/aws-account"

    static let mapping = ["--upstream", "127.0.0.1:1054", "--client", "shop=127.0.0.0/8",
                          "--resolver-address", "payments=127.0.62.2:1053", "--resolver-address", "batch=127.0.63.2:1053",
                          "--resolver-address", "rslvr-in-0123abcd4567ef890=127.0.61.53:1053",
                          "--target-map", "10.30.0.53=127.0.0.1:5300"]

    static func scratch() throws -> String {
        let dir = NSTemporaryDirectory() + "vpcdns-import-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// The fixture's JSON files, parsed.
    static func fixture() throws -> [(String, [String: Any])] {
        try FileManager.default.contentsOfDirectory(atPath: account).sorted().filter { $0.hasSuffix(".json") }.map { name in
            let data = try Data(contentsOf: URL(fileURLWithPath: account + "/" + name))
            return (name, try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any]))
        }
    }

    static func items(_ files: [(String, [String: Any])], _ key: String) -> [[String: Any]] {
        files.flatMap { ($0.1[key] as? [[String: Any]]) ?? [] }
    }

    static func bare(_ n: String) -> String {
        var s = n.hasSuffix(".") ? String(n.dropLast()) : n
        if s.hasPrefix("*.vpce-") { s = String(s.dropFirst(2)) }
        return s
    }

    static func check(_ yaml: String) throws -> [String: Any] {
        let r = try CLI.run(["check", "--json", "--config", yaml])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(json["ok"] as? Bool == true, "\(r.stdout)")
        return json
    }

    @Test func importThenCheckMatchesTheAccount() throws {
        let out = try Self.scratch() + "/mirror"
        let r = try CLI.run(["import", "aws", Self.account, "--out", out] + Self.mapping)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("imported 3 vpcs, 8 endpoints, 2 endpoint services, 3 private hosted zones, "), "\(r.stdout)")
        // Every warning is `FILE: warning: message`.
        let warnings = r.stderr.split(separator: "\n")
        #expect(warnings.count == 4 && warnings.allSatisfy { $0.hasPrefix(Self.account + "/") && $0.contains(".json: warning: ") }, "\(r.stderr)")

        let check = try Self.check(out + "/vpcdns.yaml")
        let files = try Self.fixture()
        let vpcs = try #require(check["vpcs"] as? [[String: Any]])
        let accountVPCs = Self.items(files, "Vpcs")
        #expect(vpcs.compactMap { $0["id"] as? String } == accountVPCs.compactMap { $0["VpcId"] as? String })

        for v in accountVPCs {
            let id = try #require(v["VpcId"] as? String)
            let entry = try #require(vpcs.first { $0["id"] as? String == id })
            let name = (v["Tags"] as? [[String: Any]])?.first { $0["Key"] as? String == "Name" }?["Value"] as? String
            #expect(entry["name"] as? String == name)
            let associated = ((v["CidrBlockAssociationSet"] as? [[String: Any]]) ?? []).filter { ($0["CidrBlockState"] as? [String: Any])?["State"] as? String == "associated" }.compactMap { $0["CidrBlock"] as? String }
                + ((v["Ipv6CidrBlockAssociationSet"] as? [[String: Any]]) ?? []).filter { ($0["Ipv6CidrBlockState"] as? [String: Any])?["State"] as? String == "associated" }.compactMap { $0["Ipv6CidrBlock"] as? String }
            #expect(entry["cidrs"] as? [String] == associated)
            let support = files.first { $0.1["VpcId"] as? String == id && $0.1["EnableDnsSupport"] != nil }.flatMap { ($0.1["EnableDnsSupport"] as? [String: Any])?["Value"] as? Bool }
            let hostnames = files.first { $0.1["VpcId"] as? String == id && $0.1["EnableDnsHostnames"] != nil }.flatMap { ($0.1["EnableDnsHostnames"] as? [String: Any])?["Value"] as? Bool }
            #expect(entry["enable_dns_support"] as? Bool == support)
            #expect(entry["enable_dns_hostnames"] as? Bool == hostnames)

            // The names this VPC sees, as the account defines them.
            var expected: Set<String> = []
            var expectedActive: [String: Bool] = [:]
            for e in Self.items(files, "VpcEndpoints") where e["VpcId"] as? String == id && e["State"] as? String == "available" && e["VpcEndpointType"] as? String == "Interface" {
                let service = e["ServiceName"] as! String
                for d in (e["DnsEntries"] as? [[String: Any]] ?? []).compactMap({ $0["DnsName"] as? String }) {
                    let n = Self.bare(d)
                    if n.hasSuffix(".vpce.amazonaws.com") {
                        expected.insert("endpoint-name \(n)")        // byte for byte the real name (R10)
                    } else if !service.hasPrefix("com.amazonaws.vpce."), e["PrivateDnsEnabled"] as? Bool == true {
                        expected.insert("endpoint \(n)")
                        expectedActive["endpoint \(n)"] = hostnames == true && support == true
                    }
                }
                if !service.hasPrefix("com.amazonaws.vpce."), e["PrivateDnsEnabled"] as? Bool == false {
                    // Private DNS off: AWS lists no private name; check shows the catalog's, inactive.
                    let parts = service.split(separator: ".")
                    let n = "\(parts[3...].joined(separator: ".")).\(parts[2]).amazonaws.com"
                    expected.insert("endpoint \(n)")
                    expectedActive["endpoint \(n)"] = false
                }
                if service.hasPrefix("com.amazonaws.vpce.") {
                    let sid = String(service.split(separator: ".").last!)
                    let svc = (Self.items(files, "ServiceDetails") + Self.items(files, "ServiceConfigurations")).first { $0["ServiceId"] as? String == sid }
                    if let n = svc?["PrivateDnsName"] as? String {
                        expected.insert("service \(n)")
                        let state = svc?["PrivateDnsNameVerificationState"] as? String ?? (svc?["PrivateDnsNameConfiguration"] as? [String: Any])?["State"] as? String
                        expectedActive["service \(n)"] = state == "verified" && hostnames == true
                    }
                }
            }
            let privateZones = Set(Self.items(files, "HostedZones").filter { ($0["Config"] as? [String: Any])?["PrivateZone"] as? Bool == true }.compactMap { $0["Id"] as? String })
            for f in files where f.1["HostedZone"] != nil {
                let z = f.1["HostedZone"] as! [String: Any]
                guard privateZones.contains(z["Id"] as! String),
                      (f.1["VPCs"] as? [[String: Any]] ?? []).contains(where: { $0["VPCId"] as? String == id }) else { continue }
                expected.insert("phz \(Self.bare(z["Name"] as! String))")
                expectedActive["phz \(Self.bare(z["Name"] as! String))"] = hostnames == true
            }
            let rules = Self.items(files, "ResolverRules")
            for a in Self.items(files, "ResolverRuleAssociations") where a["VPCId"] as? String == id {
                guard let rule = rules.first(where: { $0["Id"] as? String == a["ResolverRuleId"] as? String }), rule["RuleType"] as? String != "RECURSIVE" else { continue }
                expected.insert("rule \(Self.bare(rule["DomainName"] as! String))")
            }
            // R16/R17: every VPC with DNS resolution has its EC2 domain and its reverse zones
            // (the fixture has no instances, so no resource names).
            if support != false {
                let region = try #require(entry["region"] as? String)
                let domain = region == "us-east-1" ? "ec2.internal" : "\(region).compute.internal"
                expected.insert("ec2 \(domain)")
                expected.insert("reverse in-addr.arpa")
                expectedActive["ec2 \(domain)"] = hostnames == true
                expectedActive["reverse in-addr.arpa"] = hostnames == true
            }
            let names = try #require(entry["names"] as? [[String: Any]])
            let got = Set(names.map { "\($0["source"] as! String) \($0["name"] as! String)" })
            #expect(got == expected, "\(id): missing \(expected.subtracting(got)), extra \(got.subtracting(expected))")
            for n in names {
                let key = "\(n["source"] as! String) \(n["name"] as! String)"
                if let a = expectedActive[key] { #expect(n["active"] as? Bool == a, "\(id) \(key): \(n)") }
            }
        }
        // The weighted pair, with config.md's keys (R18), passed check above as written.
        let yaml = try String(contentsOfFile: out + "/vpcdns.yaml", encoding: .utf8)
        #expect(yaml.contains("set_identifier: \"blue\"\n        weight: 70") && yaml.contains("set_identifier: \"green\"\n        weight: 30"))
    }

    @Test func malformedJSONExitsOneWithFileAndLine() throws {
        let dir = try Self.scratch()
        try "{\n  \"Vpcs\": [\n    {\"VpcId\": \"vpc-01\"\n    \"State\": \"available\"}\n  ]\n}\n".write(toFile: dir + "/vpcs.json", atomically: true, encoding: .utf8)
        let r = try CLI.run(["import", "aws", dir, "--out", dir + "/out"])
        #expect(r.status == 1)
        #expect(r.stderr == "\(dir)/vpcs.json:4: expected ',' or '}', found '\"'\n")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out/vpcdns.yaml"))
    }

    @Test func refusesToOverwriteWithoutForce() throws {
        let out = try Self.scratch()
        #expect(try CLI.run(["import", "aws", Self.account, "--out", out] + Self.mapping).status == 0)
        let again = try CLI.run(["import", "aws", Self.account, "--out", out] + Self.mapping)
        #expect(again.status == 1)
        #expect(again.stderr == "\(out)/vpcdns.yaml: already exists; not overwritten (use --force to replace it)\n")
        #expect(try CLI.run(["import", "aws", Self.account, "--out", out, "--force"] + Self.mapping).status == 0)
    }

    @Test func printCommands() throws {
        let r = try CLI.run(["import", "aws", "--print-commands", "--region", "us-west-2"])
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.first == "mkdir -p aws-snapshot")
        #expect(lines.dropFirst().allSatisfy { $0.hasPrefix("aws ") || $0.hasPrefix("for ") })
        #expect(lines.contains("aws ec2 describe-vpcs --region us-west-2 --output json > aws-snapshot/vpcs.json"))
    }

    @Test func usageErrors() throws {
        #expect(try CLI.run(["import", "aws"]).status == 64)
        #expect(try CLI.run(["import", "aws", Self.account, "--client", "shop"]).status == 64)
        let unknown = try CLI.run(["import", "aws", Self.account, "--out", try Self.scratch() + "/o", "--client", "nosuch=127.0.0.0/8"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr == "--client nosuch=127.0.0.0/8: no VPC with that id or Name tag in the snapshot\n")
    }
}
