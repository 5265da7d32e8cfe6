#!/usr/bin/env bash
# An AWS API on a test host, reached through private DNS, with unchanged clients.
#
# Network namespaces play the hosts (every packet stays inside them and their loopbacks):
#   vpcdns    vpcdns on 10.0.0.2:53 (app's VPC) and 10.1.0.2:53 (db's VPC); a demo "public"
#             DNS (NSD) on its own loopback, 127.0.0.1:5353, as the upstream
#   app       10.0.0.5, in the VPC with the EC2 and STS interface endpoints (private DNS on);
#             its resolv.conf names vpcdns; a link to `endpoint`
#   db        10.1.0.5, another VPC, no endpoints; no route beyond its own /24
#   endpoint  the endpoints' private addresses (10.0.1.10, 10.0.1.11, ...); moto_server on
#             :443 with TLS, its certificate (for ec2/sts.us-west-2.amazonaws.com) signed by
#             a CA made here; clients get the CA through AWS_CA_BUNDLE only
# In app, `aws ec2 describe-vpcs --region us-west-2` (no --endpoint-url, no hosts file)
# resolves through vpcdns to the endpoint and gets moto's answer; in db the same command
# gets the public address (203.0.113.10), has no route to it, and fails at once.
# Run 1 uses a hand-written config; run 2 the config `vpcdns import aws` made from moto's
# own describe-* output (VPCs and endpoints created in moto with awscli first).
#
# Usage: scripts/e2e-aws.sh [VPCDNS_BINARY]   (make e2e-aws). Exit 0 pass, 1 fail, 77 skipped.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VPCDNS="${1:-$ROOT/.build/debug/vpcdns}"
TAG="e2e$$"
NS_V="vpcdns-$TAG-vpcdns" NS_A="vpcdns-$TAG-app" NS_D="vpcdns-$TAG-db" NS_E="vpcdns-$TAG-endpoint"
WORK="$(mktemp -d /tmp/vpcdns-e2e-aws.XXXXXX)"
PIDS=()
FAILED=0

skip() { echo "SKIP (e2e-aws): $*" >&2; echo "SKIP (e2e-aws): $*"; exit 77; }
fail() { echo "FAIL: $*"; FAILED=1; }
ok() { echo "ok: $*"; }

cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  sleep 0.3
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  # Anything else still running inside this run's namespaces (children of the above) is ours too.
  for ns in "$NS_V" "$NS_A" "$NS_D" "$NS_E"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
  done
  for ns in "$NS_V" "$NS_A" "$NS_D" "$NS_E"; do
    ip netns del "$ns" 2>/dev/null
    rm -rf "/etc/netns/$ns"
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

[ "$(id -u)" -eq 0 ] || skip "not root: cannot create network namespaces"
command -v ip >/dev/null || skip "iproute2 (ip) is missing"
command -v moto_server >/dev/null || skip "moto_server is missing (pip install 'moto[server]')"
command -v aws >/dev/null || skip "awscli is missing (pip install awscli)"
command -v nsd >/dev/null || skip "nsd is missing"
command -v openssl >/dev/null || skip "openssl is missing"
[ -x "$VPCDNS" ] || { echo "FAIL: $VPCDNS is missing: run swift build first"; exit 1; }
ip netns add "$NS_V" 2>"$WORK/netns.err" || skip "ip netns add failed: $(cat "$WORK/netns.err")"
for ns in "$NS_A" "$NS_D" "$NS_E"; do ip netns add "$ns" || { echo "FAIL: ip netns add $ns"; exit 1; }; done

in_ns() { local ns="$1"; shift; ip netns exec "$ns" "$@"; }
set -e
for ns in "$NS_V" "$NS_A" "$NS_D" "$NS_E"; do ip -n "$ns" link set lo up; done
# vpcdns <-> app, vpcdns <-> db, app <-> endpoint: veth pairs created inside the namespaces.
ip -n "$NS_V" link add va type veth peer name eth0 netns "$NS_A"
ip -n "$NS_V" link add vd type veth peer name eth0 netns "$NS_D"
ip -n "$NS_A" link add ee type veth peer name eth0 netns "$NS_E"
ip -n "$NS_V" addr add 10.0.0.2/24 dev va; ip -n "$NS_V" link set va up
ip -n "$NS_V" addr add 10.1.0.2/24 dev vd; ip -n "$NS_V" link set vd up
ip -n "$NS_A" addr add 10.0.0.5/24 dev eth0; ip -n "$NS_A" link set eth0 up
ip -n "$NS_D" addr add 10.1.0.5/24 dev eth0; ip -n "$NS_D" link set eth0 up
ip -n "$NS_A" addr add 10.0.9.1/24 dev ee; ip -n "$NS_A" link set ee up
ip -n "$NS_A" route add 10.0.1.0/24 dev ee
ip -n "$NS_E" link set eth0 up
ip -n "$NS_E" route add 10.0.9.0/24 dev eth0
ip -n "$NS_E" addr add 10.0.1.10/32 dev eth0
ip -n "$NS_E" addr add 10.0.1.11/32 dev eth0
mkdir -p "/etc/netns/$NS_A" "/etc/netns/$NS_D"
echo "nameserver 10.0.0.2" > "/etc/netns/$NS_A/resolv.conf"
echo "nameserver 10.1.0.2" > "/etc/netns/$NS_D/resolv.conf"
set +e
# db has no route to the public address: the failure must be immediate, and nothing leaves.
in_ns "$NS_D" ip route get 203.0.113.10 >/dev/null 2>&1 && fail "db has a route to 203.0.113.10"

# --- TLS: a CA made here, a certificate for the API names the endpoints carry.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=vpcdns e2e test CA" \
  -keyout "$WORK/ca.key" -out "$WORK/ca.pem" >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -subj "/CN=ec2.us-west-2.amazonaws.com" \
  -keyout "$WORK/server.key" -out "$WORK/server.csr" >/dev/null 2>&1
printf 'subjectAltName=DNS:ec2.us-west-2.amazonaws.com,DNS:sts.us-west-2.amazonaws.com\n' > "$WORK/san.ext"
openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial -days 1 \
  -extfile "$WORK/san.ext" -out "$WORK/server.pem" >/dev/null 2>&1 || { echo "FAIL: openssl"; exit 1; }

# Started with `ip netns exec` itself (not through a shell function, which would fork a
# subshell): $! is then the server's own PID, which the cleanup stops.
ip netns exec "$NS_E" moto_server -H 0.0.0.0 -p 443 -c "$WORK/server.pem" -k "$WORK/server.key" >"$WORK/moto.log" 2>&1 &
PIDS+=($!)

# --- the demo "public" DNS, on the vpcdns namespace's own loopback.
mkdir -p "$WORK/nsd"
cp "$ROOT/zones/public/amazonaws.com.zone" "$WORK/nsd/amazonaws.com.zone"
cat > "$WORK/nsd/nsd.conf" <<NSD
server:
    ip-address: 127.0.0.1
    port: 5353
    server-count: 1
    username: ""
    chroot: ""
    database: ""
    zonesdir: "$WORK/nsd"
    zonelistfile: "$WORK/nsd/zone.list"
    xfrdfile: "$WORK/nsd/xfrd.state"
    pidfile: "$WORK/nsd/nsd.pid"
    logfile: "$WORK/nsd/nsd.log"
    do-ip6: no
remote-control:
    control-enable: no
zone:
    name: amazonaws.com
    zonefile: amazonaws.com.zone
NSD
ip netns exec "$NS_V" nsd -d -c "$WORK/nsd/nsd.conf" >"$WORK/nsd/stdout" 2>&1 &
PIDS+=($!)

# Unchanged clients: only the CA, dummy credentials and a fast-fail retry policy in the environment.
aws_in() {
  local ns="$1"; shift
  in_ns "$ns" env -i PATH="$PATH" HOME="$WORK/home" AWS_CA_BUNDLE="$WORK/ca.pem" \
    AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
    AWS_EC2_METADATA_DISABLED=true AWS_RETRY_MODE=standard AWS_MAX_ATTEMPTS=1 \
    timeout 30 aws --cli-connect-timeout 3 --cli-read-timeout 10 "$@"
}
mkdir -p "$WORK/home"

VPCDNS_PID=""
start_vpcdns() {   # CONFIG LOG
  if [ -n "$VPCDNS_PID" ]; then
    kill "$VPCDNS_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$VPCDNS_PID" 2>/dev/null || break; sleep 0.1; done
    wait "$VPCDNS_PID" 2>/dev/null
  fi
  for _ in $(seq 1 50); do   # the old listeners are gone before the new ones bind
    in_ns "$NS_V" ss -Htlnu 2>/dev/null | grep -q ':53 ' || break
    sleep 0.1
  done
  ip netns exec "$NS_V" "$VPCDNS" serve --config "$1" >"$WORK/serve.stdout" 2>"$2" &
  VPCDNS_PID=$!
  PIDS+=("$VPCDNS_PID")
  for _ in $(seq 1 100); do
    [ "$(grep -c '^listening on' "$2" 2>/dev/null)" -ge 4 ] && return 0
    kill -0 "$VPCDNS_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL: vpcdns did not start:"; cat "$2"; exit 1
}

wait_moto() {
  for _ in $(seq 1 100); do
    in_ns "$NS_E" bash -c 'exec 3<>/dev/tcp/127.0.0.1/443' 2>/dev/null && return 0
    sleep 0.1
  done
  echo "FAIL: moto_server did not start:"; cat "$WORK/moto.log"; exit 1
}

# The two commands of the demo, and what they must show. $1: run label, $2: config, $3: query log.
check_run() {
  local label="$1" config="$2" qlog="$3"
  echo
  echo "=== $label: [app] aws ec2 describe-vpcs --region us-west-2"
  local t0=$(date +%s.%N)
  aws_in "$NS_A" ec2 describe-vpcs --region us-west-2 >"$WORK/app.out" 2>"$WORK/app.err"
  local app_rc=$?
  cat "$WORK/app.out" "$WORK/app.err"
  echo "(exit $app_rc)"
  [ "$app_rc" -eq 0 ] && grep -q '"VpcId": "vpc-' "$WORK/app.out" && ok "$label: app got moto's answer through the endpoint" \
    || fail "$label: app's describe-vpcs did not succeed"
  echo "=== $label: [db] aws ec2 describe-vpcs --region us-west-2"
  t0=$(date +%s)
  aws_in "$NS_D" ec2 describe-vpcs --region us-west-2 >"$WORK/db.out" 2>"$WORK/db.err"
  local db_rc=$? t1=$(date +%s)
  cat "$WORK/db.out" "$WORK/db.err"
  echo "(exit $db_rc after $((t1 - t0)) s)"
  [ "$db_rc" -ne 0 ] && grep -q 'Could not connect to the endpoint URL' "$WORK/db.err" && [ $((t1 - t0)) -lt 10 ] \
    && ok "$label: db failed fast (public address, no route)" || fail "$label: db's describe-vpcs should fail fast with no route"
  sleep 1.2   # the query log is written within a second (L1)
  echo "=== $label: query log"
  local app_line db_line
  app_line=$(grep '"query_name":"ec2.us-west-2.amazonaws.com."' "$qlog" | grep '"srcaddr":"10.0.0.5"' | head -1)
  db_line=$(grep '"query_name":"ec2.us-west-2.amazonaws.com."' "$qlog" | grep '"srcaddr":"10.1.0.5"' | head -1)
  echo "$app_line"; echo "$db_line"
  echo "$app_line" | grep -q '"decision":"endpoint-private-dns"' && ok "$label: app's query decided endpoint-private-dns" || fail "$label: app's query log line"
  echo "$db_line" | grep -q '"decision":"upstream"' && ok "$label: db's query went upstream" || fail "$label: db's query log line"
  echo "=== $label: vpcdns explain ec2.us-west-2.amazonaws.com A --from 10.1.0.5 --to 10.1.0.2:53"
  "$VPCDNS" explain ec2.us-west-2.amazonaws.com A --from 10.1.0.5 --to 10.1.0.2:53 --config "$config" | tee "$WORK/explain.out"
  grep -qi 'upstream' "$WORK/explain.out" && ok "$label: explain says why db goes upstream" || fail "$label: explain"
}

# --- run 1: a hand-written config.
cat > "$WORK/vpcdns.yaml" <<YAML
account_id: "123456789012"
listen: ["10.0.0.2:53", "10.1.0.2:53"]
upstreams: ["127.0.0.1:5353"]   # the demo public DNS on this namespace's loopback
query_log: $WORK/queries-1.jsonl
vpcs:
  - id: vpc-0a11ce0000000001a
    name: app
    region: us-west-2
    cidrs: [10.0.0.0/16]
    enable_dns_support: true
    enable_dns_hostnames: true
  - id: vpc-0db0000000000002b
    name: db
    region: us-west-2
    cidrs: [10.1.0.0/16]
    enable_dns_support: true
    enable_dns_hostnames: true
endpoints:
  - id: vpce-0ec2a1b2c3d4e5f60
    vpc: vpc-0a11ce0000000001a
    service: com.amazonaws.us-west-2.ec2
    subnets: [{az: us-west-2a, ipv4: 10.0.1.10}]
  - id: vpce-0575a1b2c3d4e5f61
    vpc: vpc-0a11ce0000000001a
    service: com.amazonaws.us-west-2.sts
    subnets: [{az: us-west-2a, ipv4: 10.0.1.11}]
YAML
start_vpcdns "$WORK/vpcdns.yaml" "$WORK/serve-1.stderr"
wait_moto
check_run "run 1 (hand-written config)" "$WORK/vpcdns.yaml" "$WORK/queries-1.jsonl"

# --- run 2: the account lives in moto; snapshot it with the read-only commands, import, serve.
echo
echo "=== run 2: creating the VPCs and endpoints in moto (awscli from app, through vpcdns)"
A() { aws_in "$NS_A" --region us-west-2 --output text "$@"; }
VPC_APP=$(A ec2 create-vpc --cidr-block 10.0.0.0/16 --tag-specifications 'ResourceType=vpc,Tags=[{Key=Name,Value=app}]' --query Vpc.VpcId)
VPC_DB=$(A ec2 create-vpc --cidr-block 10.1.0.0/16 --tag-specifications 'ResourceType=vpc,Tags=[{Key=Name,Value=db}]' --query Vpc.VpcId)
for v in "$VPC_APP" "$VPC_DB"; do A ec2 modify-vpc-attribute --vpc-id "$v" --enable-dns-hostnames '{"Value":true}'; done
SUBNET=$(A ec2 create-subnet --vpc-id "$VPC_APP" --cidr-block 10.0.1.0/24 --availability-zone us-west-2a --query Subnet.SubnetId)
EP_EC2=$(A ec2 create-vpc-endpoint --vpc-id "$VPC_APP" --vpc-endpoint-type Interface --service-name com.amazonaws.us-west-2.ec2 \
  --subnet-ids "$SUBNET" --private-dns-enabled --query VpcEndpoint.VpcEndpointId)
EP_STS=$(A ec2 create-vpc-endpoint --vpc-id "$VPC_APP" --vpc-endpoint-type Interface --service-name com.amazonaws.us-west-2.sts \
  --subnet-ids "$SUBNET" --private-dns-enabled --query VpcEndpoint.VpcEndpointId)
echo "app $VPC_APP, db $VPC_DB, subnet $SUBNET, endpoints $EP_EC2 (ec2) $EP_STS (sts)"
[ -n "$VPC_APP" ] && [ -n "$EP_EC2" ] || { fail "creating the account in moto"; exit 1; }

SNAP="$WORK/aws-snapshot"; mkdir -p "$SNAP"
J() { aws_in "$NS_A" --region us-west-2 --output json "$@"; }
J ec2 describe-vpcs > "$SNAP/vpcs.json"
for v in $(A ec2 describe-vpcs --query 'Vpcs[].VpcId'); do
  J ec2 describe-vpc-attribute --vpc-id "$v" --attribute enableDnsSupport > "$SNAP/vpc-attribute-$v-support.json"
  J ec2 describe-vpc-attribute --vpc-id "$v" --attribute enableDnsHostnames > "$SNAP/vpc-attribute-$v-hostnames.json"
done
J ec2 describe-vpc-endpoints > "$SNAP/vpc-endpoints.json"
# moto quirk: its endpoint ENIs carry no interface-type, so the documented filter
# (Name=interface-type,Values=vpc_endpoint) returns none; ask for all interfaces instead.
J ec2 describe-network-interfaces > "$SNAP/network-interfaces.json"
# moto quirk: DnsEntries read `vpce-ID-SUFFIX.com.amazonaws.us-west-2.ec2`, not AWS's
# `vpce-ID-SUFFIX.ec2.us-west-2.vpce.amazonaws.com`, and list no private DNS name; the
# import follows AWS's shape (it warns and ignores such an entry; the private names come
# from the catalog, as AWS's own for ec2 and sts).
"$VPCDNS" import aws "$SNAP" --out "$WORK/imported" --region us-west-2 \
  --listen 10.0.0.2:53 --listen 10.1.0.2:53 --upstream 127.0.0.1:5353 2>&1 | tee "$WORK/import.out"
[ -f "$WORK/imported/vpcdns.yaml" ] || { fail "import wrote no config"; exit 1; }
echo "query_log: $WORK/queries-2.jsonl" >> "$WORK/imported/vpcdns.yaml"
"$VPCDNS" check --config "$WORK/imported/vpcdns.yaml" > "$WORK/check-2.out" 2>&1 || { cat "$WORK/check-2.out"; fail "check on the imported config"; exit 1; }
ok "run 2: the imported config passes check"
# moto picked the endpoints' addresses in the subnet: the endpoint host takes them over.
# moto quirk: it picks an endpoint's ENI address at random, not inside the subnet's CIDR, so
# app gets a host route to each such address over its link to the endpoint host.
for ip in $(sed -n 's/.*ipv4: "\([0-9.]*\)".*/\1/p' "$WORK/imported/vpcdns.yaml"); do
  ip -n "$NS_E" addr add "$ip/32" dev eth0 2>/dev/null
  ip -n "$NS_A" route add "$ip/32" dev ee 2>/dev/null
  echo "endpoint host now also holds $ip"
done
start_vpcdns "$WORK/imported/vpcdns.yaml" "$WORK/serve-2.stderr"
check_run "run 2 (config from vpcdns import aws)" "$WORK/imported/vpcdns.yaml" "$WORK/queries-2.jsonl"
grep -q "$VPC_APP" "$WORK/app.out" && ok "run 2: app's answer lists the VPCs created in moto" || fail "run 2: app's answer"

echo
if [ "$FAILED" -eq 0 ]; then echo "e2e-aws: 1 passed, 0 failed"; exit 0; fi
echo "e2e-aws: 0 passed, 1 failed"; exit 1
