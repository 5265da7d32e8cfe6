import DNSWire

/// The validated configuration, with everything the resolver needs derived once at load
/// time. Built by VPCDNSConfig (which reports errors with file and line); the decision
/// engine only reads it. Immutable and `Sendable`, so a reload swaps one value.
public struct Model: Sendable {
    public var settings: Settings
    public var vpcs: [VPC]
    public var endpoints: [Endpoint]
    public var endpointServices: [EndpointService]
    public var hostedZones: [HostedZone]
    /// EC2 instances named by R16/R17 (`instances:`).
    public var instances: [Instance] = []
    /// `health_checks` (R18): indexes into this list identify a check in the core.
    public var healthChecks: [HealthCheck]

    public init(settings: Settings, vpcs: [VPC], endpoints: [Endpoint], endpointServices: [EndpointService], hostedZones: [HostedZone],
                healthChecks: [HealthCheck] = []) {
        self.healthChecks = healthChecks
        self.settings = settings
        self.vpcs = vpcs
        self.endpoints = endpoints
        self.endpointServices = endpointServices
        self.hostedZones = hostedZones
    }

    public func vpc(_ id: String) -> VPC? { vpcs.first { $0.id == id } }
    public func endpoint(_ id: String) -> Endpoint? { endpoints.first { $0.id == id } }
    public func endpointService(_ id: String) -> EndpointService? { endpointServices.first { $0.id == id } }
}

/// Top-level keys of config.md, with their defaults.
public struct Settings: Sendable, Equatable {
    public var accountID = "000000000000"
    public var listen: [SocketEndpoint] = [SocketEndpoint("127.0.0.1:1053")!]
    public var upstreams: [UpstreamSpec] = [.system]
    public var upstreamTimeoutMs = 2000
    public var upstreamAttemptTimeoutMs = 800
    public var endpointDNSTTL: UInt32 = 60
    public var cacheSize = 100_000
    /// The upstream cache's memory bound in bytes (64 MiB, as Unbound's msg-cache-size).
    public var cacheMaxBytes = 67_108_864
    public var udpPayloadSize = 1232
    public var tcpIdleTimeoutMs = 10_000
    public var maxTCPConnections = 1000
    /// UDP sockets per upstream target and event loop, one picked at random for each query
    /// (P11): more sockets make the source port harder to guess, fewer cost less CPU per miss.
    public var upstreamSockets = 1024
    /// Event loops (threads) serving queries; nil = one per core. With a load generator on
    /// the same small machine, fewer loops can mean less CPU per query (see the benchmark).
    public var threads: Int? = nil
    public var defaultVPC: String? = nil
    /// Path as written, already resolved against the config file's folder; `-` is stdout.
    public var queryLog: String? = nil
    public var logCacheHits = true
    public var metrics: SocketEndpoint? = nil
    /// P9: front ends whose queries carry a PROXY v2 header naming the real client.
    public var trustedProxies: [IPPrefix] = []
    /// O8: dnstap to a Frame Streams reader on a unix socket; nil = off.
    public var dnstap: DnstapSettings? = nil
    /// The troubleshooting console (web page, JSON API, `/metrics`, `/healthz`); nil = off.
    public var console: SocketEndpoint? = nil
    /// When set, every console request carries it (bearer header, or `?token=` for the page).
    public var consoleToken: String? = nil

    public init() {}
}

/// config.md `dnstap` (O8), with its defaults filled in by the loader.
public struct DnstapSettings: Sendable, Equatable {
    /// The reader's unix socket, resolved against the config file's folder.
    public var socket: String
    /// dnstap `identity` (default the host name).
    public var identity: String
    /// dnstap `version` (default "vpcdns VERSION").
    public var version: String
    /// Which messages are sent, as config.md spells them, in config.md's order.
    public var messages: [String]

    /// Every message kind, in config.md's order (the default).
    public static let allMessages = ["client_query", "client_response", "forwarder_query", "forwarder_response"]
    /// The version vpcdns reports as itself (dnstap `version`).
    public static let vpcdnsVersion = "vpcdns 0.1.0"

    public init(socket: String, identity: String, version: String = DnstapSettings.vpcdnsVersion,
                messages: [String] = DnstapSettings.allMessages) {
        self.socket = socket
        self.identity = identity
        self.version = version
        self.messages = messages
    }
}

public enum UpstreamSpec: Hashable, Sendable, CustomStringConvertible {
    /// The nameservers of /etc/resolv.conf, read when the server starts.
    case system
    case address(SocketEndpoint)

    public var description: String {
        switch self {
        case .system: "system"
        case .address(let a): a.description
        }
    }
}

public struct VPC: Sendable, Equatable {
    public var id: String
    public var name: String?
    public var region: String
    public var cidrs: [IPPrefix]
    public var clients: [IPPrefix]
    public var resolverAddresses: [SocketEndpoint]
    public var inboundEndpoints: [InboundEndpoint]
    public var enableDNSSupport: Bool
    public var enableDNSHostnames: Bool
    public var resolverRules: [ResolverRule]
    /// V1: the sources allowed to use `resolverAddresses` and the inbound endpoints' addresses;
    /// empty = any source (config.md `allowed_sources`).
    public var allowedSources: [IPPrefix]
    /// R17: AWS's autodefined reverse zones (`autodefined_reverse`, on by default).
    public var autodefinedReverse = true

    public init(id: String, name: String? = nil, region: String, cidrs: [IPPrefix], clients: [IPPrefix] = [],
                resolverAddresses: [SocketEndpoint] = [], inboundEndpoints: [InboundEndpoint] = [],
                enableDNSSupport: Bool = true, enableDNSHostnames: Bool = false, resolverRules: [ResolverRule] = [],
                allowedSources: [IPPrefix] = []) {
        self.id = id
        self.name = name
        self.region = region
        self.cidrs = cidrs
        self.clients = clients
        self.resolverAddresses = resolverAddresses
        self.inboundEndpoints = inboundEndpoints
        self.enableDNSSupport = enableDNSSupport
        self.enableDNSHostnames = enableDNSHostnames
        self.resolverRules = resolverRules
        self.allowedSources = allowedSources
    }

    /// R2: PHZs and endpoint private DNS apply only with both attributes on.
    public var privateDNSUsable: Bool { enableDNSSupport && enableDNSHostnames }
}

public struct InboundEndpoint: Sendable, Equatable {
    public var id: String
    public var addresses: [SocketEndpoint]
    public init(id: String, addresses: [SocketEndpoint]) {
        self.id = id
        self.addresses = addresses
    }
}

public struct ResolverRule: Sendable, Equatable {
    public enum Kind: String, Sendable { case forward = "FORWARD", system = "SYSTEM" }
    public var id: String
    public var domain: DNSName
    public var kind: Kind
    public var targets: [SocketEndpoint]
    public init(id: String, domain: DNSName, kind: Kind, targets: [SocketEndpoint] = []) {
        self.id = id
        self.domain = domain
        self.kind = kind
        self.targets = targets
    }
}

public struct Endpoint: Sendable, Equatable {
    public enum Kind: String, Sendable { case interface = "Interface", gateway = "Gateway", gatewayLoadBalancer = "GatewayLoadBalancer" }
    public enum IPType: String, Sendable { case ipv4, ipv6, dualstack, serviceDefined = "service-defined" }
    public struct Subnet: Sendable, Equatable {
        public var az: String
        public var ipv4: IPAddress?
        public var ipv6: IPAddress?
        /// A `health_checks` id: with `evaluate_target_health`, this subnet's address is left
        /// out of routed answers while the check fails (R18).
        public var healthCheck: String?
        public init(az: String, ipv4: IPAddress? = nil, ipv6: IPAddress? = nil, healthCheck: String? = nil) {
            self.healthCheck = healthCheck
            self.az = az
            self.ipv4 = ipv4
            self.ipv6 = ipv6
        }
    }

    public var id: String
    public var vpcID: String
    public var service: ServiceName
    public var kind: Kind
    public var privateDNSEnabled: Bool
    public var privateDNSOnlyForInboundResolverEndpoint: Bool
    public var ipType: IPType
    /// The 8 characters after the id in the endpoint's DNS names.
    public var dnsSuffix: String
    public var subnets: [Subnet]
    /// The effective private DNS names (catalog, or the `private_dns_names` override);
    /// wildcard names keep their `*` label. Empty for gateway endpoints and custom services
    /// (whose name comes from the endpoint service, R11).
    public var privateDNSNames: [DNSName]
    /// True when `privateDNSNames` came from the config rather than the catalog.
    public var privateDNSNamesOverridden: Bool

    public init(id: String, vpcID: String, service: ServiceName, kind: Kind = .interface, privateDNSEnabled: Bool,
                privateDNSOnlyForInboundResolverEndpoint: Bool = false, ipType: IPType = .ipv4, dnsSuffix: String,
                subnets: [Subnet], privateDNSNames: [DNSName], privateDNSNamesOverridden: Bool = false) {
        self.id = id
        self.vpcID = vpcID
        self.service = service
        self.kind = kind
        self.privateDNSEnabled = privateDNSEnabled
        self.privateDNSOnlyForInboundResolverEndpoint = privateDNSOnlyForInboundResolverEndpoint
        self.ipType = ipType
        self.dnsSuffix = dnsSuffix
        self.subnets = subnets
        self.privateDNSNames = privateDNSNames
        self.privateDNSNamesOverridden = privateDNSNamesOverridden
    }

    /// R10 regional name: `vpce-HEX-SUFFIX.SERVICE.REGION.vpce.amazonaws.com`.
    public var regionalName: DNSName { EndpointNames.regional(endpointID: id, suffix: dnsSuffix, service: service) }

    /// R10 zonal names, one per subnet: `vpce-HEX-SUFFIX-AZ.SERVICE.REGION.vpce.amazonaws.com`.
    public var zonalNames: [(az: String, name: DNSName)] {
        subnets.map { ($0.az, EndpointNames.zonal(endpointID: id, suffix: dnsSuffix, az: $0.az, service: service)) }
    }

    public var isS3: Bool { if case .aws(_, "s3") = service { true } else { false } }
}

/// `com.amazonaws.REGION.SERVICE` or `com.amazonaws.vpce.REGION.vpce-svc-HEX`.
public enum ServiceName: Hashable, Sendable, CustomStringConvertible {
    case aws(region: String, service: String)
    case custom(region: String, serviceID: String)

    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 4, parts[0] == "com", parts[1] == "amazonaws", !parts.contains("") else { return nil }
        if parts[2] == "vpce" {
            guard parts.count == 5, isRegion(parts[3]), parts[4].hasPrefix("vpce-svc-"),
                  isHexID(parts[4].dropFirst("vpce-svc-".count)) else { return nil }
            self = .custom(region: parts[3], serviceID: parts[4])
        } else {
            guard isRegion(parts[2]) else { return nil }
            let svc = parts[3...].joined(separator: ".")
            guard svc.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }) else { return nil }
            self = .aws(region: parts[2], service: svc.lowercased())
        }
    }

    public var region: String {
        switch self {
        case .aws(let r, _), .custom(let r, _): r
        }
    }

    public var description: String {
        switch self {
        case .aws(let r, let s): "com.amazonaws.\(r).\(s)"
        case .custom(let r, let id): "com.amazonaws.vpce.\(r).\(id)"
        }
    }
}

public struct EndpointService: Sendable, Equatable {
    public enum Verification: String, Sendable { case pendingVerification, verified, failed }
    public enum AliasStyle: String, Sendable { case cname, flatten }
    public var id: String
    public var region: String
    public var privateDNSName: DNSName?
    public var verification: Verification
    public var aliasStyle: AliasStyle
    public init(id: String, region: String, privateDNSName: DNSName?, verification: Verification = .verified, aliasStyle: AliasStyle = .cname) {
        self.id = id
        self.region = region
        self.privateDNSName = privateDNSName
        self.verification = verification
        self.aliasStyle = aliasStyle
    }
}

/// A private hosted zone: records from its file and its `records:` entries, in one list.
public struct HostedZone: Sendable, Equatable {
    public var id: String
    public var name: DNSName
    public var vpcIDs: [String]
    /// Every plain record, SOA and apex NS included (the AWS placeholders when the zone has none).
    public var records: [ResourceRecord]
    public var aliases: [AliasRecord]
    /// True when the zone file gave its own SOA.
    public var hasOwnSOA: Bool
    /// The zone file, as written in the config (for messages and `check`).
    public var file: String?
    /// Record sets with a `set_identifier` (R18), kept apart from `records`.
    public var routedSets: [RoutedRecordSet] = []

    public init(id: String, name: DNSName, vpcIDs: [String], records: [ResourceRecord], aliases: [AliasRecord] = [], hasOwnSOA: Bool, file: String? = nil) {
        self.id = id
        self.name = name
        self.vpcIDs = vpcIDs
        self.records = records
        self.aliases = aliases
        self.hasOwnSOA = hasOwnSOA
        self.file = file
    }
}

/// A Route 53 alias record set (R13): answers the target's addresses under its own name.
public struct AliasRecord: Sendable, Equatable {
    public enum Target: Sendable, Equatable {
        /// The endpoint's regional addresses.
        case endpoint(String)
        /// An endpoint's regional or zonal DNS name.
        case dnsName(DNSName)
        /// Another record set of the same zone, same type.
        case record(DNSName)
    }
    public var name: DNSName
    public var type: RRType
    public var target: Target
    public init(name: DNSName, type: RRType, target: Target) {
        self.name = name
        self.type = type
        self.target = target
    }
}

/// AWS's placeholder SOA and NS for private zones (aws-reference.md §6).
public enum PrivateZoneDefaults {
    public static let soaTTL: UInt32 = 900
    public static let nsTTL: UInt32 = 172_800
    public static let nsNames = ["ns-1536.awsdns-00.co.uk", "ns-0.awsdns-00.com", "ns-1024.awsdns-00.org", "ns-512.awsdns-00.net"]

    public static func soa(apex: DNSName) -> ResourceRecord {
        var rdata = try! DNSName("ns-1536.awsdns-00.co.uk").wire
        rdata += try! DNSName("awsdns-hostmaster.amazon.com").wire
        for v: UInt32 in [1, 7200, 900, 1_209_600, 86_400] {
            rdata += [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)]
        }
        return ResourceRecord(name: apex, type: .soa, ttl: soaTTL, rdata: rdata)
    }

    public static func ns(apex: DNSName) -> [ResourceRecord] {
        nsNames.map { ResourceRecord(name: apex, type: .ns, ttl: nsTTL, rdata: try! DNSName($0).wire) }
    }
}

func isRegion(_ s: String) -> Bool {
    // us-west-2, ap-southeast-1, us-gov-west-1, cn-north-1, eu-central-2 ...
    let parts = s.split(separator: "-")
    guard parts.count >= 3, let last = parts.last, last.allSatisfy(\.isNumber) else { return false }
    return parts.dropLast().allSatisfy { !$0.isEmpty && $0.allSatisfy { $0.isLowercase && $0.isLetter } }
}

func isHexID<S: StringProtocol>(_ s: S) -> Bool {
    !s.isEmpty && s.allSatisfy { $0.isHexDigit && !$0.isUppercase }
}

/// Identifier checks shared by the config loader and tests.
public enum IDFormat {
    public static func isVPCID(_ s: String) -> Bool { s.hasPrefix("vpc-") && isHexID(s.dropFirst(4)) }
    public static func isEndpointID(_ s: String) -> Bool { s.hasPrefix("vpce-") && !s.hasPrefix("vpce-svc-") && isHexID(s.dropFirst(5)) }
    public static func isServiceID(_ s: String) -> Bool { s.hasPrefix("vpce-svc-") && isHexID(s.dropFirst(9)) }
    public static func isInboundEndpointID(_ s: String) -> Bool { s.hasPrefix("rslvr-in-") && isHexID(s.dropFirst(9)) }
    public static func isRuleID(_ s: String) -> Bool { s.hasPrefix("rslvr-rr-") && isHexID(s.dropFirst(9)) }
    public static func isRegion(_ s: String) -> Bool { VPCDNSCore.isRegion(s) }
    public static func isHostedZoneID(_ s: String) -> Bool {
        s.hasPrefix("Z") && (14...22).contains(s.count) && s.dropFirst().allSatisfy { ($0.isUppercase && $0.isLetter) || $0.isNumber }
    }
    /// `i-` followed by lowercase hex (EC2 instance ids: 8 or 17 digits in AWS; any length that fits one DNS label).
    public static func isInstanceID(_ s: String) -> Bool { s.count <= 63 && s.hasPrefix("i-") && isHexID(s.dropFirst(2)) }
    public static func isDNSSuffix(_ s: String) -> Bool {
        s.count == 8 && s.allSatisfy { ($0.isLowercase && $0.isLetter) || $0.isNumber }
    }
}
