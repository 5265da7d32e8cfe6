import Foundation
import Testing
import VPCDNSConfig
import VPCDNSCore
import VPCDNSImport

/// `vpcdns import aws` on the fixture account (Tests/VPCDNSImportTests/Fixtures/aws-account),
/// then `vpcdns serve` on the result: the VPCs are mapped to loopback listeners
/// (`--resolver-address`), the resolver rule's on-premises target to a second NSD
/// (`--target-map`), and real `dig` asks the names the fixture's data defines.
@Suite(.serialized)
struct ImportAWSServeTests {
    static let account = VPCDNSBinary.repositoryRoot.appendingPathComponent("Tests/VPCDNSImportTests/Fixtures/aws-account").path

    @Test func servesTheImportedAccount() async throws {
        // The "public" DNS and the on-premises DNS the FORWARD rule points at, both NSD on loopback.
        let publicNSD = try await NSDFixture(zones: [
            "amazonaws.com": try String(contentsOf: VPCDNSBinary.repositoryRoot.appendingPathComponent("zones/public/amazonaws.com.zone"), encoding: .utf8),
            "corp.example.com": "$ORIGIN corp.example.com.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ IN NS ns1\nns1 IN A 198.51.100.1\napp IN A 198.51.100.80\nwww IN A 198.51.100.81\n",
        ])
        defer { publicNSD.stop() }
        let corpNSD = try await NSDFixture(zones: [
            "corp.example.com": "$ORIGIN corp.example.com.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ IN NS ns1\nns1 IN A 192.0.2.1\napp IN A 192.0.2.80\nwww IN A 192.0.2.81\n",
        ])
        defer { corpNSD.stop() }

        let port = try await freePort(host: "127.0.61.2")
        let shop = SocketEndpoint("127.0.61.2:\(port)")!, payments = SocketEndpoint("127.0.62.2:\(port)")!
        let batch = SocketEndpoint("127.0.63.2:\(port)")!, inbound = SocketEndpoint("127.0.61.53:\(port)")!
        var options = ImportOptions()
        options.listen = ["127.0.60.1:\(port)"]
        options.upstreams = [publicNSD.endpoint.description]
        options.resolverAddresses = [("shop", shop.description), ("payments", payments.description), ("batch", batch.description),
                                     ("rslvr-in-0123abcd4567ef890", inbound.description)]
        options.targetMap = ["10.30.0.53": corpNSD.endpoint.description]
        let result = try AWSImporter.run(paths: [Self.account], options: options)

        let dir = try ServeHarness.makeDirectory("vpcdns-import-serve")
        defer { try? FileManager.default.removeItem(at: dir) }
        try AWSImporter.write(result, to: dir.path, force: false)
        let yaml = dir.appendingPathComponent("vpcdns.yaml").path
        let queryLog = dir.appendingPathComponent("queries.jsonl").path
        try (String(contentsOfFile: yaml, encoding: .utf8) + "query_log: \"\(queryLog)\"\n").write(toFile: yaml, atomically: true, encoding: .utf8)
        if case .failure(let e) = ConfigLoader.load(path: yaml) { Issue.record("the imported config does not load: \(e)") }

        let server = try ServeProcess(arguments: ["serve", "--config", yaml], directory: dir)
        defer { _ = server.stop() }
        _ = try await server.waitListening(count: 10)

        func ask(_ name: String, _ type: String = "A", _ server: SocketEndpoint) throws -> DigRun.Result {
            try DigRun.query(name, type, server: server, options: ["+time=2"])
        }

        // shop: endpoint private DNS (R5) with the ENIs' addresses; dualstack AAAA (R8).
        let ec2 = try ask("ec2.us-west-2.amazonaws.com", "A", shop)
        #expect(ec2.aa && Set(ec2.rdata("A")) == ["10.20.1.10", "10.20.2.10"], "\(ec2.output)")
        let sts6 = try ask("sts.us-west-2.amazonaws.com", "AAAA", shop)
        #expect(Set(sts6.rdata("AAAA")) == ["2600:1f14:aaa:b101::40", "2600:1f14:aaa:b102::40"], "\(sts6.output)")
        // S3 with private DNS only for the inbound endpoint (R7): public inside, private through the inbound endpoint.
        let s3in = try ask("s3.us-west-2.amazonaws.com", "A", shop)
        #expect(s3in.rdata("A") == ["203.0.113.20"] && !s3in.aa, "\(s3in.output)")
        let s3onprem = try ask("mybucket.s3.us-west-2.amazonaws.com", "A", inbound)
        #expect(Set(s3onprem.rdata("A")) == ["10.20.1.30", "10.20.2.30"], "\(s3onprem.output)")
        // shop.internal: plain records, the wildcard, and aliases to endpoint names (R13).
        let www = try ask("www.shop.internal", "A", shop)
        #expect(www.aa && Set(www.rdata("A")) == ["10.20.5.5", "10.20.5.6"], "\(www.output)")
        let wild = try ask("anything.shop.internal", "A", shop)
        #expect(wild.rdata("A") == ["10.20.9.9"], "\(wild.output)")
        let apex = try ask("shop.internal", "A", shop)
        #expect(Set(apex.rdata("A")) == ["10.20.1.10", "10.20.2.10"] && apex.rdata("CNAME").isEmpty, "\(apex.output)")
        let zonalAlias = try ask("ec2api.shop.internal", "A", shop)
        #expect(zonalAlias.rdata("A") == ["10.20.2.10"], "\(zonalAlias.output)")
        let stsAlias = try ask("sts.shop.internal", "AAAA", shop)
        #expect(Set(stsAlias.rdata("AAAA")) == ["2600:1f14:aaa:b101::40", "2600:1f14:aaa:b102::40"], "\(stsAlias.output)")
        // The FORWARD rule goes to the mapped on-premises DNS; the SYSTEM rule carves www out of it.
        let corp = try ask("app.corp.example.com", "A", shop)
        #expect(corp.rdata("A") == ["192.0.2.80"], "\(corp.output)")
        let carved = try ask("www.corp.example.com", "A", shop)
        #expect(carved.rdata("A") == ["198.51.100.81"], "\(carved.output)")
        // The custom service with a pendingVerification name is not served (R11).
        let pending = try ask("api.catalog.example.net", "A", shop)
        #expect(!pending.rdata("A").contains("10.20.1.50"), "\(pending.output)")

        // payments: shop.internal is associated with it too; no EC2 endpoint there; the verified service (R11).
        let payWWW = try ask("www.shop.internal", "A", payments)
        #expect(Set(payWWW.rdata("A")) == ["10.20.5.5", "10.20.5.6"], "\(payWWW.output)")
        let payEC2 = try ask("ec2.us-west-2.amazonaws.com", "A", payments)
        #expect(payEC2.rdata("A") == ["203.0.113.10"] && !payEC2.aa, "\(payEC2.output)")
        let ledger = try ask("ledger.partner.example", "A", payments)
        #expect(ledger.rdata("CNAME") == ["vpce-0b0b0000000000005-m1n2b3v4.vpce-svc-0aa00000000000001.us-west-2.vpce.amazonaws.com."], "\(ledger.output)")
        #expect(ledger.rdata("A") == ["10.30.1.20"], "\(ledger.output)")
        let logs = try ask("logs.us-west-2.amazonaws.com", "A", payments)
        #expect(logs.rdata("A") == ["203.0.113.32"], "private DNS off: public \(logs.output)")
        // The weighted pair (R18): one set per answer; over 40 queries (70/30) both show up.
        var seen: [String: Int] = [:]
        for _ in 0..<40 {
            let pay = try ask("pay.payments.corp", "A", payments)
            #expect(pay.rdata("A").count == 1, "\(pay.output)")
            if let a = pay.rdata("A").first { seen[a, default: 0] += 1 }
        }
        #expect(Set(seen.keys) == ["10.30.4.1", "10.30.4.2"], "\(seen)")

        // batch: hostnames off, so its zone and its SSM endpoint are not used (R2)...
        let job = try ask("job.batch.internal", "A", batch)
        #expect(!job.rdata("A").contains("10.40.1.1"), "\(job.output)")
        // ...but endpoint-specific names are public (R10): the real names, byte for byte.
        let regional = try ask("vpce-0e1c2a00000000001-4mtk2rb9.ec2.us-west-2.vpce.amazonaws.com", "A", batch)
        #expect(Set(regional.rdata("A")) == ["10.20.1.10", "10.20.2.10"], "\(regional.output)")
        let zonal = try ask("vpce-0e1c2a00000000001-4mtk2rb9-us-west-2a.ec2.us-west-2.vpce.amazonaws.com", "A", batch)
        #expect(zonal.rdata("A") == ["10.20.1.10"], "\(zonal.output)")
        let corpFromBatch = try ask("app.corp.example.com", "A", batch)
        #expect(corpFromBatch.rdata("A") == ["198.51.100.80"], "no rule associated with batch: \(corpFromBatch.output)")

        // The query log names the imported ids.
        let records = await QueryLogFile.wait(queryLog, where: { $0.string("query_name") == "ec2.us-west-2.amazonaws.com." && $0.string("vpc_id") == "vpc-0a1b2c3d4e5f60001" })
        #expect(records.first?.vpcdns("decision") == "endpoint-private-dns", "\(records)")
    }
}
