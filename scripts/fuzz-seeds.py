#!/usr/bin/env python3
"""Writes the packet seed corpus (Tests/Fuzz/corpus/packet/): valid queries, with and
without EDNS, for each asker of the harness (query ID mod 6 picks the asker)."""
import os, struct, sys

out = sys.argv[1] if len(sys.argv) > 1 else "Tests/Fuzz/corpus/packet"
os.makedirs(out, exist_ok=True)
T = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28, "SRV": 33, "ANY": 255, "AXFR": 252}

def name(n):
    b = b""
    for label in n.strip(".").split("."):
        if label:
            b += bytes([len(label)]) + label.encode()
    return b + b"\0"

def query(qid, qname, qtype, qclass=1, edns=None, flags=0x0100, qd=1):
    h = struct.pack("!HHHHHH", qid, flags, qd, 0, 0, 1 if edns else 0)
    q = name(qname) + struct.pack("!HH", T.get(qtype, qtype) if isinstance(qtype, str) else qtype, qclass)
    if edns:
        size, version, do = edns
        q += b"\0" + struct.pack("!HHBBHH", 41, size, 0, version, 0x8000 if do else 0, 0)
    return h + q

seeds = {
    "phz-www-a": query(6, "www.myservice.internal", "A"),
    "phz-www-aaaa-edns": query(12, "www.myservice.internal", "AAAA", edns=(1232, 0, False)),
    "phz-mixedcase-mx-edns-do": query(18, "MyService.Internal", "MX", edns=(4096, 0, True)),
    "phz-cname": query(24, "app.myservice.internal", "A"),
    "phz-wildcard": query(30, "x.apps.myservice.internal", "A", edns=(512, 0, False)),
    "phz-nxdomain": query(36, "nope.myservice.internal", "TXT"),
    "phz-srv": query(42, "_https._tcp.myservice.internal", "SRV"),
    "endpoint-ec2": query(48, "ec2.us-west-2.amazonaws.com", "A"),
    "endpoint-s3-inbound": query(1, "bucket.s3.us-west-2.amazonaws.com", "AAAA", edns=(1232, 0, False)),
    "endpoint-ec2-database": query(2, "ec2.us-west-2.amazonaws.com", "A"),
    "endpoint-ec2-legacy": query(3, "ec2.us-west-2.amazonaws.com", "A"),
    "service-db-bank": query(54, "db.bank.example.com", "A"),
    "service-saas": query(60, "api.saas.example.net", "ANY", edns=(1400, 0, False)),
    "forward-rule": query(66, "host.corp.example.com", "A"),
    "upstream": query(72, "www.example.com", "A"),
    "unmatched-client": query(4, "www.myservice.internal", "A"),
    "ipv6-database": query(5, "www.myservice.internal", "A", edns=(1232, 0, False)),
    "bad-edns-version": query(78, "www.myservice.internal", "A", edns=(1232, 1, False)),
    "bad-opcode-notify": query(84, "myservice.internal", "SOA", flags=0x2000),
    "bad-qdcount": query(90, "www.myservice.internal", "A", qd=2),
    "bad-class-chaos": query(96, "version.bind", "TXT", qclass=3),
    "bad-axfr": query(102, "myservice.internal", "AXFR"),
    "explain-bit": query(0x8006, "www.myservice.internal", "A"),
}
for k, v in seeds.items():
    with open(os.path.join(out, k), "wb") as f:
        f.write(v)
print(f"{len(seeds)} seeds in {out}")
