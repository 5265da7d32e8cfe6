import Logging
import NIOCore
import ServiceLifecycle
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
            try await Task.sleep(for: .milliseconds(20))
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        let got = await client.inbox.wait(count: 2, timeout: .milliseconds(100))
        #expect(got.compactMap { TestDNS.header($0)?.id } == [1, 2])
        #expect(await listeners.listeners.isEmpty)
        #expect(try await client.exchange(TestDNS.query(id: 3, name: "a.example.org"), with: server, timeout: .milliseconds(150)) == nil)
    }
}
