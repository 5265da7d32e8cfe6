import DNSWire
import Testing
import VPCDNSConfig
import VPCDNSCore

@Suite struct ZoneTests {
    @Test func nsBelowApexIsReportedAtTheZoneFileLine() throws {
        let dir = TempDir()
        _ = dir.write("zones/x.zone", """
        $ORIGIN x.internal.
        $TTL 300
        @    IN SOA ns1 host 1 2 3 4 5
        www  IN A 10.0.0.1
        sub  IN NS ns.elsewhere.example.
        sub  IN NS ns2.elsewhere.example.

        """)
        let cfg = dir.write("conf/v.yaml", oneVPC + """
        hosted_zones:
          - {name: x.internal, vpcs: [vpc-0a1], file: ../zones/x.zone}
        """)
        guard case .failure(let e) = ConfigLoader.load(path: cfg) else { Issue.record("expected errors"); return }
        let zonePath = dir.path + "/zones/x.zone"
        #expect(e.errors.map(\.description) == [
            "\(zonePath):5: hosted_zones[0].file: NS record at sub.x.internal below the apex: private hosted zones cannot delegate subdomains",
            "\(zonePath):6: hosted_zones[0].file: NS record at sub.x.internal below the apex: private hosted zones cannot delegate subdomains",
        ])
    }

    @Test func recordOutsideTheZoneFile() {
        let dir = TempDir()
        _ = dir.write("x.zone", "$ORIGIN x.internal.\n$TTL 300\nwww IN A 10.0.0.1\nout.example.org. IN A 10.0.0.2\n")
        let cfg = dir.write("v.yaml", oneVPC + "hosted_zones:\n  - {name: x.internal, vpcs: [vpc-0a1], file: x.zone}\n")
        guard case .failure(let e) = ConfigLoader.load(path: cfg) else { Issue.record("expected errors"); return }
        #expect(e.errors.count == 1)
        #expect(e.errors.first?.description.hasPrefix(dir.path + "/x.zone:4: hosted_zones[0].file: ") == true)
        #expect(e.errors.first?.message.contains("outside the zone") == true)
    }

    @Test func zoneFileSyntaxErrorUsesItsOwnPathAndLine() {
        let dir = TempDir()
        _ = dir.write("zones/bad.zone", "$ORIGIN x.internal.\n$TTL 300\nwww IN A 10.0.0.1\nbroken IN A not-an-address\n")
        let cfg = dir.write("v.yaml", oneVPC + "hosted_zones:\n  - {name: x.internal, vpcs: [vpc-0a1], file: zones/bad.zone}\n")
        guard case .failure(let e) = ConfigLoader.load(path: cfg) else { Issue.record("expected errors"); return }
        #expect(e.errors.count == 1)
        #expect(e.errors.first?.file == dir.path + "/zones/bad.zone")
        #expect(e.errors.first?.line == 4)
        #expect(e.errors.first?.key == "hosted_zones[0].file")
    }

    @Test func missingZoneFile() {
        let errs = errorLines(oneVPC + "hosted_zones:\n  - {name: x.internal, vpcs: [vpc-0a1], file: nowhere.zone}\n", path: "/tmp/nonexistent-dir/v.yaml")
        #expect(errs.count == 1)
        // A file that cannot be opened is reported at the config's `file:` line, naming the path.
        #expect(errs.first?.hasPrefix("/tmp/nonexistent-dir/v.yaml:7: hosted_zones[0].file: /tmp/nonexistent-dir/nowhere.zone: ") == true)
    }

    @Test func ownSOAIsKeptAndPlaceholdersAdded() throws {
        let dir = TempDir()
        _ = dir.write("x.zone", "$ORIGIN x.internal.\n$TTL 300\n@ IN SOA ns1 host 7 2 3 4 5\nwww IN A 10.0.0.1\n")
        let cfg = dir.write("v.yaml", oneVPC + "hosted_zones:\n  - {name: x.internal, id: Z0123456789ABCDEF, vpcs: [vpc-0a1], file: x.zone}\n")
        guard case .success(let c) = ConfigLoader.load(path: cfg) else { Issue.record("expected success"); return }
        let z = c.model.hostedZones[0]
        #expect(z.id == "Z0123456789ABCDEF")
        #expect(z.hasOwnSOA)
        #expect(z.records.filter { $0.type == .soa }.count == 1)
        #expect(!z.records.contains(PrivateZoneDefaults.soa(apex: z.name)))
        #expect(z.records.filter { $0.type == .ns }.count == 4)   // placeholder NS when the file has none
        #expect(z.file == dir.path + "/x.zone")
    }

    @Test func twoZonesWithTheSameNameInOneVPC() {
        let errs = errorLines(oneVPC + """
        hosted_zones:
          - {name: x.internal, vpcs: [vpc-0a1]}
          - {name: X.Internal., vpcs: [vpc-0a1]}
        """)
        #expect(errs == ["t.yaml:8: hosted_zones[1].name: a second hosted zone named x.internal for VPC vpc-0a1 (first at line 7); a VPC can be associated with one zone of a given name"])
    }

    @Test func recordEntries() {
        let errs = errorLines(oneVPC + """
        endpoints:
          - {id: vpce-01, vpc: vpc-0a1, service: com.amazonaws.us-west-2.ec2, dns_suffix: abcd1234, subnets: [{az: us-west-2a, ipv4: 10.0.1.1}]}
        hosted_zones:
          - name: x.internal
            vpcs: [vpc-0a1]
            records:
              - {name: www.example.org, type: A, values: [10.0.0.1]}
              - {name: a.x.internal, type: A, values: [10.0.0.1]}
              - {name: a.x.internal, type: CNAME, values: [b.x.internal.]}
              - {name: c.x.internal, type: A, ttl: 60, alias: {endpoint: vpce-01}}
              - {name: d.x.internal, type: A, alias: {dns_name: vpce-01-abcd1234.ec2.us-east-1.vpce.amazonaws.com}}
              - {name: e.x.internal, type: A, alias: {record: nothing.x.internal}}
              - {name: f.x.internal, type: A, values: [not-an-ip]}
              - {name: g.x.internal, type: BOGUS, values: [x]}
              - {name: h.x.internal, type: A, alias: {endpoint: vpce-0ff}}
        """)
        #expect(errs == [
            "t.yaml:12: hosted_zones[0].records[0].name: www.example.org is outside the zone x.internal",
            "t.yaml:14: hosted_zones[0].records[2]: CNAME at a.x.internal beside other data (A at t.yaml:13); a CNAME must be the only record at its name",
            "t.yaml:15: hosted_zones[0].records[3].ttl: alias records have no TTL of their own (they use the target's)",
            "t.yaml:16: hosted_zones[0].records[4].alias.dns_name: vpce-01-abcd1234.ec2.us-east-1.vpce.amazonaws.com is not the regional or zonal DNS name of an endpoint in this file",
            "t.yaml:17: hosted_zones[0].records[5].alias.record: no A record nothing.x.internal in zone x.internal for this alias to point at",
            "t.yaml:18: hosted_zones[0].records[6].values[0]: 'not-an-ip' is not valid A data: \(aDataMessage)",
            "t.yaml:19: hosted_zones[0].records[7].type: 'BOGUS' is not a record type Route 53 supports (A, AAAA, CAA, CNAME, DS, MX, NAPTR, NS, PTR, SOA, SPF, SRV, TXT)",
            "t.yaml:20: hosted_zones[0].records[8].alias.endpoint: no endpoint with id vpce-0ff in this file",
        ])
    }

    @Test func aliasesAndValuesLoad() throws {
        let c = try loaded(oneVPC + """
        endpoints:
          - {id: vpce-01, vpc: vpc-0a1, service: com.amazonaws.us-west-2.ec2, dns_suffix: abcd1234, subnets: [{az: us-west-2a, ipv4: 10.0.1.1}]}
        hosted_zones:
          - name: x.internal
            vpcs: [vpc-0a1]
            records:
              - {name: x.internal, type: A, alias: {endpoint: vpce-01}}
              - {name: z.x.internal, type: A, alias: {dns_name: vpce-01-abcd1234-us-west-2a.ec2.us-west-2.vpce.amazonaws.com}}
              - {name: w.x.internal, type: A, alias: {record: x.internal}}
              - {name: m.x.internal, type: MX, ttl: 60, values: ["10 mail.x.internal."]}
        """)
        let z = c.model.hostedZones[0]
        #expect(z.aliases.map(\.target) == [
            .endpoint("vpce-01"),
            .dnsName(try DNSName("vpce-01-abcd1234-us-west-2a.ec2.us-west-2.vpce.amazonaws.com")),
            .record(try DNSName("x.internal")),
        ])
        let mx = try #require(z.records.first { $0.type == .mx })
        #expect(mx.ttl == 60)
    }
}

/// The exact words come from LDNSKit; only the shape is ours.
let aDataMessage: String = {
    do throws(RecordTextError) { _ = try LDNSKitRecordText.rdataA("not-an-ip"); return "" } catch { return error.message }
}()

import LDNSKit
enum LDNSKitRecordText {
    static func rdataA(_ t: String) throws(RecordTextError) -> [UInt8] {
        try RecordText.rdata(type: .a, text: t, origin: try! DNSName("x.internal"))
    }
}
