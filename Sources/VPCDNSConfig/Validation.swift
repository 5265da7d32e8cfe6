import DNSWire
import VPCDNSCore

/// Checks between entries: unique ids, references that must exist, overlapping prefixes
/// and listeners (V1, V2), one rule per domain (R1), conflicting private DNS (R6), the S3
/// inbound-only flag (R7), one zone per name per VPC. Each problem is reported at the
/// later entry's line and names the earlier one's line (config.md).
struct Validation {
    let reader: YAMLReader
    let parsed: ParsedConfig

    func run() {
        uniqueIDs()
        references()
        sharedPrefixes()
        listeners()
        ruleDomains()
        privateDNSConflicts()
        inboundOnlyFlag()
        zoneNames()
        instances()
        healthCheckReferences()
    }

    /// R18: health check ids are unique, and every `health_check` names one.
    private func healthCheckReferences() {
        unique(parsed.healthChecks.map { ($0.value.id, "\($0.path).id") }, what: "health check id")
        let ids = Set(parsed.healthChecks.map(\.value.id))
        let known = ids.isEmpty ? "no health_checks are defined" : "defined: \(ids.sorted().joined(separator: ", "))"
        for z in parsed.zones {
            for (i, set) in z.zone.routedSets.enumerated() {
                if let c = set.healthCheck, !ids.contains(c) {
                    reader.error("\(z.routedOrigins[i].key).health_check", "no health check '\(c)' (\(known))")
                }
            }
        }
        for ep in parsed.endpoints {
            for (i, sn) in ep.value.subnets.enumerated() {
                if let c = sn.healthCheck, !ids.contains(c) {
                    reader.error("\(ep.path).subnets[\(i)].health_check", "no health check '\(c)' (\(known))")
                }
            }
        }
    }

    private func line(_ path: String) -> Int { reader.line(path) }

    /// Reports every repeat of a key after its first occurrence.
    private func unique(_ items: [(String, String)], what: String) {
        var first: [String: String] = [:]
        for (value, path) in items {
            if let f = first[value] {
                reader.error(path, "duplicate \(what) \(value) (first at line \(line(f)))")
            } else {
                first[value] = path
            }
        }
    }

    private func uniqueIDs() {
        unique(parsed.vpcs.map { ($0.value.id, "\($0.path).id") }, what: "VPC id")
        unique(parsed.endpoints.map { ($0.value.id, "\($0.path).id") }, what: "endpoint id")
        unique(parsed.services.map { ($0.value.id, "\($0.path).id") }, what: "endpoint service id")
        unique(parsed.vpcs.flatMap { v in zip(v.value.inboundEndpoints, v.sub["inbound_endpoints"] ?? []).map { ($0.id, "\($1).id") } },
               what: "inbound endpoint id")
        // One AWS rule can be associated with several VPCs: its id repeats across VPCs (the
        // same rule each time), never within one VPC.
        for v in parsed.vpcs {
            unique(zip(v.value.resolverRules, v.sub["resolver_rules"] ?? []).map { ($0.id, "\($1).id") }, what: "resolver rule id")
        }
        var firstRule: [String: (ResolverRule, String, String)] = [:]
        for v in parsed.vpcs {
            for (rule, path) in zip(v.value.resolverRules, v.sub["resolver_rules"] ?? []) {
                guard let (first, firstPath, firstVPC) = firstRule[rule.id] else { firstRule[rule.id] = (rule, path, v.value.id); continue }
                if firstVPC != v.value.id && first != rule {
                    reader.error("\(path).id", "resolver rule \(rule.id) differs from its definition at line \(line(firstPath)) (a rule associated with several VPCs has one domain, type and targets)")
                }
            }
        }
        // Derived zone ids repeat on purpose for same-named zones in different VPCs; only
        // ids written in the file must be unique.
        unique(parsed.zones.filter { reader.lines["\($0.path).id"] != nil }.map { ($0.zone.id, "\($0.path).id") }, what: "hosted zone id")
    }

    private func references() {
        let vpcIDs = Set(parsed.vpcs.map(\.value.id))
        if let d = parsed.settings.defaultVPC, !vpcIDs.contains(d) {
            reader.error("default_vpc", "no VPC with id \(d) in this file")
        }
        for e in parsed.endpoints where !vpcIDs.contains(e.value.vpcID) {
            reader.error("\(e.path).vpc", "no VPC with id \(e.value.vpcID) in this file")
        }
        for z in parsed.zones {
            for (id, p) in zip(z.zone.vpcIDs, z.vpcPaths) where !vpcIDs.contains(id) {
                reader.error(p, "no VPC with id \(id) in this file")
            }
            unique(zip(z.zone.vpcIDs, z.vpcPaths).map { ($0, $1) }, what: "VPC")
            aliasTargets(z)
        }
    }

    /// R13: an alias points at a configured endpoint, or at one of its regional/zonal names.
    private func aliasTargets(_ z: ParsedZone) {
        let endpoints = parsed.endpoints.map(\.value)
        for (a, o) in zip(z.zone.aliases, z.aliasOrigins) {
            switch a.target {
            case .endpoint(let id):
                guard let ep = endpoints.first(where: { $0.id == id }) else {
                    reader.error("\(o.key).alias.endpoint", "no endpoint with id \(id) in this file"); continue
                }
                if ep.kind != .interface { reader.error("\(o.key).alias.endpoint", "\(id) is a \(ep.kind.rawValue) endpoint; aliases point at Interface endpoints") }
            case .dnsName(let name):
                let known = endpoints.filter { $0.kind == .interface }.flatMap { [$0.regionalName] + $0.zonalNames.map(\.name) }
                if !known.contains(name) {
                    reader.error("\(o.key).alias.dns_name", "\(name.text) is not the regional or zonal DNS name of an endpoint in this file")
                }
            case .record:
                break // checked with the zone (ZoneRules)
            }
        }
    }

    /// V2: two VPCs may claim the identical prefix only if both have resolver_addresses.
    private func sharedPrefixes() {
        var first: [IPPrefix: (vpc: Located<VPC>, path: String)] = [:]
        for v in parsed.vpcs {
            let items = Array(zip(v.value.cidrs, v.sub["cidrs"] ?? [])) + Array(zip(v.value.clients, v.sub["clients"] ?? []))
            for (prefix, path) in items {
                guard let f = first[prefix] else { first[prefix] = (v, path); continue }
                if f.vpc.path == v.path {
                    reader.error(path, "\(prefix) is listed twice for this VPC (first at line \(line(f.path)))")
                } else if !f.vpc.value.resolverAddresses.isEmpty && !v.value.resolverAddresses.isEmpty {
                    reader.warning(path, "\(prefix) is claimed by both VPC \(f.vpc.value.id) (line \(line(f.path))) and VPC \(v.value.id): a client there on a shared listen address is REFUSED (ambiguous-vpc); each VPC is reachable only on its resolver_addresses")
                } else {
                    reader.error(path, "\(prefix) is claimed by both VPC \(f.vpc.value.id) (line \(line(f.path))) and VPC \(v.value.id): identical prefixes are allowed only when both VPCs have resolver_addresses")
                }
            }
        }
    }

    /// Every DNS address served, with its configuration path: `listen`, then each VPC's
    /// resolver and inbound-endpoint addresses.
    private var dnsAddresses: [(SocketEndpoint, String)] {
        var dns: [(SocketEndpoint, String)] = zip(parsed.settings.listen, parsed.listenPaths).map { ($0, $1) }
        for v in parsed.vpcs {
            dns += zip(v.value.resolverAddresses, v.sub["resolver_addresses"] ?? []).map { ($0, $1) }
            dns += zip(v.value.inboundEndpoints.flatMap(\.addresses), v.sub["inbound_addresses"] ?? []).map { ($0, $1) }
        }
        return dns
    }

    /// The HTTP addresses (`metrics`, `console`), keyed by their setting.
    private var httpAddresses: [(SocketEndpoint, String)] {
        var http: [(SocketEndpoint, String)] = []
        if let m = parsed.settings.metrics { http.append((m, "metrics")) }
        if let c = parsed.settings.console { http.append((c, "console")) }
        return http
    }

    /// V1: every listener address belongs to exactly one purpose.
    private func listeners() {
        let dns = dnsAddresses
        var first: [String: String] = [:]
        for (address, path) in dns + httpAddresses {
            let addr = address.description
            // `metrics` naming the console's address is one HTTP server serving both (the
            // console has `/metrics` and `/healthz` already).
            if path == "console", first[addr] == "metrics" { continue }
            if let f = first[addr] {
                reader.error(path, "listener address \(addr) is already used by \(f) (line \(line(f))); each address serves one purpose")
            } else {
                first[addr] = path
            }
        }
        wildcardOverlaps(dns)
    }

    /// O7: DNS addresses covered by a wildcard `listen` entry of the same family and port open
    /// no socket of their own, so they never clash. What still fails to bind on Linux (tried
    /// with the options the listeners set) is a TCP listening socket of `metrics` or `console`
    /// beside a DNS socket or each other, one a wildcard over the other's family and port:
    /// the kernel refuses it even with `SO_REUSEADDR`. Identical addresses are reported above.
    private func wildcardOverlaps(_ dns: [(SocketEndpoint, String)]) {
        for (address, path) in dns where Self.isIPv4Mapped(address.ip) {
            reader.error(path, "\(address) is an IPv4-mapped IPv6 address, which an IPv6 listening socket (IPV6_V6ONLY) cannot bind; write the IPv4 address")
        }
        for (address, path) in dns.dropFirst(parsed.settings.listen.count) where ListenPlan.isWildcard(address) {
            reader.warning(path, "\(address) is a wildcard: V1 keys on the address a query was sent to, which is never a wildcard, so no query "
                           + "is answered as this VPC here; list the VPC's own address (a wildcard in listen covers it, O7)")
        }
        let sockets = ListenPlan(addresses: dns).entries.filter(\.opensSocket)
        var taken: [(SocketEndpoint, String)] = sockets.map { ($0.address, $0.key) }
        for (address, path) in httpAddresses {
            if let (other, otherPath) = taken.first(where: { $0.0 != address && ListenPlan.tcpClash($0.0, address) }) {
                reader.error(path, "\(path) \(address) cannot listen beside \(otherPath) \(other) (line \(line(otherPath))): on one port, "
                             + "TCP refuses a wildcard together with an address of its family; use another port for \(path)")
            }
            taken.append((address, path))
        }
    }

    /// `::ffff:a.b.c.d`.
    static func isIPv4Mapped(_ ip: IPAddress) -> Bool {
        if case .v6(let v) = ip { return v >> 32 == 0xFFFF }
        return false
    }

    /// R1: AWS allows one rule per domain per VPC.
    private func ruleDomains() {
        for v in parsed.vpcs {
            unique(zip(v.value.resolverRules, v.sub["resolver_rules"] ?? []).map { ($0.domain.text, "\($1).domain") },
                   what: "resolver rule for domain")
        }
    }

    /// One claim on a private DNS zone apex in one VPC.
    private struct Claim {
        var name: DNSName      // as written (may be a wildcard)
        var apex: DNSName      // the hidden zone it creates (`*.x` -> `x`)
        var key: String
        var owner: String      // for messages
    }

    /// R6: the private DNS of endpoints (and consumed services) and the PHZs of one VPC must
    /// not claim the same domain; worded like AWS's own error.
    private func privateDNSConflicts() {
        let services = Dictionary(parsed.services.map { ($0.value.id, $0.value) }, uniquingKeysWith: { a, _ in a })
        for v in parsed.vpcs {
            var claims: [Claim] = []
            for e in parsed.endpoints where e.value.vpcID == v.value.id && e.value.kind == .interface && e.value.privateDNSEnabled {
                let names: [DNSName]
                if case .custom(_, let sid) = e.value.service {
                    names = services[sid].flatMap { $0.verification == .verified ? $0.privateDNSName : nil }.map { [$0] } ?? []
                } else {
                    names = e.value.privateDNSNames
                }
                claims += names.map { Claim(name: $0, apex: $0.isWildcard ? $0.parent! : $0, key: "\(e.path).private_dns_enabled", owner: "endpoint \(e.value.id)") }
            }
            for z in parsed.zones where z.zone.vpcIDs.contains(v.value.id) {
                claims.append(Claim(name: z.zone.name, apex: z.zone.name, key: "\(z.path).name", owner: "hosted zone \(z.zone.name.text)"))
            }
            claims.sort { line($0.key) < line($1.key) }
            var seen: [DNSName: Claim] = [:]
            for c in claims {
                guard let f = seen[c.apex] else { seen[c.apex] = c; continue }
                guard f.key != c.key else { continue }
                if f.owner.hasPrefix("hosted zone") && c.owner.hasPrefix("hosted zone") { continue } // zoneNames() says it better
                let shown = c.name.isWildcard || !f.name.isWildcard ? c.name : f.name
                reader.error(c.key, "conflicting DNS domain for \(shown.text) in VPC \(v.value.id) (\(f.owner) at line \(line(f.key)) already claims it)")
            }
        }
    }

    /// R7: the inbound-only flag needs an S3 Interface endpoint with private DNS and an S3
    /// Gateway endpoint in the same VPC.
    private func inboundOnlyFlag() {
        for e in parsed.endpoints where e.value.privateDNSOnlyForInboundResolverEndpoint {
            let key = "\(e.path).private_dns_only_for_inbound_resolver_endpoint"
            let ep = e.value
            if !ep.isS3 || ep.kind != .interface {
                reader.error(key, "private_dns_only_for_inbound_resolver_endpoint applies only to S3 Interface endpoints")
            } else if !ep.privateDNSEnabled {
                reader.error(key, "private_dns_only_for_inbound_resolver_endpoint needs private_dns_enabled: true")
            } else if !parsed.endpoints.contains(where: { $0.value.vpcID == ep.vpcID && $0.value.kind == .gateway && $0.value.service == ep.service }) {
                reader.error(key, "To set private_dns_only_for_inbound_resolver_endpoint to true, the VPC \(ep.vpcID) must have a gateway endpoint for the service")
            }
        }
    }

    /// Two zones with the same name in one VPC are a configuration error (as in AWS).
    private func zoneNames() {
        var first: [String: ParsedZone] = [:]
        for z in parsed.zones {
            for vpc in z.zone.vpcIDs {
                let k = "\(vpc) \(z.zone.name.text)"
                if let f = first[k] {
                    reader.error("\(z.path).name", "a second hosted zone named \(z.zone.name.text) for VPC \(vpc) (first at line \(line("\(f.path).name"))); a VPC can be associated with one zone of a given name")
                } else {
                    first[k] = z
                }
            }
        }
    }
}
