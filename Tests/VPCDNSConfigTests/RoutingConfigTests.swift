import DNSWire
import Testing
import VPCDNSConfig
import VPCDNSCore

/// R18 in the configuration: `records:` routing keys, `health_checks`, and the group rules.
@Suite struct RoutingConfigTests {
    static let head = oneVPC + """
    health_checks:
      - {id: web, type: HTTP, ip: 127.0.0.1, port: 8080, resource_path: /health}
      - {id: db, type: TCP, ip: 127.0.0.1, port: 5432, request_interval_ms: 500, failure_threshold: 2, inverted: true}
    hosted_zones:
      - name: x.internal
        vpcs: [vpc-0a1]
        records:

    """

    @Test func groupsAndChecksLoad() throws {
        let c = try loaded(Self.head + """
              - {name: w.x.internal, type: A, ttl: 60, values: [10.0.0.1], set_identifier: blue, weight: 200, health_check: web}
              - {name: w.x.internal, type: A, ttl: 60, values: [10.0.0.2], set_identifier: green, weight: 0}
              - {name: f.x.internal, type: A, values: [10.0.0.3], set_identifier: one, failover: PRIMARY, health_check: db}
              - {name: f.x.internal, type: A, values: [10.0.0.4], set_identifier: two, failover: SECONDARY}
              - {name: m.x.internal, type: A, values: [10.0.0.5], set_identifier: m1, multivalue_answer: true}
        """)
        let hc = c.model.healthChecks
        #expect(hc.map(\.id) == ["web", "db"])
        #expect(hc[0].kind == .http && hc[0].resourcePath == "/health" && hc[0].requestIntervalMs == 10_000 && hc[0].failureThreshold == 3 && !hc[0].inverted)
        #expect(hc[1].kind == .tcp && hc[1].requestIntervalMs == 500 && hc[1].failureThreshold == 2 && hc[1].inverted)
        let sets = c.model.hostedZones[0].routedSets
        #expect(sets.map(\.setIdentifier) == ["blue", "green", "one", "two", "m1"])
        #expect(sets[0].policy == .weighted(200) && sets[0].healthCheck == "web")
        #expect(sets[2].policy == .failover(.primary) && sets[3].policy == .failover(.secondary) && sets[4].policy == .multivalue)
        // Routed sets are not plain records of the zone.
        #expect(!c.model.hostedZones[0].records.contains { $0.name.text == "w.x.internal" })
    }

    @Test func mixedPoliciesAreAnError() {
        let lines = errorLines(Self.head + """
              - {name: w.x.internal, type: A, values: [10.0.0.1], set_identifier: blue, weight: 1}
              - {name: w.x.internal, type: A, values: [10.0.0.2], set_identifier: green, failover: PRIMARY}
        """)
        #expect(lines == ["t.yaml:14: hosted_zones[0].records[1].set_identifier: w.x.internal A mixes routing policies: failover here, weighted at t.yaml:13; one group has one policy"])
    }

    @Test func plainSetBesideAGroupIsAnError() {
        let lines = errorLines(Self.head + """
              - {name: w.x.internal, type: A, values: [10.0.0.9]}
              - {name: w.x.internal, type: A, values: [10.0.0.1], set_identifier: blue, weight: 1}
        """)
        #expect(lines == ["t.yaml:14: hosted_zones[0].records[1].set_identifier: w.x.internal A is also a plain record set (at t.yaml:13); a name and type is either one plain set or a routing-policy group"])
    }

    @Test func badValuesAndReferences() {
        let lines = errorLines(Self.head + """
              - {name: a.x.internal, type: A, values: [10.0.0.1], set_identifier: s, weight: 256}
              - {name: b.x.internal, type: A, values: [10.0.0.1], set_identifier: s, weight: 1, health_check: nope}
              - {name: b.x.internal, type: A, values: [10.0.0.2], set_identifier: s, weight: 1}
              - {name: c.x.internal, type: A, values: [10.0.0.1], weight: 1}
              - {name: d.x.internal, type: A, values: [10.0.0.1, 10.0.0.2], set_identifier: s, multivalue_answer: true}
              - {name: e.x.internal, type: A, values: [10.0.0.1], set_identifier: s, failover: MAIN}
              - {name: f.x.internal, type: A, values: [10.0.0.1], set_identifier: s, weight: 1, failover: PRIMARY}
        """)
        #expect(lines.contains("t.yaml:13: hosted_zones[0].records[0].weight: 256 is out of range 0...255"))
        #expect(lines.contains { $0.hasPrefix("t.yaml:14: hosted_zones[0].records[1].health_check: no health check 'nope'") })
        #expect(lines.contains("t.yaml:15: hosted_zones[0].records[2].set_identifier: set_identifier 's' is already used for b.x.internal A (at t.yaml:14); it is unique within the name and type"))
        #expect(lines.contains { $0.hasPrefix("t.yaml:16: hosted_zones[0].records[3].set_identifier: required key is missing") })
        #expect(lines.contains("t.yaml:17: hosted_zones[0].records[4].values: a multivalue set has exactly one value (one value per set)"))
        #expect(lines.contains { $0.hasPrefix("t.yaml:18: hosted_zones[0].records[5].failover:") })
        #expect(lines.contains("t.yaml:19: hosted_zones[0].records[6].failover: a record set has one routing policy: weight and failover are exclusive"))
        #expect(lines.count == 7, "\(lines)")
    }

    @Test func badHealthChecks() {
        let lines = errorLines(oneVPC + """
        health_checks:
          - {id: a, type: ICMP, ip: 127.0.0.1, port: 80}
          - {id: b, type: TCP, ip: nowhere, port: 80, resource_path: /x}
          - {id: a, type: HTTP, ip: 127.0.0.1, port: 0, failure_threshold: 11}
        """)
        #expect(lines.contains { $0.hasPrefix("t.yaml:7: health_checks[0].type:") })
        #expect(lines.contains("t.yaml:8: health_checks[1].ip: 'nowhere' is not an IP address"))
        #expect(lines.contains("t.yaml:8: health_checks[1].resource_path: a TCP check has no resource_path (HTTP and HTTPS only)"))
        #expect(lines.contains("t.yaml:9: health_checks[2].port: 0 is out of range 1...65535"))
        #expect(lines.contains("t.yaml:9: health_checks[2].failure_threshold: 11 is out of range 1...10"))
    }
}
