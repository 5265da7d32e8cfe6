import Foundation

/// Small accessors for the loosely typed values JSONSerialization returns.
extension Dictionary where Key == String, Value == Any {
    func str(_ k: String) -> String? { self[k] as? String }
    func dict(_ k: String) -> [String: Any]? { self[k] as? [String: Any] }
    func list(_ k: String) -> [[String: Any]] { (self[k] as? [Any])?.compactMap { $0 as? [String: Any] } ?? [] }
    func bool(_ k: String) -> Bool? { (self[k] as? NSNumber)?.boolValue ?? (self[k] as? Bool) }
    func int(_ k: String) -> Int? { (self[k] as? NSNumber)?.intValue ?? (self[k] as? Int) }
}

/// One item read from a file, remembered with the file it came from.
struct Sourced {
    let file: String
    let item: [String: Any]
}

/// Everything the import reads from a set of AWS CLI outputs, recognised by content and
/// merged across pages (an id seen twice keeps its first copy).
struct AWSSnapshot {
    var vpcs: [Sourced] = []
    /// vpc id -> (support, hostnames), each with the file it came from.
    var dnsSupport: [String: (Bool, String)] = [:]
    var dnsHostnames: [String: (Bool, String)] = [:]
    var endpoints: [Sourced] = []
    var interfaces: [String: Sourced] = [:]
    var serviceDetails: [Sourced] = []
    var serviceConfigurations: [Sourced] = []
    var instances: [Sourced] = []
    var hostedZones: [Sourced] = []
    /// zone id -> its get-hosted-zone output.
    var hostedZoneDetails: [String: Sourced] = [:]
    var recordSetFiles: [JSONFile] = []
    var healthChecks: [String: Sourced] = [:]
    var resolverEndpoints: [Sourced] = []
    var resolverEndpointAddressFiles: [JSONFile] = []
    var resolverRules: [Sourced] = []
    var ruleAssociations: [Sourced] = []
    /// Which kinds of output were seen at all (to name the commands that are missing).
    var seen: Set<String> = []
    var warnings: [ImportWarning] = []

    private var ids: Set<String> = []

    mutating func add(_ f: JSONFile) {
        let o = f.object
        /// Appends the `found` items not seen before (by `kind` and the id under `idKey`).
        func merge(_ found: [[String: Any]], kind: String, id idKey: String, into list: inout [Sourced]) {
            for item in found {
                let id = item.str(idKey) ?? UUID().uuidString
                if ids.insert("\(kind)/\(id)").inserted { list.append(Sourced(file: f.path, item: item)) }
            }
        }
        /// A list output: the items under `key`.
        func items(_ key: String, id idKey: String, into list: inout [Sourced]) {
            seen.insert(key)
            merge(o.list(key), kind: key, id: idKey, into: &list)
        }
        /// `item` under `id` in `map` unless an earlier file had that id.
        func keep(_ item: [String: Any], id: String?, into map: inout [String: Sourced]) {
            if let id, map[id] == nil { map[id] = Sourced(file: f.path, item: item) }
        }
        if o["Vpcs"] != nil {
            items("Vpcs", id: "VpcId", into: &vpcs)
        } else if let vpc = o.str("VpcId"), o["EnableDnsSupport"] != nil || o["EnableDnsHostnames"] != nil {
            seen.insert("VpcAttribute")
            if let v = o.dict("EnableDnsSupport")?.bool("Value") { dnsSupport[vpc] = (v, f.path) }
            if let v = o.dict("EnableDnsHostnames")?.bool("Value") { dnsHostnames[vpc] = (v, f.path) }
        } else if o["VpcEndpoints"] != nil {
            items("VpcEndpoints", id: "VpcEndpointId", into: &endpoints)
        } else if o["NetworkInterfaces"] != nil {
            seen.insert("NetworkInterfaces")
            for eni in o.list("NetworkInterfaces") { keep(eni, id: eni.str("NetworkInterfaceId"), into: &interfaces) }
        } else if o["ServiceDetails"] != nil {
            items("ServiceDetails", id: "ServiceId", into: &serviceDetails)
        } else if o["ServiceConfigurations"] != nil {
            items("ServiceConfigurations", id: "ServiceId", into: &serviceConfigurations)
        } else if o["Reservations"] != nil {
            seen.insert("Reservations")
            merge(o.list("Reservations").flatMap { $0.list("Instances") }, kind: "Instances", id: "InstanceId", into: &instances)
        } else if o["HostedZones"] != nil {
            items("HostedZones", id: "Id", into: &hostedZones)
        } else if let z = o.dict("HostedZone"), o["VPCs"] != nil || z.dict("Config") != nil {
            seen.insert("HostedZone")
            keep(o, id: z.str("Id").map(AWSSnapshot.zoneID), into: &hostedZoneDetails)
        } else if o["ResourceRecordSets"] != nil {
            seen.insert("ResourceRecordSets")
            recordSetFiles.append(f)
        } else if let h = o.dict("HealthCheck") {
            seen.insert("HealthCheck")
            keep(h, id: h.str("Id"), into: &healthChecks)
        } else if o["ResolverEndpoints"] != nil {
            items("ResolverEndpoints", id: "Id", into: &resolverEndpoints)
        } else if o["IpAddresses"] != nil {
            seen.insert("IpAddresses")
            resolverEndpointAddressFiles.append(f)
        } else if o["ResolverRules"] != nil {
            items("ResolverRules", id: "Id", into: &resolverRules)
        } else if o["ResolverRuleAssociations"] != nil {
            items("ResolverRuleAssociations", id: "Id", into: &ruleAssociations)
        } else {
            let keys = o.keys.sorted().prefix(5).joined(separator: ", ")
            warnings.append(ImportWarning(file: f.path, message: "not an AWS CLI output this import reads (top-level keys: \(keys.isEmpty ? "none" : keys)); ignored"))
        }
    }

    /// `/hostedzone/Z123` -> `Z123`.
    static func zoneID(_ s: String) -> String {
        s.split(separator: "/").last.map(String.init) ?? s
    }
}

/// A note about something imported differently from the account, or not at all.
public struct ImportWarning: CustomStringConvertible, Equatable, Sendable {
    public let file: String
    public let message: String
    public var description: String { "\(file): warning: \(message)" }
}
