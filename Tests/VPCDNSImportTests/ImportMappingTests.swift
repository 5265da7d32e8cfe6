import Foundation
import Testing
import VPCDNSConfig
@testable import VPCDNSImport

/// The fixture account (Fixtures/aws-account, README there) and scratch folders.
enum Fixture {
    static let account: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/aws-account").path
    }()

    static func file(_ name: String) -> String { account + "/" + name }

    /// A fresh folder with the given files (name -> JSON text).
    static func folder(_ files: [String: String]) throws -> String {
        let dir = NSTemporaryDirectory() + "vpcdns-import-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, text) in files { try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8) }
        return dir
    }

    /// Fixture files copied by name into a fresh folder (a partial snapshot).
    static func subset(_ names: [String], extra: [String: String] = [:]) throws -> String {
        var files = extra
        for n in names { files[n] = try String(contentsOfFile: file(n), encoding: .utf8) }
        return try folder(files)
    }

    static var standardOptions: ImportOptions {
        var o = ImportOptions()
        o.upstreams = ["127.0.0.1:1054"]
        o.clients = [("shop", "127.0.0.0/8")]
        o.resolverAddresses = [("payments", "127.0.62.2:1053"), ("batch", "127.0.63.2:1053"),
                               ("rslvr-in-0123abcd4567ef890", "127.0.61.53:1053")]
        o.targetMap = ["10.30.0.53": "127.0.0.1:5300"]
        return o
    }
}

@Suite
struct ImportMappingTests {
    /// Route 53's spellings -> vpcdns's: trailing dot, case, octal escapes.
    @Test(arguments: [
        ("shop.internal.", "shop.internal"),
        ("\\052.shop.internal.", "*.shop.internal"),
        ("WWW.Shop.Internal.", "www.shop.internal"),
        ("a\\040b.shop.internal.", "a\\032b.shop.internal"),     // a space: octal 040 = decimal 032
        ("x\\056y.shop.internal.", "x\\046y.shop.internal"),     // a dot inside a label stays escaped
        (".", "."),
    ])
    func route53Names(input: String, expected: String) {
        #expect(route53Name(input) == expected)
    }

    /// The whole fixture account, entry by entry.
    @Test func fixtureAccount() throws {
        let r = try AWSImporter.run(paths: [Fixture.account], options: Fixture.standardOptions)
        let y = r.yaml
        // VPCs: pages merged, associated CIDRs only (the disassociated 10.21.0.0/16 left out), primary first, IPv6 after.
        #expect(y.contains("  - id: \"vpc-0a1b2c3d4e5f60001\"\n    name: \"shop\"\n    region: \"us-west-2\"\n    cidrs: [\"10.20.0.0/16\", \"2600:1f14:aaa:b100::/56\"]"))
        #expect(y.contains("cidrs: [\"10.30.0.0/16\", \"10.31.0.0/16\"]"))
        #expect(y.contains("  - id: \"vpc-0a1b2c3d4e5f60003\"\n    name: \"batch\""), "the second page of describe-vpcs is merged")
        #expect(!y.contains("10.21.0.0/16"))
        #expect(y.contains("account_id: \"444455556666\""))
        #expect(y.contains("upstreams: [\"127.0.0.1:1054\"]"))
        // DNS attributes from describe-vpc-attribute: batch has hostnames off.
        #expect(y.contains("    enable_dns_hostnames: false   # from \(Fixture.file("vpc-attribute-vpc-0a1b2c3d4e5f60003-hostnames.json"))"))
        // Endpoints: suffix and private names from DnsEntries, options from DnsOptions, subnets from the ENIs.
        #expect(y.contains("""
          - id: "vpce-0e1c2a00000000001"
            vpc: "vpc-0a1b2c3d4e5f60001"
            service: "com.amazonaws.us-west-2.ec2"
            type: Interface
            private_dns_enabled: true
            dns_record_ip_type: ipv4
            dns_suffix: "4mtk2rb9"   # from DnsEntries
            private_dns_names: ["ec2.us-west-2.amazonaws.com"]   # from DnsEntries
            subnets:
              - {az: "us-west-2a", ipv4: "10.20.1.10"}   # eni-0a00000000000e101 from \(Fixture.file("network-interfaces.json"))
              - {az: "us-west-2b", ipv4: "10.20.2.10"}   # eni-0a00000000000e102 from \(Fixture.file("network-interfaces.json"))
        """))
        #expect(y.contains("    private_dns_only_for_inbound_resolver_endpoint: true\n    dns_suffix: \"q7zd1x0c\""), "S3's names are *.vpce-...: the suffix is still found")
        #expect(y.contains("private_dns_names: [\"s3.us-west-2.amazonaws.com\", \"*.s3.us-west-2.amazonaws.com\"]"))
        #expect(y.contains("dns_record_ip_type: dualstack"))
        #expect(y.contains("{az: \"us-west-2a\", ipv4: \"10.20.1.40\", ipv6: \"2600:1f14:aaa:b101::40\"}"))
        #expect(y.contains("  - id: \"vpce-05c3e0000000000a2\"\n    vpc: \"vpc-0a1b2c3d4e5f60001\"\n    service: \"com.amazonaws.us-west-2.s3\"\n    type: Gateway\n"))
        #expect(y.contains("  - id: \"vpce-0a9900000000000d4\"") && y.contains("    private_dns_enabled: false\n    dns_record_ip_type: ipv4\n    dns_suffix: \"z0y9x8w7\""))
        #expect(!y.contains("vpce-0d0d0000000000007\""), "pendingAcceptance is skipped")
        // Custom services: consumer view (verified) and provider view (pendingVerification).
        #expect(y.contains("  - id: \"vpce-svc-0aa00000000000001\"\n    region: \"us-west-2\"\n    private_dns_name: \"ledger.partner.example\"\n    verification: verified"))
        #expect(y.contains("  - id: \"vpce-svc-0bb00000000000002\"\n    region: \"us-west-2\"\n    private_dns_name: \"api.catalog.example.net\"\n    verification: pendingVerification"))
        #expect(!y.contains("vpce-svc-0e0e1e2e3e4e5e6e7"), "AWS's own services are not endpoint_services")
        // Hosted zones: private only, VPCs from get-hosted-zone; aliases to endpoints; the weighted pair.
        #expect(y.contains("  - id: \"Z04417381SHOPINTERNAL\"\n    name: \"shop.internal\"\n    vpcs: [\"vpc-0a1b2c3d4e5f60001\", \"vpc-0a1b2c3d4e5f60002\"]\n    file: \"zones/shop.internal.zone\""))
        #expect(y.contains("      - name: \"shop.internal\"\n        type: A\n        alias: {dns_name: \"vpce-0e1c2a00000000001-4mtk2rb9.ec2.us-west-2.vpce.amazonaws.com\"}"))
        #expect(y.contains("alias: {dns_name: \"vpce-0e1c2a00000000001-4mtk2rb9-us-west-2b.ec2.us-west-2.vpce.amazonaws.com\"}"))
        #expect(y.contains("      - name: \"sts.shop.internal\"\n        type: AAAA\n        alias: {dns_name: \"vpce-0d0a1b00000000003-h2pc8w5e.sts.us-west-2.vpce.amazonaws.com\"}"), "from the second page")
        #expect(y.contains("""
              - name: "pay.payments.corp"
                type: A
                ttl: 60
                values: ["10.30.4.1"]
                set_identifier: "blue"
                weight: 70
        """))
        #expect(y.contains("values: [\"10.30.4.2\"]\n        set_identifier: \"green\"\n        weight: 30\n"))
        #expect(!y.contains("health_check:"), "a calculated check cannot run here")
        #expect(!y.contains("name: \"example.com\"") && !y.contains("Z3PUBLICEXAMPLE00042"), "the public zone is skipped")
        #expect(!y.contains("lb.payments.corp") && !y.contains("near.payments.corp"))
        #expect(y.contains("  - id: \"Z07BATCHINTERNAL0003\"\n    name: \"batch.internal\"\n    vpcs: [\"vpc-0a1b2c3d4e5f60003\"]\n    file: \"zones/batch.internal.zone\""),
                "a record file without the zone id in its name is tied to the zone by its SOA")
        // Resolver: rules per VPC (RECURSIVE skipped), targets moved by --target-map; inbound endpoint mapped.
        #expect(y.contains("""
            resolver_rules:
              # from \(Fixture.file("resolver-rules.json")) (rslvr-rr-0c0ffee0123456789), associated in \(Fixture.file("resolver-rule-associations.json"))
              - id: "rslvr-rr-0c0ffee0123456789"
                domain: "corp.example.com"
                type: FORWARD
                targets: ["127.0.0.1:5300"]
        """))
        #expect(y.contains("      - id: \"rslvr-rr-0d1e2f3a4b5c6d7e8\"\n        domain: \"www.corp.example.com\"\n        type: SYSTEM\n"))
        #expect(!y.contains("rslvr-autodefined"))
        #expect(y.contains("      - id: \"rslvr-in-0123abcd4567ef890\"\n        addresses: [\"127.0.61.53:1053\"]"))
        #expect(y.contains("    resolver_addresses: [\"127.0.62.2:1053\"]   # --resolver-address"))
        #expect(y.contains("    clients: [\"127.0.0.0/8\"]   # --client"))
        // Zone files: plain sets, SOA and apex NS, the wildcard unescaped.
        let shop = try #require(r.zoneFiles.first { $0.0 == "shop.internal.zone" }?.1)
        #expect(shop.contains("shop.internal. 900 IN SOA ns-1536.awsdns-00.co.uk. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"))
        #expect(shop.contains("shop.internal. 172800 IN NS ns-0.awsdns-00.com."))
        #expect(shop.contains("*.shop.internal. 300 IN A 10.20.9.9"))
        #expect(shop.contains("www.shop.internal. 60 IN A 10.20.5.6"))
        #expect(shop.contains("shop.internal. 300 IN TXT \"v=spf1 -all\""))
        // Counts by kind.
        let counts = Dictionary(uniqueKeysWithValues: r.counts)
        #expect(counts["vpcs"] == 3)
        #expect(counts["endpoints"] == 8)          // 7 interface (one pending skipped of 8) + 1 gateway
        #expect(counts["endpoint services"] == 2)
        #expect(counts["private hosted zones"] == 3)
        #expect(counts["alias records"] == 3)
        #expect(counts["routing-policy records"] == 2)
        #expect(counts["resolver rules"] == 3)     // FORWARD in two VPCs, SYSTEM in one
        #expect(counts["inbound endpoints"] == 1)
        #expect(counts["public zones skipped"] == 1)
    }

    /// Every generated entry names its source file.
    @Test func everyEntryNamesItsSource() throws {
        let r = try AWSImporter.run(paths: [Fixture.account], options: Fixture.standardOptions)
        let lines = r.yaml.split(separator: "\n", omittingEmptySubsequences: false)
        for (i, line) in lines.enumerated() where line.hasPrefix("  - ") || line.hasPrefix("      - id:") || line.hasPrefix("      - name:") {
            let before = lines[i - 1]
            #expect(before.contains("# from \(Fixture.account)/"), "entry at line \(i + 1) (\(line)) has no source comment")
        }
    }

    /// Warnings: every record and object that cannot be mirrored is named, never dropped silently.
    @Test func warningsNameWhatIsLeftOut() throws {
        let r = try AWSImporter.run(paths: [Fixture.account], options: Fixture.standardOptions)
        let w = r.warnings.map(\.description)
        let expected = [
            "\(Fixture.file("vpc-endpoints-2.json")): warning: endpoint vpce-0d0d0000000000007 (com.amazonaws.us-west-2.ec2) is in state pendingAcceptance, not available: skipped",
            "\(Fixture.file("record-sets-Z0992PAYMENTSCORP01.json")): warning: record lb.payments.corp A: alias to dualstack.internal-pay-alb-1234567890.us-west-2.elb.amazonaws.com (a load balancer) cannot be answered locally; skipped",
            "\(Fixture.file("record-sets-Z0992PAYMENTSCORP01.json")): warning: record near.payments.corp A (set oregon): latency routing depends on where the query comes from in AWS and cannot be answered locally; skipped",
            "\(Fixture.file("health-check-0c1d2e3f-4a5b-6c7d-8e9f-aabbccddeeff.json")): warning: record pay.payments.corp A (set green): health check 0c1d2e3f-4a5b-6c7d-8e9f-aabbccddeeff is of type CALCULATED, which vpcdns cannot run from this host; the set counts as healthy",
        ]
        for e in expected { #expect(w.contains(e), "missing warning: \(e)\nall: \(w.joined(separator: "\n"))") }
        #expect(w.count == expected.count, "unexpected warnings: \(w.filter { !expected.contains($0) })")
    }

    /// The output loads with the real config loader, the routing-policy keys included.
    @Test func outputLoads() throws {
        let r = try AWSImporter.run(paths: [Fixture.account], options: Fixture.standardOptions)
        let dir = try Fixture.folder([:]) + "/out"
        try AWSImporter.write(r, to: dir, force: false)
        if case .failure(let e) = ConfigLoader.load(path: dir + "/vpcdns.yaml") { Issue.record("\(e.errors)") }
    }

    /// A failover pair with an HTTP health check: `health_checks` and the set's `health_check`.
    @Test func failoverWithHTTPHealthCheck() throws {
        let records = """
        {"ResourceRecordSets": [
          {"Name": "db.payments.corp.", "Type": "A", "SetIdentifier": "primary", "Failover": "PRIMARY", "TTL": 30,
           "ResourceRecords": [{"Value": "10.30.8.1"}], "HealthCheckId": "aaaa1111-2222-3333-4444-555566667777"},
          {"Name": "db.payments.corp.", "Type": "A", "SetIdentifier": "secondary", "Failover": "SECONDARY", "TTL": 30,
           "ResourceRecords": [{"Value": "10.30.8.2"}]},
          {"Name": "mv.payments.corp.", "Type": "A", "SetIdentifier": "one", "MultiValueAnswer": true, "TTL": 30,
           "ResourceRecords": [{"Value": "10.30.9.1"}]}
        ]}
        """
        let check = """
        {"HealthCheck": {"Id": "aaaa1111-2222-3333-4444-555566667777", "CallerReference": "db-primary",
          "HealthCheckConfig": {"IPAddress": "10.30.8.1", "Port": 8080, "Type": "HTTP", "ResourcePath": "/health",
            "RequestInterval": 10, "FailureThreshold": 2, "Inverted": false}, "HealthCheckVersion": 1}}
        """
        let dir = try Fixture.subset(["vpcs.json", "hosted-zones.json", "hosted-zone-Z0992PAYMENTSCORP01.json"],
                                     extra: ["record-sets-Z0992PAYMENTSCORP01.json": records, "hc.json": check])
        var o = ImportOptions()
        o.region = "us-west-2"
        let r = try AWSImporter.run(paths: [dir], options: o)
        #expect(r.yaml.contains("""
              - name: "db.payments.corp"
                type: A
                ttl: 30
                values: ["10.30.8.1"]
                set_identifier: "primary"
                failover: PRIMARY
                health_check: "aaaa1111-2222-3333-4444-555566667777"
        """), "\(r.yaml)")
        #expect(r.yaml.contains("set_identifier: \"one\"\n        multivalue_answer: true"))
        #expect(r.yaml.contains("""
        health_checks:
          # from \(dir)/hc.json (aaaa1111-2222-3333-4444-555566667777)
          - id: "aaaa1111-2222-3333-4444-555566667777"
            type: HTTP
            ip: "10.30.8.1"
            port: 8080
            resource_path: "/health"
            request_interval_ms: 10000
            failure_threshold: 2
        """), "\(r.yaml)")
        let out = dir + "/out"
        try AWSImporter.write(r, to: out, force: false)
        if case .failure(let e) = ConfigLoader.load(path: out + "/vpcdns.yaml") { Issue.record("\(e.errors)") }
    }

    @Test func refusesToOverwriteWithoutForce() throws {
        let r = try AWSImporter.run(paths: [Fixture.account], options: Fixture.standardOptions)
        let dir = try Fixture.folder([:])
        try AWSImporter.write(r, to: dir, force: false)
        #expect(throws: ImportError.self) { try AWSImporter.write(r, to: dir, force: false) }
        try AWSImporter.write(r, to: dir, force: true)
    }

    // MARK: - input errors

    @Test func malformedJSONNamesFileAndLine() throws {
        let dir = try Fixture.folder(["vpcs.json": "{\n    \"Vpcs\": [\n        {\"VpcId\": \"vpc-01\",}\n    ]\n}\n"])
        do {
            _ = try AWSImporter.run(paths: [dir], options: ImportOptions())
            Issue.record("malformed JSON accepted")
        } catch {
            #expect(error.description == "\(dir)/vpcs.json:3: expected a quoted key, found '}'")
        }
    }

    @Test(arguments: [
        ("{\"Vpcs\": [\n\n  1 2]}", 3, "expected ',' or ']', found '2'"),
        ("{\"a\": \"x\n\"}", 1, "unterminated string (a line break inside quotes)"),
        ("\n\n{\"a\": tru}", 3, "unexpected 't', expected a value"),
        ("{\"a\": 1}\n}", 2, "unexpected '}' after the JSON value"),
        ("{\"a\": [1,\n", 2, "unexpected end of file, expected a value"),
    ])
    func validatorLines(text: String, line: Int, message: String) {
        let r = JSONValidator.firstError(in: Array(text.utf8))
        #expect(r?.0 == line)
        #expect(r?.1 == message)
    }

    @Test func validJSONHasNoError() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixture.file("vpc-endpoints-1.json")))
        #expect(JSONValidator.firstError(in: [UInt8](data)) == nil)
    }

    @Test func regionFromOptionOrSnapshot() throws {
        // No endpoint, no subnet: the region cannot be told.
        let dir = try Fixture.subset(["vpcs.json"])
        #expect(throws: ImportError.self) { try AWSImporter.run(paths: [dir], options: ImportOptions()) }
        var o = ImportOptions()
        o.region = "eu-central-1"
        let r = try AWSImporter.run(paths: [dir], options: o)
        #expect(r.yaml.contains("region: \"eu-central-1\""))
    }

    @Test func twoRegionsAreAnError() throws {
        let other = try String(contentsOfFile: Fixture.file("vpc-endpoints-2.json"), encoding: .utf8)
            .replacingOccurrences(of: "us-west-2", with: "eu-west-1")
        let dir = try Fixture.subset(["vpcs.json", "vpc-endpoints-1.json"], extra: ["eu.json": other])
        do {
            _ = try AWSImporter.run(paths: [dir], options: ImportOptions())
            Issue.record("two regions accepted")
        } catch {
            #expect(error.description.contains("more than one region in the snapshot: eu-west-1 (\(dir)/eu.json); us-west-2 (\(dir)/vpc-endpoints-1.json)"), "\(error)")
        }
    }

    /// Missing outputs: AWS's defaults with a warning naming the command to run.
    @Test func missingAttributesUseAWSDefaults() throws {
        let defaultVPC = try String(contentsOfFile: Fixture.file("vpcs-page2.json"), encoding: .utf8)
            .replacingOccurrences(of: "\"IsDefault\": false", with: "\"IsDefault\": true")
        let dir = try Fixture.subset(["vpcs.json"], extra: ["default.json": defaultVPC])
        var o = ImportOptions()
        o.region = "us-west-2"
        let r = try AWSImporter.run(paths: [dir], options: o)
        #expect(r.yaml.contains("  - id: \"vpc-0a1b2c3d4e5f60003\"\n    name: \"batch\"\n    region: \"us-west-2\"\n    cidrs: [\"10.40.0.0/16\"]\n    enable_dns_support: true   # assumed: AWS's default\n    enable_dns_hostnames: true   # assumed: AWS's default"))
        #expect(r.yaml.contains("  - id: \"vpc-0a1b2c3d4e5f60002\"\n    name: \"payments\"\n    region: \"us-west-2\"\n    cidrs: [\"10.30.0.0/16\", \"10.31.0.0/16\"]\n    enable_dns_support: true   # assumed: AWS's default\n    enable_dns_hostnames: false   # assumed: AWS's default"))
        let w = r.warnings.map(\.description)
        #expect(w.contains("\(dir)/vpcs.json: warning: vpc-0a1b2c3d4e5f60002: enableDnsHostnames unknown (no output of `aws ec2 describe-vpc-attribute --vpc-id vpc-0a1b2c3d4e5f60002 --attribute enableDnsHostnames`); assumed false, AWS's default for a non-default VPC"))
        #expect(w.contains("(snapshot): warning: no output of `aws ec2 describe-vpc-endpoints` found: no endpoint is imported"))
    }

    /// An endpoint whose ENIs are unknown cannot be answered: skipped, with the command to run.
    @Test func endpointWithoutInterfacesIsSkippedWithWarning() throws {
        let dir = try Fixture.subset(["vpcs.json", "vpc-endpoints-1.json"])
        let r = try AWSImporter.run(paths: [dir], options: ImportOptions())
        #expect(!r.yaml.contains("vpce-0e1c2a00000000001\""))
        #expect(r.yaml.contains("vpce-05c3e0000000000a2\""), "the gateway endpoint needs no interfaces")
        #expect(r.warnings.contains { $0.description.hasPrefix("\(dir)/vpc-endpoints-1.json: warning: endpoint vpce-0e1c2a00000000001: none of its network interfaces") })
    }

    @Test func recordFileOfNoZoneIsAnError() throws {
        let stray = "{\"ResourceRecordSets\": [{\"Name\": \"elsewhere.example.\", \"Type\": \"SOA\", \"TTL\": 900, \"ResourceRecords\": [{\"Value\": \"a. b. 1 2 3 4 5\"}]}]}"
        let dir = try Fixture.subset(["hosted-zones.json", "vpcs.json"], extra: ["stray.json": stray])
        var o = ImportOptions()
        o.region = "us-west-2"
        do {
            _ = try AWSImporter.run(paths: [dir], options: o)
            Issue.record("a stray record file was accepted")
        } catch {
            #expect(error.description == "\(dir)/stray.json: record sets of no known private hosted zone: its name contains no hosted zone id and its SOA (elsewhere.example) is no private zone's apex")
        }
    }

    @Test func unknownFilesAreNamedAndIgnored() throws {
        let dir = try Fixture.subset(["vpcs.json"], extra: ["notes.json": "{\"Reservations2\": []}"])
        var o = ImportOptions()
        o.region = "us-west-2"
        let r = try AWSImporter.run(paths: [dir], options: o)
        #expect(r.warnings.contains(ImportWarning(file: "\(dir)/notes.json", message: "not an AWS CLI output this import reads (top-level keys: Reservations2); ignored")))
    }

    @Test func unknownVPCInOptionIsAnError() throws {
        var o = Fixture.standardOptions
        o.clients = [("nosuch", "127.0.0.0/8")]
        #expect(throws: ImportError(file: nil, message: "--client nosuch=127.0.0.0/8: no VPC with that id or Name tag in the snapshot")) {
            try AWSImporter.run(paths: [Fixture.account], options: o)
        }
    }

    @Test func inboundEndpointNotMappedIsAWarning() throws {
        var o = Fixture.standardOptions
        o.resolverAddresses = []
        let r = try AWSImporter.run(paths: [Fixture.account], options: o)
        #expect(!r.yaml.contains("inbound_endpoints:"))
        #expect(r.yaml.contains("    # inbound endpoint rslvr-in-0123abcd4567ef890 at 10.20.1.53, 10.20.2.53"))
        #expect(r.warnings.contains { $0.message.hasPrefix("inbound endpoint rslvr-in-0123abcd4567ef890 of vpc-0a1b2c3d4e5f60001 at 10.20.1.53, 10.20.2.53 is not local to this host") })
        // Mapped by its real address instead of its id.
        o.resolverAddresses = [("10.20.1.53", "127.0.61.53:1053")]
        #expect(try AWSImporter.run(paths: [Fixture.account], options: o).yaml.contains("addresses: [\"127.0.61.53:1053\"]"))
    }

    @Test func unmappedTargetIsKeptWithWarning() throws {
        var o = Fixture.standardOptions
        o.targetMap = [:]
        let r = try AWSImporter.run(paths: [Fixture.account], options: o)
        #expect(r.yaml.contains("targets: [\"10.30.0.53:53\"]"))
        #expect(r.warnings.contains { $0.message == "rule rslvr-rr-0c0ffee0123456789 (corp.example.com): target 10.30.0.53:53 kept as is; on a test host map it to a reachable DNS with --target-map 10.30.0.53=IP:PORT" })
    }

    @Test func printCommandsAreReadOnly() {
        let cmds = AWSImporter.commands(region: "us-west-2")
        for c in cmds where c.hasPrefix("aws") || c.hasPrefix("for") {
            for verb in ["create", "delete", "modify", "put", "update", "associate"] {
                #expect(!c.contains("aws ec2 \(verb)") && !c.contains("aws route53 \(verb)") && !c.contains("aws route53resolver \(verb)"), "\(c)")
            }
        }
        #expect(cmds.contains { $0.contains("aws ec2 describe-vpc-endpoints --region us-west-2 --output json > aws-snapshot/vpc-endpoints.json") })
        #expect(cmds.contains { $0.contains("list-resource-record-sets --hosted-zone-id $z") && $0.contains("record-sets-$z.json") })
    }
}
