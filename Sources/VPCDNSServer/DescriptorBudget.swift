#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How the process's file descriptors (`RLIMIT_NOFILE`) are shared, so that no kind of client
/// connection can take the descriptors the DNS path needs to forward (upstream UDP sockets,
/// a TCP connection per truncated answer) or to accept DNS over TCP.
///
/// Once out of descriptors every forwarded query fails (SERVFAIL), accepts fail, a reload
/// cannot open its files, and the runtime's own threads (libdispatch) may fail to start. So:
/// a `reserved` share is never handed to client connections; of the rest, each HTTP server
/// (`metrics`, the console) gets at most `httpConnections` (64) and DNS over TCP at most
/// `dnsTCPConnections` (`max_tcp_connections` is lowered to it, with a warning).
public struct DescriptorBudget: Sendable, Equatable {
    /// The soft limit the budget was computed from.
    public let limit: Int
    /// Kept for listeners, upstream sockets, the query log, files read on reload, and the
    /// runtime (epoll, eventfd and timer descriptors of each event loop and thread pool).
    public let reserved: Int
    /// Open connections each HTTP server (`metrics`, the console) may hold at once.
    public let httpConnections: Int
    /// Open DNS-over-TCP connections at most, whatever `max_tcp_connections` says.
    public let dnsTCPConnections: Int

    /// The most HTTP connections ever: a Prometheus server scrapes with one or two.
    public static let maxHTTPConnections = 64

    public init(limit: Int) {
        self.limit = max(16, limit)
        // A quarter (at least 256) of a usual limit; half of a very small one.
        reserved = self.limit < 512 ? self.limit / 2 : max(256, self.limit / 4)
        let clients = self.limit - reserved
        httpConnections = max(1, min(Self.maxHTTPConnections, clients / 8))
        dnsTCPConnections = max(1, clients - 2 * httpConnections)
    }

    /// The budget of this process's current soft limit.
    public static var current: DescriptorBudget {
        var r = rlimit()
        guard getrlimit(RLIMIT_NOFILE_VALUE, &r) == 0 else { return DescriptorBudget(limit: 1024) }
        return DescriptorBudget(limit: Int(clamping: min(r.rlim_cur, rlim_t(Int32.max))))
    }

    /// Raises the soft descriptor limit to the hard limit, as nginx's `worker_rlimit_nofile`
    /// and Unbound (from its `outgoing-range`) do: the hard limit is what the operator allowed.
    /// Returns the soft limit before and after (equal when nothing changed or the raise failed).
    @discardableResult
    public static func raiseSoftLimit() -> (before: Int, after: Int) {
        var r = rlimit()
        guard getrlimit(RLIMIT_NOFILE_VALUE, &r) == 0 else { return (0, 0) }
        let before = Int(clamping: r.rlim_cur)
        guard r.rlim_cur < r.rlim_max else { return (before, before) }
        var raised = r
        raised.rlim_cur = r.rlim_max
        if setrlimit(RLIMIT_NOFILE_VALUE, &raised) != 0 {
            // An infinite hard limit is refused above fs.nr_open: try the usual ceiling.
            raised.rlim_cur = rlim_t(min(UInt64(r.rlim_max), 1 << 20))
            if setrlimit(RLIMIT_NOFILE_VALUE, &raised) != 0 { return (before, before) }
        }
        return (before, Int(clamping: raised.rlim_cur))
    }
}

#if canImport(Glibc)
private let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
#else
private let RLIMIT_NOFILE_VALUE = RLIMIT_NOFILE
#endif
