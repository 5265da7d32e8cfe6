import DNSWire
import VPCDNSCore

/// Configurations AWS accepts but that do not do what people expect (cli.md `check`).
/// They never change the exit code.
struct Warnings {
    let reader: YAMLReader
    let parsed: ParsedConfig

    func run() {
        privateDNSWithoutHostnames()
        capturingEndpoints()
        unverifiedServiceNames()
        customServicesWithoutEntry()
        shadowingZones()
        openListeners()
    }

    private func vpc(_ id: String) -> VPC? { parsed.vpcs.first { $0.value.id == id }?.value }

    private func attributeText(_ v: VPC) -> String {
        v.enableDNSSupport ? "enable_dns_hostnames: false" : "enable_dns_support: false"
    }

    /// R2, the classic mistake: private DNS on, DNS hostnames off, so the names resolve publicly.
    private func privateDNSWithoutHostnames() {
        for e in parsed.endpoints where e.value.kind == .interface && e.value.privateDNSEnabled {
            guard let v = vpc(e.value.vpcID), !v.privateDNSUsable else { continue }
            let names = e.value.privateDNSNames.map(\.text)
            let shown = names.isEmpty ? "its private DNS name" : names.joined(separator: ", ")
            reader.warning("\(e.path).private_dns_enabled", "endpoint \(e.value.id) has private DNS on, but VPC \(v.id) has \(attributeText(v)): \(shown) will resolve publicly (through upstream), not to the endpoint; set enable_dns_hostnames: true on the VPC")
        }
        for z in parsed.zones {
            for (id, p) in zip(z.zone.vpcIDs, z.vpcPaths) {
                guard let v = vpc(id), !v.privateDNSUsable else { continue }
                reader.warning(p, "VPC \(id) has \(attributeText(v)): hosted zone \(z.zone.name.text) is not used there; its names resolve publicly (through upstream)")
            }
        }
    }

    /// `*.execute-api.REGION.amazonaws.com` sends every API Gateway API of the region, public
    /// ones included, to the endpoint.
    private func capturingEndpoints() {
        for e in parsed.endpoints where e.value.kind == .interface && e.value.privateDNSEnabled {
            guard case .aws(let region, let svc) = e.value.service, ServiceCatalog.capturesEverything.contains(svc) else { continue }
            for name in e.value.privateDNSNames where name.isWildcard {
                reader.warning("\(e.path).private_dns_enabled", "private DNS name \(name.text) captures every \(svc) API in \(region), public ones included: from VPC \(e.value.vpcID) public APIs resolve to this endpoint and stop working unless they are private APIs; consider private_dns_enabled: false and endpoint-specific names")
            }
        }
    }

    /// R11: only a `verified` name is served.
    private func unverifiedServiceNames() {
        for s in parsed.services where s.value.verification != .verified {
            guard let name = s.value.privateDNSName else { continue }
            reader.warning("\(s.path).verification", "private DNS name \(name.text) of \(s.value.id) is \(s.value.verification.rawValue): it is not served to consumers (only verified names are)")
        }
    }

    private func customServicesWithoutEntry() {
        let ids = Set(parsed.services.map(\.value.id))
        for e in parsed.endpoints {
            guard case .custom(_, let sid) = e.value.service, !ids.contains(sid) else { continue }
            reader.warning("\(e.path).service", "service \(sid) has no entry in endpoint_services: the endpoint gets only its own vpce names, no private DNS name")
        }
    }

    /// A PHZ answers everything under its name in its VPCs: names it does not hold become
    /// NXDOMAIN there instead of resolving publicly.
    private func shadowingZones() {
        for z in parsed.zones {
            guard let example = PublicShadow.shadowedExample(z.zone.name) else { continue }
            let vpcs = z.zone.vpcIDs.joined(separator: ", ")
            reader.warning("\(z.path).name", "hosted zone \(z.zone.name.text) shadows public DNS: in \(vpcs), every name under it that the zone does not hold (such as \(example)) becomes NXDOMAIN instead of resolving publicly")
        }
    }
}

extension Warnings {
    /// V1, V2: a listener on an address other hosts can reach answers whoever reaches it. A
    /// VPC's own addresses (resolver, inbound endpoint) answer any source unless
    /// `allowed_sources` says otherwise; a UDP answer can be tens of times the query's size, so
    /// an address open to the world is a reflector for forged-source floods.
    fileprivate func openListeners() {
        for v in parsed.vpcs where v.value.allowedSources.isEmpty {
            let resolvers = zip(v.value.resolverAddresses, v.sub["resolver_addresses"] ?? []).map { ($0, $1, "resolver address") }
            let inbound = zip(v.value.inboundEndpoints.flatMap(\.addresses), v.sub["inbound_addresses"] ?? []).map { ($0, $1, "inbound endpoint address") }
            for (address, path, what) in resolvers + inbound where !Self.isLoopback(address.ip) {
                reader.warning(path, "\(what) \(address) of VPC \(v.value.id) is not on loopback and answers any source that reaches it, as this VPC "
                               + "(V1; with UDP answers many times the query's size, a reflector for spoofed floods): set allowed_sources on the VPC "
                               + "to the networks that should use it")
            }
        }
        let served = parsed.vpcs.map { v in
            "\((v.value.cidrs + v.value.clients).map(\.description).joined(separator: ", ")) (\(v.value.id))"
        }.joined(separator: "; ")
        let everyone = parsed.settings.defaultVPC.map { "; every other source too, as \($0) (default_vpc): an open resolver" }
            ?? "; other sources get REFUSED"
        if let c = parsed.settings.console, !Self.isLoopback(c.ip), parsed.settings.consoleToken == nil {
            reader.warning("console", "console \(c) is not on loopback and has no console_token: anyone who reaches it reads every query "
                           + "of every VPC and the whole configuration; set console_token, or keep the console on loopback")
        }
        for (address, path) in zip(parsed.settings.listen, parsed.listenPaths) where !Self.isLoopback(address.ip) {
            reader.warning(path, "listen address \(address) is not on loopback, so it is reachable from other hosts: it answers sources in "
                           + (served.isEmpty ? "no VPC" : served) + everyone + " (V2, V3); make sure only those networks can reach it")
        }
    }

    static func isLoopback(_ ip: IPAddress) -> Bool {
        switch ip {
        case .v4(let a): a >> 24 == 127
        case .v6(let a): a == 1
        }
    }
}

/// The heuristic behind the "shadows public DNS" warning, kept small and explicit:
/// a zone shadows public names when it is a public top-level domain, or when it is equal to
/// or a parent of a domain people commonly resolve publicly (AWS service domains, big
/// public sites), or a region's `amazonaws.com` domain (every AWS service name there).
/// Zones under reserved private TLDs (`internal`, `local`, `corp`, ...) never match.
enum PublicShadow {
    static let publicTLDs: Set<String> = ["com", "net", "org", "io", "dev", "app", "co", "uk", "de", "fr", "jp", "cn",
                                          "info", "biz", "us", "eu", "cloud", "ai", "me", "tv", "edu", "gov"]
    static let wellKnown = ["s3.amazonaws.com", "sts.amazonaws.com", "aws.amazon.com", "amazon.com",
                            "cloudfront.net", "github.com", "google.com", "microsoft.com", "windows.net", "docker.io",
                            "ubuntu.com", "debian.org", "pypi.org", "npmjs.org", "golang.org", "apple.com"]

    /// A public name that the zone would hide, or nil when the zone looks harmless.
    static func shadowedExample(_ zone: DNSName) -> String? {
        if zone.labelCount == 1, publicTLDs.contains(zone.text) { return "www.example.\(zone.text)" }
        for text in wellKnown {
            if let n = try? DNSName(text), n.isSubdomain(of: zone) { return text }
        }
        let labels = zone.text.split(separator: ".")
        if labels.count == 3, labels[1] == "amazonaws", labels[2] == "com", IDFormat.isRegion(String(labels[0])) {
            return "sts.\(labels[0]).amazonaws.com"
        }
        return nil
    }
}
