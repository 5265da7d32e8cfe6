import Testing
import VPCDNSConfig
import VPCDNSCore

/// `trusted_proxies` (P9): CIDR blocks of the load balancers whose PROXY v2 headers name the client.
@Suite struct TrustedProxiesConfigTests {
    @Test func loadedAndShownByCheck() throws {
        let c = try loaded("trusted_proxies: [10.0.5.10/32, \"2001:db8::/64\"]\n" + oneVPC)
        #expect(c.model.settings.trustedProxies.map(\.description) == ["10.0.5.10/32", "2001:db8::/64"])
        #expect(c.warnings.isEmpty, "\(c.warnings)")
        let summary = CheckSummary(path: "t.yaml", result: .success(c))
        #expect(summary.text.contains("trusted proxies (PROXY v2 names the client): 10.0.5.10/32, 2001:db8::/64"), "\(summary.text)")
        #expect(summary.json.rendered().contains(#""trusted_proxies":["10.0.5.10/32","2001:db8::/64"]"#), "\(summary.json.rendered())")
    }

    @Test func defaultIsNone() throws {
        let c = try loaded(oneVPC)
        #expect(c.model.settings.trustedProxies.isEmpty)
        #expect(!CheckSummary(path: "t.yaml", result: .success(c)).text.contains("trusted proxies"))
    }

    @Test func badEntriesAreErrors() {
        let errs = errorLines("trusted_proxies: [10.0.5.10, 10.0.5.1/24, dnsdist]\n" + oneVPC)
        #expect(errs.count == 3, "\(errs)")
        #expect(errs.contains { $0.contains("trusted_proxies[0]") && $0.contains("'10.0.5.10' is not a CIDR block") }, "\(errs)")
        #expect(errs.contains { $0.contains("trusted_proxies[1]") && $0.contains("did you mean 10.0.5.0/24") }, "\(errs)")
    }

    @Test func everySourceIsAWarning() {
        let w = warningLines("trusted_proxies: [0.0.0.0/0]\n" + oneVPC)
        #expect(w.count == 1 && w[0].contains("any host could pick the VPC"), "\(w)")
    }
}
