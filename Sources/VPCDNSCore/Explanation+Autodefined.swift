import DNSWire

extension Explanation {
    /// R16/R17 findings: why an EC2 name or reverse name got the answer it got.
    var autodefinedFindings: [String] {
        let d = decision
        guard let v = d.view.vpcIndex else { return [] }
        let vpc = model.vpcs[v]
        if d.reason == .hostnamesOff, d.candidates.contains(where: { $0.kind == .ec2InstanceName || $0.kind == .reverseDNS }) {
            return ["AWS's EC2 names and autodefined reverse zones (R16, R17) also exist only with both DNS attributes true: forwarded upstream"]
        }
        guard case .answer(let a) = d.outcome, a.answer.isEmpty, let zone = d.zone else { return [] }
        switch d.kind {
        case .reverseDNS:
            guard a.rcode == .nxDomain else { return [] }
            return ["\(d.question.name.text) is in \(vpc.id)'s autodefined reverse zone \(zone.text), but no address of the VPC's CIDRs "
                    + "(\(vpc.cidrs.map(\.description).joined(separator: ", "))) or instance has that name: NXDOMAIN, answered locally, never forwarded (R17). "
                    + "A private hosted zone or FORWARD rule named like the zone, or autodefined_reverse: false, sends it elsewhere"]
        case .ec2InstanceName:
            guard a.rcode == .nxDomain else { return [] }
            return ["\(d.question.name.text) is under \(vpc.id)'s EC2 domain \(zone.text) but is neither the IP name of an RFC 1918 or VPC address "
                    + "nor the resource name of an instance of this VPC with resource_name_a/resource_name_aaaa on: NXDOMAIN (R16)"]
        default:
            return []
        }
    }
}
