import Foundation
import Testing
import VPCDNSCore
@testable import VPCDNSServer

/// R16/R17 through the real `vpcdns serve`: a test host's own IP name and reverse lookups of
/// VPC addresses (what every ssh/sshd does), answered locally, never forwarded. The
/// upstream is a loopback port where nothing listens: a name that were forwarded would come
/// back SERVFAIL, never with the answers asserted here.
@Suite("EC2 IP names and reverse DNS (R16, R17) end to end", .serialized)
struct EC2NamesServeTests {
    static let vpc = "vpc-0a11ce0000000001a"

    /// One VPC (us-west-2) with the given CIDR and clients, an endpoint and one instance.
    static func config(listen: [String], upstream: String, cidr: String, endpointIP: String, instanceIP: String, clients: [String], queryLog: String) -> String {
        """
        listen: [\(listen.map { "\"\($0)\"" }.joined(separator: ", "))]
        upstreams: ["\(upstream)"]
        upstream_timeout_ms: 1500
        query_log: \(queryLog)
        vpcs:
          - id: \(vpc)
            region: us-west-2
            cidrs: [\(cidr)]
            clients: [\(clients.joined(separator: ", "))]
            enable_dns_hostnames: true
        endpoints:
          - id: vpce-0ec2a1b2c3d4e5f60
            vpc: \(vpc)
            service: com.amazonaws.us-west-2.ec2
            subnets: [{az: us-west-2a, ipv4: \(endpointIP)}]
        instances:
          - {id: i-0a11ce00000000001, vpc: \(vpc), ipv4: \(instanceIP), ipv6: "2600:1f14::5", resource_name_aaaa: true}

        """
    }

    @Test("loopback: dig the IP name, a PTR of the endpoint, an address outside the VPC, a resource name")
    func loopback() async throws {
        _ = try VPCDNSBinary.require()
        let dir = try ServeHarness.makeDirectory("vpcdns-ec2names")
        defer { try? FileManager.default.removeItem(at: dir) }
        let port = try await freePort(host: "127.0.0.1")
        let dead = try await freePort(host: "127.0.0.1")
        let queryLog = dir.appendingPathComponent("queries.jsonl").path
        let config = dir.appendingPathComponent("vpcdns.yaml")
        try Self.config(listen: ["127.0.0.1:\(port)"], upstream: "127.0.0.1:\(dead)", cidr: "10.0.0.0/16", endpointIP: "10.0.1.10",
                        instanceIP: "10.0.1.5", clients: ["127.0.0.1/32"], queryLog: queryLog)
            .write(to: config, atomically: true, encoding: .utf8)
        let server = try ServeProcess(arguments: ["serve", "--config", config.path], directory: dir)
        defer { server.stop() }
        _ = try await server.waitListening(count: 2)
        let at = SocketEndpoint("127.0.0.1:\(port)")!

        let ipName = try DigRun.query("ip-10-0-1-5.us-west-2.compute.internal", server: at)
        #expect(ipName.status == "NOERROR" && ipName.aa, "\(ipName.output)")
        #expect(ipName.rdata("A") == ["10.0.1.5"] && ipName.ttl("A") == 60, "\(ipName.output)")

        let ptr = try DigRun.query("10.1.0.10.in-addr.arpa", "PTR", server: at)
        #expect(ptr.status == "NOERROR" && ptr.aa, "\(ptr.output)")
        #expect(ptr.rdata("PTR") == ["ip-10-0-1-10.us-west-2.compute.internal."], "\(ptr.output)")

        // Outside the VPC, inside 10/8: NXDOMAIN from the autodefined zone, not SERVFAIL from the dead upstream.
        let outside = try DigRun.query("1.0.1.10.in-addr.arpa", "PTR", server: at, options: ["+tcp"])
        #expect(outside.status == "NXDOMAIN" && outside.aa, "\(outside.output)")
        #expect(outside.output.contains("10.in-addr.arpa.\t900\tIN\tSOA\tns-1536.awsdns-00.co.uk."), "\(outside.output)")

        let resource = try DigRun.query("i-0a11ce00000000001.us-west-2.compute.internal", "AAAA", server: at)
        #expect(resource.rdata("AAAA") == ["2600:1f14::5"] && resource.aa, "\(resource.output)")
        let noA = try DigRun.query("i-0a11ce00000000001.us-west-2.compute.internal", "A", server: at)
        #expect(noA.status == "NOERROR" && noA.answers.isEmpty, "\(noA.output)")

        let ec2Log = await QueryLogFile.wait(queryLog) { $0.string("query_name") == "ip-10-0-1-5.us-west-2.compute.internal." }
        #expect(ec2Log.first?.vpcdns("decision") == "ec2-instance-name")
        #expect(ec2Log.first?.vpcdns("zone") == "us-west-2.compute.internal")
        let ptrLog = await QueryLogFile.wait(queryLog) { $0.string("query_name") == "1.0.1.10.in-addr.arpa." }
        #expect(ptrLog.first?.vpcdns("decision") == "reverse-dns")
        #expect(ptrLog.first?.vpcdns("zone") == "10.in-addr.arpa")
        #expect(ptrLog.first?.string("rcode") == "NXDOMAIN")
        #expect(server.stop() == 0, "\(server.standardError)")
    }

    @Test("a test host in a network namespace resolves its own IP name and dig -x through its resolv.conf")
    func namespaceHost() async throws {
        try Netns.prepare("EC2NamesServeTests")
        // The host sits inside the VPC's CIDR, as an instance does; vpcdns listens on the
        // other end of its veth (the VPC+2 stand-in).
        let host = Netns.Host(role: "ec2", tag: Netns.newTag(), link: "e", hostAddress: "10.201.1.1", nsAddress: "10.201.1.2")
        defer { host.destroy() }
        try host.create()

        let dir = try ServeHarness.makeDirectory("vpcdns-ec2names-netns")
        defer { try? FileManager.default.removeItem(at: dir) }
        let dead = try await freePort(host: "127.0.0.1")
        let queryLog = dir.appendingPathComponent("queries.jsonl").path
        let config = dir.appendingPathComponent("vpcdns.yaml")
        try Self.config(listen: ["\(host.hostAddress):53"], upstream: "127.0.0.1:\(dead)", cidr: "10.201.0.0/16", endpointIP: "10.201.1.10",
                        instanceIP: host.nsAddress, clients: [], queryLog: queryLog)
            .write(to: config, atomically: true, encoding: .utf8)
        let server = try ServeProcess(arguments: ["serve", "--config", config.path], directory: dir)
        defer { server.stop() }
        _ = try await server.waitListening(count: 2)

        let own = try host.dig("ip-10-201-1-2.us-west-2.compute.internal")
        print("[netns \(host.namespace)] dig ip-10-201-1-2.us-west-2.compute.internal\n\(own.output)")
        #expect(own.status == "NOERROR" && own.aa && own.rdata("A") == ["10.201.1.2"], "\(own.output)")
        #expect(own.output.contains("SERVER: 10.201.1.1#53"), "\(own.output)")

        func digX(_ address: String) throws -> DigRun.Result {
            let r = try host.exec(["/usr/bin/dig", "-x", address, "+time=1", "+tries=2"])
            return DigRun.parse(r.output + r.error)
        }
        let self_ = try digX(host.nsAddress)
        print("[netns \(host.namespace)] dig -x \(host.nsAddress)\n\(self_.output)")
        #expect(self_.status == "NOERROR" && self_.aa && self_.rdata("PTR") == ["ip-10-201-1-2.us-west-2.compute.internal."], "\(self_.output)")
        let endpoint = try digX("10.201.1.10")
        print("[netns \(host.namespace)] dig -x 10.201.1.10\n\(endpoint.output)")
        #expect(endpoint.rdata("PTR") == ["ip-10-201-1-10.us-west-2.compute.internal."], "\(endpoint.output)")
        let outside = try digX("10.99.0.1")
        #expect(outside.status == "NXDOMAIN" && outside.aa, "\(outside.output)")

        // The way programs ask (getaddrinfo through the namespace's resolv.conf), as ssh does.
        let getent = try host.exec(["/usr/bin/getent", "ahostsv4", "ip-10-201-1-2.us-west-2.compute.internal"])
        #expect(getent.output.contains("10.201.1.2"), "\(getent.output)\(getent.error)")

        let log = await QueryLogFile.wait(queryLog) { $0.string("srcaddr") == host.nsAddress && $0.string("query_name") == "2.1.201.10.in-addr.arpa." }
        #expect(log.first?.string("vpc_id") == Self.vpc)
        #expect(log.first?.vpcdns("decision") == "reverse-dns")
        #expect(log.first?.vpcdns("zone") == "1.201.10.in-addr.arpa")
        #expect(server.stop() == 0, "\(server.standardError)")
    }
}
