// swift-tools-version: 6.2
import PackageDescription

// Dependency direction (each target only imports the ones above it):
//   CLDNS (libldns, system library); CZlib, CMalloc (glibc heap tuning) likewise
//   DNSWire        pure-Swift DNS values and the per-query wire codec (no libldns)
//   CUDPDatapath   recvmmsg/sendmmsg, cmsg and pktinfo helpers (C) for UDPDatapath
//   UDPDatapath    the UDP datapath: SO_REUSEPORT sockets, a thread each, recvmmsg/sendmmsg
//                  batches over preallocated slots, replies from the address asked (no NIO)
//   LDNSKit        the only module that calls libldns: zone files, rdata text <-> wire (load time)
//   VPCDNSCore     the pure decision engine: model, views, zones, AWS rules (no I/O, no clock)
//   VPCDNSConfig   YAML + zone files -> validated Model; `check` summary and warnings
//   VPCDNSImport   AWS CLI JSON (a snapshot of a real account) -> vpcdns.yaml + zone files (no NIO)
//   VPCDNSDnstap   dnstap messages (protobuf via SwiftProtobuf) over Frame Streams to a unix socket (O8)
//   VPCDNSServer   the I/O shell on SwiftNIO: listeners, upstreams, cache, query log
//   VPCDNSLogs     reading query logs (plain or gzip, via CZlib): filter, summary, private DNS misses
//   VPCDNSConsole  HTTP on Hummingbird: the troubleshooting console (page, JSON API, SSE) and
//                  the `metrics` server (/metrics, /healthz), both bounded (HTTPLimits); reads
//                  timestamps and ages with VPCDNSLogs's parsers
//   vpcdns         the command line
let strict: [SwiftSetting] = [
    .treatWarning("SendableClosureCaptures", as: .error),
]

let package = Package(
    name: "vpcdns",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "vpcdns", targets: ["vpcdns"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        // NIOHTTPTypes: the HTTP parts a handler in a Hummingbird connection's pipeline sees.
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CLDNS",
            pkgConfig: "ldns",
            providers: [.apt(["libldns-dev"])]
        ),
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        // glibc's <malloc.h> (mallopt, malloc_trim) for HeapPolicy; part of libc, nothing to link.
        .systemLibrary(name: "CMalloc"),
        .target(name: "DNSWire", swiftSettings: strict),
        .target(name: "CUDPDatapath"),
        .target(name: "UDPDatapath", dependencies: ["CUDPDatapath"], swiftSettings: strict),
        .target(name: "LDNSKit", dependencies: ["CLDNS", "DNSWire"], swiftSettings: strict),
        .target(name: "VPCDNSCore", dependencies: ["DNSWire"], swiftSettings: strict),
        .target(
            name: "VPCDNSConfig",
            dependencies: ["CMalloc", "DNSWire", "LDNSKit", "VPCDNSCore", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
        .target(name: "VPCDNSImport", dependencies: ["VPCDNSCore", "VPCDNSConfig"], swiftSettings: strict),
        // dnstap.pb.swift is generated from dnstap.proto by scripts/gen-dnstap.sh and committed.
        .target(
            name: "VPCDNSDnstap",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["dnstap.proto"],
            swiftSettings: strict
        ),
        .target(
            name: "VPCDNSServer",
            dependencies: [
                "DNSWire", "VPCDNSCore", "VPCDNSConfig", "VPCDNSDnstap", "UDPDatapath",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // The troubleshooting console (web page + JSON API) on Hummingbird; the server target
        // only offers the record feed and never imports Hummingbird.
        .target(
            name: "VPCDNSConsole",
            dependencies: [
                "DNSWire", "LDNSKit", "VPCDNSCore", "VPCDNSConfig", "VPCDNSLogs", "VPCDNSServer",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "VPCDNSLogs",
            dependencies: ["CZlib", "DNSWire", "VPCDNSCore", "VPCDNSConfig"],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "vpcdns",
            dependencies: [
                "DNSWire", "VPCDNSCore", "VPCDNSConfig", "VPCDNSServer", "VPCDNSLogs", "VPCDNSImport", "VPCDNSConsole",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Not a product: run by scripts/leak-check.sh under LeakSanitizer.
        .executableTarget(name: "ldns-leakcheck", dependencies: ["LDNSKit", "DNSWire"], swiftSettings: strict),
        // Micro-benchmark of the decision engine (not a test; see Makefile `bench-core`).
        .executableTarget(
            name: "vpcdns-bench",
            dependencies: ["DNSWire", "VPCDNSCore", "VPCDNSConfig", "UDPDatapath"],
            swiftSettings: strict
        ),
        // Fuzzing (docs/fuzzing.md, scripts/fuzz.sh): the harness logic, shared by the two
        // libFuzzer executables and the regression tests. Not products, nothing depends on them.
        .target(
            name: "FuzzHarness",
            dependencies: ["DNSWire", "LDNSKit", "VPCDNSCore", "VPCDNSConfig"],
            path: "Sources/Fuzz/FuzzHarness",
            swiftSettings: strict
        ),
        .target(name: "CFuzzerDriver", path: "Sources/Fuzz/CFuzzerDriver"),
        .executableTarget(name: "fuzz-packet", dependencies: ["FuzzHarness", "CFuzzerDriver"], path: "Sources/Fuzz/fuzz-packet", swiftSettings: strict),
        .executableTarget(name: "fuzz-config", dependencies: ["FuzzHarness", "CFuzzerDriver"], path: "Sources/Fuzz/fuzz-config", swiftSettings: strict),
        // Test only: counts the heap allocations of one thread (issue 15's allocation test).
        .target(name: "AllocationCounter", path: "Tests/AllocationCounter"),
        .testTarget(name: "DNSWireTests", dependencies: ["DNSWire"]),
        .testTarget(name: "UDPDatapathTests", dependencies: ["UDPDatapath"]),
        .testTarget(name: "FuzzRegressionTests", dependencies: ["FuzzHarness", "VPCDNSConfig"]),
        .testTarget(name: "LDNSKitTests", dependencies: ["LDNSKit", "DNSWire"]),
        .testTarget(name: "VPCDNSCoreTests", dependencies: ["VPCDNSCore", "VPCDNSConfig", "DNSWire"]),
        .testTarget(name: "VPCDNSConfigTests", dependencies: ["VPCDNSConfig", "VPCDNSCore", "DNSWire", "LDNSKit"]),
        .testTarget(
            name: "VPCDNSServerTests",
            dependencies: [
                "VPCDNSServer", "VPCDNSConfig", "VPCDNSCore", "DNSWire", "VPCDNSImport", "VPCDNSConsole", "VPCDNSLogs", "AllocationCounter",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "CLITests", dependencies: ["DNSWire"]),
        .testTarget(name: "VPCDNSImportTests", dependencies: ["VPCDNSImport", "VPCDNSConfig"], exclude: ["Fixtures"]),
        .testTarget(name: "LogsTests", dependencies: ["VPCDNSLogs", "VPCDNSServer", "VPCDNSConfig", "VPCDNSCore", "DNSWire", "CZlib"]),
    ]
)
