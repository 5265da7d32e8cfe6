import Foundation
import Testing

/// `vpcdns explain` on the worked example: the classic mistakes, in text and JSON.
@Suite("vpcdns explain (CLI)", .serialized)
struct ExplainCommandTests {
    func explain(_ args: [String]) throws -> CLI.Output {
        try #require(FileManager.default.isExecutableFile(atPath: CLI.binary), "build the binary first: swift build")
        return try CLI.run(["explain"] + args)
    }

    func json(_ args: [String]) throws -> [String: Any] {
        let out = try explain(args + ["--json"])
        #expect(out.status == 0, "\(out.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any])
    }

    @Test("a private answer: endpoint private DNS for the app VPC")
    func privateAnswer() throws {
        let out = try explain(["ec2.us-west-2.amazonaws.com", "--from", "127.0.0.1"])
        #expect(out.status == 0)
        #expect(out.stdout.contains("vpc        vpc-0a11ce0000000001a (app)"))
        #expect(out.stdout.contains("* ec2.us-west-2.amazonaws.com  endpoint-private-dns vpce-0ec2a1b2c3d4e5f60  [WINS]"))
        #expect(out.stdout.contains("ec2.us-west-2.amazonaws.com.\t60\tIN\tA\t10.0.1.10"))
        let j = try json(["ec2.us-west-2.amazonaws.com", "A", "--from", "127.0.0.1"])
        #expect(j["decision"] as? String == "endpoint-private-dns")
        #expect((j["outcome"] as? [String: Any])?["aa"] as? Bool == true)
    }

    @Test("hostnames off (legacy VPC, through its resolver address)")
    func hostnamesOff() throws {
        let out = try explain(["ec2.us-west-2.amazonaws.com", "--from", "10.2.0.5", "--to", "127.0.30.2:1053"])
        #expect(out.stdout.contains("enable_dns_hostnames=false (R2)  <-- not met"))
        #expect(out.stdout.contains("forwarded to upstream 127.0.0.1:1054 (R9)"))
        let j = try json(["ec2.us-west-2.amazonaws.com", "--from", "10.2.0.5", "--to", "127.0.30.2:1053"])
        #expect(j["reason"] as? String == "enable_dns_hostnames=false")
        #expect(j["decision"] as? String == "upstream")
    }

    @Test("an endpoint in another VPC")
    func otherVPC() throws {
        let out = try explain(["db.bank.example.com", "--from", "10.1.0.5", "--to", "127.0.20.2:1053"])
        #expect(out.stdout.contains("associated with vpc-0a11ce0000000001a only, not with this VPC"))
        let j = try json(["db.bank.example.com", "--from", "10.1.0.5", "--to", "127.0.20.2:1053"])
        #expect((j["findings"] as? [String])?.contains { $0.contains("vpc-0a11ce0000000001a") } == true)
    }

    @Test("inbound-only S3: public inside the VPC, private through the inbound endpoint")
    func inboundOnly() throws {
        let inside = try json(["s3.us-west-2.amazonaws.com", "--from", "127.0.0.1"])
        #expect(inside["reason"] as? String == "inbound-only")
        let out = try explain(["s3.us-west-2.amazonaws.com", "--from", "192.0.2.1", "--to", "127.0.10.53:1053"])
        #expect(out.stdout.contains("inbound endpoint rslvr-in-0123456789abcdef0 (V1)"))
        #expect(out.stdout.contains("10.0.1.30"))
    }

    @Test("a PHZ shadowing names people resolve publicly")
    func shadowing() throws {
        let out = try explain(["missing.myservice.internal", "--from", "127.0.0.1"])
        #expect(out.stdout.contains("NXDOMAIN, authoritative (aa)"))
        #expect(out.stdout.contains("public DNS is never consulted"))
    }

    @Test("a FORWARD rule and its SYSTEM carve-out")
    func rules() throws {
        let fwd = try json(["host.corp.example.com", "--from", "127.0.0.1"])
        #expect(fwd["decision"] as? String == "forward-rule")
        #expect((fwd["outcome"] as? [String: Any])?["targets"] as? [String] == ["127.0.0.1:5300"])
        let sys = try json(["www.public.corp.example.com", "--from", "127.0.0.1"])
        #expect(sys["decision"] as? String == "upstream")
        #expect(sys["zone_id"] as? String == "rslvr-rr-0123456789abcdef1")
    }

    @Test("upstreams that are vpcdns itself are named as left out (O6)")
    func leftOut() throws {
        let path = try CLI.tempConfig("""
            listen: ["127.0.0.1:1053"]
            upstreams: ["127.0.0.1:1053", "127.0.0.1:1054"]
            vpcs:
              - id: vpc-0a1
                region: us-west-2
                cidrs: [10.0.0.0/16]
                clients: [127.0.0.0/8]

            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let out = try explain(["www.example.com", "--from", "127.0.0.1", "--config", path])
        #expect(out.status == 0)
        #expect(out.stdout.contains("""
            answer     forwarded to upstream 127.0.0.1:1054 (R9)
              left out (O6): 127.0.0.1:1053: it is vpcdns's own listener 127.0.0.1:1053: forwarding there would loop

            """), "\(out.stdout)")
        #expect(out.stderr.contains("upstreams[0]: warning: upstream 127.0.0.1:1053 left out"), "\(out.stderr)")
        let j = try json(["www.example.com", "--from", "127.0.0.1", "--config", path])
        let outcome = try #require(j["outcome"] as? [String: Any])
        #expect(outcome["targets"] as? [String] == ["127.0.0.1:1054"])
        let left = try #require((outcome["upstreams"] as? [String: Any])?["left_out"] as? [[String: Any]])
        #expect(left.map { $0["address"] as? String } == ["127.0.0.1:1053"])
    }

    @Test("no VPC: REFUSED; usage errors exit 64")
    func refusedAndUsage() throws {
        let j = try json(["www.example.com", "--from", "192.0.2.9", "--to", "127.0.0.1:1053"])
        #expect(j["reason"] as? String == "no-vpc-match")
        #expect(try explain(["www.example.com", "--from", "not-an-ip"]).status == 64)
        #expect(try explain(["www.example.com", "BOGUS", "--from", "127.0.0.1"]).status == 64)
        #expect(try explain(["www.example.com"]).status == 64)
    }
}

/// R18 in `explain`: every set of the group, its weight or role, its health, the choice.
@Suite("vpcdns explain: routing policies (CLI)", .serialized)
struct ExplainRoutingTests {
    func explain(_ args: [String]) throws -> CLI.Output {
        try #require(FileManager.default.isExecutableFile(atPath: CLI.binary), "build the binary first: swift build")
        return try CLI.run(["explain"] + args)
    }

    @Test("failover: the PRIMARY while healthy; --unhealthy shows the SECONDARY and primary-unhealthy")
    func failover() throws {
        let up = try explain(["orders.myservice.internal", "--from", "127.0.0.1"])
        #expect(up.status == 0, "\(up.stderr)")
        #expect(up.stdout.contains("routing    failover group orders.myservice.internal A: PRIMARY is healthy (R18)"))
        #expect(up.stdout.contains("  * primary  PRIMARY  healthy (check orders-primary)  [CHOSEN]"))
        #expect(up.stdout.contains("  - standby  SECONDARY  healthy (no health check)"))
        #expect(up.stdout.contains("orders.myservice.internal.\t30\tIN\tA\t10.0.5.30"))
        let down = try explain(["orders.myservice.internal", "--from", "127.0.0.1", "--unhealthy", "orders-primary"])
        #expect(down.stdout.contains("reason primary-unhealthy"))
        #expect(down.stdout.contains("  - primary  PRIMARY  unhealthy (check orders-primary)"))
        #expect(down.stdout.contains("  * standby  SECONDARY  healthy (no health check)  [CHOSEN]"))
        #expect(down.stdout.contains("orders.myservice.internal.\t30\tIN\tA\t10.0.6.30"))
        let bad = try explain(["orders.myservice.internal", "--from", "127.0.0.1", "--unhealthy", "nope"])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("--unhealthy: no health check 'nope' (defined: orders-primary)"))
    }

    @Test("weighted, as JSON: both sets with weights, health and the chosen one; the seed decides")
    func weightedJSON() throws {
        var chosen = Set<String>()
        for seed in 0..<40 {
            let out = try explain(["api.myservice.internal", "--from", "127.0.0.1", "--json", "--seed", "\(seed)"])
            let j = try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any])
            let r = try #require(j["routing"] as? [String: Any])
            #expect(r["policy"] as? String == "weighted")
            let sets = try #require(r["sets"] as? [[String: Any]])
            #expect(sets.map { $0["set_identifier"] as? String } == ["current", "next"])
            #expect(sets.map { $0["weight"] as? Int } == [90, 10])
            #expect(sets.allSatisfy { $0["healthy"] as? Bool == true })
            let set = try #require(r["record_set"] as? String)
            #expect(sets.filter { $0["chosen"] as? Bool == true }.map { $0["set_identifier"] as? String } == [set])
            chosen.insert(set)
            let answer = ((j["outcome"] as? [String: Any])?["answer"] as? [[String: Any]])?.compactMap { $0["rdata"] as? String } ?? []
            #expect(answer == (set == "next" ? ["10.0.3.40"] : ["10.0.1.40", "10.0.2.40"]))
        }
        #expect(chosen == ["current", "next"], "40 seeds should reach both sets of a 90/10 pair")
    }
}
