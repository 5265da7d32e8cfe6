import DNSWire
import Testing
import VPCDNSConfig
import VPCDNSCore

@Suite struct DefaultsTests {
    @Test func emptyFileIsEveryDefault() throws {
        let c = try loaded("")
        let s = c.model.settings
        #expect(s.accountID == "000000000000")
        #expect(s.listen == [SocketEndpoint("127.0.0.1:1053")!])
        #expect(s.upstreams == [.system])
        #expect(s.upstreamTimeoutMs == 2000)
        #expect(s.upstreamAttemptTimeoutMs == 800)
        #expect(s.endpointDNSTTL == 60)
        #expect(s.cacheSize == 100_000)
        #expect(s.cacheMaxBytes == 67_108_864)
        #expect(s.udpPayloadSize == 1232)
        #expect(s.tcpIdleTimeoutMs == 10_000)
        #expect(s.maxTCPConnections == 1000)
        #expect(s.threads == nil, "one event loop per core")
        #expect(s.defaultVPC == nil)
        #expect(s.queryLog == nil)
        #expect(s.logCacheHits == true)
        #expect(s.metrics == nil)
        #expect(c.model.vpcs.isEmpty && c.model.endpoints.isEmpty && c.model.hostedZones.isEmpty)
    }

    @Test func everyTopLevelKeyIsRead() throws {
        let c = try loaded("""
        account_id: "111122223333"
        listen: ["127.0.0.1:2053", "[::1]:2053"]
        upstreams: ["127.0.0.1:1054", system]
        upstream_timeout_ms: 3000
        upstream_attempt_timeout_ms: 500
        endpoint_dns_ttl: 30
        cache_size: 0
        cache_max_bytes: 2097152
        udp_payload_size: 4096
        tcp_idle_timeout_ms: 5000
        max_tcp_connections: 10
        default_vpc: vpc-0a1
        query_log: logs/q.jsonl
        log_cache_hits: false
        metrics: 127.0.0.1:9153
        threads: 1
        \(oneVPC)
        """, path: "conf/v.yaml")
        let s = c.model.settings
        #expect(s.accountID == "111122223333")
        #expect(s.listen.map(\.description) == ["127.0.0.1:2053", "[::1]:2053"])
        #expect(s.upstreams == [.address(SocketEndpoint("127.0.0.1:1054")!), .system])
        #expect(s.upstreamTimeoutMs == 3000 && s.upstreamAttemptTimeoutMs == 500)
        #expect(s.endpointDNSTTL == 30 && s.cacheSize == 0 && s.udpPayloadSize == 4096)
        #expect(s.cacheMaxBytes == 2_097_152)
        #expect(s.tcpIdleTimeoutMs == 5000 && s.maxTCPConnections == 10)
        #expect(s.defaultVPC == "vpc-0a1")
        #expect(s.queryLog == "conf/logs/q.jsonl")   // relative to the config's folder
        #expect(s.logCacheHits == false)
        #expect(s.metrics?.description == "127.0.0.1:9153")
        #expect(s.threads == 1)
    }

    @Test func perEntryDefaults() throws {
        let c = try loaded("""
        vpcs:
          - id: vpc-0a1
            region: us-west-2
            cidrs: [10.0.0.0/16]
        endpoints:
          - id: vpce-0e1
            vpc: vpc-0a1
            service: com.amazonaws.us-west-2.sts
            subnets: [{az: us-west-2a, ipv4: 10.0.1.1}]
          - id: vpce-0e2
            vpc: vpc-0a1
            service: com.amazonaws.us-west-2.s3
            type: Gateway
        endpoint_services:
          - id: vpce-svc-0a
            region: us-west-2
        hosted_zones:
          - name: Example.Internal.
            vpcs: [vpc-0a1]
            records:
              - {name: a.example.internal, type: A, values: [10.0.0.1]}
        """)
        let v = try #require(c.model.vpcs.first)
        #expect(v.name == nil && v.clients.isEmpty && v.resolverAddresses.isEmpty && v.inboundEndpoints.isEmpty)
        #expect(v.enableDNSSupport == true && v.enableDNSHostnames == false && v.resolverRules.isEmpty)
        let e = c.model.endpoints[0]
        #expect(e.kind == .interface && e.privateDNSEnabled == true && e.privateDNSOnlyForInboundResolverEndpoint == false)
        #expect(e.ipType == .ipv4)
        #expect(e.dnsSuffix == String(SHA256Hex.of("vpce-0e1").prefix(8)))
        #expect(e.privateDNSNames.map(\.text) == ["sts.us-west-2.amazonaws.com"] && !e.privateDNSNamesOverridden)
        let g = c.model.endpoints[1]
        #expect(g.kind == .gateway && g.privateDNSEnabled == false && g.privateDNSNames.isEmpty)
        let s = c.model.endpointServices[0]
        #expect(s.verification == .verified && s.aliasStyle == .cname && s.privateDNSName == nil)
        let z = c.model.hostedZones[0]
        #expect(z.name.text == "example.internal")
        #expect(z.id == "Z" + SHA256Hex.of("example.internal").uppercased().prefix(20))
        #expect(z.hasOwnSOA == false)
        #expect(z.records.contains(PrivateZoneDefaults.soa(apex: z.name)))
        #expect(PrivateZoneDefaults.ns(apex: z.name).allSatisfy(z.records.contains))
        let a = try #require(z.records.first { $0.type == .a })
        #expect(a.ttl == 300 && a.rdata == [10, 0, 0, 1])
    }
}

import LDNSKit
enum SHA256Hex { static func of(_ s: String) -> String { LDNSKit.SHA256.hex(s) } }
