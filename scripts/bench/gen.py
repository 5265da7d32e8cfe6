#!/usr/bin/env python3
"""Generates everything `make bench` runs against, into one folder (standard library only).

    gen.py main  DIR --upstream-port P      the comparison: NSD upstream zones, the vpcdns
                                           split-horizon config, the equivalent Unbound
                                           config, the NSD "ceiling" config, query files
    gen.py scale DIR --upstream-port P [--zones 1000 --records 1000 --vpcs 100]
                                           the zone-scale test: 1,000 zone files of 1,000
                                           records, 100 VPCs with 10 zones each

Every address any server is told to send to is 127.0.0.1 (the loopback upstream NSD);
`check_loopback_only` refuses to write a config that names anything else.

Ports of the servers themselves are not in these files: run.sh fills @PORT@ per start.
"""
import argparse
import ipaddress
import os
import random
import re
import sys

REGION = "us-west-2"
VPC_ID = "vpc-0a11ce0000000001a"
ENDPOINT_TTL = 60  # vpcdns endpoint_dns_ttl
PHZ_TTL = 300
PUBLIC_TTL = 3600  # long enough that (b) never expires during a run
CACHE_SIZE = 100000  # vpcdns cache_size (entries)

# Interface endpoints of the app VPC: (service, endpoint id). Services whose catalog names are
# plain `SERVICE.REGION.amazonaws.com` (ecr.api is `api.ecr...`), no wildcard names, so that
# Unbound's local-data can say exactly the same thing.
ENDPOINT_SERVICES = [
    "ec2", "sts", "kms", "logs", "ssm", "ssmmessages", "ec2messages", "secretsmanager",
    "sqs", "sns", "monitoring", "lambda", "ecs", "elasticloadbalancing", "ecr.api", "events",
]
AZS = ["us-west-2a", "us-west-2b"]

# Names of the public "internet" (the upstream NSD). Regions other than us-west-2 and
# services not in ENDPOINT_SERVICES are never captured by the app VPC's private names.
PUBLIC_REGIONS = ["us-east-1", "us-east-2", "us-west-1", "eu-west-1", "eu-west-2", "eu-central-1",
                  "ap-south-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "sa-east-1",
                  "ca-central-1", "eu-north-1", "me-south-1", "af-south-1", "ap-east-1"]
PUBLIC_SERVICES = ENDPOINT_SERVICES + [
    "dynamodb", "rds", "elasticache", "kinesis", "firehose", "glue", "athena", "cloudformation",
    "autoscaling", "iam", "route53", "acm", "xray", "codebuild", "codecommit", "codedeploy",
    "ebs", "efs", "eks", "emr", "es", "batch", "apigateway", "appsync",
]


def die(msg):
    sys.stderr.write(f"gen.py: {msg}\n")
    sys.exit(1)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def check_loopback_only(path):
    """Every IP:PORT or @PORT target in a server config must be loopback."""
    text = open(path).read()
    for m in re.finditer(r"(?:forward-addr:|upstreams:|targets:|ip-address:|interface:|outgoing-interface:|console:)\s*\[?\"?([0-9a-fA-F:.]+)", text):
        addr = m.group(1).split("@")[0]
        if addr.count(":") == 1:  # IPv4:PORT
            addr = addr.split(":")[0]
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            continue
        if not ip.is_loopback:
            die(f"{path}: {addr} is not a loopback address")
    for line in text.splitlines():
        code = line.split("#", 1)[0]
        if re.search(r"(upstreams|targets):.*\bsystem\b", code):
            die(f"{path}: `system` (the resolv.conf nameservers) is forbidden here: {line.strip()}")


def soa(zone, ttl):
    return f"{zone}. {ttl} IN SOA ns1.{zone}. hostmaster.{zone}. 1 3600 600 604800 60"


# ----------------------------------------------------------------------------------------
# Public upstream (NSD): amazonaws.com and example.com with thousands of names
# ----------------------------------------------------------------------------------------

def public_zones(d):
    rnd = random.Random(1)
    az = [f"$ORIGIN amazonaws.com.", f"$TTL {PUBLIC_TTL}",
          soa("amazonaws.com", PUBLIC_TTL), "@ IN NS ns1.amazonaws.com.", "ns1 IN A 203.0.113.1"]
    cached = []  # (b): names that exist upstream, asked again and again
    n = 0
    for region in PUBLIC_REGIONS + [REGION]:
        for svc in PUBLIC_SERVICES:
            label = "api.ecr" if svc == "ecr.api" else svc
            name = f"{label}.{region}"
            n += 1
            az.append(f"{name} IN A 203.0.{113 + (n // 250) % 3}.{n % 250 + 1}")
            fq = f"{name}.amazonaws.com"
            captured = region == REGION and svc in ENDPOINT_SERVICES
            if not captured:
                cached.append((fq, "A"))
    # Wildcards, as AWS has them (S3 buckets, API Gateway APIs).
    for region in PUBLIC_REGIONS + [REGION]:
        az.append(f"*.s3.{region} IN A 203.0.113.21")
        az.append(f"*.execute-api.{region} IN A 203.0.113.40")
    # The vpce.amazonaws.com names of endpoints that are not ours (R10 forwards them).
    for i in range(500):
        az.append(f"vpce-0{i:016x}-abcdefgh.ec2.{PUBLIC_REGIONS[i % len(PUBLIC_REGIONS)]}.vpce IN A 203.0.114.{i % 250 + 1}")
        cached.append((f"vpce-0{i:016x}-abcdefgh.ec2.{PUBLIC_REGIONS[i % len(PUBLIC_REGIONS)]}.vpce.amazonaws.com", "A"))
    ex = [f"$ORIGIN example.com.", f"$TTL {PUBLIC_TTL}",
          soa("example.com", PUBLIC_TTL), "@ IN NS ns1.example.com.", "ns1 IN A 203.0.113.1",
          "@ IN A 203.0.113.80", "www IN A 203.0.113.80"]
    for i in range(5000):
        ex.append(f"host{i} IN A 198.51.{100 + i // 250 % 2}.{i % 250 + 1}")
        cached.append((f"host{i}.example.com", "A"))
        if i % 5 == 0:
            ex.append(f"host{i} IN AAAA 2001:db8:{i // 65536:x}::{i % 65536:x}")
            cached.append((f"host{i}.example.com", "AAAA"))
        if i % 10 == 0:
            ex.append(f"alias{i} IN CNAME host{i}")
            cached.append((f"alias{i}.example.com", "A"))
    # (c): one wildcard gives every generated miss name a positive answer; names outside it
    # are NXDOMAIN. Either way the resolver has to go upstream for each new name.
    ex.append("*.dyn IN A 198.51.100.250")
    write(f"{d}/upstream/amazonaws.com.zone", "\n".join(az) + "\n")
    write(f"{d}/upstream/example.com.zone", "\n".join(ex) + "\n")
    nsd_conf(f"{d}/upstream/nsd.conf.in", f"{d}/upstream", ["amazonaws.com", "example.com"], server_count=1)
    rnd.shuffle(cached)
    return cached


def nsd_conf(path, zonesdir, zones, server_count, zonefiles=None):
    rundir = os.path.dirname(path)
    lines = [
        "# Generated by scripts/bench/gen.py. Loopback only; @PORT@ is filled in by run.sh.",
        "server:",
        "    ip-address: 127.0.0.1@@PORT@",
        "    port: @PORT@",
        "    do-ip6: no",
        '    username: ""',
        '    chroot: ""',
        f'    zonesdir: "{zonesdir}"',
        f'    pidfile: "{rundir}/nsd-@PORT@.pid"',
        '    database: ""',
        f'    zonelistfile: "{rundir}/zone-@PORT@.list"',
        f'    xfrdfile: "{rundir}/xfrd-@PORT@.state"',
        f'    xfrdir: "{rundir}"',
        f"    server-count: {server_count}",
        "    reuseport: yes",
        "    minimal-responses: yes",
        # NSD's response rate limiting (on by default, 200 q/s per /24) would drop most of
        # a benchmark's queries from 127.0.0.1.
        "    rrl-ratelimit: 0",
        "    rrl-whitelist-ratelimit: 0",
        "    verbosity: 0",
        "    hide-version: yes",
        "remote-control:",
        "    control-enable: no",
    ]
    for z in zones:
        zf = (zonefiles or {}).get(z, f"{z}.zone")
        lines += ["zone:", f'    name: "{z}"', f'    zonefile: "{zf}"']
    write(path, "\n".join(lines) + "\n")


# ----------------------------------------------------------------------------------------
# The private side: endpoints and PHZs of the app VPC, the same for vpcdns, Unbound and NSD
# ----------------------------------------------------------------------------------------

def endpoint_id(i):
    return f"vpce-0{i:04x}b0b0c0d0e0f{i:02x}"[:22]


def private_data(d):
    """Returns (vpcdns endpoints yaml, hosted zones [(name, file)], private records, queries).

    records: {zone_apex: [(owner, ttl, type, rdata)]} -- what every server must answer.
    """
    rnd = random.Random(2)
    endpoints_yaml = []
    records = {}  # zone apex -> list of (owner, ttl, type, rdata)
    queries = []
    vpce_zone = f"{REGION}.vpce.amazonaws.com"
    records[vpce_zone] = []
    for i, svc in enumerate(ENDPOINT_SERVICES):
        eid = endpoint_id(i + 1)
        assert re.fullmatch(r"vpce-[0-9a-f]{17}", eid), eid
        suffix = f"bench{i:03d}"
        ips = [f"10.0.{1 + k}.{10 + i}" for k in range(len(AZS))]
        subnets = "\n".join(f"      - {{az: {a}, ipv4: {ip}}}" for a, ip in zip(AZS, ips))
        endpoints_yaml.append(
            f"  - id: {eid}\n    vpc: {VPC_ID}\n    service: com.amazonaws.{REGION}.{svc}\n"
            f"    dns_suffix: {suffix}\n    subnets:\n{subnets}\n")
        label = "api.ecr" if svc == "ecr.api" else svc
        private_name = f"{label}.{REGION}.amazonaws.com"
        # AWS (and vpcdns) make the private DNS name a private zone of its own in the VPC.
        records[private_name] = [(private_name, ENDPOINT_TTL, "A", ip) for ip in ips]
        queries += [(private_name, "A")] * 80  # the names clients actually ask, most often
        part = ".".join(reversed(svc.split(".")))
        regional = f"{eid}-{suffix}.{part}.{vpce_zone}"
        records[vpce_zone] += [(regional, ENDPOINT_TTL, "A", ip) for ip in ips]
        queries += [(regional, "A")] * 10
        for a, ip in zip(AZS, ips):
            zonal = f"{eid}-{suffix}-{a}.{part}.{vpce_zone}"
            records[vpce_zone].append((zonal, ENDPOINT_TTL, "A", ip))
            queries += [(zonal, "A")] * 10
    # Two private hosted zones with a couple of thousand names.
    zones = []
    for zname, n in (("app.internal", 2000), ("corp.example.internal", 1000)):
        recs = [(zname, PHZ_TTL, "SOA", f"ns1.{zname}. hostmaster.{zname}. 1 3600 600 604800 60"),
                (zname, PHZ_TTL, "NS", f"ns1.{zname}."),
                (f"ns1.{zname}", PHZ_TTL, "A", "10.0.5.53"),
                (zname, PHZ_TTL, "TXT", '"v=spf1 -all"'),
                (zname, PHZ_TTL, "MX", f"10 mail.{zname}."),
                (f"mail.{zname}", PHZ_TTL, "A", "10.0.5.25")]
        queries += [(zname, "TXT"), (zname, "MX"), (f"mail.{zname}", "A")]
        for i in range(n):
            owner = f"svc{i}.{zname}"
            ip = f"10.{20 + len(zones)}.{i // 250}.{i % 250 + 1}"
            recs.append((owner, PHZ_TTL, "A", ip))
            queries.append((owner, "A"))
            if i % 4 == 0:
                recs.append((owner, PHZ_TTL, "AAAA", f"2001:db8:{20 + len(zones)}::{i:x}"))
                queries.append((owner, "AAAA"))
            if i % 50 == 0:
                recs.append((f"_https._tcp.{owner}", PHZ_TTL, "SRV", f"10 5 443 {owner}."))
                queries.append((f"_https._tcp.{owner}", "SRV"))
        records[zname] = recs
        zf = f"{d}/private/{zname}.zone"
        write(zf, zone_text(zname, recs))
        zones.append((zname, zf))
    rnd.shuffle(queries)
    return endpoints_yaml, zones, records, queries


def zone_text(apex, recs):
    out = [f"; generated by scripts/bench/gen.py", f"$ORIGIN {apex}."]
    for owner, ttl, typ, rdata in recs:
        out.append(f"{owner}. {ttl} IN {typ} {rdata}")
    return "\n".join(out) + "\n"


def vpcdns_config(path, endpoints_yaml, zones, upstream_port, query_log=None, threads=None, console=False):
    hz = "".join(f"  - name: {n}\n    vpcs: [{VPC_ID}]\n    file: {f}\n" for n, f in zones)
    text = f"""# Generated by scripts/bench/gen.py: the split-horizon config of the benchmark.
account_id: "111122223333"
listen: ["127.0.0.1:1053"]          # run.sh replaces it with --listen 127.0.0.1:PORT
upstreams: ["127.0.0.1:{upstream_port}"]    # the loopback NSD "internet"; never [system] here
cache_size: {CACHE_SIZE}
endpoint_dns_ttl: {ENDPOINT_TTL}
{"query_log: " + query_log if query_log else "# query_log: off"}
{f"threads: {threads}               # event loops (default: one per core)" if threads else "# threads: one event loop per core"}
{'console: "127.0.0.1:@CONSOLE_PORT@"   # run.sh fills in a free port' if console else "# console: off"}
vpcs:
  - id: {VPC_ID}
    name: app
    region: {REGION}
    cidrs: [10.0.0.0/16]
    clients: [127.0.0.0/8]
    enable_dns_support: true
    enable_dns_hostnames: true
endpoints:
{"".join(endpoints_yaml)}hosted_zones:
{hz}"""
    write(path, text)
    check_loopback_only(path)


def unbound_config(path, d, records, upstream_port, threads):
    """What a user would write to do the same job with Unbound."""
    slabs = 1
    while slabs < threads:
        slabs *= 2
    lines = [
        "# Generated by scripts/bench/gen.py: Unbound doing vpcdns's job for the app VPC.",
        "# Loopback only: forward-zone \".\" to the loopback NSD, no root hints are ever used",
        "# (forward-first: no), no DNSSEC validation (module-config: iterator, no trust anchor).",
        "server:",
        f"    num-threads: {threads}",
        "    interface: 127.0.0.1@@PORT@",
        "    port: @PORT@",
        "    outgoing-interface: 127.0.0.1",
        "    do-ip4: yes",
        "    do-ip6: no",
        "    do-udp: yes",
        "    do-tcp: yes",
        "    so-reuseport: yes",
        "    so-rcvbuf: 4m",
        "    so-sndbuf: 4m",
        # vpcdns cache_size is 100,000 entries; ~500 B an entry (message + rrsets) -> 50 MB.
        "    msg-cache-size: 50m",
        "    rrset-cache-size: 100m",
        f"    msg-cache-slabs: {slabs}",
        f"    rrset-cache-slabs: {slabs}",
        f"    infra-cache-slabs: {slabs}",
        f"    key-cache-slabs: {slabs}",
        "    access-control: 127.0.0.0/8 allow",
        '    chroot: ""',
        '    username: ""',
        f'    directory: "{d}"',
        f'    pidfile: "{d}/unbound-@PORT@.pid"',
        '    logfile: ""',
        "    use-syslog: no",
        "    do-daemonize: no",
        "    verbosity: 0",
        "    log-queries: no",
        "    log-replies: no",
        "    statistics-interval: 0",
        '    module-config: "iterator"',
        "    do-not-query-localhost: no",
        "    qname-minimisation: no",
        "    minimal-responses: yes",
        "    hide-identity: yes",
        "    hide-version: yes",
    ]
    for apex, recs in records.items():
        # The endpoint names and the PHZs are private zones: static (the data or NXDOMAIN/NODATA,
        # never forwarded). The vpce.amazonaws.com names: only the configured names are local,
        # the rest of that domain is forwarded (transparent), as vpcdns does (R10).
        kind = "transparent" if apex.endswith("vpce.amazonaws.com") else "static"
        lines.append(f'    local-zone: "{apex}." {kind}')
        for owner, ttl, typ, rdata in recs:
            rr = f"{owner}. {ttl} IN {typ} {rdata}"
            # TXT data has its own double quotes: single-quote the whole record then.
            lines.append(f"    local-data: '{rr}'" if '"' in rr else f'    local-data: "{rr}"')
    lines += [
        "remote-control:",
        "    control-enable: no",
        "forward-zone:",
        '    name: "."',
        f"    forward-addr: 127.0.0.1@{upstream_port}",
        "    forward-first: no",
    ]
    write(path, "\n".join(lines) + "\n")
    check_loopback_only(path)


def nsd_private(d, records, server_count):
    """NSD serving the same private names authoritatively: the ceiling."""
    files = {}
    for apex, recs in records.items():
        if not any(t == "SOA" for _, _, t, _ in recs):
            recs = [(apex, ENDPOINT_TTL, "SOA", f"ns1.{apex}. hostmaster.{apex}. 1 3600 600 604800 60"),
                    (apex, ENDPOINT_TTL, "NS", f"ns1.{apex}.")] + recs
        write(f"{d}/nsd-private/{apex}.zone", zone_text(apex, recs))
        files[apex] = f"{apex}.zone"
    for sc in server_count:
        nsd_conf(f"{d}/nsd-private/nsd-{sc}.conf.in", f"{d}/nsd-private", list(records), sc, files)


def query_file(path, pairs):
    write(path, "".join(f"{n} {t}\n" for n, t in pairs))


def main_mode(d, upstream_port):
    cached = public_zones(d)
    endpoints_yaml, zones, records, private_q = private_data(d)
    vpcdns_config(f"{d}/vpcdns.yaml", endpoints_yaml, zones, upstream_port)
    vpcdns_config(f"{d}/vpcdns-qlog.yaml", endpoints_yaml, zones, upstream_port, query_log=f"{d}/queries.jsonl")
    vpcdns_config(f"{d}/vpcdns-1t.yaml", endpoints_yaml, zones, upstream_port, threads=1)
    # The console on, query log off: compared with vpcdns.yaml (console off, query log off).
    vpcdns_config(f"{d}/vpcdns-console.yaml", endpoints_yaml, zones, upstream_port, console=True)
    # The console on, query log on: compared with vpcdns-qlog.yaml (the console's own cost).
    vpcdns_config(f"{d}/vpcdns-qlog-console.yaml", endpoints_yaml, zones, upstream_port, query_log=f"{d}/queries-console.jsonl",
                  console=True)
    for t in (1, 2):
        unbound_config(f"{d}/unbound-{t}.conf.in", d, records, upstream_port, t)
    nsd_private(d, records, (1, 2))
    # (a) private answers only; distinct pairs also for the answer check.
    query_file(f"{d}/q-private.txt", private_q)
    query_file(f"{d}/q-private-distinct.txt", sorted(set(private_q)))
    # (b) forwarded names that exist upstream, asked again and again (warmed before the run).
    query_file(f"{d}/q-cached.txt", cached)
    query_file(f"{d}/q-cached-sample.txt", cached[:300])
    # (c) forwarded names mostly missing from the cache: 300,000 distinct names, each asked once
    # per pass (run.sh allows 2 passes); 90% hit the upstream wildcard, 10% are NXDOMAIN.
    rnd = random.Random(3)
    miss = []
    for i in range(300000):
        tag = f"{rnd.getrandbits(40):010x}"
        if i % 10 == 9:
            miss.append((f"m{tag}.nx.example.com", "A"))
        else:
            miss.append((f"m{tag}.dyn.example.com", "A"))
    query_file(f"{d}/q-miss.txt", miss)
    print(f"generated in {d}: {len(private_q)} private queries ({len(set(private_q))} distinct), "
          f"{len(cached)} cached names, {len(miss)} miss names")


# ----------------------------------------------------------------------------------------
# Zone scale: 1,000 zone files x 1,000 records, 100 VPCs x 10 zones
# ----------------------------------------------------------------------------------------

def scale_mode(d, upstream_port, nzones, nrecords, nvpcs):
    per_vpc = max(1, nzones // nvpcs)
    vpcs = []
    hz = []
    q = []
    total = 0
    for z in range(nzones):
        apex = f"zone{z:04d}.scale.internal"
        lines = [f"$ORIGIN {apex}.", f"$TTL {PHZ_TTL}",
                 f"@ IN SOA ns1 hostmaster 1 3600 600 604800 60", "@ IN NS ns1", "ns1 IN A 10.200.0.53"]
        n = 3
        i = 0
        while n < nrecords:
            if i % 10 == 9:
                lines.append(f"h{i} IN AAAA 2001:db8:{z:x}::{i:x}")
            elif i % 50 == 25:
                lines.append(f"h{i} IN TXT \"record {i} of {apex}\"")
            else:
                lines.append(f"h{i} IN A 10.{100 + z // 256}.{z % 256}.{i % 250 + 1}")
            n += 1
            i += 1
        total += n
        write(f"{d}/zones/{apex}.zone", "\n".join(lines) + "\n")
        vpc = z // per_vpc
        hz.append(f"  - name: {apex}\n    vpcs: [vpc-{vpc + 1:017x}]\n    file: zones/{apex}.zone\n")
        if vpc == 0:
            q += [(f"h{k}.{apex}", "A") for k in range(0, nrecords - 3) if k % 10 not in (9,) and k % 50 != 25]
    for v in range(nvpcs):
        vid = f"vpc-{v + 1:017x}"
        clients = "    clients: [127.0.0.0/8]\n" if v == 0 else ""
        vpcs.append(f"  - id: {vid}\n    name: scale{v}\n    region: {REGION}\n    cidrs: [10.{v % 250}.0.0/16]\n"
                    f"{clients}    enable_dns_support: true\n    enable_dns_hostnames: true\n")
    # One interface endpoint in the first VPC: vpcdns-bench times its private name.
    ep = (f"  - id: {endpoint_id(1)}\n    vpc: vpc-{1:017x}\n    service: com.amazonaws.{REGION}.ec2\n"
          f"    dns_suffix: scale000\n    subnets:\n      - {{az: us-west-2a, ipv4: 10.0.1.10}}\n")
    text = (f"# Generated by scripts/bench/gen.py scale: {nzones} zones x {nrecords} records, "
            f"{nvpcs} VPCs x {per_vpc} zones.\n"
            f"account_id: \"111122223333\"\nlisten: [\"127.0.0.1:1053\"]\nupstreams: [\"127.0.0.1:{upstream_port}\"]\n"
            f"cache_size: {CACHE_SIZE}\nvpcs:\n{''.join(vpcs)}endpoints:\n{ep}hosted_zones:\n{''.join(hz)}")
    write(f"{d}/vpcdns-scale.yaml", text)
    check_loopback_only(f"{d}/vpcdns-scale.yaml")
    random.Random(4).shuffle(q)
    query_file(f"{d}/q-scale.txt", q)
    print(f"generated in {d}: {nzones} zones, {total} records, {nvpcs} VPCs, {len(q)} query names (VPC 1's zones)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["main", "scale"])
    ap.add_argument("dir")
    ap.add_argument("--upstream-port", type=int, required=True)
    ap.add_argument("--zones", type=int, default=1000)
    ap.add_argument("--records", type=int, default=1000)
    ap.add_argument("--vpcs", type=int, default=100)
    a = ap.parse_args()
    if a.mode == "main":
        main_mode(a.dir, a.upstream_port)
    else:
        scale_mode(a.dir, a.upstream_port, a.zones, a.records, a.vpcs)
