import VPCDNSCore
import Yams

/// `instances:` (R16, R17): EC2 instances whose resource names vpcdns answers.
extension ModelBuilder {
    func instance(_ node: Node, _ path: String) -> Located<Instance>? {
        guard let m = reader.mapping(node, at: path, allowed: Keys.instance) else { return nil }
        let id = reader.require(reader.string(m["id"], at: "\(path).id"), m["id"], at: "\(path).id")
        if let id, !IDFormat.isInstanceID(id) { reader.error("\(path).id", badID(id, "an EC2 instance id", "i-")) }
        let vpcID = reader.require(reader.string(m["vpc"], at: "\(path).vpc"), m["vpc"], at: "\(path).vpc")
        if let vpcID, !IDFormat.isVPCID(vpcID) { reader.error("\(path).vpc", badID(vpcID, "a VPC id", "vpc-")) }
        let v4 = reader.require(address(m["ipv4"], at: "\(path).ipv4", v4: true), m["ipv4"], at: "\(path).ipv4")
        let v6 = address(m["ipv6"], at: "\(path).ipv6", v4: false)
        let a = reader.bool(m["resource_name_a"], at: "\(path).resource_name_a") ?? false
        let aaaa = reader.bool(m["resource_name_aaaa"], at: "\(path).resource_name_aaaa") ?? false
        if aaaa, m["ipv6"] == nil {
            reader.error("\(path).resource_name_aaaa", "resource_name_aaaa: true needs the instance's ipv6 address")
        }
        guard let id, let vpcID, let v4, IDFormat.isInstanceID(id) else { return nil }
        return Located(value: Instance(id: id, vpcID: vpcID, ipv4: v4, ipv6: v6, resourceNameA: a, resourceNameAAAA: aaaa), path: path)
    }
}

/// Cross-entry checks of `instances:` (called from `Validation`).
extension Validation {
    /// The VPC must exist and ids be unique; an address outside every CIDR of the VPC is
    /// allowed (AWS would not launch it there) but warned about: its names still resolve,
    /// and its PTR is served only where one of the VPC's reverse zones covers it.
    func instances() {
        let vpcs = Dictionary(parsed.vpcs.map { ($0.value.id, $0.value) }, uniquingKeysWith: { a, _ in a })
        var first: [String: String] = [:]
        for i in parsed.instances {
            let inst = i.value
            if let f = first[inst.id] {
                reader.error("\(i.path).id", "duplicate instance id \(inst.id) (first at line \(reader.line(f)))")
            } else {
                first[inst.id] = "\(i.path).id"
            }
            guard let vpc = vpcs[inst.vpcID] else {
                reader.error("\(i.path).vpc", "no VPC with id \(inst.vpcID) in this file")
                continue
            }
            if !vpc.cidrs.contains(where: { $0.contains(inst.ipv4) }) {
                reader.warning("\(i.path).ipv4", "\(inst.ipv4) is outside every CIDR of VPC \(vpc.id) (\(vpc.cidrs.map(\.description).joined(separator: ", "))): AWS gives instances addresses from their VPC's subnets")
            }
            // Many configs list only the IPv4 CIDRs (they pick the VPC by source address).
            let v6CIDRs = vpc.cidrs.filter { !$0.address.isIPv4 }
            if let v6 = inst.ipv6, !v6CIDRs.isEmpty, !v6CIDRs.contains(where: { $0.contains(v6) }) {
                reader.warning("\(i.path).ipv6", "\(v6) is outside every IPv6 CIDR of VPC \(vpc.id)")
            }
        }
    }
}
