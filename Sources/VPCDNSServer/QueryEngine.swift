import DNSWire
import Logging
import NIOCore
import Synchronization
import VPCDNSCore

/// The resolver behind the listeners: parse (DNSWire) → decide (VPCDNSCore) → act →
/// encode → log. It implements `QueryProcessor`, so local answers (private zones, endpoint
/// names, cache hits, refusals, bad requests) are built and returned on the event loop
/// that read the query; only upstream work is asynchronous (P6).
///
/// The model is an immutable snapshot swapped whole on reload (O2): a query is answered
/// entirely from the snapshot it started with.
public final class QueryEngine: QueryProcessor {
    /// Everything a query reads, replaced atomically by `install`.
    public struct Snapshot: Sendable {
        public let resolver: Resolver
        public let settings: Settings
        /// R9 targets, with `system` already read from resolv.conf.
        public let defaultUpstreams: [SocketEndpoint]
        public let upstream: UpstreamClient

        public init(resolver: Resolver, defaultUpstreams: [SocketEndpoint]) {
            self.resolver = resolver
            self.settings = resolver.model.settings
            self.defaultUpstreams = defaultUpstreams
            self.upstream = UpstreamClient(policy: UpstreamPolicy(
                totalTimeout: .milliseconds(Int64(resolver.model.settings.upstreamTimeoutMs)),
                attemptTimeout: .milliseconds(Int64(resolver.model.settings.upstreamAttemptTimeoutMs))))
        }
    }

    private let snapshot: Mutex<Snapshot>
    public let cache: UpstreamCache
    public let queryLog: QueryLogWriter?
    public let stats = EngineStats()
    let logger: Logger

    public init(snapshot: Snapshot, queryLog: QueryLogWriter?, logger: Logger = Logger(label: "vpcdns.engine")) {
        self.snapshot = Mutex(snapshot)
        self.cache = UpstreamCache(capacity: snapshot.settings.cacheSize)
        self.queryLog = queryLog
        self.logger = logger
    }

    /// Swaps in a new model (reload). Queries already running finish with the old one.
    public func install(_ new: Snapshot) {
        let old = snapshot.withLock { s in
            let o = s
            s = new
            return o
        }
        // Cached answers are upstream data keyed by their targets; a changed upstream set
        // makes the defaults' entries stale, so start over then.
        if old.defaultUpstreams != new.defaultUpstreams { cache.removeAll() }
    }

    public var current: Snapshot { snapshot.withLock { $0 } }

    // MARK: - QueryProcessor

    public func process(_ query: ByteBuffer, context: QueryContext, responder: QueryResponder) -> QueryProcessingResult {
        let snap = snapshot.withLock { $0 }
        let parsed = query.withUnsafeReadableBytes { QueryParser.parse($0) }
        let transport: DNSTransport = context.transport == .udp ? .udp : .tcp
        var builder = MessageBuilder(udpPayloadSize: UInt16(clamping: snap.settings.udpPayloadSize))
        switch parsed {
        case .drop:
            stats.dropped.add(1, ordering: .relaxed)
            return .drop
        case .bad(let bad):
            stats.badRequests.add(1, ordering: .relaxed)
            builder.buildErrorResponse(for: bad, transport: transport)
            let view = snap.resolver.selectView(client: context.client.ip, listener: context.listener)
            log(snap, context: context, view: view, question: bad.question, rcode: bad.kind.rcode, answer: [],
                kind: .badRequest, zone: nil, zoneID: nil, reason: bad.kind.logReason, cache: .none, upstream: nil)
            return .reply(ByteBuffer(bytes: builder.bytes))
        case .query(let q):
            let decision = snap.resolver.resolve(Question(name: q.question.name, type: q.question.type, rrClass: q.question.qclass),
                                                 client: context.client.ip, listener: context.listener)
            switch decision.outcome {
            case .refused:
                builder.buildResponse(for: q, rcode: .refused, transport: transport)
                logDecision(snap, context: context, query: q, decision: decision, rcode: .refused, answer: [], cache: .none, upstream: nil)
                return .reply(ByteBuffer(bytes: builder.bytes))
            case .answer(let a):
                builder.buildResponse(for: q, rcode: a.rcode, authoritative: a.authoritative, answer: a.answer,
                                      authority: a.authority, additional: a.additional, transport: transport)
                logDecision(snap, context: context, query: q, decision: decision, rcode: a.rcode, answer: a.answer, cache: .none, upstream: nil)
                return .reply(ByteBuffer(bytes: builder.bytes))
            case .forward(let f):
                return forward(f, query: q, decision: decision, snap: snap, context: context, responder: responder, builder: &builder)
            }
        }
    }

    // MARK: - Upstream (R4, R9, R15, P5, P6)

    private func forward(_ f: Forward, query q: DNSQuery, decision: Decision, snap: Snapshot, context: QueryContext,
                         responder: QueryResponder, builder: inout MessageBuilder) -> QueryProcessingResult {
        let transport: DNSTransport = context.transport == .udp ? .udp : .tcp
        let key = UpstreamCache.Key(name: f.question.name, type: f.question.type, rrClass: f.question.rrClass, targets: f.targets)
        if let hit = cache.get(key, now: Timestamp.monotonicNanos()) {
            let a = complete(f, decision: decision, snap: snap, rcode: hit.rcode, answer: hit.answer, authority: hit.authority)
            builder.buildResponse(for: q, rcode: a.rcode, authoritative: a.authoritative, answer: a.answer, authority: a.authority, transport: transport)
            if snap.settings.logCacheHits {
                logDecision(snap, context: context, query: q, decision: decision, rcode: a.rcode, answer: a.answer, cache: .hit, upstream: nil, reason: a.reason)
            }
            return .reply(ByteBuffer(bytes: builder.bytes))
        }

        let targets: [SocketEndpoint]
        switch f.targets {
        case .defaults: targets = snap.defaultUpstreams
        case .rule(_, let t): targets = t
        }
        builder.buildQuery(id: UInt16.random(in: 0...UInt16.max),
                           question: DNSQuestion(name: f.question.name, type: f.question.type, qclass: f.question.rrClass),
                           recursionDesired: true, checkingDisabled: q.checkingDisabled, edns: true)
        let upstreamQuery = ByteBuffer(bytes: builder.bytes)
        stats.upstreamQueries.add(1, ordering: .relaxed)
        snap.upstream.startQuery(upstreamQuery, targets: targets, on: responder.eventLoop).whenSuccess { [self] result in
            var b = MessageBuilder(udpPayloadSize: UInt16(clamping: snap.settings.udpPayloadSize))
            switch result {
            case .success(let answer):
                let message = answer.reply.withUnsafeReadableBytes { try? DNSMessage.parse($0) }
                guard let m = message else {
                    self.fail(q, decision: decision, snap: snap, context: context, responder: responder, reason: "upstream-error", upstream: answer.target.description)
                    return
                }
                let entry = UpstreamCache.Entry(rcode: m.rcode, answer: m.answer, authority: m.authority, additional: [], upstream: answer.target.description)
                self.cache.put(key, entry, now: Timestamp.monotonicNanos())
                let a = self.complete(f, decision: decision, snap: snap, rcode: m.rcode, answer: m.answer, authority: m.authority)
                b.buildResponse(for: q, rcode: a.rcode, authoritative: a.authoritative, answer: a.answer, authority: a.authority, transport: transport)
                // Logged before the answer leaves, as local answers are: once the listener sees
                // no query in flight, its record is already with the writer (O3, L2).
                self.logDecision(snap, context: context, query: q, decision: decision, rcode: a.rcode, answer: a.answer, cache: .miss,
                                 upstream: answer.target.description, reason: a.reason)
                responder.respond(ByteBuffer(bytes: b.bytes))
            case .failure(let failure):
                self.stats.upstreamFailures.add(1, ordering: .relaxed)
                self.fail(q, decision: decision, snap: snap, context: context, responder: responder, reason: failure.reason, upstream: nil)
            }
        }
        return .pending
    }

    private func fail(_ q: DNSQuery, decision: Decision, snap: Snapshot, context: QueryContext, responder: QueryResponder, reason: String, upstream: String?) {
        var b = MessageBuilder(udpPayloadSize: UInt16(clamping: snap.settings.udpPayloadSize))
        b.buildResponse(for: q, rcode: .servFail, transport: context.transport == .udp ? .udp : .tcp)
        logDecision(snap, context: context, query: q, decision: decision, rcode: .servFail, answer: [], cache: .miss, upstream: upstream, reason: reason)
        responder.respond(ByteBuffer(bytes: b.bytes))
    }

    struct Completed {
        var rcode: RCode
        var authoritative: Bool
        var answer: [ResourceRecord]
        var authority: [ResourceRecord]
        var reason: String?
    }

    /// Puts the local CNAME chain (if any) before the upstream data, and hands an upstream
    /// CNAME into a private zone of the asking VPC back to the core (R15).
    func complete(_ f: Forward, decision: Decision, snap: Snapshot, rcode: RCode, answer: [ResourceRecord], authority: [ResourceRecord]) -> Completed {
        // Follow the upstream's CNAME links from the name that was asked.
        var name = f.question.name
        var links: [ResourceRecord] = []
        var hops = 0
        while hops <= Resolver.maxCNAMEs, let c = answer.first(where: { $0.type == .cname && $0.name == name }), let target = c.targetName {
            links.append(c)
            hops += 1
            if let local = snap.resolver.continueChain(after: f, upstreamChain: links, target: target, view: decision.view) {
                let reason: String? = local.rcode == .servFail ? (links.count + f.chain.count > Resolver.maxCNAMEs ? "cname-chain" : "cname-loop") : nil
                return Completed(rcode: local.rcode, authoritative: false, answer: local.rcode == .servFail ? [] : local.answer,
                                 authority: local.authority, reason: reason)
            }
            name = target
        }
        if f.chain.isEmpty {
            return Completed(rcode: rcode, authoritative: false, answer: answer, authority: authority, reason: nil)
        }
        if f.chain.count + links.count > Resolver.maxCNAMEs {
            return Completed(rcode: .servFail, authoritative: false, answer: [], authority: [], reason: "cname-chain")
        }
        return Completed(rcode: rcode, authoritative: false, answer: f.chain + answer, authority: authority, reason: nil)
    }

    // MARK: - Query log

    private func logDecision(_ snap: Snapshot, context: QueryContext, query q: DNSQuery, decision d: Decision, rcode: RCode,
                             answer: [ResourceRecord], cache: QueryLogRecord.CacheUse, upstream: String?, reason: String? = nil) {
        log(snap, context: context, view: d.view, question: q.question, rcode: rcode, answer: answer, kind: d.kind,
            zone: d.zone, zoneID: d.zoneID, reason: reason ?? d.reason?.description, cache: cache, upstream: upstream)
    }

    private func log(_ snap: Snapshot, context: QueryContext, view: ViewChoice, question: DNSQuestion?, rcode: RCode, answer: [ResourceRecord],
                     kind: DecisionKind, zone: DNSName?, zoneID: String?, reason: String?, cache: QueryLogRecord.CacheUse, upstream: String?) {
        guard let writer = queryLog else { return }
        let elapsed = NIODeadline.now() - context.receivedAt.monotonic
        let record = QueryLogRecord(
            accountID: snap.settings.accountID,
            region: view.region ?? "-",
            vpcID: view.vpcID ?? "-",
            receivedAtMicros: context.receivedAt.wallNanoseconds / 1000,
            // Names, addresses and answers go in as they are; the record writes their text
            // straight into the line's bytes.
            queryName: question.map { .asked($0) } ?? .text("-"),
            queryType: question.map { QueryLogRecord.text($0.type) } ?? "-",
            queryClass: question.map { QueryLogRecord.text($0.qclass) } ?? "-",
            rcode: rcode.description,
            answers: .records(answer),
            srcAddr: .ip(context.client.ip),
            srcPort: context.client.port,
            transport: context.transport == .udp ? "UDP" : "TCP",
            resolverEndpoint: view.inboundEndpointID,
            decision: kind.rawValue,
            zone: kind == .endpointDNSName ? nil : zone.map { .domain($0) },
            zoneID: zoneID,
            reason: reason,
            cache: cache,
            upstream: upstream,
            via: view.via.rawValue,
            latencyMicros: elapsed.nanoseconds / 1000)
        writer.submit(record)
    }
}

/// Counters of the engine (metrics, and the stderr line about dropped packets).
public final class EngineStats: Sendable {
    public let dropped = Atomic<UInt64>(0)
    public let badRequests = Atomic<UInt64>(0)
    public let upstreamQueries = Atomic<UInt64>(0)
    public let upstreamFailures = Atomic<UInt64>(0)
    public init() {}
}
