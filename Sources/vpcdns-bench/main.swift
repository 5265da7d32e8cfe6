// Micro-benchmark of the decision engine alone (issue: resolution core). Not a test: it
// prints decisions per second on one core for a private name and for a forwarded name.
//
//   swift build -c release --product vpcdns-bench && .build/release/vpcdns-bench [--config PATH] [--seconds N]
//
// `vpcdns-bench udp-echo --listen 127.0.0.1:PORT [--threads N]` instead serves a DNS echo on
// the UDP datapath until SIGINT/SIGTERM (UDPEcho.swift): the per-packet floor for `make bench`.
import DNSWire
import Foundation
import VPCDNSConfig
import VPCDNSCore

if CommandLine.arguments.dropFirst().first == "udp-echo" {
    exit(runUDPEcho(Array(CommandLine.arguments.dropFirst(2))))
}

var configPath = "config/vpcdns.yaml"
var seconds = 2.0
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--config": configPath = args.popFirst() ?? configPath
    case "--seconds": seconds = Double(args.popFirst() ?? "") ?? seconds
    default: FileHandle.standardError.write(Data("usage: vpcdns-bench [--config PATH] [--seconds N]\n".utf8)); exit(64)
    }
}

let loadStart = ContinuousClock.now
let model: Model
let resolver: Resolver
// Loaded as `serve` loads (heap trimming held off, see HeapPolicy).
switch HeapPolicy.loading({ ConfigLoader.load(path: configPath).map { ($0.model, Resolver(model: $0.model)) } }) {
case .success(let (m, r)): model = m; resolver = r
case .failure(let e): print(e); exit(1)
}
print("loaded \(configPath) in \(ContinuousClock.now - loadStart)")

struct Workload {
    var label: String
    var question: Question
    var client: IPAddress
    var listener: SocketEndpoint
}

let listener = model.settings.listen.first ?? SocketEndpoint("127.0.0.1:1053")!
let client = model.vpcs.first.flatMap { $0.clients.first?.address ?? $0.cidrs.first?.address } ?? IPAddress("127.0.0.1")!
let privateName = model.endpoints.first { $0.kind == .interface && !$0.privateDNSNames.isEmpty }?.privateDNSNames.first { !$0.isWildcard }
    ?? (try! DNSName("ec2.us-west-2.amazonaws.com"))
let workloads = [
    Workload(label: "private (\(privateName.text))", question: Question(name: privateName, type: .a), client: client, listener: listener),
    Workload(label: "forwarded (www.example.org)", question: Question(name: try! DNSName("www.example.org"), type: .a), client: client, listener: listener),
]

for w in workloads {
    // Warm up, then count decisions in batches until the time is up.
    for _ in 0..<10_000 { _ = resolver.resolve(w.question, client: w.client, listener: w.listener) }
    let start = ContinuousClock.now
    let deadline = start + .milliseconds(Int(seconds * 1000))
    var n = 0
    var sink = 0
    while ContinuousClock.now < deadline {
        for _ in 0..<10_000 {
            let d = resolver.resolve(w.question, client: w.client, listener: w.listener)
            if case .answer(let a) = d.outcome { sink &+= a.answer.count } else { sink &+= 1 }
        }
        n += 10_000
    }
    let elapsed = ContinuousClock.now - start
    let secs = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let rate = Double(n) / secs
    print(String(format: "%-50@ %12.0f decisions/s  %8.1f ns/decision  (%d decisions, sink %d)", w.label as NSString, rate, 1e9 / rate, n, sink))
}
