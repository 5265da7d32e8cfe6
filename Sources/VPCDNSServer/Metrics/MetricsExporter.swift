import CoreMetrics
import Foundation
import Prometheus
import Synchronization

/// O5 — the exporting half of the metrics: at each scrape, reads the counters kept by the
/// engine (`DNSMetrics`), the listeners, the cache and the query log, mirrors them into a
/// swift-prometheus `PrometheusCollectorRegistry` (counters are advanced by the difference
/// since the last scrape; gauges are set) and renders the Prometheus text format.
///
/// The duration histogram is rendered here from `DNSMetrics`' atomic buckets, in the same
/// text format: swift-prometheus' `Histogram` records one value at a time under a lock and
/// has no way to load counts kept elsewhere, and recording into it per query is exactly the
/// per-query cost the atomic tables avoid.
///
/// Scrapes are serialised (one lock); they cost time proportional to the number of label
/// sets, never anything on the query path.
public final class MetricsExporter: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let metrics: DNSMetrics
    let engine: QueryEngine
    let listenerStats: ListenerStats
    let health: HealthMonitor?

    struct State {
        /// Counters by series key, with the total already given to them.
        var counters: [String: (counter: Prometheus.Counter, exported: UInt64)] = [:]
        var gauges: [String: Prometheus.Gauge] = [:]
    }
    private let state = Mutex(State())

    public init(metrics: DNSMetrics, engine: QueryEngine, listenerStats: ListenerStats, health: HealthMonitor? = nil) {
        self.health = health
        self.metrics = metrics
        self.engine = engine
        self.listenerStats = listenerStats
    }

    /// A swift-metrics backend writing into the same registry: `serve` bootstraps
    /// `MetricsSystem` with it, so anything instrumented with swift-metrics in the process
    /// shows up on `/metrics` too. (vpcdns' own counters do not go through it: see `DNSMetrics`.)
    public var metricsFactory: any MetricsFactory { PrometheusMetricsFactory(registry: registry) }

    static let help: [String: String] = [
        "vpcdns_dns_requests_total": "DNS queries answered, by VPC (\"-\": none), transport, decision and rcode.",
        "vpcdns_dns_request_duration_seconds": "Time from reading a query to handing its answer to the socket.",
        "vpcdns_cache_hits_total": "Upstream cache lookups that found a live entry.",
        "vpcdns_cache_misses_total": "Upstream cache lookups that found nothing (or an expired entry).",
        "vpcdns_cache_entries": "Entries in the upstream cache.",
        "vpcdns_cache_bytes": "Bytes the upstream cache's entries are charged (bounded by cache_max_bytes).",
        "vpcdns_upstream_requests_total": "Upstream attempts (one target, one transport), by target and result (ok, timeout, error).",
        "vpcdns_forwarding_loops_total": "Queries answered SERVFAIL because their upstream forwards back to vpcdns (O6, reason forwarding-loop).",
        "vpcdns_upstreams_looping": "Upstream targets left out because a loop probe came back to vpcdns (O6).",
        "vpcdns_upstream_coalesced_total": "Upstream queries that joined an identical one in flight instead of starting an exchange.",
        "vpcdns_bad_packets_total": "Bad input (P4) by kind: too-short and response are dropped, the others get an error answer.",
        "vpcdns_tcp_connections": "Open DNS-over-TCP connections.",
        "vpcdns_tcp_connections_refused_total": "TCP connections closed at once because max_tcp_connections were open and none was idle.",
        "vpcdns_tcp_connections_evicted_total": "Idle TCP connections closed to make room for a new one at max_tcp_connections (RFC 7766 6.2.3).",
        "vpcdns_proxy_rejected_total": "UDP datagrams and TCP connections dropped for their PROXY v2 header (P9): missing or invalid from a trusted proxy, or sent by a source that is not one.",
        "vpcdns_socket_errors_total": "Errors reported by listener sockets (for example ICMP errors on UDP), which never close a listener.",
        "vpcdns_querylog_records_total": "Query-log records written, or dropped because the writer could not keep up.",
        "vpcdns_dnstap_messages_total": "dnstap messages written to the reader, or dropped (no reader, a slow one, or a full queue) (O8).",
        "vpcdns_reloads_total": "SIGHUP reloads, applied (ok) or rejected (old configuration kept).",
        "vpcdns_udp_queries_total": "UDP datagrams read by the listeners.",
        "vpcdns_tcp_queries_total": "DNS messages read over TCP.",
        "vpcdns_health_check_status": "R18 health checks: 1 healthy (or not decided yet), 0 unhealthy.",
        "vpcdns_health_check_transitions_total": "R18 health check state changes, by check id and new state.",
    ]

    /// The Prometheus text for `/metrics` (text format 0.0.4).
    public func render() -> String {
        let requests = metrics.requestTotals()
        let cache = engine.cache.stats
        let cacheBytes = engine.cache.bytes
        let listeners = listenerStats.snapshot
        let log = engine.queryLog?.counts
        let dnstap = engine.dnstap?.writer
        let reloads = metrics.reloads
        let upstream = metrics.upstreamCounts
        let bad = metrics.badPackets.totals()
        let loops = engine.loopGuard.loopsAnswered
        let looping = engine.loopGuard.looping.count
        let coalesced = engine.coalescer.joined

        state.withLock { s in
            for (l, v) in requests {
                counter(&s, "vpcdns_dns_requests_total",
                        [("vpc", l.vpc), ("proto", l.proto), ("decision", l.decision), ("rcode", l.rcode)], v)
            }
            counter(&s, "vpcdns_cache_hits_total", [], cache.hits)
            counter(&s, "vpcdns_cache_misses_total", [], cache.misses)
            gauge(&s, "vpcdns_cache_entries", [], Double(cache.entries))
            gauge(&s, "vpcdns_cache_bytes", [], Double(cacheBytes))
            for (target, counts) in upstream {
                for (i, r) in UpstreamAttemptResult.allCases.enumerated() {
                    counter(&s, "vpcdns_upstream_requests_total", [("target", target.description), ("result", r.rawValue)], counts[i])
                }
            }
            counter(&s, "vpcdns_forwarding_loops_total", [], loops)
            gauge(&s, "vpcdns_upstreams_looping", [], Double(looping))
            counter(&s, "vpcdns_upstream_coalesced_total", [], coalesced)
            for (i, kind) in DNSMetrics.badPacketKinds.enumerated() {
                counter(&s, "vpcdns_bad_packets_total", [("kind", kind)], bad[i])
            }
            gauge(&s, "vpcdns_tcp_connections", [], Double(listeners.tcpConnectionsOpen))
            counter(&s, "vpcdns_tcp_connections_refused_total", [], UInt64(max(0, listeners.tcpConnectionsRejected)))
            counter(&s, "vpcdns_tcp_connections_evicted_total", [], UInt64(max(0, listeners.tcpIdleEvicted)))
            for (i, reason) in ProxyRejectReason.allCases.enumerated() {
                counter(&s, "vpcdns_proxy_rejected_total", [("reason", reason.rawValue)], UInt64(max(0, listeners.proxyRejected[i])))
            }
            counter(&s, "vpcdns_socket_errors_total", [], UInt64(max(0, listeners.socketErrors)))
            counter(&s, "vpcdns_udp_queries_total", [], UInt64(max(0, listeners.udpQueries)))
            counter(&s, "vpcdns_tcp_queries_total", [], UInt64(max(0, listeners.tcpQueries)))
            counter(&s, "vpcdns_querylog_records_total", [("result", "written")], log?.written ?? 0)
            counter(&s, "vpcdns_querylog_records_total", [("result", "dropped")], log?.dropped ?? 0)
            counter(&s, "vpcdns_dnstap_messages_total", [("result", "sent")], dnstap?.sent ?? 0)
            counter(&s, "vpcdns_dnstap_messages_total", [("result", "dropped")], dnstap?.dropped ?? 0)
            counter(&s, "vpcdns_reloads_total", [("result", "ok")], reloads.ok)
            counter(&s, "vpcdns_reloads_total", [("result", "rejected")], reloads.rejected)
            if let health {
                for c in health.status { gauge(&s, "vpcdns_health_check_status", [("id", c.id)], c.healthy ? 1 : 0) }
                for (id, t) in health.transitionCounts {
                    counter(&s, "vpcdns_health_check_transitions_total", [("id", id), ("to", "healthy")], t.healthy)
                    counter(&s, "vpcdns_health_check_transitions_total", [("id", id), ("to", "unhealthy")], t.unhealthy)
                }
            }
        }
        var text = registry.emitToString()
        text += histogramText()
        return text
    }

    private func descriptor(_ name: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: MetricsExporter.help[name] ?? "")
    }

    private func key(_ name: String, _ labels: [(String, String)]) -> String {
        labels.reduce(name) { $0 + "\u{1}" + $1.0 + "=" + $1.1 }
    }

    private func counter(_ s: inout State, _ name: String, _ labels: [(String, String)], _ total: UInt64) {
        let k = key(name, labels)
        var entry = s.counters[k] ?? (labels.isEmpty
            ? (registry.makeCounter(descriptor: descriptor(name)), 0)
            : (registry.makeCounter(descriptor: descriptor(name), labels: labels), 0))
        if total > entry.exported {
            entry.counter.increment(by: Int64(clamping: total - entry.exported))
            entry.exported = total
        }
        s.counters[k] = entry
    }

    private func gauge(_ s: inout State, _ name: String, _ labels: [(String, String)], _ value: Double) {
        let k = key(name, labels)
        let g = s.gauges[k] ?? (labels.isEmpty
            ? registry.makeGauge(descriptor: descriptor(name))
            : registry.makeGauge(descriptor: descriptor(name), labels: labels))
        g.set(value)
        s.gauges[k] = g
    }

    private func histogramText() -> String {
        let name = "vpcdns_dns_request_duration_seconds"
        let (buckets, sumNanos) = metrics.durationTotals()
        var out = "# HELP \(name) \(MetricsExporter.help[name]!)\n# TYPE \(name) histogram\n"
        var cumulative: UInt64 = 0
        for (i, bound) in DNSMetrics.durationBounds.enumerated() {
            cumulative += buckets[i]
            out += "\(name)_bucket{le=\"\(Self.seconds(bound))\"} \(cumulative)\n"
        }
        cumulative += buckets[DNSMetrics.durationBounds.count]
        out += "\(name)_bucket{le=\"+Inf\"} \(cumulative)\n"
        out += "\(name)_sum \(Double(sumNanos) / 1e9)\n"
        out += "\(name)_count \(cumulative)\n"
        return out
    }

    /// 50000 ns → "5e-05"-free decimal text: "0.00005".
    static func seconds(_ nanos: Int64) -> String {
        var s = String(nanos / 1_000_000_000)
        var frac = nanos % 1_000_000_000
        if frac != 0 {
            var digits = String(frac)
            digits = String(repeating: "0", count: 9 - digits.count) + digits
            while digits.hasSuffix("0") { digits.removeLast() }
            s += "." + digits
            frac = 0
        }
        return s
    }
}
