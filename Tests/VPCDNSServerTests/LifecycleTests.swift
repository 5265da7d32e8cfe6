import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import Testing
import VPCDNSCore
@testable import VPCDNSServer

@Suite("ListenerService in a ServiceGroup")
struct LifecycleTests {
    @Test("Graceful shutdown of the group finishes the pending answer and closes the listeners")
    func serviceGroupShutdown() async throws {
        let listeners = DNSListeners(group: testGroup, processor: EchoProcessor(delay: .milliseconds(150)))
        try await listeners.update(to: [loopback])
        let server = await listeners.listeners[0].bound
        let group = ServiceGroup(
            services: [ListenerService(listeners: listeners, gracePeriod: .seconds(2))],
            logger: Logger(label: "test"))
        let client = try await TestUDPClient.make()
        defer { Task { await client.close() } }
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            #expect(try await client.exchange(TestDNS.query(id: 1, name: "a.example.org"), with: server) != nil)
            try await client.send(TestDNS.query(id: 2, name: "slow.example.org"), to: server)
            // Wait (bounded) until the slow query is in flight: a fixed sleep is too short on a loaded machine.
            for _ in 0..<200 where await listeners.inFlight == 0 { try await Task.sleep(for: .milliseconds(10)) }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        let got = await client.inbox.wait(count: 2, timeout: .seconds(1))
        #expect(got.compactMap { TestDNS.header($0)?.id } == [1, 2])
        #expect(await listeners.listeners.isEmpty)
        #expect(try await client.exchange(TestDNS.query(id: 3, name: "a.example.org"), with: server, timeout: .milliseconds(150)) == nil)
    }
}

/// Keeps log messages in memory for assertions.
struct CapturingLogHandler: LogHandler {
    let box: LogBox
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let meta = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        box.messages.withLock { $0.append("\(event.message) \(meta)") }
    }
}

final class LogBox: Sendable {
    let messages = Mutex<[String]>([])
}

extension LifecycleTests {
    @Test("Dropped packets: one line per interval while the count grows, none otherwise")
    func droppedReporter() async throws {
        let box = LogBox()
        let logger = Logger(label: "test") { _ in CapturingLogHandler(box: box) }
        let stats = ListenerStats()
        let reporter = DroppedPacketReporter(stats: stats, interval: .milliseconds(50), logger: logger)
        let group = ServiceGroup(services: [reporter], logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            stats.dropped.add(3, ordering: .relaxed)
            // Wait (bounded) for the first report, then a few quiet intervals with no growth.
            for _ in 0..<200 where !box.messages.withLock({ $0.contains { $0.hasPrefix("dropped packets") } }) {
                try await Task.sleep(for: .milliseconds(10))
            }
            try await Task.sleep(for: .milliseconds(200))
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        let lines = box.messages.withLock { $0 }.filter { $0.hasPrefix("dropped packets") }
        #expect(lines == ["dropped packets new=3 total=3"])
    }
}
