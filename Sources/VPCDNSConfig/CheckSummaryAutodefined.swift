import DNSWire
import VPCDNSCore

extension CheckSummary {
    /// R16/R17: the VPC's EC2 domain, its instances' resource names and its reverse zones.
    static func autodefinedNames(for vpc: VPC, in model: Model, r2: String?) -> [Name] {
        guard vpc.enableDNSSupport else { return [] }
        let domain = AutodefinedNames.ec2Domain(region: vpc.region)
        var out = [Name(name: domain.text, source: "ec2",
                        detail: "EC2 IP names ip-A-B-C-D.\(domain.text) of the VPC's and any RFC 1918 address (R16)",
                        active: r2 == nil, reason: r2, fields: [])]
        for i in model.instances where i.vpcID == vpc.id {
            var types: [String] = []
            if i.resourceNameA { types.append("A \(i.ipv4)") }
            if i.resourceNameAAAA, let v6 = i.ipv6 { types.append("AAAA \(v6)") }
            let name = (try? domain.prepending(i.id))?.text ?? i.id
            out.append(Name(name: name, source: "instance",
                            detail: "resource name of instance \(i.id) (ip-name \(ipName(i.ipv4, domain))): " + (types.isEmpty ? "resource names off" : types.joined(separator: ", ")),
                            active: r2 == nil && !types.isEmpty, reason: r2 ?? (types.isEmpty ? "resource_name_a and resource_name_aaaa are false" : nil),
                            fields: [("instance_id", .string(i.id)), ("ipv4", .string(i.ipv4.description)), ("ipv6", .optional(i.ipv6?.description))]))
        }
        let zones = AutodefinedNames.reverseZones(cidrs: vpc.cidrs).map(\.text)
        let own = zones.dropFirst(18)
        let shown = own.count <= 4 ? own.joined(separator: ", ") : "\(own.first!) … \(own.last!)"
        let reason = vpc.autodefinedReverse ? r2 : "autodefined_reverse is false: these names go upstream (R9)"
        out.append(Name(name: "in-addr.arpa", source: "reverse",
                        detail: "autodefined reverse zones (R17): 10, 16-31.172 and 168.192.in-addr.arpa, and \(own.count) for the VPC's CIDRs"
                            + (own.isEmpty ? "" : " (\(shown))"),
                        active: reason == nil, reason: reason, fields: [("zones", .strings(zones))]))
        return out
    }

    private static func ipName(_ ip: IPAddress, _ domain: DNSName) -> String {
        guard case .v4(let v) = ip else { return "-" }
        return AutodefinedNames.ipName(v, domain: domain).text
    }
}
