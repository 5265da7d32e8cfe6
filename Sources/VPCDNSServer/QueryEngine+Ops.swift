import DNSWire
import NIOCore
import VPCDNSCore

extension QueryEngine {
    /// O5: one answered query into the snapshot's request table and the duration histogram.
    @inline(__always)
    func countAnswer(_ snap: Snapshot, context: QueryContext, view: ViewChoice, kind: DecisionKind, rcode: RCode) {
        metrics.countAnswer(snap.requests, vpcIndex: view.vpcIndex, transport: context.transport, kind: kind, rcode: rcode,
                            elapsed: metrics.timed ? NIODeadline.now() - context.receivedAt.monotonic : nil)
    }

    /// RFC 8482 §4.2 for names that would go upstream: ANY is not forwarded. The client gets
    /// NOERROR with one synthesised `HINFO "RFC8482" ""` record at the asked name (after the
    /// local CNAME chain, if a local CNAME led there), TTL 3600, no AA. Local names already
    /// answer ANY with one RRset (the core, R3). The query log shows the HINFO answer with no
    /// `upstream` and `cache: none` (query-log.md's `reason` values are a closed list, so
    /// none is added for this).
    ///
    /// Why not forward and keep the first RRset: it costs an upstream round trip for a query
    /// type whose answers are mostly used for amplification, and the upstream's answer would
    /// be cached under ANY for nothing.
    ///
    /// The reply is left in `builder`.
    func answerANYLocally(_ f: Forward, query q: DNSQuery, decision: Decision, snap: Snapshot, context: QueryContext,
                          builder: inout MessageBuilder) {
        let answer = f.chain + [QueryEngine.rfc8482HINFO(owner: f.question.name)]
        builder.buildResponse(for: q, rcode: .noError, authoritative: false, answer: answer, authority: [],
                              transport: context.transport.wire)
        logDecision(snap, context: context, query: q, decision: decision, rcode: .noError, answer: answer, cache: .none,
                    upstream: nil)
    }

    /// `HINFO "RFC8482" ""`.
    static func rfc8482HINFO(owner: DNSName) -> ResourceRecord {
        let cpu = Array("RFC8482".utf8)
        return ResourceRecord(name: owner, type: .hinfo, ttl: 3600, rdata: [UInt8(cpu.count)] + cpu + [0])
    }
}
