#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import DNSWire
import LDNSKit
import VPCDNSCore
import Yams

/// A model entry with the key path it was read from (`vpcs[2]`) and the key paths of its
/// list items (`sub["cidrs"]` parallel to `value.cidrs`), so cross-entry checks can point
/// at the exact key even when a broken sibling item was dropped.
struct Located<T> {
    var value: T
    var path: String
    var sub: [String: [String]] = [:]
}

/// Everything read from the YAML, before the cross-entry checks of `Validation`.
struct ParsedConfig {
    var settings = Settings()
    var listenPaths: [String] = ["listen"]
    var vpcs: [Located<VPC>] = []
    var endpoints: [Located<Endpoint>] = []
    var services: [Located<EndpointService>] = []
    var zones: [ParsedZone] = []
    var instances: [Located<Instance>] = []
    var healthChecks: [Located<HealthCheck>] = []
}

/// Turns the YAML tree into typed values, one entry at a time. Checks that need only the
/// entry itself (formats, required keys, enum values, per-entry rules) happen here;
/// checks between entries live in `Validation`.
struct ModelBuilder {
    let reader: YAMLReader
    let configPath: String

    func build(root: Node?) -> ParsedConfig {
        var parsed = ParsedConfig()
        guard let root, !root.isNullScalar else {
            // An empty file is a valid config: every default, no VPC.
            return parsed
        }
        guard let top = reader.mapping(root, at: "", allowed: Keys.top) else { return parsed }
        readSettings(top, into: &parsed)
        parsed.vpcs = reader.sequence(top["vpcs"], at: "vpcs").compactMap { vpc($0, $1) }
        parsed.endpoints = reader.sequence(top["endpoints"], at: "endpoints").compactMap { endpoint($0, $1) }
        parsed.services = reader.sequence(top["endpoint_services"], at: "endpoint_services").compactMap { service($0, $1) }
        var zoneBuilder = HostedZoneBuilder(reader: reader, configPath: configPath)
        zoneBuilder.preloaded = ZoneFilePreloader.load(top["hosted_zones"], configPath: configPath)
        parsed.zones = reader.sequence(top["hosted_zones"], at: "hosted_zones").compactMap { zoneBuilder.zone($0, $1) }
        parsed.instances = reader.sequence(top["instances"], at: "instances").compactMap { instance($0, $1) }
        parsed.healthChecks = reader.sequence(top["health_checks"], at: "health_checks").compactMap { healthCheck($0, $1) }
        return parsed
    }

    // MARK: - Top level

    private func readSettings(_ m: [String: Node], into parsed: inout ParsedConfig) {
        var s = Settings()
        if let v = reader.string(m["account_id"], at: "account_id") {
            if v.count == 12, v.allSatisfy(\.isNumber) { s.accountID = v } else {
                reader.error("account_id", "'\(v)' is not an AWS account id (12 digits; quote it to keep leading zeros)")
            }
        }
        if m["listen"] != nil {
            let items = socketList(m["listen"], at: "listen")
            s.listen = items.map(\.0)
            parsed.listenPaths = items.map(\.1)
        }
        if m["upstreams"] != nil {
            let items = reader.strings(m["upstreams"], at: "upstreams") ?? []
            var ups: [UpstreamSpec] = []
            for (text, path) in items {
                if text == "system" { ups.append(.system) } else if let ep = SocketEndpoint(text) { ups.append(.address(ep)) } else {
                    reader.error(path, "'\(text)' is not an upstream: expected IP:PORT ([IPv6]:PORT) or system")
                }
            }
            if items.isEmpty { reader.error("upstreams", "at least one upstream is needed (IP:PORT or system)") }
            s.upstreams = ups
        }
        let ms = 1...3_600_000
        s.upstreamTimeoutMs = reader.int(m["upstream_timeout_ms"], at: "upstream_timeout_ms", range: ms) ?? s.upstreamTimeoutMs
        s.upstreamAttemptTimeoutMs = reader.int(m["upstream_attempt_timeout_ms"], at: "upstream_attempt_timeout_ms", range: ms) ?? s.upstreamAttemptTimeoutMs
        if let ttl = reader.int(m["endpoint_dns_ttl"], at: "endpoint_dns_ttl", range: 0...2_147_483_647) { s.endpointDNSTTL = UInt32(ttl) }
        s.cacheSize = reader.int(m["cache_size"], at: "cache_size", range: 0...100_000_000) ?? s.cacheSize
        // Up to 1 TiB; 0 turns the cache off, as `cache_size: 0` does.
        s.cacheMaxBytes = reader.int(m["cache_max_bytes"], at: "cache_max_bytes", range: 0...(1 << 40)) ?? s.cacheMaxBytes
        s.udpPayloadSize = reader.int(m["udp_payload_size"], at: "udp_payload_size", range: 512...65535) ?? s.udpPayloadSize
        s.tcpIdleTimeoutMs = reader.int(m["tcp_idle_timeout_ms"], at: "tcp_idle_timeout_ms", range: ms) ?? s.tcpIdleTimeoutMs
        s.maxTCPConnections = reader.int(m["max_tcp_connections"], at: "max_tcp_connections", range: 1...1_000_000) ?? s.maxTCPConnections
        s.threads = reader.int(m["threads"], at: "threads", range: 1...256) ?? s.threads
        s.upstreamSockets = reader.int(m["upstream_sockets"], at: "upstream_sockets", range: 1...65_536) ?? s.upstreamSockets
        if let v = reader.string(m["default_vpc"], at: "default_vpc") {
            if IDFormat.isVPCID(v) { s.defaultVPC = v } else { reader.error("default_vpc", badID(v, "a VPC id", "vpc-")) }
        }
        if let v = reader.string(m["query_log"], at: "query_log") {
            if v.isEmpty { reader.error("query_log", "empty path (use - for standard output)") } else {
                s.queryLog = v == "-" ? "-" : Paths.resolve(v, relativeTo: configPath)
            }
        }
        s.logCacheHits = reader.bool(m["log_cache_hits"], at: "log_cache_hits") ?? s.logCacheHits
        if let v = reader.string(m["metrics"], at: "metrics") {
            if let ep = SocketEndpoint(v) { s.metrics = ep } else { reader.error("metrics", badSocket(v)) }
        }
        if m["trusted_proxies"] != nil {
            // P9: an empty list is the default (no proxy), so it is no error.
            let items = prefixList(m["trusted_proxies"], at: "trusted_proxies")
            s.trustedProxies = items.map(\.0)
            // A header names the VPC its query is answered as: trusting everyone lets any host pick one.
            for (prefix, p) in items where prefix.length == 0 {
                reader.warning(p, "\(prefix) trusts every source to name its own client in a PROXY v2 header, so any host could pick the VPC it is answered as; list only your load balancers")
            }
        }
        if let node = m["dnstap"], !node.isNullScalar { s.dnstap = dnstap(node) }
        if let v = reader.string(m["console"], at: "console") {
            if let ep = SocketEndpoint(v) { s.console = ep } else { reader.error("console", badSocket(v)) }
        }
        if let v = reader.string(m["console_token"], at: "console_token") {
            // Sent in a header, a query string and the page's asset addresses: characters that
            // need no escaping in any of them (enough for hex, base64 and UUIDs).
            let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~/=".utf8)
            if v.isEmpty || !v.utf8.allSatisfy(allowed.contains) {
                reader.error("console_token", "expected a non-empty token of letters, digits and - _ . ~ / = only")
            } else {
                s.consoleToken = v
            }
        }
        parsed.settings = s
    }

    /// O8: `dnstap: {socket, identity, version, messages}`, defaults filled in.
    private func dnstap(_ node: Node) -> DnstapSettings? {
        guard let m = reader.mapping(node, at: "dnstap", allowed: Keys.dnstap) else { return nil }
        var socket: String? = nil
        if let v = reader.require(reader.string(m["socket"], at: "dnstap.socket"), m["socket"], at: "dnstap.socket") {
            if v.isEmpty {
                reader.error("dnstap.socket", "empty path: the unix socket a dnstap reader listens on, e.g. /run/dnstap.sock")
            } else {
                let path = Paths.resolve(v, relativeTo: configPath)
                // sockaddr_un holds 107 bytes and a terminating zero.
                if path.utf8.count > 107 {
                    reader.error("dnstap.socket", "'\(path)' is longer than a unix socket path may be (107 bytes)")
                } else {
                    socket = path
                }
            }
        }
        let identity = reader.string(m["identity"], at: "dnstap.identity") ?? ModelBuilder.hostName()
        let version = reader.string(m["version"], at: "dnstap.version") ?? DnstapSettings.vpcdnsVersion
        var messages = DnstapSettings.allMessages
        if m["messages"] != nil {
            let items = reader.strings(m["messages"], at: "dnstap.messages") ?? []
            var chosen: Set<String> = []
            for (text, path) in items {
                if DnstapSettings.allMessages.contains(text) { chosen.insert(text) } else {
                    reader.error(path, "'\(text)' is not a dnstap message kind: expected one of \(DnstapSettings.allMessages.joined(separator: ", "))")
                }
            }
            if items.isEmpty { reader.error("dnstap.messages", "an empty list sends nothing: list at least one of \(DnstapSettings.allMessages.joined(separator: ", ")), or leave dnstap out") }
            messages = DnstapSettings.allMessages.filter { chosen.contains($0) }
        }
        guard let socket else { return nil }
        return DnstapSettings(socket: socket, identity: identity, version: version, messages: messages)
    }

    /// This host's name (dnstap's default identity).
    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "vpcdns" }
        let name = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "vpcdns" : name
    }

    // MARK: - Health checks (R18)

    private func healthCheck(_ node: Node, _ path: String) -> Located<HealthCheck>? {
        guard let m = reader.mapping(node, at: path, allowed: Keys.healthCheck) else { return nil }
        let id = reader.require(reader.string(m["id"], at: "\(path).id"), m["id"], at: "\(path).id")
        if let id, id.isEmpty || id.count > 64 { reader.error("\(path).id", "a health check id has 1 to 64 characters") }
        let kind = reader.require(reader.choice(m["type"], at: "\(path).type", HealthCheck.Kind.self, choices: HealthCheck.Kind.allCases),
                                  m["type"], at: "\(path).type")
        var ip: IPAddress? = nil
        if let text = reader.require(reader.string(m["ip"], at: "\(path).ip"), m["ip"], at: "\(path).ip") {
            ip = IPAddress(text)
            if ip == nil { reader.error("\(path).ip", "'\(text)' is not an IP address") }
        }
        let port = reader.require(reader.int(m["port"], at: "\(path).port", range: 1...65535), m["port"], at: "\(path).port")
        let resourcePath = reader.string(m["resource_path"], at: "\(path).resource_path") ?? "/"
        if m["resource_path"] != nil {
            if kind == .tcp { reader.error("\(path).resource_path", "a TCP check has no resource_path (HTTP and HTTPS only)") }
            if !resourcePath.hasPrefix("/") || resourcePath.contains(where: { $0 == " " || $0.isNewline }) {
                reader.error("\(path).resource_path", "'\(resourcePath)' is not a path: it starts with / and has no spaces")
            }
        }
        let interval = reader.int(m["request_interval_ms"], at: "\(path).request_interval_ms", range: 100...3_600_000) ?? 10_000
        let threshold = reader.int(m["failure_threshold"], at: "\(path).failure_threshold", range: 1...10) ?? 3
        let inverted = reader.bool(m["inverted"], at: "\(path).inverted") ?? false
        guard let id, !id.isEmpty, let kind, let ip, let port else { return nil }
        return Located(value: HealthCheck(id: id, kind: kind, ip: ip, port: UInt16(port), resourcePath: resourcePath,
                                          requestIntervalMs: interval, failureThreshold: threshold, inverted: inverted), path: path)
    }

    // MARK: - VPCs

    private func vpc(_ node: Node, _ path: String) -> Located<VPC>? {
        guard let m = reader.mapping(node, at: path, allowed: Keys.vpc) else { return nil }
        let id = reader.require(reader.string(m["id"], at: "\(path).id"), m["id"], at: "\(path).id")
        let region = reader.require(reader.string(m["region"], at: "\(path).region"), m["region"], at: "\(path).region")
        if let id, !IDFormat.isVPCID(id) { reader.error("\(path).id", badID(id, "a VPC id", "vpc-")) }
        if let region, !IDFormat.isRegion(region) { reader.error("\(path).region", badRegion(region)) }
        if m["cidrs"] == nil { reader.error("\(path).cidrs", "required key is missing", line: node.line) }
        let cidrs = prefixList(m["cidrs"], at: "\(path).cidrs")
        if m["cidrs"] != nil, cidrs.isEmpty, !reader.errors.contains(where: { $0.key.hasPrefix("\(path).cidrs") }) {
            reader.error("\(path).cidrs", "a VPC needs at least one CIDR block")
        }
        let clients = prefixList(m["clients"], at: "\(path).clients")
        let resolvers = socketList(m["resolver_addresses"], at: "\(path).resolver_addresses")
        var inboundPaths: [String] = []
        var inboundAddressPaths: [String] = []
        let inbound: [InboundEndpoint] = reader.sequence(m["inbound_endpoints"], at: "\(path).inbound_endpoints").compactMap { n, p in
            guard let e = reader.mapping(n, at: p, allowed: Keys.inbound) else { return nil }
            let id = reader.require(reader.string(e["id"], at: "\(p).id"), e["id"], at: "\(p).id")
            if let id, !IDFormat.isInboundEndpointID(id) { reader.error("\(p).id", badID(id, "a Resolver inbound endpoint id", "rslvr-in-")) }
            if e["addresses"] == nil { reader.error("\(p).addresses", "required key is missing", line: n.line) }
            let addrs = socketList(e["addresses"], at: "\(p).addresses")
            if e["addresses"] != nil, addrs.isEmpty, !reader.errors.contains(where: { $0.key.hasPrefix("\(p).addresses") }) {
                reader.error("\(p).addresses", "an inbound endpoint needs at least one IP:PORT address")
            }
            guard let id else { return nil }
            inboundPaths.append(p)
            inboundAddressPaths += addrs.map(\.1)
            return InboundEndpoint(id: id, addresses: addrs.map(\.0))
        }
        let support = reader.bool(m["enable_dns_support"], at: "\(path).enable_dns_support") ?? true
        let hostnames = reader.bool(m["enable_dns_hostnames"], at: "\(path).enable_dns_hostnames") ?? false
        if hostnames && !support {
            reader.error("\(path).enable_dns_hostnames", "enable_dns_hostnames: true needs enable_dns_support: true (AWS rejects DNS hostnames without DNS resolution)")
        }
        var rulePaths: [String] = []
        let rules: [ResolverRule] = reader.sequence(m["resolver_rules"], at: "\(path).resolver_rules").compactMap { n, p in
            guard let r = rule(n, p) else { return nil }
            rulePaths.append(p)
            return r
        }
        let allowed = prefixList(m["allowed_sources"], at: "\(path).allowed_sources")
        if m["allowed_sources"] != nil, allowed.isEmpty, !reader.errors.contains(where: { $0.key.hasPrefix("\(path).allowed_sources") }) {
            reader.error("\(path).allowed_sources", "an empty list would refuse every source: list at least one CIDR block, or leave the key out to allow any source")
        }
        let name = reader.string(m["name"], at: "\(path).name")
        let autodefinedReverse = reader.bool(m["autodefined_reverse"], at: "\(path).autodefined_reverse") ?? true
        guard let id, let region else { return nil }
        var vpc = VPC(id: id, name: name, region: region, cidrs: cidrs.map(\.0), clients: clients.map(\.0),
                      resolverAddresses: resolvers.map(\.0), inboundEndpoints: inbound,
                      enableDNSSupport: support, enableDNSHostnames: hostnames, resolverRules: rules,
                      allowedSources: allowed.map(\.0))
        vpc.autodefinedReverse = autodefinedReverse
        return Located(value: vpc, path: path, sub: [
            "cidrs": cidrs.map(\.1), "clients": clients.map(\.1), "resolver_addresses": resolvers.map(\.1),
            "inbound_endpoints": inboundPaths, "inbound_addresses": inboundAddressPaths, "resolver_rules": rulePaths,
        ])
    }

    private func rule(_ node: Node, _ p: String) -> ResolverRule? {
        guard let r = reader.mapping(node, at: p, allowed: Keys.rule) else { return nil }
        let id = reader.require(reader.string(r["id"], at: "\(p).id"), r["id"], at: "\(p).id")
        if let id, !IDFormat.isRuleID(id) { reader.error("\(p).id", badID(id, "a Resolver rule id", "rslvr-rr-")) }
        let domainText = reader.require(reader.string(r["domain"], at: "\(p).domain"), r["domain"], at: "\(p).domain")
        let domain = domainText.flatMap { domainName($0, at: "\(p).domain") }
        let kind = reader.require(reader.choice(r["type"], at: "\(p).type", ResolverRule.Kind.self, choices: [.forward, .system]), r["type"], at: "\(p).type")
        let targets = socketList(r["targets"], at: "\(p).targets")
        switch kind {
        case .forward? where targets.isEmpty && !reader.errors.contains(where: { $0.key.hasPrefix("\(p).targets") }):
            reader.error(r["targets"] == nil ? "\(p).type" : "\(p).targets", "a FORWARD rule needs at least one target (IP:PORT)")
        case .system? where r["targets"] != nil && !targets.isEmpty:
            reader.error("\(p).targets", "a SYSTEM rule takes no targets (it means: the VPC resolver answers this domain itself)")
        default: break
        }
        guard let id, let domain, let kind else { return nil }
        return ResolverRule(id: id, domain: domain, kind: kind, targets: kind == .forward ? targets.map(\.0) : [])
    }

    // MARK: - Endpoints

    private func endpoint(_ node: Node, _ path: String) -> Located<Endpoint>? {
        guard let m = reader.mapping(node, at: path, allowed: Keys.endpoint) else { return nil }
        let id = reader.require(reader.string(m["id"], at: "\(path).id"), m["id"], at: "\(path).id")
        if let id, !IDFormat.isEndpointID(id) { reader.error("\(path).id", badID(id, "a VPC endpoint id", "vpce-")) }
        let vpcID = reader.require(reader.string(m["vpc"], at: "\(path).vpc"), m["vpc"], at: "\(path).vpc")
        if let vpcID, !IDFormat.isVPCID(vpcID) { reader.error("\(path).vpc", badID(vpcID, "a VPC id", "vpc-")) }
        let serviceText = reader.require(reader.string(m["service"], at: "\(path).service"), m["service"], at: "\(path).service")
        var service: ServiceName? = nil
        if let serviceText {
            service = ServiceName(serviceText)
            if service == nil {
                reader.error("\(path).service", "'\(serviceText)' is not a service name: expected com.amazonaws.REGION.SERVICE or com.amazonaws.vpce.REGION.vpce-svc-HEX")
            }
        }
        let kind = m["type"] == nil ? .interface : reader.choice(m["type"], at: "\(path).type", Endpoint.Kind.self, choices: [.interface, .gateway, .gatewayLoadBalancer])
        let isInterface = kind == .interface
        let privateDNS = reader.bool(m["private_dns_enabled"], at: "\(path).private_dns_enabled") ?? isInterface
        if privateDNS && kind != nil && !isInterface {
            reader.error("\(path).private_dns_enabled", "private DNS is available only for Interface endpoints, not \(kind!.rawValue)")
        }
        let onlyInbound = reader.bool(m["private_dns_only_for_inbound_resolver_endpoint"], at: "\(path).private_dns_only_for_inbound_resolver_endpoint") ?? false
        let ipType = m["dns_record_ip_type"] == nil ? .ipv4 : reader.choice(m["dns_record_ip_type"], at: "\(path).dns_record_ip_type", Endpoint.IPType.self, choices: [.ipv4, .ipv6, .dualstack, .serviceDefined])
        var suffix = id.map { String(SHA256.hex($0).prefix(8)) } ?? ""
        if let s = reader.string(m["dns_suffix"], at: "\(path).dns_suffix") {
            if IDFormat.isDNSSuffix(s) { suffix = s } else { reader.error("\(path).dns_suffix", "'\(s)' is not a DNS suffix: expected 8 lowercase letters or digits ([a-z0-9]{8})") }
        }
        let subnets = subnetList(m["subnets"], at: "\(path).subnets", kind: kind, ipType: ipType ?? .ipv4, region: service?.region, entryLine: node.line)
        var names: [DNSName]? = nil
        if m["private_dns_names"] != nil {
            let items = reader.strings(m["private_dns_names"], at: "\(path).private_dns_names") ?? []
            names = items.compactMap { domainName($0.0, at: $0.1, wildcard: true) }
            if case .custom? = service {
                reader.error("\(path).private_dns_names", "private_dns_names applies to AWS services; a custom service's name comes from its endpoint_services entry (private_dns_name)")
            }
            if !isInterface { reader.error("\(path).private_dns_names", "private DNS names apply only to Interface endpoints") }
        }
        guard let id, let vpcID, let service, let kind, let ipType else { return nil }
        let effective = isInterface ? (names ?? ServiceCatalog.privateDNSNames(for: service)) : []
        let ep = Endpoint(id: id, vpcID: vpcID, service: service, kind: kind, privateDNSEnabled: privateDNS,
                          privateDNSOnlyForInboundResolverEndpoint: onlyInbound, ipType: ipType, dnsSuffix: suffix,
                          subnets: subnets, privateDNSNames: effective, privateDNSNamesOverridden: names != nil)
        return Located(value: ep, path: path)
    }

    private func subnetList(_ node: Node?, at path: String, kind: Endpoint.Kind?, ipType: Endpoint.IPType,
                            region: String?, entryLine: Int) -> [Endpoint.Subnet] {
        if kind == .interface, node == nil || node!.isNullScalar {
            reader.error(path, "an Interface endpoint needs subnets (one network interface per subnet: {az, ipv4})", line: node?.line ?? entryLine)
            return []
        }
        if kind == .gateway, let node, !node.isNullScalar {
            reader.error(path, "Gateway endpoints have no subnets (they work through route tables)", line: node.line)
            return []
        }
        var seenAZ: [String: Int] = [:]
        let items = reader.sequence(node, at: path)
        if kind == .interface, items.isEmpty, let node, case .sequence = node {
            reader.error(path, "an Interface endpoint needs at least one subnet", line: node.line)
        }
        return items.compactMap { n, p in
            guard let m = reader.mapping(n, at: p, allowed: Keys.subnet) else { return nil }
            let az = reader.require(reader.string(m["az"], at: "\(p).az"), m["az"], at: "\(p).az")
            if let az {
                if !isAZ(az) { reader.error("\(p).az", "'\(az)' is not an availability zone name (e.g. us-west-2a)") } else if let region, !az.hasPrefix(region) {
                    reader.error("\(p).az", "availability zone \(az) is not in the service's region \(region)")
                }
                if let first = seenAZ[az] { reader.error("\(p).az", "a second subnet in \(az) (first at line \(first)); an endpoint has one network interface per availability zone") } else { seenAZ[az] = n.line }
            }
            let v4 = address(m["ipv4"], at: "\(p).ipv4", v4: true)
            let v6 = address(m["ipv6"], at: "\(p).ipv6", v4: false)
            if m["ipv4"] == nil, ipType != .ipv6 {
                reader.error("\(p).ipv4", "required key is missing (needed unless dns_record_ip_type is ipv6)", line: n.line)
            }
            if m["ipv6"] == nil, ipType == .ipv6 || ipType == .dualstack {
                reader.error("\(p).ipv6", "required key is missing (dns_record_ip_type \(ipType.rawValue) needs an IPv6 address)", line: n.line)
            }
            let check = reader.string(m["health_check"], at: "\(p).health_check")
            guard let az else { return nil }
            return Endpoint.Subnet(az: az, ipv4: v4, ipv6: v6, healthCheck: check)
        }
    }

    // MARK: - Endpoint services

    private func service(_ node: Node, _ path: String) -> Located<EndpointService>? {
        guard let m = reader.mapping(node, at: path, allowed: Keys.service) else { return nil }
        let id = reader.require(reader.string(m["id"], at: "\(path).id"), m["id"], at: "\(path).id")
        if let id, !IDFormat.isServiceID(id) { reader.error("\(path).id", badID(id, "an endpoint service id", "vpce-svc-")) }
        let region = reader.require(reader.string(m["region"], at: "\(path).region"), m["region"], at: "\(path).region")
        if let region, !IDFormat.isRegion(region) { reader.error("\(path).region", badRegion(region)) }
        let name = reader.string(m["private_dns_name"], at: "\(path).private_dns_name").flatMap { domainName($0, at: "\(path).private_dns_name") }
        let verification = m["verification"] == nil ? .verified : reader.choice(m["verification"], at: "\(path).verification", EndpointService.Verification.self, choices: [.pendingVerification, .verified, .failed])
        let style = m["alias_style"] == nil ? .cname : reader.choice(m["alias_style"], at: "\(path).alias_style", EndpointService.AliasStyle.self, choices: [.cname, .flatten])
        guard let id, let region, let verification, let style else { return nil }
        return Located(value: EndpointService(id: id, region: region, privateDNSName: name, verification: verification, aliasStyle: style), path: path)
    }

    // MARK: - Small values

    private func prefixList(_ node: Node?, at path: String) -> [(IPPrefix, String)] {
        (reader.strings(node, at: path) ?? []).compactMap { text, p in
            guard let prefix = IPPrefix(text), text.contains("/") else {
                reader.error(p, "'\(text)' is not a CIDR block (e.g. 10.0.0.0/16 or 2600:1f14::/56)")
                return nil
            }
            if IPPrefix.hasHostBits(text) {
                reader.error(p, "'\(text)' has host bits set; did you mean \(prefix)?")
                return nil
            }
            return (prefix, p)
        }
    }

    func socketList(_ node: Node?, at path: String) -> [(SocketEndpoint, String)] {
        (reader.strings(node, at: path) ?? []).compactMap { text, p in
            guard let ep = SocketEndpoint(text) else { reader.error(p, badSocket(text)); return nil }
            return (ep, p)
        }
    }

    func address(_ node: Node?, at path: String, v4: Bool) -> IPAddress? {
        guard let text = reader.string(node, at: path) else { return nil }
        guard let ip = IPAddress(text), ip.isIPv4 == v4 else {
            reader.error(path, "'\(text)' is not an \(v4 ? "IPv4" : "IPv6") address")
            return nil
        }
        return ip
    }

    func domainName(_ text: String, at path: String, wildcard: Bool = false) -> DNSName? {
        domainNameChecked(text, at: path, wildcard: wildcard, reader: reader)
    }
}

/// A domain name written in the config: absolute, letters/digits/hyphen/underscore labels,
/// and (where allowed) a leading `*.` label.
func domainNameChecked(_ text: String, at path: String, wildcard: Bool, reader: YAMLReader) -> DNSName? {
    let bare = text.hasSuffix(".") ? String(text.dropLast()) : text
    let labels = bare.split(separator: ".", omittingEmptySubsequences: false)
    for (i, label) in labels.enumerated() {
        if label == "*" && i == 0 && labels.count > 1 {
            if wildcard { continue }
            reader.error(path, "'\(text)': a wildcard is not allowed here")
            return nil
        }
        guard !label.isEmpty, label.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            reader.error(path, "'\(text)' is not a valid domain name (labels of letters, digits, - and _)")
            return nil
        }
    }
    do { return try DNSName(bare) } catch {
        reader.error(path, "'\(text)' is not a valid domain name: \(error)")
        return nil
    }
}

func badID(_ v: String, _ what: String, _ prefix: String) -> String {
    "'\(v)' is not \(what) (\(prefix) followed by lowercase hex digits)"
}

func badRegion(_ v: String) -> String { "'\(v)' is not a region name (e.g. us-west-2)" }

func badSocket(_ v: String) -> String { "'\(v)' is not an IP:PORT address (IPv6 as [::1]:1053)" }

/// `us-west-2a`, or a Local Zone such as `us-west-2-lax-1a`.
func isAZ(_ s: String) -> Bool {
    guard let last = s.last, last.isLetter, last.isLowercase else { return false }
    let body = String(s.dropLast())
    return IDFormat.isRegion(body) || s.split(separator: "-").count >= 4 && s.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "-" }
}
