import Foundation
import Testing

/// The real binary: exit codes, the bad-line report on standard error, `--json`.
@Suite
struct LogsCLITests {
    @Test func filterPrintsTheOriginalLinesAndReportsBadOnesOnStderr() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let lines = Array(Fixture.vpcdnsLines[0..<5]) + ["{not json", "42"] + Array(Fixture.vpcdnsLines[5...])
        let path = try dir.file("q.jsonl", Fixture.text(lines))
        let r = try CLI.run(["logs", "filter", path])
        #expect(r.status == 0)
        #expect(r.stdout == Fixture.text(Fixture.vpcdnsLines))
        #expect(r.stderr == "\(path):6: bad record: not JSON (object key expected at column 2)\n\(path):7: bad record: not a JSON object\n\(path): 2 bad line(s) in all\n")
    }

    @Test func filterOptionsAndTable() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let v = try dir.file("q.jsonl", Fixture.text(Fixture.vpcdnsLines))
        let a = try dir.gzip("aws.json.gz", Fixture.text(Fixture.awsLines))
        let r = try CLI.run(["logs", "filter", v, a, "--name", "*.MYSERVICE.internal", "--rcode", "NXDOMAIN"])
        #expect(r.status == 0 && r.stderr.isEmpty)
        #expect(r.stdout == Fixture.text([Fixture.vpcdnsLines[3], Fixture.vpcdnsLines[7], Fixture.awsLines[2]]))
        let d = try CLI.run(["logs", "filter", v, a, "--decision", "upstream", "--vpc", Fixture.legacy])
        #expect(d.stdout == Fixture.text([Fixture.vpcdnsLines[8]]))   // the AWS legacy record has no decision
        let t = try CLI.run(["logs", "filter", v, a, "--since", "2026-11-27T20:10:00Z", "--table"])
        let rows = t.stdout.split(separator: "\n")
        #expect(t.status == 0 && rows.count == 5 && rows[0].hasPrefix("TIME "))
        #expect(rows[2].contains("2026-11-27T20:10:01.177Z") && rows[2].contains("10.0.1.10 10.0.2.10"))
    }

    /// A misspelt `--decision` or `--rcode` matched nothing and exited 0: it looked like "no
    /// such records". Now it is a usage error naming the valid values.
    @Test func unknownDecisionOrRcodeIsAUsageError() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let v = try dir.file("q.jsonl", Fixture.text(Fixture.vpcdnsLines))
        let d = try CLI.run(["logs", "filter", v, "--decision", "bogus"])
        #expect(d.status == 64 && d.stdout.isEmpty)
        #expect(d.stderr.contains("--decision: unknown decision 'bogus'; expected one of private-hosted-zone, endpoint-private-dns,"), "\(d.stderr)")
        #expect(d.stderr.contains("forward-rule, upstream, refused, bad-request"), "\(d.stderr)")
        let r = try CLI.run(["logs", "filter", v, "--rcode", "bogus"])
        #expect(r.status == 64 && r.stdout.isEmpty)
        #expect(r.stderr.contains("--rcode: unknown rcode 'bogus'; expected one of NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED,"), "\(r.stderr)")
        // Valid values in any case still filter (and a valid value with no match is not an error).
        let ok = try CLI.run(["logs", "filter", v, "--rcode", "nxdomain", "--decision", "PRIVATE-HOSTED-ZONE"])
        #expect(ok.status == 0 && !ok.stdout.isEmpty && ok.stderr.isEmpty)
        let none = try CLI.run(["logs", "filter", v, "--decision", "reverse-dns", "--rcode", "BADCOOKIE"])
        #expect(none.status == 0 && none.stdout.isEmpty && none.stderr.isEmpty)
    }

    @Test func summaryJSONParsesAndCarriesTheMisses() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let v = try dir.file("q.jsonl", Fixture.text(Fixture.vpcdnsLines + ["garbage"]))
        let a = try dir.gzip("aws.json.gz", Fixture.text(Fixture.awsLines))
        let r = try CLI.run(["logs", "summary", v, a, "--config", Fixture.config, "--json"])
        #expect(r.status == 0)
        #expect(r.stderr == "\(v):11: bad record: not JSON (unexpected character at column 1)\n\(v): 1 bad line(s) in all\n")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(obj["records"] as? Int == 14 && obj["bad_lines"] as? Int == 1)
        let vpcs = try #require(obj["vpcs"] as? [[String: Any]])
        let app = try #require(vpcs.first { $0["vpc_id"] as? String == Fixture.app })
        #expect(app["queries"] as? Int == 7)
        #expect((app["answers"] as? [String: Int]) == ["private": 4, "forwarded": 2, "other": 0, "unknown": 1])
        #expect((app["latency_us"] as? [String: Int])?["max"] == 2_000_000)
        let misses = try #require(obj["private_dns_misses"] as? [[String: Any]])
        let legacy = try #require(misses.first { $0["vpc_id"] as? String == Fixture.legacy })
        #expect(legacy["name"] as? String == "ec2.us-west-2.amazonaws.com." && legacy["reason"] as? String == "enable_dns_hostnames=false")
        #expect(legacy["count"] as? Int == 2 && legacy["answered"] as? String == "public")
        let db = try #require(misses.first { $0["vpc_id"] as? String == Fixture.database && $0["name"] as? String == "www.myservice.internal." })
        #expect(db["reason"] as? String == "zone myservice.internal belongs to VPC vpc-0a11ce0000000001a")
    }

    @Test func summaryTextWithConfig() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let v = try dir.file("q.jsonl", Fixture.text(Fixture.vpcdnsLines))
        let r = try CLI.run(["logs", "summary", v, "--config", Fixture.config, "--vpc", Fixture.legacy, "--since", "2026-11-27T20:00:08Z"])
        #expect(r.status == 0 && r.stderr.isEmpty)
        #expect(r.stdout.hasPrefix("VPC vpc-01e9ac0000000003c (us-west-2)\n"))
        #expect(!r.stdout.contains("VPC vpc-0a11ce0000000001a ("))
        #expect(r.stdout.contains("Private DNS misses"))
        #expect(r.stdout.contains("enable_dns_hostnames=false"))
    }

    @Test func exitCodes() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let v = try dir.file("q.jsonl", Fixture.text(Fixture.vpcdnsLines))
        let missing = dir.path + "/nope.jsonl"
        let m = try CLI.run(["logs", "summary", v, missing])
        #expect(m.status == 1 && m.stderr.contains(missing))
        #expect(m.stdout.contains("VPC vpc-0a11ce0000000001a"))   // the readable file is still summarised
        #expect(try CLI.run(["logs", "filter", missing]).status == 1)
        #expect(try CLI.run(["logs", "filter", dir.path]).status == 1)   // a folder cannot be read as a log
        #expect(try CLI.run(["logs", "filter"]).status == 64)
        #expect(try CLI.run(["logs", "filter", v, "--since", "yesterday"]).status == 64)
        #expect(try CLI.run(["logs", "filter", v, "--no-such-flag"]).status == 64)
        #expect(try CLI.run(["logs", "summary", v, "--config", dir.path + "/no-config.yaml"]).status == 1)
        // Garbage alone still reads: exit 0.
        let junk = try dir.file("junk.jsonl", "junk\n")
        #expect(try CLI.run(["logs", "summary", junk]).status == 0)
    }
}
