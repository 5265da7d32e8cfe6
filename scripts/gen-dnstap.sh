#!/usr/bin/env bash
# Regenerates Sources/VPCDNSDnstap/dnstap.pb.swift from dnstap.proto. Run by hand after
# changing the .proto (never by CI: the generated file is committed). Needs protoc (Debian
# protobuf-compiler) and builds swift-protobuf's protoc-gen-swift, at the version the package
# depends on, in .build-protoc/ (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=1.39.0
SRC=.build-protoc/swift-protobuf
command -v protoc >/dev/null || { echo "protoc is missing: apt-get install -y protobuf-compiler" >&2; exit 1; }
if [ ! -x "$SRC/.build/release/protoc-gen-swift" ]; then
    mkdir -p .build-protoc
    if [ ! -d "$SRC" ]; then
        # The local package mirror when there is one, else the package's own repository.
        if [ -d /opt/swift-packages/apple/swift-protobuf.git ]; then
            git clone -q /opt/swift-packages/apple/swift-protobuf.git "$SRC"
        else
            git clone -q https://github.com/apple/swift-protobuf.git "$SRC"
        fi
    fi
    git -C "$SRC" checkout -q "$VERSION"
    (cd "$SRC" && swift build -c release --product protoc-gen-swift)
fi
protoc --plugin=protoc-gen-swift="$SRC/.build/release/protoc-gen-swift" \
    --swift_out=Sources/VPCDNSDnstap \
    --proto_path=Sources/VPCDNSDnstap \
    Sources/VPCDNSDnstap/dnstap.proto
echo "wrote Sources/VPCDNSDnstap/dnstap.pb.swift"
