import Foundation
import Testing
import VPCDNSConfig
import VPCDNSCore

/// config.md `dnstap` (O8): defaults, a chosen subset of messages, bad input, and `check`.
@Suite struct DnstapConfigTests {
    @Test func offByDefault() throws {
        #expect(try loaded(oneVPC).model.settings.dnstap == nil)
    }

    @Test func defaultsFilledIn() throws {
        let c = try loaded("dnstap: {socket: run/dnstap.sock}\n" + oneVPC, path: "/etc/vpcdns/vpcdns.yaml")
        let d = try #require(c.model.settings.dnstap)
        #expect(d.socket == "/etc/vpcdns/run/dnstap.sock")
        #expect(!d.identity.isEmpty)
        #expect(d.version.hasPrefix("vpcdns "))
        #expect(d.messages == ["client_query", "client_response", "forwarder_query", "forwarder_response"])
    }

    @Test func chosenMessagesInSpecOrder() throws {
        let c = try loaded("""
        dnstap:
          socket: /run/dnstap.sock
          identity: resolver-1
          version: custom 1
          messages: [forwarder_response, client_query]

        """ + oneVPC)
        let d = try #require(c.model.settings.dnstap)
        #expect(d.identity == "resolver-1" && d.version == "custom 1")
        #expect(d.messages == ["client_query", "forwarder_response"])
    }

    @Test func badInputIsAClearError() {
        #expect(errorLines("dnstap: {identity: x}\n" + oneVPC) == ["t.yaml:1: dnstap.socket: required key is missing"])
        let kind = errorLines("dnstap: {socket: /run/d.sock, messages: [client_query, auth_query]}\n" + oneVPC)
        #expect(kind.count == 1 && kind[0].contains("'auth_query' is not a dnstap message kind"), "\(kind)")
        let empty = errorLines("dnstap: {socket: /run/d.sock, messages: []}\n" + oneVPC)
        #expect(empty.count == 1 && empty[0].contains("an empty list sends nothing"), "\(empty)")
        let unknown = errorLines("dnstap: {socket: /run/d.sock, sockett: x}\n" + oneVPC)
        #expect(unknown.count == 1 && unknown[0].contains("sockett"), "\(unknown)")
        let long = errorLines("dnstap: {socket: /\(String(repeating: "a", count: 120))}\n" + oneVPC)
        #expect(long.count == 1 && long[0].contains("longer than a unix socket path"), "\(long)")
    }

    @Test func checkShowsIt() throws {
        let yaml = "dnstap: {socket: /run/dnstap.sock, identity: r1, messages: [client_query]}\n" + oneVPC
        let summary = CheckSummary(path: "t.yaml", result: ConfigLoader.load(yaml: yaml, path: "t.yaml"))
        #expect(summary.text.contains("dnstap to unix socket /run/dnstap.sock: identity \"r1\", version \"vpcdns "), "\(summary.text)")
        #expect(summary.text.contains("messages client_query\n"), "\(summary.text)")
        let json = summary.json.rendered()
        #expect(json.contains("\"dnstap\":{\"socket\":\"/run/dnstap.sock\",\"identity\":\"r1\""), "\(json)")
    }
}
