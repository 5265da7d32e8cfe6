import DNSWire

/// R6: the private DNS names AWS gives an interface endpoint of an AWS service, by service.
///
/// This is data, kept as a table so that adding a service is one line. `{R}` stands for the
/// region. A service not listed gets the default `SERVICE.{R}.amazonaws.com`.
public enum ServiceCatalog {
    public static let exceptions: [String: [String]] = [
        "s3": [
            "s3.{R}.amazonaws.com", "*.s3.{R}.amazonaws.com",
            "s3-control.{R}.amazonaws.com", "*.s3-control.{R}.amazonaws.com",
            "s3-accesspoint.{R}.amazonaws.com", "*.s3-accesspoint.{R}.amazonaws.com",
        ],
        "ecr.api": ["api.ecr.{R}.amazonaws.com"],
        "ecr.dkr": ["*.dkr.ecr.{R}.amazonaws.com"],
        "execute-api": ["*.execute-api.{R}.amazonaws.com"],
    ]

    public static let defaultPattern = "{SERVICE}.{R}.amazonaws.com"

    /// The private DNS names for `com.amazonaws.REGION.SERVICE` (empty for custom services:
    /// their name comes from the endpoint service, R11).
    public static func privateDNSNames(for service: ServiceName) -> [DNSName] {
        guard case .aws(let region, let svc) = service else { return [] }
        let patterns = exceptions[svc] ?? [defaultPattern]
        return patterns.compactMap {
            try? DNSName(fill($0, region: region, service: svc))
        }
    }

    static func fill(_ pattern: String, region: String, service: String) -> String {
        pattern.split(separator: "{", omittingEmptySubsequences: false).enumerated().map { i, part -> String in
            if i == 0 { return String(part) }
            if part.hasPrefix("R}") { return region + part.dropFirst(2) }
            if part.hasPrefix("SERVICE}") { return service + part.dropFirst(8) }
            return "{" + part
        }.joined()
    }

    /// Services whose catalog names include a wildcard that captures more than people expect
    /// (`check` warns: every API Gateway API in the region resolves to the endpoint).
    public static let capturesEverything: Set<String> = ["execute-api"]
}

/// R10: the endpoint-specific DNS names, derived from the endpoint id, its suffix and service.
public enum EndpointNames {
    /// `ec2` -> `ec2`, `ecr.dkr` -> `dkr.ecr`, custom -> the service id.
    public static func servicePart(_ service: ServiceName) -> String {
        switch service {
        case .aws(_, let svc): svc.split(separator: ".").reversed().joined(separator: ".")
        case .custom(_, let id): id
        }
    }

    public static func regional(endpointID: String, suffix: String, service: ServiceName) -> DNSName {
        try! DNSName("\(endpointID)-\(suffix).\(servicePart(service)).\(service.region).vpce.amazonaws.com")
    }

    public static func zonal(endpointID: String, suffix: String, az: String, service: ServiceName) -> DNSName {
        try! DNSName("\(endpointID)-\(suffix)-\(az).\(servicePart(service)).\(service.region).vpce.amazonaws.com")
    }

    /// `vpce.amazonaws.com`: names under it that match no configured endpoint go upstream (R10).
    public static let vpceDomain = try! DNSName("vpce.amazonaws.com")
}
