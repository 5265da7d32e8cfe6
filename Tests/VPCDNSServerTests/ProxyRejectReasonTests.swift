import Testing
@testable import VPCDNSServer

/// `ProxyRejectReason.index` (a switch, not a search) places each reason where `allCases`
/// does, so each counter stays under its own `reason` label of `vpcdns_proxy_rejected_total`.
@Suite("ProxyRejectReason")
struct ProxyRejectReasonTests {
    @Test("index is the position in allCases; the labels are unchanged")
    func indexMatchesAllCases() {
        for (position, reason) in ProxyRejectReason.allCases.enumerated() {
            #expect(reason.index == position, "\(reason)")
        }
        #expect(ProxyRejectReason.allCases.map(\.rawValue) == ["no-header", "truncated", "version", "command", "family", "untrusted"])
    }

    @Test("each reason is counted under its own label")
    func countedUnderItsLabel() {
        let stats = ListenerStats()
        for (position, reason) in ProxyRejectReason.allCases.enumerated() {
            for _ in 0...position { stats.countProxyRejected(reason) }
        }
        let snapshot = stats.snapshot
        for (position, reason) in ProxyRejectReason.allCases.enumerated() {
            #expect(snapshot.proxyRejected(reason) == position + 1, "\(reason)")
        }
    }
}
