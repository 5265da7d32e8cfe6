import NIOCore
import Synchronization
@testable import VPCDNSServer

/// The test stand-in for the resolver: answers every query with itself, QR set, NOERROR.
///
/// - names whose first label starts with `slow` are answered later (`.pending`), after
///   `delay`, from the event loop's scheduler;
/// - names starting with `away` likewise, but answered from a task off the event loop;
/// - `drop.` names get no answer (`.drop`);
/// - short packets and responses are dropped, as P4 wants.
/// It records which event loops served queries (to see `SO_REUSEPORT` spreading).
final class EchoProcessor: QueryProcessor {
    let delay: TimeAmount
    let loops = Mutex<Set<ObjectIdentifier>>([])
    let contexts = Mutex<[QueryContext]>([])

    init(delay: TimeAmount = .milliseconds(100)) {
        self.delay = delay
    }

    func process(_ query: ByteBuffer, context: QueryContext, responder: QueryResponder) -> QueryProcessingResult {
        loops.withLock { _ = $0.insert(ObjectIdentifier(responder.eventLoop as AnyObject)) }
        contexts.withLock { $0.append(context) }
        guard let reply = TestDNS.echoReply(to: query) else { return .drop }
        let label = TestDNS.firstLabel(query) ?? ""
        if label == "drop" { return .drop }
        if label.hasPrefix("away") {
            // Answered from a thread that is not the channel's event loop.
            let delay = self.delay
            Task.detached {
                try? await Task.sleep(for: .nanoseconds(delay.nanoseconds))
                responder.respond(reply)
            }
            return .pending
        }
        if label.hasPrefix("slow") {
            responder.eventLoop.scheduleTask(in: delay) { responder.respond(reply) }
            return .pending
        }
        return .reply(reply)
    }
}
