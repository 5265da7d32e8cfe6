import Foundation

/// What the command line adds to a snapshot: which local sources and listeners count as
/// which VPC (real VPC addresses are not local to a test host), where resolver-rule
/// targets are reachable, and the top-level `listen`/`upstreams`.
public struct ImportOptions: Sendable {
    public var region: String?
    /// (VPC id or Name tag, CIDR)
    public var clients: [(String, String)] = []
    /// (VPC id or Name tag, or inbound endpoint id or address, IP:PORT)
    public var resolverAddresses: [(String, String)] = []
    /// real target IP (or IP:PORT) -> reachable IP:PORT
    public var targetMap: [String: String] = [:]
    public var listen: [String] = []
    public var upstreams: [String] = []

    public init() {}
}

/// The generated configuration: `vpcdns.yaml`, the zone files below `zones/`, the counts
/// by kind and every warning.
public struct ImportResult: Sendable {
    public var yaml: String
    /// (file name inside `zones/`, text)
    public var zoneFiles: [(String, String)]
    public var counts: [(String, Int)]
    public var warnings: [ImportWarning]

    public var summary: String {
        "imported " + counts.map { "\($0.1) \($0.0)" }.joined(separator: ", ")
    }
}

/// `vpcdns import aws`: AWS CLI JSON -> vpcdns configuration (docs/import.md).
public enum AWSImporter {
    public static func run(paths: [String], options: ImportOptions) throws(ImportError) -> ImportResult {
        var snapshot = AWSSnapshot()
        for path in try JSONFiles.collect(paths) {
            snapshot.add(try JSONFiles.read(path))
        }
        var mapper = Mapper(s: snapshot, options: options)
        return try mapper.map()
    }

    /// Writes `DIR/vpcdns.yaml` and `DIR/zones/`; an existing configuration is kept unless `force`.
    public static func write(_ result: ImportResult, to dir: String, force: Bool) throws(ImportError) {
        let fm = FileManager.default
        let yamlPath = (dir as NSString).appendingPathComponent("vpcdns.yaml")
        let zonesDir = (dir as NSString).appendingPathComponent("zones")
        if !force, fm.fileExists(atPath: yamlPath) || fm.fileExists(atPath: zonesDir) {
            throw ImportError(file: fm.fileExists(atPath: yamlPath) ? yamlPath : zonesDir,
                              message: "already exists; not overwritten (use --force to replace it)")
        }
        do {
            if force, fm.fileExists(atPath: zonesDir) { try fm.removeItem(atPath: zonesDir) }
            try fm.createDirectory(atPath: zonesDir, withIntermediateDirectories: true)
            try result.yaml.write(toFile: yamlPath, atomically: true, encoding: .utf8)
            for (name, text) in result.zoneFiles {
                try text.write(toFile: (zonesDir as NSString).appendingPathComponent(name), atomically: true, encoding: .utf8)
            }
        } catch {
            throw ImportError(file: dir, message: "cannot write: \(error.localizedDescription)")
        }
    }

    /// The read-only AWS CLI commands that save a snapshot this import reads, one per line.
    public static func commands(region: String?) -> [String] {
        let r = region.map { " --region \($0)" } ?? ""
        let d = "aws-snapshot"
        return [
            "mkdir -p \(d)",
            "aws ec2 describe-vpcs\(r) --output json > \(d)/vpcs.json",
            "for v in $(aws ec2 describe-vpcs\(r) --query 'Vpcs[].VpcId' --output text); do aws ec2 describe-vpc-attribute\(r) --vpc-id $v --attribute enableDnsSupport --output json > \(d)/vpc-attribute-$v-support.json; aws ec2 describe-vpc-attribute\(r) --vpc-id $v --attribute enableDnsHostnames --output json > \(d)/vpc-attribute-$v-hostnames.json; done",
            "aws ec2 describe-vpc-endpoints\(r) --output json > \(d)/vpc-endpoints.json",
            "aws ec2 describe-network-interfaces\(r) --filters Name=interface-type,Values=vpc_endpoint --output json > \(d)/network-interfaces.json",
            "aws ec2 describe-vpc-endpoint-services\(r) --output json > \(d)/vpc-endpoint-services.json",
            "aws ec2 describe-vpc-endpoint-service-configurations\(r) --output json > \(d)/vpc-endpoint-service-configurations.json",
            "aws ec2 describe-instances\(r) --output json > \(d)/instances.json",
            "aws route53 list-hosted-zones --output json > \(d)/hosted-zones.json",
            "for z in $(aws route53 list-hosted-zones --query 'HostedZones[?Config.PrivateZone].Id' --output text); do z=${z##*/}; aws route53 get-hosted-zone --id $z --output json > \(d)/hosted-zone-$z.json; aws route53 list-resource-record-sets --hosted-zone-id $z --output json > \(d)/record-sets-$z.json; done",
            "for h in $(aws route53 list-health-checks --query 'HealthChecks[].Id' --output text); do aws route53 get-health-check --health-check-id $h --output json > \(d)/health-check-$h.json; done",
            "aws route53resolver list-resolver-endpoints\(r) --output json > \(d)/resolver-endpoints.json",
            "for e in $(aws route53resolver list-resolver-endpoints\(r) --query 'ResolverEndpoints[?Direction==`INBOUND`].Id' --output text); do aws route53resolver list-resolver-endpoint-ip-addresses\(r) --resolver-endpoint-id $e --output json > \(d)/resolver-endpoint-ip-addresses-$e.json; done",
            "aws route53resolver list-resolver-rules\(r) --output json > \(d)/resolver-rules.json",
            "aws route53resolver list-resolver-rule-associations\(r) --output json > \(d)/resolver-rule-associations.json",
        ]
    }
}

// MARK: - Mapping

/// A DNS name as Route 53 prints it -> vpcdns's spelling: no trailing dot, lowercase, and
/// Route 53's octal escapes (`\052` for `*`) turned into the character (printable) or an
/// RFC 1035 decimal escape.
func route53Name(_ s: String) -> String {
    var out = ""
    var chars = Array(s)
    if chars.last == "." && chars.count > 1 { chars.removeLast() }
    var i = 0
    while i < chars.count {
        if chars[i] == "\\", i + 4 <= chars.count, let v = Int(String(chars[(i + 1)..<(i + 4)]), radix: 8), v < 256 {
            let c = UnicodeScalar(UInt8(v))
            if v > 0x20 && v < 0x7F && c != "." && c != "\\" && c != ";" && c != "\"" && c != "(" && c != ")" {
                out.append(Character(c))
            } else {
                out += String(format: "\\%03d", v)
            }
            i += 4
            continue
        }
        out.append(chars[i])
        i += 1
    }
    return out == "." ? "." : out.lowercased()
}

/// YAML double-quoted scalar (JSON-compatible escaping).
func q(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 { out += String(format: "\\x%02X", u.value) } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}

func flow(_ items: [String]) -> String { "[" + items.map(q).joined(separator: ", ") + "]" }

/// `IP:PORT` with brackets for IPv6.
func hostPort(_ ip: String, _ port: Int) -> String { ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)" }

struct Mapper {
    let s: AWSSnapshot
    let options: ImportOptions
    var warnings: [ImportWarning] = []
    var counts: [String: Int] = [:]

    init(s: AWSSnapshot, options: ImportOptions) {
        self.s = s
        self.options = options
        self.warnings = s.warnings
    }

    mutating func warn(_ file: String, _ message: String) { warnings.append(ImportWarning(file: file, message: message)) }

    /// The commands whose output is missing, named in a warning each.
    mutating func missing(_ key: String, _ command: String, _ why: String) {
        if !s.seen.contains(key) { warn("(snapshot)", "no output of `aws \(command)` found: \(why)") }
    }

    // MARK: region

    func regionOf(service: String) -> String? {
        let parts = service.split(separator: ".").map(String.init)
        guard parts.count >= 4, parts[0] == "com", parts[1] == "amazonaws" else { return nil }
        return parts[2] == "vpce" ? parts[3] : parts[2]
    }

    func regionOf(az: String) -> String? {
        guard let last = az.last, last.isLetter, az.count > 1 else { return nil }
        return String(az.dropLast())
    }

    func region() throws(ImportError) -> String {
        if let r = options.region { return r }
        var found: [String: Set<String>] = [:]
        for e in s.endpoints {
            if let r = e.item.str("ServiceName").flatMap(regionOf(service:)) { found[r, default: []].insert(e.file) }
        }
        for (_, eni) in s.interfaces {
            if let r = eni.item.str("AvailabilityZone").flatMap(regionOf(az:)) { found[r, default: []].insert(eni.file) }
        }
        if found.count == 1 { return found.keys.first! }
        if found.isEmpty {
            throw ImportError(file: nil, message: "cannot tell the region: no --region, and no endpoint service name or subnet availability zone names one")
        }
        let list = found.keys.sorted().map { "\($0) (\(found[$0]!.sorted().joined(separator: ", ")))" }.joined(separator: "; ")
        throw ImportError(file: nil, message: "more than one region in the snapshot: \(list); import one region at a time with --region")
    }

    // MARK: main

    mutating func map() throws(ImportError) -> ImportResult {
        let region = try region()
        missing("Vpcs", "ec2 describe-vpcs", "no VPC can be imported")
        missing("VpcEndpoints", "ec2 describe-vpc-endpoints", "no endpoint is imported")
        missing("HostedZones", "route53 list-hosted-zones", "no private hosted zone is imported")
        missing("ResolverRules", "route53resolver list-resolver-rules", "no resolver rule is imported")
        missing("ResolverEndpoints", "route53resolver list-resolver-endpoints", "no inbound endpoint is imported")

        // VPCs: id, Name tag, index for --client/--resolver-address keys.
        var vpcOrder: [String] = []
        var vpcByKey: [String: String] = [:]
        for v in s.vpcs {
            guard let id = v.item.str("VpcId") else { continue }
            vpcOrder.append(id)
            vpcByKey[id] = id
            if let name = tagName(v.item) { vpcByKey[name] = id }
        }
        var clients: [String: [String]] = [:]
        for (k, cidr) in options.clients {
            guard let id = vpcByKey[k] else { throw ImportError(file: nil, message: "--client \(k)=\(cidr): no VPC with that id or Name tag in the snapshot") }
            clients[id, default: []].append(cidr)
        }

        // Inbound endpoints (before VPCs, which list them).
        var inboundByVPC: [String: [(id: String, file: String, addresses: [String], real: [String])]] = [:]
        var usedResolverKeys: Set<String> = []
        var resolverAddresses: [String: [String]] = [:]
        for re in s.resolverEndpoints where re.item.str("Direction") == "INBOUND" {
            guard let id = re.item.str("Id"), let vpc = re.item.str("HostVPCId") else { continue }
            let ipFiles = s.resolverEndpointAddressFiles.filter { ($0.path as NSString).lastPathComponent.contains(id) }
            if ipFiles.isEmpty {
                warn(re.file, "inbound endpoint \(id): no output of `aws route53resolver list-resolver-endpoint-ip-addresses --resolver-endpoint-id \(id)` (saved with the id in its file name); its real addresses are unknown")
            }
            let real = ipFiles.flatMap { $0.object.list("IpAddresses").compactMap { $0.str("Ip") ?? $0.str("Ipv6") } }
            var local: [String] = []
            for (k, addr) in options.resolverAddresses where k == id || real.contains(k) {
                local.append(addr)
                usedResolverKeys.insert(k)
            }
            if local.isEmpty {
                warn(re.file, "inbound endpoint \(id) of \(vpc) at \(real.isEmpty ? "unknown addresses" : real.joined(separator: ", ")) is not local to this host: listed as a comment only; map it with --resolver-address \(id)=IP:PORT")
            }
            inboundByVPC[vpc, default: []].append((id, re.file, local, real))
        }
        for (k, addr) in options.resolverAddresses where !usedResolverKeys.contains(k) {
            guard let id = vpcByKey[k] else {
                throw ImportError(file: nil, message: "--resolver-address \(k)=\(addr): no VPC (id or Name tag) or inbound endpoint (id or address) with that name in the snapshot")
            }
            resolverAddresses[id, default: []].append(addr)
        }

        // Resolver rules and their associations.
        var rulesByVPC: [String: [(Sourced, String)]] = [:]
        var rulesByID: [String: Sourced] = [:]
        for r in s.resolverRules {
            guard let id = r.item.str("Id") else { continue }
            rulesByID[id] = r
        }
        if !s.resolverRules.isEmpty { missing("ResolverRuleAssociations", "route53resolver list-resolver-rule-associations", "no rule is associated with a VPC") }
        for a in s.ruleAssociations {
            guard let rid = a.item.str("ResolverRuleId"), let vpc = a.item.str("VPCId") else { continue }
            guard let rule = rulesByID[rid] else {
                warn(a.file, "association \(a.item.str("Id") ?? "?") names rule \(rid), which is not in the list-resolver-rules output; skipped")
                continue
            }
            guard vpcOrder.contains(vpc) else {
                warn(a.file, "association \(a.item.str("Id") ?? "?") of rule \(rid) is for \(vpc), which is not in the describe-vpcs output; skipped")
                continue
            }
            rulesByVPC[vpc, default: []].append((rule, a.file))
        }

        var y: [String] = []
        y.append("# Generated by `vpcdns import aws` from a snapshot of an AWS account (region \(region)).")
        y.append("# Every entry names the file (and id) it came from. Check it with `vpcdns check --config THIS_FILE`.")
        if let owner = s.vpcs.first?.item.str("OwnerId") { y.append("account_id: \(q(owner))") }
        y.append("listen: \(flow(options.listen.isEmpty ? ["127.0.0.1:1053"] : options.listen))")
        y.append("upstreams: \(flow(options.upstreams.isEmpty ? ["system"] : options.upstreams))")
        y.append("")

        // --- vpcs
        y.append("vpcs:")
        if s.vpcs.isEmpty { y[y.count - 1] = "vpcs: []" }
        for v in s.vpcs {
            guard let id = v.item.str("VpcId") else { continue }
            counts["vpcs", default: 0] += 1
            y.append("  # from \(v.file) (\(id))")
            y.append("  - id: \(q(id))")
            if let name = tagName(v.item) { y.append("    name: \(q(name))") }
            y.append("    region: \(q(region))")
            y.append("    cidrs: \(flow(cidrs(v.item)))")
            if let c = clients[id] { y.append("    clients: \(flow(c))   # --client") }
            if let a = resolverAddresses[id] { y.append("    resolver_addresses: \(flow(a))   # --resolver-address") }
            let isDefault = v.item.bool("IsDefault") ?? false
            let support: Bool
            if let (val, file) = s.dnsSupport[id] {
                support = val
                y.append("    enable_dns_support: \(val)   # from \(file)")
            } else {
                support = true
                warn(v.file, "\(id): enableDnsSupport unknown (no output of `aws ec2 describe-vpc-attribute --vpc-id \(id) --attribute enableDnsSupport`); assumed true, AWS's default")
                y.append("    enable_dns_support: true   # assumed: AWS's default")
            }
            if let (val, file) = s.dnsHostnames[id] {
                y.append("    enable_dns_hostnames: \(val && support)   # from \(file)")
            } else {
                let assumed = isDefault && support
                warn(v.file, "\(id): enableDnsHostnames unknown (no output of `aws ec2 describe-vpc-attribute --vpc-id \(id) --attribute enableDnsHostnames`); assumed \(assumed), AWS's default for a\(isDefault ? " default" : " non-default") VPC")
                y.append("    enable_dns_hostnames: \(assumed)   # assumed: AWS's default")
            }
            if let ibs = inboundByVPC[id] {
                let local = ibs.filter { !$0.addresses.isEmpty }
                if !local.isEmpty {
                    y.append("    inbound_endpoints:")
                    for ib in local {
                        counts["inbound endpoints", default: 0] += 1
                        y.append("      # from \(ib.file) (\(ib.id); real addresses \(ib.real.joined(separator: ", ")))")
                        y.append("      - id: \(q(ib.id))")
                        y.append("        addresses: \(flow(ib.addresses))   # --resolver-address")
                    }
                }
                for ib in ibs where ib.addresses.isEmpty {
                    y.append("    # inbound endpoint \(ib.id) at \(ib.real.joined(separator: ", ")) (from \(ib.file)): not local here, not served")
                }
            }
            if let rules = rulesByVPC[id] {
                var lines: [String] = []
                for (r, assocFile) in rules {
                    guard let rid = r.item.str("Id"), let type = r.item.str("RuleType") else { continue }
                    let domain = route53Name(r.item.str("DomainName") ?? ".")
                    if type == "RECURSIVE" { continue }
                    guard type == "FORWARD" || type == "SYSTEM" else {
                        warn(r.file, "rule \(rid): type \(type) is not one vpcdns knows; skipped")
                        continue
                    }
                    counts["resolver rules", default: 0] += 1
                    lines.append("      # from \(r.file) (\(rid)), associated in \(assocFile)")
                    lines.append("      - id: \(q(rid))")
                    lines.append("        domain: \(q(domain))")
                    lines.append("        type: \(type)")
                    if type == "FORWARD" {
                        var targets: [String] = []
                        for t in r.item.list("TargetIps") {
                            guard let ip = t.str("Ip") ?? t.str("Ipv6") else { continue }
                            let port = t.int("Port") ?? 53
                            if let m = options.targetMap[ip] ?? options.targetMap[hostPort(ip, port)] {
                                targets.append(m)
                            } else {
                                targets.append(hostPort(ip, port))
                                warn(r.file, "rule \(rid) (\(domain)): target \(hostPort(ip, port)) kept as is; on a test host map it to a reachable DNS with --target-map \(ip)=IP:PORT")
                            }
                        }
                        lines.append("        targets: \(flow(targets))")
                    }
                }
                if !lines.isEmpty {
                    y.append("    resolver_rules:")
                    y += lines
                }
            }
        }

        // --- endpoints
        var endpointNames: [String: String] = [:]   // vpce DNS name -> endpoint id
        var usedServices: [String: String] = [:]    // vpce-svc id -> endpoint file
        var epLines: [String] = []
        for e in s.endpoints {
            guard let id = e.item.str("VpcEndpointId"), let vpc = e.item.str("VpcId"), let service = e.item.str("ServiceName") else { continue }
            let state = e.item.str("State") ?? "available"
            guard state.lowercased() == "available" else {
                warn(e.file, "endpoint \(id) (\(service)) is in state \(state), not available: skipped")
                continue
            }
            guard vpcOrder.contains(vpc) else {
                warn(e.file, "endpoint \(id) is in \(vpc), which is not in the describe-vpcs output; skipped")
                continue
            }
            if let r = regionOf(service: service), r != region {
                warn(e.file, "endpoint \(id) is for \(service) in \(r), not \(region); skipped")
                continue
            }
            let type = e.item.str("VpcEndpointType") ?? "Interface"
            var lines = ["  # from \(e.file) (\(id))", "  - id: \(q(id))", "    vpc: \(q(vpc))", "    service: \(q(service))", "    type: \(type)"]
            if type == "Interface" {
                let dnsEntries = e.item.list("DnsEntries").compactMap { $0.str("DnsName") }.map(route53Name)
                var suffix: String? = nil
                var privateNames: [String] = []
                for n in dnsEntries {
                    let bare = n.hasPrefix("*.") ? String(n.dropFirst(2)) : n
                    if bare.hasSuffix(".vpce.amazonaws.com") {
                        endpointNames[bare] = id
                        let first = bare.split(separator: ".").first.map(String.init) ?? ""
                        if first.hasPrefix(id + "-") {
                            let rest = first.dropFirst(id.count + 1)
                            if rest.count == 8, rest.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber) }) { suffix = String(rest) }
                        }
                    } else if bare.hasPrefix(id + "-") {
                        // An endpoint-specific name not in AWS's shape (some emulators print
                        // `vpce-ID-SUFFIX.com.amazonaws.REGION.SERVICE`): neither a private name
                        // nor a source for the suffix.
                        warn(e.file, "endpoint \(id): DNS entry \(n) is not in AWS's shape (vpce-ID-SUFFIX.SERVICE.REGION.vpce.amazonaws.com); ignored")
                    } else {
                        privateNames.append(n)
                    }
                }
                let privateDNS = e.item.bool("PrivateDnsEnabled") ?? false
                let opts = e.item.dict("DnsOptions") ?? [:]
                lines.append("    private_dns_enabled: \(privateDNS)")
                if let t = opts.str("DnsRecordIpType") { lines.append("    dns_record_ip_type: \(t)") }
                if opts.bool("PrivateDnsOnlyForInboundResolverEndpoint") == true {
                    lines.append("    private_dns_only_for_inbound_resolver_endpoint: true")
                }
                if let suffix { lines.append("    dns_suffix: \(q(suffix))   # from DnsEntries") } else {
                    warn(e.file, "endpoint \(id): no regional name in DnsEntries; its DNS names use a suffix derived from the id, not the real one")
                }
                let isCustom = service.hasPrefix("com.amazonaws.vpce.")
                if privateDNS && !isCustom && !privateNames.isEmpty {
                    lines.append("    private_dns_names: \(flow(privateNames))   # from DnsEntries")
                }
                if isCustom, let sid = service.split(separator: ".").last { usedServices[String(sid), default: e.file] = e.file }
                var subnets: [String] = []
                let eniIDs = e.item["NetworkInterfaceIds"] as? [String] ?? []
                for eni in eniIDs {
                    guard let n = s.interfaces[eni] else {
                        warn(e.file, "endpoint \(id): network interface \(eni) is not in the describe-network-interfaces output")
                        continue
                    }
                    var parts: [String] = []
                    if let az = n.item.str("AvailabilityZone") { parts.append("az: \(q(az))") }
                    if let ip = n.item.str("PrivateIpAddress") { parts.append("ipv4: \(q(ip))") }
                    if let v6 = n.item.list("Ipv6Addresses").first?.str("Ipv6Address") { parts.append("ipv6: \(q(v6))") }
                    subnets.append("      - {\(parts.joined(separator: ", "))}   # \(eni) from \(n.file)")
                }
                if subnets.isEmpty {
                    warn(e.file, "endpoint \(id): none of its network interfaces (\(eniIDs.joined(separator: ", "))) is in a describe-network-interfaces output, so its addresses are unknown: skipped (run `aws ec2 describe-network-interfaces --filters Name=interface-type,Values=vpc_endpoint`)")
                    continue
                }
                lines.append("    subnets:")
                lines += subnets
            }
            counts["endpoints", default: 0] += 1
            epLines += lines
        }
        y.append("")
        y.append(epLines.isEmpty ? "endpoints: []" : "endpoints:")
        y += epLines

        // --- endpoint services (the custom ones the imported endpoints use)
        var svcLines: [String] = []
        for sid in usedServices.keys.sorted() {
            let consumer = s.serviceDetails.first { $0.item.str("ServiceId") == sid || $0.item.str("ServiceName")?.hasSuffix("." + sid) == true }
            let provider = s.serviceConfigurations.first { $0.item.str("ServiceId") == sid }
            guard let src = consumer ?? provider else {
                warn(usedServices[sid]!, "endpoint service \(sid) is used by an imported endpoint but is in no describe-vpc-endpoint-services or describe-vpc-endpoint-service-configurations output: its private DNS name is unknown")
                continue
            }
            let name = src.item.str("PrivateDnsName")
                ?? src.item.list("PrivateDnsNames").first?.str("PrivateDnsName")
            let state = consumer?.item.str("PrivateDnsNameVerificationState")
                ?? provider?.item.dict("PrivateDnsNameConfiguration")?.str("State")
            counts["endpoint services", default: 0] += 1
            svcLines.append("  # from \(src.file) (\(sid))")
            svcLines.append("  - id: \(q(sid))")
            svcLines.append("    region: \(q(region))")
            if let name { svcLines.append("    private_dns_name: \(q(route53Name(name)))") }
            if let state {
                let v: String
                switch state.lowercased() {
                case "verified": v = "verified"
                case "pendingverification", "pending-verification": v = "pendingVerification"
                case "failed": v = "failed"
                default:
                    v = "pendingVerification"
                    warn(src.file, "endpoint service \(sid): verification state \(state) read as pendingVerification")
                }
                svcLines.append("    verification: \(v)")
            } else if name != nil {
                svcLines.append("    verification: verified   # no state in the output: AWS lists only names it serves")
            }
        }
        section(&y, "endpoint_services", svcLines)

        // --- hosted zones
        var zoneFiles: [(String, String)] = []
        var zoneLines: [String] = []
        var healthUsed: [String: String] = [:]   // health check id -> record file
        let privateZones = s.hostedZones.filter { $0.item.dict("Config")?.bool("PrivateZone") == true }
        let publicCount = s.hostedZones.count - privateZones.count
        if publicCount > 0 { counts["public zones skipped", default: 0] += publicCount }
        var zoneForFile: [String: String] = [:]
        var zoneApex: [String: String] = [:]
        for z in privateZones {
            if let id = z.item.str("Id").map(AWSSnapshot.zoneID) { zoneApex[id] = route53Name(z.item.str("Name") ?? "") }
        }
        for f in s.recordSetFiles {
            let base = (f.path as NSString).lastPathComponent
            if let id = zoneApex.keys.sorted().first(where: { base.contains($0) }) { zoneForFile[f.path] = id; continue }
            let soa = f.object.list("ResourceRecordSets").first { $0.str("Type") == "SOA" }.flatMap { $0.str("Name") }.map(route53Name)
            if let soa, let id = zoneApex.keys.sorted().first(where: { zoneApex[$0] == soa }) { zoneForFile[f.path] = id; continue }
            let allZones = s.hostedZones.compactMap { $0.item.str("Id").map(AWSSnapshot.zoneID) }
            if allZones.contains(where: { base.contains($0) }) { continue }   // a public zone's records: skipped with it
            throw ImportError(file: f.path, message: "record sets of no known private hosted zone: its name contains no hosted zone id and its SOA (\(soa ?? "none")) is no private zone's apex")
        }
        var usedZoneFileNames: Set<String> = []
        for z in privateZones {
            guard let zid = z.item.str("Id").map(AWSSnapshot.zoneID) else { continue }
            let apex = zoneApex[zid] ?? ""
            guard let detail = s.hostedZoneDetails[zid] else {
                warn(z.file, "private hosted zone \(apex) (\(zid)): its VPCs are unknown (no output of `aws route53 get-hosted-zone --id \(zid)`); skipped")
                continue
            }
            let assoc = detail.item.list("VPCs").compactMap { $0.str("VPCId") }
            let vpcs = assoc.filter { vpcOrder.contains($0) }
            for other in assoc where !vpcOrder.contains(other) {
                warn(detail.file, "private hosted zone \(apex) (\(zid)) is also associated with \(other), which is not in the describe-vpcs output (another account or region): left out")
            }
            guard !vpcs.isEmpty else {
                warn(detail.file, "private hosted zone \(apex) (\(zid)) is associated with no imported VPC; skipped")
                continue
            }
            let files = s.recordSetFiles.filter { zoneForFile[$0.path] == zid }
            var plain: [String] = []
            var recordLines: [String] = []
            var seenSets: Set<String> = []
            for f in files {
                for rs in f.object.list("ResourceRecordSets") {
                    guard let rawName = rs.str("Name"), let type = rs.str("Type") else { continue }
                    let name = route53Name(rawName)
                    let setID = rs.str("SetIdentifier")
                    guard seenSets.insert("\(name)|\(type)|\(setID ?? "")").inserted else { continue }
                    let label = "\(name) \(type)" + (setID.map { " (set \($0))" } ?? "")
                    if rs["Region"] != nil || rs["GeoLocation"] != nil || rs["GeoProximityLocation"] != nil || rs["CidrRoutingConfig"] != nil {
                        let kind = rs["Region"] != nil ? "latency" : rs["CidrRoutingConfig"] != nil ? "IP-based" : "geolocation"
                        warn(f.path, "record \(label): \(kind) routing depends on where the query comes from in AWS and cannot be answered locally; skipped")
                        continue
                    }
                    let routed = setID != nil || rs["Weight"] != nil || rs["Failover"] != nil || rs["MultiValueAnswer"] != nil || rs["HealthCheckId"] != nil
                    let values = rs.list("ResourceRecords").compactMap { $0.str("Value") }
                    var entry: [String] = []
                    if let alias = rs.dict("AliasTarget") {
                        let target = route53Name(alias.str("DNSName") ?? "")
                        let bare = target.hasPrefix("*.") ? String(target.dropFirst(2)) : target
                        if endpointNames[bare] != nil {
                            entry.append("alias: {dns_name: \(q(bare))}")
                        } else if AWSSnapshot.zoneID(alias.str("HostedZoneId") ?? "") == zid {
                            entry.append("alias: {record: \(q(target))}")
                        } else {
                            let what = target.contains(".elb.") || target.hasSuffix("elb.amazonaws.com") ? "a load balancer"
                                : target.hasSuffix("cloudfront.net") ? "a CloudFront distribution"
                                : target.contains("s3-website") ? "an S3 website"
                                : target.hasSuffix("vpce.amazonaws.com") ? "an endpoint that is not in the imported snapshot"
                                : "an AWS resource outside this snapshot"
                            warn(f.path, "record \(label): alias to \(target) (\(what)) cannot be answered locally; skipped")
                            continue
                        }
                        if alias.bool("EvaluateTargetHealth") == true { entry.append("evaluate_target_health: true") }
                    } else if !routed {
                        let ttl = rs.int("TTL") ?? 300
                        plain.append("; from \(f.path)")
                        for v in values { plain.append("\(name). \(ttl) IN \(type) \(v)") }
                        counts["records", default: 0] += 1
                        continue
                    } else {
                        entry.append("ttl: \(rs.int("TTL") ?? 300)")
                        entry.append("values: \(flow(values))")
                    }
                    if let setID { entry.append("set_identifier: \(q(setID))") }
                    if let w = rs.int("Weight") { entry.append("weight: \(w)") }
                    if let fo = rs.str("Failover") { entry.append("failover: \(fo)") }
                    if rs.bool("MultiValueAnswer") == true { entry.append("multivalue_answer: true") }
                    if let hc = rs.str("HealthCheckId") {
                        if let h = s.healthChecks[hc], Self.healthCheckType(h.item) != nil {
                            entry.append("health_check: \(q(hc))")
                            healthUsed[hc] = f.path
                        } else if let h = s.healthChecks[hc] {
                            let t = h.item.dict("HealthCheckConfig")?.str("Type") ?? "?"
                            warn(h.file, "record \(label): health check \(hc) is of type \(t), which vpcdns cannot run from this host; the set counts as healthy")
                        } else {
                            warn(f.path, "record \(label): health check \(hc) unknown (no output of `aws route53 get-health-check --health-check-id \(hc)`); the set counts as healthy")
                        }
                    }
                    counts[rs["AliasTarget"] != nil ? "alias records" : "routing-policy records", default: 0] += 1
                    recordLines.append("      # from \(f.path) (\(label))")
                    recordLines.append("      - name: \(q(name))")
                    recordLines.append("        type: \(type)")
                    recordLines += entry.map { "        " + $0 }
                }
            }
            if files.isEmpty {
                warn(z.file, "private hosted zone \(apex) (\(zid)): no records (no output of `aws route53 list-resource-record-sets --hosted-zone-id \(zid)`, saved with the id in its file name)")
            }
            counts["private hosted zones", default: 0] += 1
            zoneLines.append("  # from \(z.file) and \(detail.file) (\(zid))")
            zoneLines.append("  - id: \(q(zid))")
            zoneLines.append("    name: \(q(apex))")
            zoneLines.append("    vpcs: \(flow(vpcs))")
            if !plain.isEmpty {
                var fileName = "\(apex).zone"
                if !usedZoneFileNames.insert(fileName).inserted { fileName = "\(apex)-\(zid).zone"; usedZoneFileNames.insert(fileName) }
                zoneFiles.append((fileName, "; \(apex) (\(zid)), generated by `vpcdns import aws`\n; names in record data are absolute, as in Route 53\n$ORIGIN .\n" + plain.joined(separator: "\n") + "\n"))
                zoneLines.append("    file: \(q("zones/" + fileName))")
            }
            if !recordLines.isEmpty {
                zoneLines.append("    records:")
                zoneLines += recordLines
            }
        }
        section(&y, "hosted_zones", zoneLines)

        // --- health checks the imported record sets use
        var hcLines: [String] = []
        for hc in healthUsed.keys.sorted() {
            guard let h = s.healthChecks[hc], let type = Self.healthCheckType(h.item) else { continue }
            let c = h.item.dict("HealthCheckConfig") ?? [:]
            if let t = c.str("Type"), t.hasSuffix("_STR_MATCH") {
                warn(h.file, "health check \(hc) is \(t): imported as \(type); the response body is not searched for its string")
            }
            counts["health checks", default: 0] += 1
            hcLines.append("  # from \(h.file) (\(hc))")
            hcLines.append("  - id: \(q(hc))")
            hcLines.append("    type: \(type)")
            if let ip = c.str("IPAddress") { hcLines.append("    ip: \(q(ip))") } else {
                warn(h.file, "health check \(hc) checks a domain name (\(c.str("FullyQualifiedDomainName") ?? "?")), not an IP address; add `ip:` by hand")
            }
            hcLines.append("    port: \(c.int("Port") ?? (type == "HTTPS" ? 443 : 80))")
            if type != "TCP", let p = c.str("ResourcePath") { hcLines.append("    resource_path: \(q(p))") }
            if let i = c.int("RequestInterval") { hcLines.append("    request_interval_ms: \(i * 1000)") }
            if let t = c.int("FailureThreshold") { hcLines.append("    failure_threshold: \(t)") }
            if c.bool("Inverted") == true { hcLines.append("    inverted: true") }
        }
        section(&y, "health_checks", hcLines)

        // --- instances (R16/R17)
        var instLines: [String] = []
        for i in s.instances {
            guard let id = i.item.str("InstanceId"), let vpc = i.item.str("VpcId"), vpcOrder.contains(vpc),
                  let ip = i.item.str("PrivateIpAddress") else { continue }
            if let st = i.item.dict("State")?.str("Name"), st == "terminated" { continue }
            counts["instances", default: 0] += 1
            let opts = i.item.dict("PrivateDnsNameOptions") ?? [:]
            let v6 = i.item.list("NetworkInterfaces").first?.list("Ipv6Addresses").first?.str("Ipv6Address") ?? i.item.str("Ipv6Address")
            instLines.append("  # from \(i.file) (\(id))")
            instLines.append("  - id: \(q(id))")
            instLines.append("    vpc: \(q(vpc))")
            instLines.append("    ipv4: \(q(ip))")
            if let v6 { instLines.append("    ipv6: \(q(v6))") }
            if opts.bool("EnableResourceNameDnsARecord") == true { instLines.append("    resource_name_a: true") }
            if opts.bool("EnableResourceNameDnsAAAARecord") == true { instLines.append("    resource_name_aaaa: true") }
        }
        section(&y, "instances", instLines)

        let order = ["vpcs", "endpoints", "endpoint services", "private hosted zones", "records", "alias records",
                     "routing-policy records", "health checks", "resolver rules", "inbound endpoints", "instances", "public zones skipped"]
        let countList = order.compactMap { k in counts[k].map { (k, $0) } }
        return ImportResult(yaml: y.joined(separator: "\n") + "\n", zoneFiles: zoneFiles, counts: countList, warnings: warnings)
    }

    /// A top-level list after a blank line, left out when it has no lines.
    func section(_ y: inout [String], _ key: String, _ lines: [String]) {
        guard !lines.isEmpty else { return }
        y.append("")
        y.append("\(key):")
        y += lines
    }

    /// vpcdns's type for a Route 53 health check it can run itself, or nil.
    static func healthCheckType(_ h: [String: Any]) -> String? {
        switch h.dict("HealthCheckConfig")?.str("Type") {
        case "TCP": return "TCP"
        case "HTTP", "HTTP_STR_MATCH": return "HTTP"
        case "HTTPS", "HTTPS_STR_MATCH": return "HTTPS"
        default: return nil
        }
    }

    func tagName(_ item: [String: Any]) -> String? {
        item.list("Tags").first { $0.str("Key") == "Name" }?.str("Value")
    }

    /// Associated IPv4 blocks (the primary first), then associated IPv6 blocks.
    func cidrs(_ v: [String: Any]) -> [String] {
        var out: [String] = []
        let primary = v.str("CidrBlock")
        if let primary { out.append(primary) }
        for a in v.list("CidrBlockAssociationSet") where a.dict("CidrBlockState")?.str("State") == "associated" {
            if let c = a.str("CidrBlock"), !out.contains(c) { out.append(c) }
        }
        for a in v.list("Ipv6CidrBlockAssociationSet") where a.dict("Ipv6CidrBlockState")?.str("State") == "associated" {
            if let c = a.str("Ipv6CidrBlock"), !out.contains(c) { out.append(c) }
        }
        return out
    }
}
