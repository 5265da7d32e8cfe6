import DNSWire
import Logging
import NIOPosix
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
    public final class Snapshot: Sendable {
        public let resolver: VPCDNSCore.Resolver
        public let settings: Settings
        /// R9 targets, with `system` already read from resolv.conf and vpcdns's own
        /// listeners left out (O6).
        public let defaultUpstreams: [SocketEndpoint]
        /// Every upstream address in use and left out (O6), when reviewed.
        public let upstreamPlan: UpstreamPlan?
        public let upstream: UpstreamClient
        /// Distinguishes snapshots, so per-thread memos of an older model are never used.
        public let generation: UInt64
        /// `vpcdns_dns_requests_total`, indexed by this model's VPC indexes (O5).
        public let requests: RequestCounters
        /// The query log's per-VPC fields of this model, JSON-encoded once.
        public let logFields: QueryLogFields
        /// R18 health states of this model's `health_checks` (by index), read per routed query.
        public let health: any HealthSource

        public init(resolver: VPCDNSCore.Resolver, defaultUpstreams: [SocketEndpoint], upstreamObserver: (any UpstreamObserver)? = nil,
                    upstreamPlan: UpstreamPlan? = nil, health: any HealthSource = AllHealthy(), upstreamTap: (any UpstreamTap)? = nil) {
            self.health = health
            self.generation = snapshotGenerations.add(1, ordering: .relaxed).newValue
            self.resolver = resolver
            self.settings = resolver.model.settings
            self.defaultUpstreams = defaultUpstreams
            self.upstreamPlan = upstreamPlan
            self.upstream = UpstreamClient(policy: UpstreamPolicy(
                totalTimeout: .milliseconds(Int64(resolver.model.settings.upstreamTimeoutMs)),
                attemptTimeout: .milliseconds(Int64(resolver.model.settings.upstreamAttemptTimeoutMs)),
                sockets: UpstreamSocketLimits(perTarget: resolver.model.settings.upstreamSockets)),
                observer: upstreamObserver, tap: upstreamTap)
            self.requests = RequestCounters(vpcIDs: resolver.model.vpcs.map(\.id))
            self.logFields = QueryLogFields(accountID: resolver.model.settings.accountID, vpcs: resolver.model.vpcs)
        }
    }

    private let snapshot: Mutex<Snapshot>
    public let cache: UpstreamCache
    public let queryLog: QueryLogWriter?
    /// O8: dnstap client messages (the forwarder ones go through the snapshot's upstream
    /// client); nil = off.
    public let dnstap: DnstapTap?
    public let metrics: DNSMetrics
    /// Identical upstream queries in flight share one exchange (O6).
    let coalescer = UpstreamCoalescer()
    /// Loops through other resolvers (O6).
    public let loopGuard: LoopGuard
    let logger: Logger

    public init(snapshot: Snapshot, queryLog: QueryLogWriter?, metrics: DNSMetrics = DNSMetrics(), logger: Logger = Logger(label: "vpcdns.engine"),
                loopGuard: LoopGuard = LoopGuard(), dnstap: DnstapTap? = nil) {
        self.dnstap = dnstap
        self.metrics = metrics
        self.loopGuard = loopGuard
        self.snapshot = Mutex(snapshot)
        self.cache = UpstreamCache(capacity: snapshot.settings.cacheSize, maxBytes: snapshot.settings.cacheMaxBytes)
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

    /// TCP (and any caller with a `ByteBuffer`): the same path as a datagram, answered into this
    /// thread's reply slot and copied into a buffer only here, at the edge.
    public func process(_ query: ByteBuffer, context: QueryContext, responder: QueryResponder) -> QueryProcessingResult {
        let slot = LoopScratch.forThisThread().replySlot
        let result = query.withUnsafeReadableBytes { processDatagram($0, context: context, reply: slot, responder: responder) }
        switch result {
        case .reply(let length): return .reply(ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: slot[0..<length])))
        case .drop: return .drop
        case .pending: return .pending
        }
    }

    /// The UDP datapath's entry (and `process`'s): the reply is written into `reply`. With the
    /// query log and dnstap off, a local answer or cache hit whose reply this thread keeps as
    /// bytes (the memo) costs no heap allocation: the query is checked in place
    /// (`QueryParser.scan`), the memo is probed with the datagram's own name bytes, and the
    /// kept reply is copied into the slot with its ID, flags and TTLs patched.
    public func processDatagram(_ query: UnsafeRawBufferPointer, context: QueryContext, reply: UnsafeMutableRawBufferPointer,
                                responder: QueryResponder) -> DatagramProcessingResult {
        guard let dnstap else { return answer(query, context: context, reply: reply, responder: responder) }
        dnstap.clientQuery(ByteBuffer(bytes: query), context: context)
        let result = answer(query, context: context, reply: reply, responder: responder)
        if case .reply(let length) = result {
            dnstap.clientResponse(ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: reply[0..<length])), context: context)
        }
        return result
    }

    /// A late answer (after upstream work) to the client, seen by dnstap first when it is on.
    private func respond(_ responder: QueryResponder, _ reply: ByteBuffer?, context: QueryContext) {
        if let dnstap, let reply { dnstap.clientResponse(reply, context: context) }
        responder.respond(reply)
    }

    /// Parse, decide, encode into `slot`. Everything that answers at once goes through here;
    /// the name is copied out of the datagram (a `DNSQuery`) only when the memo's kept bytes
    /// cannot answer.
    private func answer(_ query: UnsafeRawBufferPointer, context: QueryContext, reply slot: UnsafeMutableRawBufferPointer,
                        responder: QueryResponder) -> DatagramProcessingResult {
        let snap = snapshot.withLock { $0 }
        let transport = context.transport.wire
        let scratch = LoopScratch.current(for: snap)
        let scanned: ScannedQuery
        switch QueryParser.scan(query) {
        case .drop(let why):
            metrics.countDropped(why)
            return .drop
        case .bad(let kind, let header, let question, let edns):
            metrics.countBadRequest(kind)
            let bad = BadQuery(kind: kind, header: header, question: question?.question(in: query), edns: edns)
            scratch.builder.buildErrorResponse(for: bad, transport: transport)
            let view = snap.resolver.selectView(client: context.client.ip, listener: context.listener)
            log(snap, context: context, view: view, question: bad.question, rcode: bad.kind.rcode, answer: [],
                kind: .badRequest, zone: nil, zoneID: nil, reason: bad.kind.logReason, cache: .none, upstream: nil)
            return emit(scratch.builder.bytes, to: slot)
        case .query(let s):
            scanned = s
        }
        let view = snap.resolver.selectView(client: context.client.ip, listener: context.listener)
        guard view.refusal == nil, let v = view.vpcIndex else {
            if queryLog == nil, view.refusal != nil {
                // V refuses (V3, V2, enable_dns_support) whatever the name (`Resolver.resolve`):
                // the question is echoed as sent, nothing is parsed out. With the log on, the
                // record needs the decision: the general path below.
                scratch.builder.buildResponse(queryHeader: scanned.header, questionWire: UnsafeRawBufferPointer(rebasing: query[scanned.questionRange]),
                                              clientEDNS: scanned.edns, rcode: .refused, transport: transport)
                countAnswer(snap, context: context, view: view, kind: .refused, rcode: .refused)
                return emit(scratch.builder.bytes, to: slot)
            }
            return decide(scanned.query(in: query), view: view, memo: nil, snap: snap, context: context, responder: responder,
                          scratch: scratch, slot: slot)
        }
        // Local answers depend only on (VPC, inbound or not, name, type, class) in a given
        // model, so the first one computed is remembered per thread and reused (R7 is the
        // only rule that looks at how the query arrived).
        let key = MemoKey(view: Int32(v) &* 2 &+ (view.via == .inboundEndpoint ? 1 : 0), type: scanned.question.type.rawValue,
                          rrClass: scanned.question.qclass.rawValue)
        if scanned.question.caseMask.isAllLower {
            // The datagram's name bytes are the lower-case key itself.
            let name = UnsafeRawBufferPointer(rebasing: query[scanned.question.nameRange])
            let slotKey = key.hashed(name: name)
            guard let entry = scratch.memo(slotKey, key, name: name) else {
                return decide(scanned.query(in: query), view: view, memo: (key, slotKey), snap: snap, context: context, responder: responder,
                              scratch: scratch, slot: slot)
            }
            if let length = keptReply(entry, scanned, view: view, snap: snap, context: context, transport: transport,
                                      scratch: scratch, slot: slot) {
                return .reply(length: length)
            }
            return remembered(entry, query: scanned.query(in: query), view: view, snap: snap, context: context, responder: responder,
                              scratch: scratch, slot: slot)
        }
        let q = scanned.query(in: query)
        return q.question.name.wire.withUnsafeBytes { name in
            let slotKey = key.hashed(name: name)
            guard let entry = scratch.memo(slotKey, key, name: name) else {
                return decide(q, view: view, memo: (key, slotKey), snap: snap, context: context, responder: responder, scratch: scratch, slot: slot)
            }
            return remembered(entry, query: q, view: view, snap: snap, context: context, responder: responder, scratch: scratch, slot: slot)
        }
    }

    /// The reply this thread kept for the memo entry, written into `slot` with the asker's ID and
    /// flags (and a cache hit's TTLs as of now): nil when none fits this query (its EDNS / DO /
    /// CD shape, its size limit, the cached entry's expiry). Lower-case questions only.
    private func keptReply(_ entry: MemoEntry, _ s: ScannedQuery, view: ViewChoice, snap: Snapshot,
                           context: QueryContext, transport: DNSTransport, scratch: LoopScratch,
                           slot: UnsafeMutableRawBufferPointer) -> Int? {
        let limit = MessageBuilder.sizeLimit(clientEDNS: s.edns, ourPayloadSize: scratch.builder.udpPayloadSize, transport: transport)
        // What the log needs of the query, with the entry's name: the same bytes as the
        // datagram's (lower case), without copying them out.
        let asked = DNSQuestion(name: entry.name, type: s.question.type, qclass: s.question.qclass, caseMask: s.question.caseMask)
        switch entry.content {
        case .local(let local):
            let kept = entry.encoded(shape: Int(KeptReply.shape(edns: s.edns)))
            guard !kept.isEmpty, kept.count <= limit, kept.count <= slot.count else { return nil }
            let length = KeptReply.write(kept, header: s.header, to: slot)
            // Counts the answer for metrics and, with the log on, writes the record.
            logLocal(local, entry, snap: snap, context: context, view: view, question: asked)
            return length
        case .forward(let stored):
            let now = context.receivedAt.monotonic.uptimeNanoseconds
            guard let replay = entry.replay(shape: Int(KeptReply.cacheShape(edns: s.edns, checkingDisabled: s.checkingDisabled))),
                  now < replay.expiresAt, replay.bytes.count <= limit, replay.bytes.count <= slot.count
            else { return nil }
            let length = replay.write(header: s.header, now: now, to: slot)
            cache.countReplayedHit()
            let a = replay.completed
            if queryLog != nil && snap.settings.logCacheHits {
                var decision = stored.decision
                decision.view = view
                logDecision(snap, context: context, query: DNSQuery(header: s.header, question: asked, edns: s.edns, questionRange: s.questionRange),
                            decision: decision, rcode: a.rcode, answer: a.answer, cache: .hit, upstream: nil, reason: a.reason)
            } else {
                countAnswer(snap, context: context, view: view, kind: stored.decision.kind, rcode: a.rcode)
            }
            return length
        }
    }

    /// A memo entry that had no kept reply for this query: the local answer encoded, or the
    /// remembered decision to forward acted on (the cache first).
    private func remembered(_ entry: MemoEntry, query q: DNSQuery, view: ViewChoice, snap: Snapshot, context: QueryContext,
                            responder: QueryResponder, scratch: LoopScratch, slot: UnsafeMutableRawBufferPointer) -> DatagramProcessingResult {
        switch entry.content {
        case .local(let local):
            return answerLocally(local, entry, query: q, view: view, snap: snap, context: context, scratch: scratch, slot: slot)
        case .forward(let stored):
            var decision = stored.decision
            decision.view = view
            return forward(stored.forward, query: q, decision: decision, snap: snap, context: context, responder: responder,
                           scratch: scratch, slot: slot, memo: entry)
        }
    }

    /// Asks the core (no memo entry yet) and acts on its decision; `memo` is where a decision
    /// that may be remembered goes.
    private func decide(_ q: DNSQuery, view: ViewChoice, memo: (key: MemoKey, slot: Int)?, snap: Snapshot, context: QueryContext,
                        responder: QueryResponder, scratch: LoopScratch, slot: UnsafeMutableRawBufferPointer) -> DatagramProcessingResult {
        var memo = memo
        let decision = snap.resolver.resolve(Question(name: q.question.name, type: q.question.type, rrClass: q.question.qclass), view: view,
                                             routing: RoutingInput(health: snap.health, seed: scratch.random.next()))
        // R18: an answer chosen by a routing policy is chosen anew for every query, never remembered.
        if decision.routing != nil { memo = nil }
        switch decision.outcome {
        case .refused:
            scratch.builder.buildResponse(for: q, rcode: .refused, transport: context.transport.wire)
            logDecision(snap, context: context, query: q, decision: decision, rcode: .refused, answer: [], cache: .none, upstream: nil)
            return emit(scratch.builder.bytes, to: slot)
        case .answer(let a):
            let local = LocalAnswer(decision: decision, answer: a)
            let entry = MemoEntry(.local(local), key: memo?.key, name: q.question.name)
            if let memo { scratch.remember(memo.slot, entry) }
            return answerLocally(local, entry, query: q, view: view, snap: snap, context: context, scratch: scratch, slot: slot)
        case .forward(let f):
            // The decision to forward is as deterministic as a local answer; remembering it
            // leaves only the cache lookup for repeated public names.
            var entry: MemoEntry? = nil
            if let memo {
                let e = MemoEntry(.forward(RememberedForward(decision: decision, forward: f)), key: memo.key, name: q.question.name)
                scratch.remember(memo.slot, e)
                entry = e
            }
            return forward(f, query: q, decision: decision, snap: snap, context: context, responder: responder,
                           scratch: scratch, slot: slot, memo: entry)
        }
    }

    /// Copies a reply built in the builder (or any bytes) into the caller's slot.
    private func emit(_ bytes: [UInt8], to slot: UnsafeMutableRawBufferPointer) -> DatagramProcessingResult {
        guard bytes.count <= slot.count else { return .drop }
        bytes.withUnsafeBytes { slot.copyMemory(from: $0) }
        return .reply(length: bytes.count)
    }

    /// Encodes a local answer. The first reply of each shape (EDNS or not, DO or not) to a
    /// lower-case query is kept as bytes; later queries of that shape get a copy with their ID
    /// and RD/CD bits patched in, which is all that differs between them. The bytes after the
    /// question do not depend on the question's case except through compression pointers into
    /// it, so only all-lower-case questions take this path (mixed case, as with 0x20, is
    /// encoded afresh so that every name keeps its case exactly, P3).
    private func answerLocally(_ local: LocalAnswer, _ entry: MemoEntry, query q: DNSQuery, view: ViewChoice, snap: Snapshot,
                               context: QueryContext, scratch: LoopScratch, slot: UnsafeMutableRawBufferPointer) -> DatagramProcessingResult {
        let shape = Int(KeptReply.shape(edns: q.edns))
        let summary = scratch.builder.buildResponse(for: q, rcode: local.rcode, authoritative: local.authoritative, answer: local.answer,
                                                    authority: local.authority, additional: local.additional, transport: context.transport.wire)
        if q.question.caseMask.isAllLower, entry.remembered, !summary.truncated, entry.encoded(shape: shape).isEmpty {
            entry.keep(scratch.builder.bytes, shape: shape)
        }
        let result = emit(scratch.builder.bytes, to: slot)
        // Counts the answer for metrics and, with the log on, writes the record.
        logLocal(local, entry, snap: snap, context: context, view: view, question: q.question)
        return result
    }

    // MARK: - Upstream (R4, R9, R15, P5, P6)

    /// `memo` is this thread's memo entry of the decision, when there is one: a cache hit
    /// encoded for it is kept there as bytes and replayed until the cached entry expires.
    /// `fetchedFrom`: the target an earlier link of the chain was fetched from (R15: the log
    /// names an upstream when any link came from one), when this leg asks again elsewhere.
    private func forward(_ f: Forward, query q: DNSQuery, decision: Decision, snap: Snapshot, context: QueryContext,
                         responder: QueryResponder, scratch: LoopScratch, slot: UnsafeMutableRawBufferPointer, memo: MemoEntry? = nil,
                         fetchedFrom: SocketEndpoint? = nil) -> DatagramProcessingResult {
        if f.question.type == .any {
            answerANYLocally(f, query: q, decision: decision, snap: snap, context: context, builder: &scratch.builder)
            return emit(scratch.builder.bytes, to: slot)
        }
        // O6: a probe of ours that came back, or any name under the probe label, is never
        // forwarded (that is the loop).
        if LoopProbe.isProbeName(f.question.name) {
            if let looping = loopGuard.probeArrived(f.question.name, from: context.client) { coalescer.failLooping(looping) }
            forwardingLoop(q, decision: decision, snap: snap, context: context, cache: .none, builder: &scratch.builder)
            return emit(scratch.builder.bytes, to: slot)
        }
        let transport = context.transport.wire
        let now = context.receivedAt.monotonic.uptimeNanoseconds
        let shape = KeptReply.cacheShape(edns: q.edns, checkingDisabled: q.checkingDisabled)
        let lowerCase = q.question.caseMask.isAllLower
        // P7: one entry for askers with and without DO (the reply is filtered per asker);
        // CD is part of the key (see UpstreamCache).
        let key = UpstreamCache.Key(name: f.question.name, type: f.question.type, rrClass: f.question.rrClass, targets: f.targets,
                                    checkingDisabled: q.checkingDisabled)
        if let hit = cache.lookup(key, now: now) {
            let a = complete(f, decision: decision, snap: snap, rcode: hit.entry.rcode, answer: hit.entry.answer, authority: hit.entry.authority,
                             dnssecOK: q.dnssecOK, random: &scratch.random)
            if let next = a.resume {
                return forward(next, query: q, decision: decision, snap: snap, context: context, responder: responder, scratch: scratch,
                               slot: slot, fetchedFrom: fetchedFrom)
            }
            let summary = scratch.builder.buildResponse(for: q, rcode: a.rcode, authoritative: false, answer: a.answer, authority: a.authority, transport: transport)
            if let memo, lowerCase, !a.hasLocalRecords, !summary.truncated, scratch.builder.bytes.count <= CachedReply.maxKeptBytes {
                memo.keep(CachedReply(encoded: scratch.builder.bytes, hit: hit, now: now, completed: a), shape: Int(shape))
            }
            if snap.settings.logCacheHits {
                logDecision(snap, context: context, query: q, decision: decision, rcode: a.rcode, answer: a.answer, cache: .hit,
                            upstream: fetchedFrom, reason: a.reason)
            } else {
                countAnswer(snap, context: context, view: decision.view, kind: decision.kind, rcode: a.rcode)
            }
            return emit(scratch.builder.bytes, to: slot)
        }

        let configured: [SocketEndpoint]
        switch f.targets {
        case .defaults: configured = snap.defaultUpstreams
        case .rule(_, let t): configured = t
        }
        // O6: targets found forwarding back to us are left out; none left is a loop.
        let targets = loopGuard.usable(configured)
        if targets.isEmpty && !configured.isEmpty {
            forwardingLoop(q, decision: decision, snap: snap, context: context, cache: .miss, builder: &scratch.builder)
            return emit(scratch.builder.bytes, to: slot)
        }
        // Each waiter finishes its own query on its own loop: its ID, case and log line.
        let completion: UpstreamCoalescer.Completion = { [self] outcome in
            // On the loop that read the query: its thread's builder is free to use.
            let b = LoopScratch.current(udpPayloadSize: snap.settings.udpPayloadSize)
            switch outcome {
            case .upstream(.success(let answer)):
                let message = answer.reply.withUnsafeReadableBytes { try? DNSMessage.parse($0) }
                guard let m = message else {
                    self.fail(q, decision: decision, snap: snap, context: context, responder: responder, reason: "upstream-error", upstream: answer.target)
                    return
                }
                // TTLs per RFC 2181 §8 and capped at a day before anything uses them: the client
                // sees the same TTLs on this miss as on later hits (P11). From a rule's targets,
                // only what they may speak for is taken (and cached) (P11).
                let entry = self.cache.normalized(UpstreamCache.Entry(rcode: m.rcode, answer: f.trusted(m.answer), authority: f.trusted(m.authority)))
                self.cache.put(key, entry, now: NIODeadline.now().uptimeNanoseconds)
                let a = self.complete(f, decision: decision, snap: snap, rcode: m.rcode, answer: entry.answer, authority: entry.authority,
                                      dnssecOK: q.dnssecOK, random: &b.random)
                if let next = a.resume {
                    // The chain goes on elsewhere: the next upstream leg answers the client.
                    // Into this thread's own slot: the query that started this is no longer using it.
                    let slot = b.replySlot
                    switch self.forward(next, query: q, decision: decision, snap: snap, context: context, responder: responder, scratch: b,
                                        slot: slot, fetchedFrom: answer.target) {
                    case .reply(let length):
                        self.respond(responder, ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: slot[0..<length])), context: context)
                    case .drop: responder.respond(nil)
                    case .pending: break
                    }
                    return
                }
                b.builder.buildResponse(for: q, rcode: a.rcode, authoritative: false, answer: a.answer, authority: a.authority, transport: transport)
                // Logged before the answer leaves, as local answers are: once the listener sees
                // no query in flight, its record is already with the writer (O3, L2).
                self.logDecision(snap, context: context, query: q, decision: decision, rcode: a.rcode, answer: a.answer, cache: .miss,
                                 upstream: answer.target, reason: a.reason)
                self.respond(responder, ByteBuffer(bytes: b.builder.bytes), context: context)
            case .upstream(.failure(let failure)):
                self.fail(q, decision: decision, snap: snap, context: context, responder: responder, reason: failure.reason,
                          upstream: failure.lastTried ?? fetchedFrom)
            case .forwardingLoop:
                self.loopGuard.countLoopAnswer()
                self.fail(q, decision: decision, snap: snap, context: context, responder: responder, reason: Reason.forwardingLoop.description, upstream: nil)
            }
        }
        let coalescingKey = CoalescingKey(name: f.question.name, type: f.question.type, rrClass: f.question.rrClass,
                                          checkingDisabled: q.checkingDisabled, targets: f.targets, generation: snap.generation)
        switch coalescer.join(coalescingKey, targets: targets, on: responder.eventLoop, completion: completion) {
        case .joined(let pendingTo):
            // The same question, pending upstream, asked again from an upstream's address: the
            // mark of a loop through that resolver, or a client there retrying. A probe tells.
            if pendingTo.contains(where: { $0.ip == context.client.ip }) {
                loopGuard.suspect(client: context.client.ip, targets: pendingTo, upstream: snap.upstream, on: responder.eventLoop)
            }
        case .lead(let flight):
            // ID 0: every attempt sends it with a random ID of its own. The size advertised is at
            // most the slot an upstream datagram is read into (larger replies come by TCP). DO is
            // always set, so the cached answer has what a validating client needs (P7), and one
            // exchange serves askers with and without DO; CD is the client's (part of the key).
            let ourPayloadSize = scratch.builder.udpPayloadSize
            scratch.builder.udpPayloadSize = min(ourPayloadSize, UInt16(UDPListener.datagramSlotSize))
            scratch.builder.buildQuery(id: 0,
                               question: DNSQuestion(name: f.question.name, type: f.question.type, qclass: f.question.rrClass),
                               recursionDesired: true, checkingDisabled: q.checkingDisabled, edns: true, dnssecOK: true)
            scratch.builder.udpPayloadSize = ourPayloadSize
            // Not an inout access across the call: the completion may run before `start` returns
            // and uses this thread's builder too.
            snap.upstream.start(ByteBuffer(bytes: scratch.builder.bytes), targets: targets, on: responder.eventLoop) { [coalescer] result in
                coalescer.finish(coalescingKey, flight, .upstream(result))
            }
        }
        return .pending
    }

    /// SERVFAIL `forwarding-loop` now (O6), counted.
    /// The reply is left in `builder`.
    private func forwardingLoop(_ q: DNSQuery, decision: Decision, snap: Snapshot, context: QueryContext, cache: QueryLogRecord.CacheUse,
                                builder: inout MessageBuilder) {
        loopGuard.countLoopAnswer()
        builder.buildResponse(for: q, rcode: .servFail, transport: context.transport.wire)
        logDecision(snap, context: context, query: q, decision: decision, rcode: .servFail, answer: [], cache: cache, upstream: nil,
                    reason: Reason.forwardingLoop.description)
    }

    private func fail(_ q: DNSQuery, decision: Decision, snap: Snapshot, context: QueryContext, responder: QueryResponder, reason: String, upstream: SocketEndpoint?) {
        let b = LoopScratch.current(udpPayloadSize: snap.settings.udpPayloadSize)
        b.builder.buildResponse(for: q, rcode: .servFail, transport: context.transport.wire)
        logDecision(snap, context: context, query: q, decision: decision, rcode: .servFail, answer: [], cache: .miss, upstream: upstream, reason: reason)
        respond(responder, ByteBuffer(bytes: b.builder.bytes), context: context)
    }

    /// An answer completed with upstream data: never authoritative (R15).
    struct Completed {
        var rcode: RCode
        var answer: [ResourceRecord]
        var authority: [ResourceRecord]
        var reason: String?
        /// Private records are part of it (the local CNAME chain, or an upstream CNAME handed
        /// back to a private zone): their TTLs do not count down, so it is not replayed as bytes.
        var hasLocalRecords = false
        /// Set when the upstream's CNAME chain left the FORWARD rule's domain (P11): the answer
        /// is this next upstream question's, with the chain so far in front (R15).
        var resume: Forward? = nil
    }

    /// Puts the local CNAME chain (if any) before the upstream data, and hands an upstream
    /// CNAME into a private zone of the asking VPC back to the core (R15).
    ///
    /// `answer` and `authority` are the upstream's (or the cache's) whole sections. P7: for an
    /// asker without DO the DNSSEC records are left out here (except those of the type asked);
    /// an asker with DO gets them all, and when an upstream CNAME is completed from a private
    /// zone, the upstream's signatures over the CNAME links it kept (the private part is
    /// unsigned, as PHZs are).
    ///
    /// `random`: the thread's generator (`LoopScratch.random`), the seed of any R18 choice a
    /// private zone makes for a CNAME target (the core draws nothing itself).
    func complete(_ f: Forward, decision: Decision, snap: Snapshot, rcode: RCode, answer fullAnswer: [ResourceRecord],
                  authority fullAuthority: [ResourceRecord], dnssecOK: Bool, random: inout SplitMix64) -> Completed {
        let answer = dnssecOK ? fullAnswer : DNSSECRecords.withoutDNSSEC(fullAnswer, askedType: f.question.type)
        let authority = dnssecOK ? fullAuthority : DNSSECRecords.withoutDNSSEC(fullAuthority, askedType: f.question.type)
        // Follow the upstream's CNAME links from the name that was asked.
        var name = f.question.name
        var links: [ResourceRecord] = []
        var hops = 0
        while hops <= VPCDNSCore.Resolver.maxCNAMEs, let c = answer.first(where: { $0.type == .cname && $0.name == name }), let target = c.targetName {
            links.append(c)
            hops += 1
            if let local = snap.resolver.continueChain(after: f, upstreamChain: links, target: target, view: decision.view,
                                                       routing: RoutingInput(health: snap.health, seed: random.next())) {
                let reason: String? = local.rcode == .servFail ? (links.count + f.chain.count > VPCDNSCore.Resolver.maxCNAMEs ? "cname-chain" : "cname-loop") : nil
                var completed = local.answer
                if dnssecOK, local.rcode != .servFail {
                    completed = QueryEngine.signingLinks(completed, links: links, after: f.chain.count, from: answer)
                }
                return Completed(rcode: local.rcode, answer: local.rcode == .servFail ? [] : completed,
                                 authority: local.authority, reason: reason, hasLocalRecords: true)
            }
            name = target
        }
        if let domain = f.bailiwick, !links.isEmpty, f.question.type != .cname, !name.isSubdomain(of: domain) {
            // P11: the rule's targets do not speak for `name` (whatever they said about it was
            // dropped); it is resolved again as the asking VPC resolves it (R15).
            switch snap.resolver.resumeChain(after: f, upstreamChain: links, target: name, view: decision.view,
                                             routing: RoutingInput(health: snap.health, seed: random.next())) {
            case .answer(let local, let reason):
                return Completed(rcode: local.rcode, answer: local.answer, authority: local.authority, reason: reason?.description,
                                 hasLocalRecords: true)
            case .forward(let next):
                return Completed(rcode: rcode, answer: [], authority: [], reason: nil, hasLocalRecords: true, resume: next)
            }
        }
        if f.chain.isEmpty {
            return Completed(rcode: rcode, answer: answer, authority: authority, reason: nil)
        }
        if f.chain.count + links.count > VPCDNSCore.Resolver.maxCNAMEs {
            return Completed(rcode: .servFail, answer: [], authority: [], reason: "cname-chain")
        }
        return Completed(rcode: rcode, answer: f.chain + answer, authority: authority, reason: nil, hasLocalRecords: true)
    }

    /// `chain` (a local CNAME prefix of `offset` records, the upstream `links`, then private
    /// records) with the upstream's RRSIGs over each link put right after it.
    static func signingLinks(_ chain: [ResourceRecord], links: [ResourceRecord], after offset: Int,
                             from upstream: [ResourceRecord]) -> [ResourceRecord] {
        guard offset + links.count <= chain.count, upstream.contains(where: { $0.type == .rrsig }) else { return chain }
        var out = Array(chain[..<offset])
        out.reserveCapacity(chain.count + links.count)
        for (i, link) in links.enumerated() {
            out.append(chain[offset + i])
            out += DNSSECRecords.signatures(in: upstream, owner: link.name, covering: .cname)
        }
        out += chain[(offset + links.count)...]
        return out
    }

    // MARK: - Query log

    func logDecision(_ snap: Snapshot, context: QueryContext, query q: DNSQuery, decision d: Decision, rcode: RCode,
                             answer: [ResourceRecord], cache: QueryLogRecord.CacheUse, upstream: SocketEndpoint?, reason: String? = nil) {
        guard queryLog != nil else {
            // Metrics only: nothing of the record is built.
            countAnswer(snap, context: context, view: d.view, kind: d.kind, rcode: rcode)
            return
        }
        log(snap, context: context, view: d.view, question: q.question, rcode: rcode, answer: answer, kind: d.kind,
            zone: d.zone, zoneID: d.zoneID, reason: reason ?? d.reason?.description, recordSet: d.routing?.recordSet, cache: cache, upstream: upstream)
    }

    private func log(_ snap: Snapshot, context: QueryContext, view: ViewChoice, question: DNSQuestion?, rcode: RCode, answer: [ResourceRecord],
                     kind: DecisionKind, zone: DNSName?, zoneID: String?, reason: String?, recordSet: String? = nil, cache: QueryLogRecord.CacheUse,
                     upstream: SocketEndpoint?) {
        // One clock read for the log's latency and order and the metrics' histogram, none when
        // neither wants it.
        let now = queryLog != nil || metrics.timed ? NIODeadline.now() : nil
        let elapsed = now.map { $0 - context.receivedAt.monotonic }
        metrics.countAnswer(snap.requests, vpcIndex: view.vpcIndex, transport: context.transport, kind: kind, rcode: rcode, elapsed: elapsed)
        guard let writer = queryLog, let now, let elapsed else { return }
        // Encoded straight into this thread's batch: the model's fixed fields are copied as
        // bytes, names, addresses and answers written from their wire form. Stamped with the
        // same clock read (before the answer is sent): the writer orders lines by it.
        writer.append(stamp: now) { out, dates in
            LogLine.assemble(
                to: &out, dates: &dates, receivedAtMicros: context.receivedAt.wallNanoseconds / 1000,
                head: { snap.logFields.head(view, to: &$0) },
                name: { o in
                    if let q = question { JSONBytes.name(.asked(q), to: &o) } else { JSONBytes.literal(#""-""#, to: &o) }
                },
                middle: { o in
                    LogLine.middle(type: question.map { QueryLogRecord.text($0.type) } ?? "-",
                                   rrClass: question.map { QueryLogRecord.text($0.qclass) } ?? "-",
                                   rcode: rcode.description, answers: .records(answer), to: &o)
                },
                address: { LogLine.address(context.client.ip, to: &$0) },
                port: context.client.port,
                transport: { LogLine.transport(context.transport, to: &$0) },
                srcids: { snap.logFields.srcids(view, to: &$0) },
                decision: {
                    LogLine.decision(kind.rawValue, zone: kind == .endpointDNSName ? nil : zone.map { .domain($0) }, zoneID: zoneID,
                                     reason: reason, recordSet: recordSet, cache: cache, to: &$0)
                },
                upstream: upstream.map { .address($0) },
                listener: .address(context.listener),
                proxy: context.proxy,
                via: { LogLine.via(view.via, to: &$0) },
                latencyMicros: elapsed.nanoseconds / 1000)
        }
    }

    /// `log` for a local answer: the segments it fixes are encoded once per memo entry (per
    /// thread) and copied from then on. `asked` is the question as asked: its name goes into
    /// the line only when in mixed case (a lower-case one is the entry's pre-encoded name).
    private func logLocal(_ local: LocalAnswer, _ entry: MemoEntry, snap: Snapshot, context: QueryContext, view: ViewChoice,
                          question asked: DNSQuestion) {
        let now = queryLog != nil || metrics.timed ? NIODeadline.now() : nil
        let elapsed = now.map { $0 - context.receivedAt.monotonic }
        metrics.countAnswer(snap.requests, vpcIndex: view.vpcIndex, transport: context.transport, kind: local.kind, rcode: local.rcode,
                            elapsed: elapsed)
        guard let writer = queryLog, let now, let elapsed else { return }
        let lower = asked.caseMask.isAllLower
        let pieces: LocalLogPieces
        if let p = entry.logPieces {
            pieces = p
        } else {
            pieces = LocalLogPieces(question: asked, rcode: local.rcode, answer: local.answer, kind: local.kind, zone: local.zone,
                                    zoneID: local.zoneID, reason: local.reason, recordSet: local.recordSet)
            entry.logPieces = pieces
        }
        // Only pointers to the pre-encoded bytes and a few scalars go into the line's closures
        // (nothing to copy or retain per segment). `snap` and `pieces` outlive the call.
        let head = snap.logFields.head(view)
        let inbound = view.inboundEndpointID != nil
        let name = pieces.lowerCaseName, middle = pieces.middle, decision = pieces.decision
        let via = view.via, transport = context.transport, client = context.client, listener = context.listener, proxy = context.proxy
        let received = context.receivedAt.wallNanoseconds / 1000
        _ = withExtendedLifetime(pieces) {
            writer.append(stamp: now) { out, dates in
                LogLine.assemble(
                    to: &out, dates: &dates, receivedAtMicros: received,
                    head: { o in
                        if let h = head { o.append(contentsOf: h) } else { snap.logFields.head(view, to: &o) }
                    },
                    name: { o in
                        if lower { o.append(contentsOf: name) } else { JSONBytes.name(.asked(asked), to: &o) }
                    },
                    middle: { $0.append(contentsOf: middle) },
                    address: { LogLine.address(client.ip, to: &$0) },
                    port: client.port,
                    transport: { LogLine.transport(transport, to: &$0) },
                    srcids: { o in if inbound { snap.logFields.srcids(view, to: &o) } },
                    decision: { $0.append(contentsOf: decision) },
                    upstream: nil,
                    listener: .address(listener),
                    proxy: proxy,
                    via: { LogLine.via(via, to: &$0) },
                    latencyMicros: elapsed.nanoseconds / 1000)
            }
        }
    }
}

/// Generations of `QueryEngine.Snapshot`, process-wide.
let snapshotGenerations = Atomic<UInt64>(0)

/// The key of a remembered answer, besides the name: the memo is probed with the name's
/// lower-case wire bytes wherever they are (the datagram itself for a lower-case question), so
/// a probe builds no `DNSName`.
struct MemoKey: Equatable {
    var view: Int32
    var type: UInt16
    var rrClass: UInt16

    /// The memo's slot for this key and `name` (lower-case wire bytes).
    func hashed(name: UnsafeRawBufferPointer) -> Int {
        var h = Hasher()
        h.combine(view)
        h.combine(type)
        h.combine(rrClass)
        h.combine(bytes: name)
        return h.finalize()
    }
}

/// A local answer with everything the log needs, computed once.
final class LocalAnswer: Sendable {
    let kind: DecisionKind
    let zone: DNSName?
    let zoneID: String?
    let reason: String?
    /// R18 `record_set`, when a routing policy chose the answer.
    let recordSet: String?
    let rcode: RCode
    let authoritative: Bool
    let answer: [ResourceRecord]
    let authority: [ResourceRecord]
    let additional: [ResourceRecord]

    init(decision d: Decision, answer a: Answer) {
        kind = d.kind
        zone = d.kind == .endpointDNSName ? nil : d.zone
        zoneID = d.zoneID
        reason = d.reason?.description
        recordSet = d.routing?.recordSet
        rcode = a.rcode
        authoritative = a.authoritative
        answer = a.answer
        authority = a.authority
        additional = a.additional
    }
}

/// A remembered local answer and, once a lower-case query was answered, its encoded replies.
/// Per thread, like the memo that holds it.
final class MemoEntry {
    enum Content {
        case local(LocalAnswer)
        /// The decision to forward; its view part is replaced by the asking query's view on use.
        /// In a class: reading the memo then retains one reference, not every array inside.
        case forward(RememberedForward)
    }
    let content: Content
    /// What the entry is remembered under (nil: not in the memo, e.g. an R18 answer): a probe
    /// that lands on this entry's slot checks them, so two keys sharing a slot never mix.
    let key: MemoKey?
    let name: DNSName
    /// The replies to lower-case queries kept as bytes, by `KeptReply.shape` (local answers
    /// only); empty until one was kept. Sized at the first one kept, not at creation: an entry
    /// that is never remembered (an R18 answer, built per query) or of the other kind (a local
    /// answer has no replays, a forward nothing encoded) allocates neither array.
    private(set) var encoded: [[UInt8]] = []
    /// Forward decisions: the last cache hit encoded for a lower-case query, by
    /// `KeptReply.cacheShape`, replayed with its TTLs counted down until the cached entry expires.
    private(set) var replays: [CachedReply?] = []

    func encoded(shape: Int) -> [UInt8] { shape < encoded.count ? encoded[shape] : [] }
    func keep(_ bytes: [UInt8], shape: Int) {
        if encoded.isEmpty { encoded = Array(repeating: [], count: 4) }
        encoded[shape] = bytes
    }
    func replay(shape: Int) -> CachedReply? { shape < replays.count ? replays[shape] : nil }
    func keep(_ reply: CachedReply?, shape: Int) {
        if replays.isEmpty { replays = Array(repeating: nil, count: 8) }
        replays[shape] = reply
    }
    /// The query log's segments of this answer, built by the first query logged with it.
    var logPieces: LocalLogPieces?
    init(_ content: Content, key: MemoKey?, name: DNSName) {
        self.content = content
        self.key = key
        self.name = name
    }

    /// In the memo, so worth keeping replies for.
    var remembered: Bool { key != nil }

    func matches(_ key: MemoKey, name: UnsafeRawBufferPointer) -> Bool {
        guard self.key == key, self.name.wire.count == name.count else { return false }
        return self.name.wire.withUnsafeBytes { $0.elementsEqual(name) }
    }
}

/// A remembered decision to forward (see `MemoEntry.Content`).
final class RememberedForward {
    let decision: Decision
    let forward: Forward
    init(decision: Decision, forward: Forward) {
        self.decision = decision
        self.forward = forward
    }
}

/// Replies kept as bytes (local answers and cache hits) and sent again to other queries of the
/// same question, shape and lower case.
enum KeptReply {
    /// 0 no EDNS, 1 EDNS, 3 EDNS with DO: what else, besides the question's case, makes two
    /// replies to the same question differ.
    static func shape(edns: EDNSInfo?) -> UInt8 { edns == nil ? 0 : (edns!.dnssecOK ? 3 : 1) }

    /// `shape` plus 4 for CD, for replayed cache hits: DO decides which DNSSEC records a reply
    /// holds (P7), and CD which cache entry it came from (see `UpstreamCache`), so a kept reply
    /// goes only to askers with the same DO and CD bits.
    static func cacheShape(edns: EDNSInfo?, checkingDisabled: Bool) -> UInt8 { shape(edns: edns) | (checkingDisabled ? 4 : 0) }

    /// Writes `bytes` into `slot` (which has room) with the asker's ID and its RD and CD bits:
    /// all that differs between replies to queries of the same shape. Returns the length.
    static func write(_ bytes: [UInt8], header: DNSHeader, to slot: UnsafeMutableRawBufferPointer) -> Int {
        bytes.withUnsafeBytes { slot.copyMemory(from: $0) }
        let keep: UInt16 = ~(DNSHeader.rdBit | DNSHeader.cdBit)
        let flags = (UInt16(slot[2]) << 8 | UInt16(slot[3])) & keep | (header.flags & ~keep)
        slot[0] = UInt8(truncatingIfNeeded: header.id >> 8)
        slot[1] = UInt8(truncatingIfNeeded: header.id)
        slot[2] = UInt8(truncatingIfNeeded: flags >> 8)
        slot[3] = UInt8(truncatingIfNeeded: flags)
        return bytes.count
    }
}

/// A cache hit's reply kept as bytes (P5 answers at the cost of a copy and a few patches).
///
/// The cache counts TTLs down in whole seconds from the moment the entry was stored; the
/// reply does the same from the TTLs the entry had when stored, so a replayed reply carries
/// exactly the TTLs a freshly encoded one would. Only upstream data is replayed (a reply with
/// private records in it is encoded each time: their TTLs are fixed).
final class CachedReply {
    /// Larger replies are encoded afresh on each hit: the memo holds up to `LoopScratch.memoLimit`
    /// entries per thread, outside `cache_max_bytes`, and a 64 KB TCP answer kept in each would
    /// be gigabytes.
    static let maxKeptBytes = 4096
    let bytes: [UInt8]
    let ttlOffsets: [Int]
    /// The TTLs at `storedAt` (0 stays 0: a record already at 0 when encoded).
    let storedTTLs: [UInt32]
    let storedAt: UInt64
    let expiresAt: UInt64
    let completed: QueryEngine.Completed

    init?(encoded: [UInt8], hit: UpstreamCache.Hit, now: UInt64, completed: QueryEngine.Completed) {
        guard let offsets = TTLOffsets.find(in: encoded) else { return nil }
        // The query may have arrived before another loop stored the entry (see UpstreamCache.lookup).
        let elapsed = UInt32(clamping: (now > hit.storedAt ? now - hit.storedAt : 0) / 1_000_000_000)
        bytes = encoded
        ttlOffsets = offsets
        storedTTLs = offsets.map { o in
            let ttl = UInt32(encoded[o]) << 24 | UInt32(encoded[o + 1]) << 16 | UInt32(encoded[o + 2]) << 8 | UInt32(encoded[o + 3])
            return ttl == 0 ? 0 : ttl &+ elapsed
        }
        storedAt = hit.storedAt
        expiresAt = hit.expiresAt
        self.completed = completed
    }

    /// Writes the reply for the asker with `header` into `slot` (which has room): its ID, its RD
    /// and CD bits, the TTLs as of `now`. Returns the length.
    func write(header: DNSHeader, now: UInt64, to slot: UnsafeMutableRawBufferPointer) -> Int {
        let length = KeptReply.write(bytes, header: header, to: slot)
        let elapsed = UInt32(clamping: (now > storedAt ? now - storedAt : 0) / 1_000_000_000)
        for i in 0..<ttlOffsets.count {
            let t = storedTTLs[i]
            let ttl = t > elapsed ? t - elapsed : 0
            let o = ttlOffsets[i]
            slot[o] = UInt8(truncatingIfNeeded: ttl >> 24)
            slot[o + 1] = UInt8(truncatingIfNeeded: ttl >> 16)
            slot[o + 2] = UInt8(truncatingIfNeeded: ttl >> 8)
            slot[o + 3] = UInt8(truncatingIfNeeded: ttl)
        }
        return length
    }
}

/// Per-thread scratch of the engine: the reply builder (its buffer and compression table are
/// reused, so encoding allocates nothing) and the memo of local answers. Each event loop is
/// one thread, so nothing here is shared and nothing needs a lock.
final class LoopScratch: @unchecked Sendable {
    var builder = MessageBuilder()
    /// Remembered answers by `MemoKey.hashed`; each entry holds its whole key, checked on probe.
    var memo: [Int: MemoEntry] = [:]
    /// Where `process` (TCP) has a reply written before it is copied into a `ByteBuffer`, and
    /// where a chain resumed after an upstream answer is encoded: room for any DNS message.
    let replySlot = UnsafeMutableRawBufferPointer.allocate(byteCount: DatagramSlots.replyCapacity, alignment: 8)
    var generation: UInt64 = 0
    /// Seeds of R18 choices: one system-random seed per thread, then a cheap generator.
    var random = SplitMix64(seed: UInt64.random(in: 0...UInt64.max))
    /// Bound on remembered answers per thread (wildcards could otherwise grow it without end).
    static let memoLimit = 65_536

    private static let perThread = ThreadSpecificVariable<LoopScratch>()

    deinit { replySlot.deallocate() }

    static func current(for snap: QueryEngine.Snapshot) -> LoopScratch {
        let s = current(udpPayloadSize: snap.settings.udpPayloadSize)
        if s.generation != snap.generation {
            s.memo.removeAll()
            s.generation = snap.generation
        }
        return s
    }

    /// This thread's scratch for encoding an answer that completes later (upstream), on the
    /// loop thread: the builder only, set to `udpPayloadSize`; the memo is left as it is (it
    /// belongs to whichever snapshot the thread's latest query used).
    static func current(udpPayloadSize: Int) -> LoopScratch {
        let s = forThisThread()
        s.builder.udpPayloadSize = UInt16(clamping: udpPayloadSize)
        return s
    }

    /// This thread's scratch as it is.
    static func forThisThread() -> LoopScratch {
        if let existing = perThread.currentValue { return existing }
        let s = LoopScratch()
        perThread.currentValue = s
        return s
    }

    /// The remembered entry for `key` and `name` (lower-case wire bytes) in `slot`
    /// (`key.hashed(name:)`), if that is what the slot holds.
    func memo(_ slot: Int, _ key: MemoKey, name: UnsafeRawBufferPointer) -> MemoEntry? {
        guard let entry = memo[slot], entry.matches(key, name: name) else { return nil }
        return entry
    }

    /// Remembers `entry` in `slot`; another key that hashed to the same slot is replaced.
    func remember(_ slot: Int, _ entry: MemoEntry) {
        if memo.count >= LoopScratch.memoLimit { memo.removeAll(keepingCapacity: true) }
        memo[slot] = entry
    }
}
