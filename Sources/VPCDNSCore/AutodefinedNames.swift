import DNSWire

/// An EC2 instance of `instances:` (R16, R17): its resource name (`ID.DOMAIN`) and, when its
/// address lies outside every CIDR of its VPC, its PTR.
public struct Instance: Sendable, Equatable {
    public var id: String
    public var vpcID: String
    public var ipv4: IPAddress
    public var ipv6: IPAddress?
    /// "Enable resource-based IPv4 (A record) DNS requests" (AWS default off).
    public var resourceNameA: Bool
    /// "Enable resource-based IPv6 (AAAA record) DNS requests" (AWS default off).
    public var resourceNameAAAA: Bool

    public init(id: String, vpcID: String, ipv4: IPAddress, ipv6: IPAddress? = nil, resourceNameA: Bool = false, resourceNameAAAA: Bool = false) {
        self.id = id
        self.vpcID = vpcID
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.resourceNameA = resourceNameA
        self.resourceNameAAAA = resourceNameAAAA
    }
}

/// Names and ranges of AWS's autodefined zones (R16, R17), computed from the model.
public enum AutodefinedNames {
    /// R16: `ec2.internal` in us-east-1, `REGION.compute.internal` elsewhere.
    public static func ec2Domain(region: String) -> DNSName {
        // A region name is letters, digits and hyphens (checked at load time): always a valid label.
        region == "us-east-1" ? try! DNSName("ec2.internal") : try! DNSName("\(region).compute.internal")
    }

    /// `ip-A-B-C-D.DOMAIN` for an IPv4 address.
    public static func ipName(_ v4: UInt32, domain: DNSName) -> DNSName {
        DNSName(uncheckedWire: ipNameWire(v4, domain: domain))
    }

    /// The wire bytes of `ip-A-B-C-D.DOMAIN`, built from digits (no text on the query path).
    static func ipNameWire(_ v4: UInt32, domain: DNSName) -> [UInt8] {
        var out: [UInt8] = [0, UInt8(ascii: "i"), UInt8(ascii: "p")]
        out.reserveCapacity(16 + domain.wire.count)
        for shift in stride(from: 24, through: 0, by: -8) {
            out.append(UInt8(ascii: "-"))
            appendDecimal(UInt8(truncatingIfNeeded: v4 >> UInt32(shift)), to: &out)
        }
        out[0] = UInt8(out.count - 1)
        out += domain.wire
        return out
    }

    /// `D.C.B.A.in-addr.arpa` for an IPv4 address.
    public static func reverseName(_ v4: UInt32) -> DNSName {
        reverseZone(v4, octets: 4)
    }

    /// The reverse name of the first `octets` octets of `v4` (`1.0.10.in-addr.arpa` for 3).
    static func reverseZone(_ v4: UInt32, octets: Int) -> DNSName {
        var out: [UInt8] = []
        for i in stride(from: octets - 1, through: 0, by: -1) {
            var label: [UInt8] = []
            appendDecimal(UInt8(truncatingIfNeeded: v4 >> UInt32(24 - 8 * i)), to: &label)
            out.append(UInt8(label.count))
            out += label
        }
        return DNSName(uncheckedWire: out + inAddrArpa.wire)
    }

    static let inAddrArpa = try! DNSName("in-addr.arpa")

    /// RFC 1918: 10/8, 172.16/12, 192.168/16.
    public static func isRFC1918(_ v4: UInt32) -> Bool {
        v4 >> 24 == 10 || v4 >> 20 == 0xAC1 || v4 >> 16 == 0xC0A8
    }

    /// R17: the reverse zones of a VPC, most general first: `10.in-addr.arpa`,
    /// `16.172…31.172.in-addr.arpa`, `168.192.in-addr.arpa`, then one zone per /24 of each
    /// IPv4 CIDR. A CIDR shorter than /16 (AWS allows /16 to /28) gets zones at its own octet
    /// boundary instead of thousands of /24 zones: the names they cover are the same.
    public static func reverseZones(cidrs: [IPPrefix]) -> [DNSName] {
        var out: [DNSName] = [reverseZone(10 << 24, octets: 1)]
        for b in UInt32(16)...31 { out.append(reverseZone(172 << 24 | b << 16, octets: 2)) }
        out.append(reverseZone(192 << 24 | 168 << 16, octets: 2))
        for p in cidrs {
            guard case .v4(let net) = p.address else { continue }
            if p.length >= 24 {
                out.append(reverseZone(net, octets: 3))
            } else if p.length >= 16 {
                for i in UInt32(0)..<(1 << UInt32(24 - p.length)) { out.append(reverseZone(net + i << 8, octets: 3)) }
            } else {
                out.append(reverseZone(net, octets: max(1, p.length / 8)))
            }
        }
        var seen = Set<DNSName>()
        return out.filter { seen.insert($0).inserted }
    }

    static func appendDecimal(_ v: UInt8, to out: inout [UInt8]) {
        if v >= 100 { out.append(UInt8(ascii: "0") + v / 100) }
        if v >= 10 { out.append(UInt8(ascii: "0") + v / 10 % 10) }
        out.append(UInt8(ascii: "0") + v % 10)
    }

    /// A decimal octet label as written in reverse and IP names: `0`…`255`, no leading zero.
    static func parseOctet(_ bytes: ArraySlice<UInt8>) -> UInt32? {
        guard let first = bytes.first, (1...3).contains(bytes.count), !(first == UInt8(ascii: "0") && bytes.count > 1) else { return nil }
        var v: UInt32 = 0
        for b in bytes {
            guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else { return nil }
            v = v * 10 + UInt32(b - UInt8(ascii: "0"))
        }
        return v <= 255 ? v : nil
    }

    /// `ip-A-B-C-D` (one label's bytes, lower-cased) as an IPv4 address.
    static func parseIPLabel(_ label: ArraySlice<UInt8>) -> UInt32? {
        guard label.count >= 10, label.starts(with: [UInt8(ascii: "i"), UInt8(ascii: "p"), UInt8(ascii: "-")]) else { return nil }
        var v: UInt32 = 0
        var parts = 0
        var start = label.startIndex + 3
        var i = start
        while i <= label.endIndex {
            if i == label.endIndex || label[i] == UInt8(ascii: "-") {
                guard parts < 4, let o = parseOctet(label[start..<i]) else { return nil }
                v = v << 8 | o
                parts += 1
                start = i + 1
            }
            i += 1
        }
        return parts == 4 ? v : nil
    }
}

/// What one VPC's autodefined zones need to synthesise answers: shared by all of its zones.
final class AutodefinedSpace: Sendable {
    let domain: DNSName
    /// The VPC's IPv4 CIDRs as (network, mask).
    let cidrs: [(network: UInt32, mask: UInt32)]
    let ttl: UInt32

    init(vpc: VPC, ttl: UInt32) {
        domain = AutodefinedNames.ec2Domain(region: vpc.region)
        cidrs = vpc.cidrs.compactMap { p in
            guard case .v4(let n) = p.address else { return nil }
            return (n, p.length == 0 ? 0 : ~UInt32(0) << UInt32(32 - p.length))
        }
        self.ttl = ttl
    }

    func inVPC(_ v4: UInt32) -> Bool { cidrs.contains { v4 & $0.mask == $0.network } }

    /// True when some address of the VPC starts with the first `bits` bits of `prefix`.
    func overlaps(_ prefix: UInt32, bits: Int) -> Bool {
        let m: UInt32 = bits == 0 ? 0 : ~UInt32(0) << UInt32(32 - bits)
        return cidrs.contains { prefix & m & $0.mask == $0.network & m }
    }
}

/// One autodefined zone of one VPC (R16's EC2 domain or one of R17's reverse zones): static
/// records (apex SOA/NS, instance resource names and PTRs) in `data`, plus names
/// synthesised from the query name's bytes.
struct AutodefinedZone: Sendable {
    enum Kind: Sendable {
        case ec2Names, reverse
    }
    let kind: Kind
    let data: ZoneData
    let space: AutodefinedSpace

    var decisionKind: DecisionKind { kind == .ec2Names ? .ec2InstanceName : .reverseDNS }
    var trace: CandidateTrace.Kind { kind == .ec2Names ? .ec2InstanceName : .reverseDNS }

    /// R3's outcomes for `name` (at or below the apex).
    func lookup(_ name: DNSName, _ type: RRType) -> ZoneData.LookupResult {
        switch kind {
        case .ec2Names: ec2Lookup(name, type)
        case .reverse: reverseLookup(name, type)
        }
    }

    /// R16: `ip-A-B-C-D.DOMAIN` answers A when the address is the VPC's or any RFC 1918 one.
    private func ec2Lookup(_ name: DNSName, _ type: RRType) -> ZoneData.LookupResult {
        let wire = name.wire
        let len = Int(wire[0])
        // Exactly one label above the domain: the label, then the domain's bytes.
        if len > 0, wire.count == len + 1 + data.apex.wire.count,
           let v4 = AutodefinedNames.parseIPLabel(wire[1...len]),
           AutodefinedNames.isRFC1918(v4) || space.inVPC(v4) {
            guard type == .a || type == .any else { return .nodata }
            return .answer([ResourceRecord(name: name, type: .a, ttl: space.ttl,
                                           rdata: [UInt8(v4 >> 24), UInt8(v4 >> 16 & 0xff), UInt8(v4 >> 8 & 0xff), UInt8(v4 & 0xff)])])
        }
        return data.lookup(name, type)
    }

    /// R17: a PTR for an address inside the VPC's CIDRs answers its IP name.
    private func reverseLookup(_ name: DNSName, _ type: RRType) -> ZoneData.LookupResult {
        if data.exists(name) { return data.lookup(name, type) }
        // The labels in front of `in-addr.arpa`, most specific octet first.
        let wire = name.wire
        let octetBytes = wire.count - AutodefinedNames.inAddrArpa.wire.count
        var v: UInt32 = 0
        var count = 0
        var i = 0
        while i < octetBytes {
            let l = Int(wire[i])
            guard count < 4, let o = AutodefinedNames.parseOctet(wire[(i + 1)..<(i + 1 + l)]) else { return data.lookup(name, type) }
            v |= o << UInt32(8 * count)
            count += 1
            i += l + 1
        }
        // The first label is the least significant octet present: shift the octets to the top.
        let address = v << UInt32(8 * (4 - count))
        if count == 4 {
            guard space.inVPC(address) else { return data.lookup(name, type) }
            guard type == .ptr || type == .any else { return .nodata }
            return .answer([ResourceRecord(name: name, type: .ptr, ttl: space.ttl,
                                           rdata: AutodefinedNames.ipNameWire(address, domain: space.domain))])
        }
        // A partial name above VPC addresses exists (it has names below it): NODATA (RFC 8020).
        return space.overlaps(address, bits: 8 * count) ? .nodata : data.lookup(name, type)
    }

    /// Every autodefined zone of `vpc` (R16, then R17 unless `autodefined_reverse` is off).
    /// `shared` holds the reverse zones already built without instance records, by apex: VPCs
    /// that reuse a CIDR (10.0.0.0/16 everywhere) share them instead of building 274 each.
    static func zones(for vpc: VPC, instances: [Instance], ttl: UInt32, shared: inout [DNSName: ZoneData]) -> [AutodefinedZone] {
        let space = AutodefinedSpace(vpc: vpc, ttl: ttl)
        var ec2Records: [ResourceRecord] = []
        for inst in instances {
            // The id is `i-` + hex (checked at load time): always a valid label.
            let owner = try! space.domain.prepending(inst.id)
            if inst.resourceNameA { ec2Records.append(ResourceRecord(name: owner, type: .a, ttl: ttl, rdata: inst.ipv4.bytes)) }
            if inst.resourceNameAAAA, let v6 = inst.ipv6 { ec2Records.append(ResourceRecord(name: owner, type: .aaaa, ttl: ttl, rdata: v6.bytes)) }
        }
        var out = [AutodefinedZone(kind: .ec2Names, data: ZoneData(apex: space.domain, origin: .autodefined,
                                                                   records: apexRecords(space.domain) + ec2Records), space: space)]
        guard vpc.autodefinedReverse else { return out }
        let apexes = AutodefinedNames.reverseZones(cidrs: vpc.cidrs)
        let known = Set(apexes)
        // An instance's PTR goes in the most specific zone that covers it; only addresses
        // outside the VPC's CIDRs need one (the others are synthesised).
        var ptrs: [DNSName: [ResourceRecord]] = [:]
        for inst in instances {
            guard case .v4(let v4) = inst.ipv4, !space.inVPC(v4) else { continue }
            guard let apex = (1...3).reversed().lazy.map({ AutodefinedNames.reverseZone(v4, octets: $0) }).first(where: known.contains) else { continue }
            ptrs[apex, default: []].append(ResourceRecord(name: AutodefinedNames.reverseName(v4), type: .ptr, ttl: ttl,
                                                          rdata: AutodefinedNames.ipNameWire(v4, domain: space.domain)))
        }
        for apex in apexes {
            let data: ZoneData
            if let records = ptrs[apex] {
                data = ZoneData(apex: apex, origin: .autodefined, records: apexRecords(apex) + records)
            } else if let built = shared[apex] {
                data = built
            } else {
                data = ZoneData(apex: apex, origin: .autodefined, records: apexRecords(apex))
                shared[apex] = data
            }
            out.append(AutodefinedZone(kind: .reverse, data: data, space: space))
        }
        return out
    }

    /// AWS's private-zone SOA and NS, built once and renamed per apex: a /16 VPC has 274
    /// reverse zones, and parsing the placeholder names for each was most of the load time.
    private static let apexTemplate = [PrivateZoneDefaults.soa(apex: .root)] + PrivateZoneDefaults.ns(apex: .root)

    static func apexRecords(_ apex: DNSName) -> [ResourceRecord] { apexTemplate.map { $0.renamed(apex) } }
}
