import Foundation
import UDPDatapath
import VPCDNSCore

/// `vpcdns-bench udp-echo`: the UDP datapath with the cheapest handler there is (each query
/// back with QR set), the "physical limit" row of `make bench`: what the kernel and the
/// recvmmsg/sendmmsg loop cost per packet on this machine, without any DNS work.
struct DNSEchoHandler: DatagramHandler {
    func handle(_ datagram: Datagram, reply: UnsafeMutableRawBufferPointer) -> DatagramVerdict {
        let query = datagram.bytes
        // Like a resolver's P4: shorter than a header or already a response, no answer.
        guard query.count >= 12, query[2] & 0x80 == 0, query.count <= reply.count else { return .drop }
        reply.copyMemory(from: query)
        reply[2] |= 0x80
        return .reply(length: query.count)
    }

    func dropped(_ reason: DatagramDropReason, client: DatagramEndpoint) {}
    func socketError(_ code: Int32, on socket: DatagramSocket) {}
}

/// Runs until SIGINT or SIGTERM. Returns the exit status.
func runUDPEcho(_ arguments: [String]) -> Int32 {
    let usage = "usage: vpcdns-bench udp-echo --listen ADDRESS:PORT [--threads N] [--batch N]\n"
    var listen: SocketEndpoint?
    var configuration = UDPDatapath.Configuration()
    configuration.threads = ProcessInfo.processInfo.activeProcessorCount
    configuration.socket = DatagramSocketOptions(receiveBufferBytes: 4 << 20, sendBufferBytes: 4 << 20)
    var args = arguments[...]
    while let a = args.popFirst() {
        switch a {
        case "--listen": listen = args.popFirst().flatMap { SocketEndpoint($0) }
            if listen == nil { FileHandle.standardError.write(Data("--listen: expected ADDRESS:PORT, e.g. 127.0.0.1:5300\n".utf8)); return 64 }
        case "--threads": guard let n = args.popFirst().flatMap(Int.init), n > 0 else { FileHandle.standardError.write(Data(usage.utf8)); return 64 }
            configuration.threads = n
        case "--batch": guard let n = args.popFirst().flatMap(Int.init), n > 0 else { FileHandle.standardError.write(Data(usage.utf8)); return 64 }
            configuration.batch = n
        case "--help", "-h": FileHandle.standardOutput.write(Data(usage.utf8)); return 0
        default: FileHandle.standardError.write(Data(usage.utf8)); return 64
        }
    }
    guard let listen else { FileHandle.standardError.write(Data(usage.utf8)); return 64 }
    // Blocked before the threads start, so that they inherit the mask and sigwait gets them.
    var stopSignals = sigset_t()
    sigemptyset(&stopSignals)
    sigaddset(&stopSignals, SIGINT)
    sigaddset(&stopSignals, SIGTERM)
    pthread_sigmask(SIG_BLOCK, &stopSignals, nil)
    let endpoint: DatagramEndpoint = switch listen.ip {
    case .v4(let v): DatagramEndpoint(address: .v4(v), port: listen.port)
    case .v6(let v): DatagramEndpoint(address: .v6(v), port: listen.port)
    }
    let datapath: UDPDatapath
    do {
        datapath = try UDPDatapath.start(endpoint, configuration: configuration, handler: DNSEchoHandler())
    } catch {
        FileHandle.standardError.write(Data("cannot listen on udp \(listen): \(error.reason)\n".utf8))
        return 1
    }
    FileHandle.standardOutput.write(Data("listening on udp \(datapath.bound) (\(configuration.threads) threads, batch \(configuration.batch))\n".utf8))
    var signal: Int32 = 0
    sigwait(&stopSignals, &signal)
    datapath.close()
    return 0
}
