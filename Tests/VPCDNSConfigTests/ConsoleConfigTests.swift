import Testing
import VPCDNSConfig
import VPCDNSCore

/// config.md `console` and `console_token`.
@Suite struct ConsoleConfigTests {
    @Test func consoleKeysAreRead() throws {
        let c = try loaded(oneVPC + """
        console: 127.0.0.1:8053
        console_token: "abc-123_XYZ"
        """)
        #expect(c.model.settings.console == SocketEndpoint("127.0.0.1:8053"))
        #expect(c.model.settings.consoleToken == "abc-123_XYZ")
        #expect(c.warnings.isEmpty)
        #expect(try loaded(oneVPC).model.settings.console == nil)
    }

    @Test func nonLoopbackConsoleWithoutTokenWarns() throws {
        let ws = warningLines(oneVPC + "console: 0.0.0.0:8053\n")
        #expect(ws.count == 1)
        #expect(ws.first?.contains("console: warning: console 0.0.0.0:8053 is not on loopback and has no console_token") == true)
        #expect(warningLines(oneVPC + "console: 0.0.0.0:8053\nconsole_token: t0ken\n").isEmpty)
        #expect(warningLines(oneVPC + "console: \"[::1]:8053\"\n").isEmpty)
    }

    @Test func badConsoleValuesAreErrors() {
        #expect(errorLines(oneVPC + "console: localhost\n").contains { $0.contains("console:") })
        #expect(errorLines(oneVPC + "console_token: \"two words\"\n").contains { $0.contains("console_token") })
        #expect(errorLines(oneVPC + "console_token: \"\"\n").contains { $0.contains("console_token") })
        #expect(errorLines(oneVPC + "console_token: \"a<b\"\n").contains { $0.contains("console_token") })
        // The console may share the metrics address (one server serves both), but not a DNS one.
        #expect(errorLines(oneVPC + "metrics: 127.0.0.1:9153\nconsole: 127.0.0.1:9153\n").isEmpty)
        #expect(errorLines(oneVPC + "listen: [127.0.0.1:9153]\nconsole: 127.0.0.1:9153\n").contains { $0.contains("already used by listen[0]") })
    }
}
