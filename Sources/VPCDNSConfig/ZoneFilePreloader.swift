import DNSWire
import Dispatch
import LDNSKit
import Synchronization
import Yams

/// Parses every zone file of `hosted_zones` on all cores before the zones are built.
///
/// Zone-file parsing (libldns, record by record) is most of the load time of a large
/// configuration, and the files are independent: libldns keeps no shared mutable state on
/// this path. Only the parse runs in parallel; the diagnostics are still produced by
/// `HostedZoneBuilder` in configuration order, so the output does not depend on timing.
/// Entries whose `name` or `file` cannot be read here are simply not preloaded: the builder
/// then reports them as usual.
enum ZoneFilePreloader {
    struct Key: Hashable, Sendable {
        var path: String
        var origin: DNSName
    }

    static func load(_ zones: Node?, configPath: String) -> [Key: Result<[ZoneFileRecord], ZoneFileError>] {
        guard case .sequence(let items)? = zones?.resolved else { return [:] }
        var keys: [Key] = []
        for item in items {
            guard case .mapping(let m) = item.resolved,
                  let nameText = m["name"]?.scalar?.string, let fileText = m["file"]?.scalar?.string,
                  let origin = try? DNSName(nameText) else { continue }
            let key = Key(path: Paths.resolve(fileText, relativeTo: configPath), origin: origin)
            if !keys.contains(key) { keys.append(key) }
        }
        guard keys.count > 1 else { return [:] }
        let work = keys
        let results = Mutex<[Key: Result<[ZoneFileRecord], ZoneFileError>]>([:])
        DispatchQueue.concurrentPerform(iterations: keys.count) { i in
            let key = work[i]
            let r = Result { () throws(ZoneFileError) in try ZoneFile.load(path: key.path, origin: key.origin) }
            results.withLock { $0[key] = r }
        }
        return results.withLock { $0 }
    }
}
