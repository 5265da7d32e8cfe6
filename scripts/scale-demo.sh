#!/usr/bin/env bash
# Two vpcdns replicas behind dnsdist, each machine in its own network namespace, all on one
# bridge (10.0.0.0/8, no route anywhere else; every packet stays inside these namespaces):
#
#   lb      10.0.0.53   dnsdist (useProxyProtocol=true, a health check every second)
#   r1, r2  10.0.0.11, 10.0.0.12   one `vpcdns serve` each, trusting only 10.0.0.53
#   alpha   10.1.0.5    a test host in VPC alpha (10.1.0.0/16)
#   beta    10.2.0.5    a test host in VPC beta (10.2.0.0/16)
#
# Both VPCs have a private zone svc.internal with a different address for api.svc.internal.
# The replicas only ever see dnsdist's address; they tell the two hosts apart by the PROXY v2
# header dnsdist puts in front of each query. The demo shows:
#   1. dig from each host through dnsdist: each gets its own VPC's answer;
#   2. a zone change and SIGHUP to both replicas under dnsperf load: how many queries were lost;
#   3. replica 2 stopped under dnsperf load: how many were lost in the switch, then replica 1
#      alone answers both hosts;
#   4. both replicas' query logs merged into one timeline by `vpcdns logs filter`.
# Everything (processes, namespaces, files) is removed on exit, also on Ctrl-C.
#
# Usage: scripts/scale-demo.sh [VPCDNS_BINARY]   (make scale-demo). Needs root (network
# namespaces), dnsdist, dnsperf, dig and jq (scripts/install-deps.sh installs them).
# Exit 0 when every check passed, 1 when one failed, 77 when it cannot run here (and why).
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VPCDNS="${1:-$ROOT/.build/debug/vpcdns}"
TAG="sd$$"
NS_SW="vpcdns-$TAG-sw" NS_LB="vpcdns-$TAG-lb" NS_R1="vpcdns-$TAG-r1" NS_R2="vpcdns-$TAG-r2"
NS_A="vpcdns-$TAG-alpha" NS_B="vpcdns-$TAG-beta"
ALL_NS=("$NS_LB" "$NS_R1" "$NS_R2" "$NS_A" "$NS_B" "$NS_SW")
LB=10.0.0.53 R1=10.0.0.11 R2=10.0.0.12 HOST_A=10.1.0.5 HOST_B=10.2.0.5
VPC_A=vpc-0a1fa00000000000a VPC_B=vpc-0be7a00000000000b
NAME=api.svc.internal
WORK="$(mktemp -d /tmp/vpcdns-scale-demo.XXXXXX)"
PIDS=()
FAILED=0

skip() { echo "SKIP (scale-demo): $*" >&2; echo "SKIP (scale-demo): $*"; exit 77; }
fail() { echo "FAIL: $*"; FAILED=1; }
ok() { echo "ok: $*"; }
step() { printf '\n== %s\n' "$*"; }

cleanup() {
  local p ns
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  sleep 0.3
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  # Anything else still running inside this run's namespaces is ours too.
  for ns in "${ALL_NS[@]}"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
  done
  for ns in "${ALL_NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

[ "$(id -u)" -eq 0 ] || skip "not root: network namespaces need root (run: sudo make scale-demo)"
for tool in ip dnsdist dnsperf dig jq; do
  command -v "$tool" >/dev/null || skip "$tool is missing (scripts/install-deps.sh installs it)"
done
[ -x "$VPCDNS" ] || { echo "FAIL: $VPCDNS is missing: run swift build first (make scale-demo does)"; exit 1; }
ip netns add "$NS_SW" 2>"$WORK/netns.err" || skip "ip netns add failed: $(cat "$WORK/netns.err")"

# For foreground commands; background ones call `ip netns exec` directly (a function run with
# & would be a subshell, and $! its pid instead of the command's).
in_ns() { local ns="$1"; shift; ip netns exec "$ns" "$@"; }

# --- The network: a bridge in its own namespace, one veth pair per machine. --------------
ip -n "$NS_SW" link add br0 type bridge 2>"$WORK/bridge.err" || skip "cannot make a bridge in a namespace: $(cat "$WORK/bridge.err")"
set -e
ip -n "$NS_SW" link set br0 up
attach() {  # NAMESPACE ADDRESS PORT
  ip netns add "$1"
  ip -n "$NS_SW" link add "$3" type veth peer name eth0 netns "$1"
  ip -n "$NS_SW" link set "$3" master br0 up
  ip -n "$1" addr add "$2/8" dev eth0
  ip -n "$1" link set eth0 up
  ip -n "$1" link set lo up
}
attach "$NS_LB" "$LB" p0
attach "$NS_R1" "$R1" p1
attach "$NS_R2" "$R2" p2
attach "$NS_A" "$HOST_A" p3
attach "$NS_B" "$HOST_B" p4
set +e

# --- The replicas: one configuration, alpha's zone in a file both load. -------------------
zone() { printf '$ORIGIN svc.internal.\n$TTL 60\napi IN A %s\n' "$1"; }
zone 10.1.0.10 > "$WORK/alpha.zone"
start_replica() {  # N ADDRESS NAMESPACE
  mkdir -p "$WORK/r$1"
  # The upstream is a port on the replica's own loopback where nothing listens: the demo
  # only asks private names.
  cat > "$WORK/r$1/vpcdns.yaml" <<EOF
listen: ["$2:53"]
upstreams: ["127.0.0.1:9"]
upstream_timeout_ms: 500
query_log: $WORK/r$1/queries.jsonl
threads: 1
trusted_proxies: ["$LB/32"]     # dnsdist; a PROXY header from anyone else is dropped
vpcs:
  - {id: $VPC_A, region: us-east-1, cidrs: [10.1.0.0/16], enable_dns_hostnames: true}
  - {id: $VPC_B, region: us-east-1, cidrs: [10.2.0.0/16], enable_dns_hostnames: true}
hosted_zones:
  - {id: Z0A1FA000000000000001, name: svc.internal, vpcs: [$VPC_A], file: $WORK/alpha.zone}
  - id: Z0BE7A000000000000002
    name: svc.internal
    vpcs: [$VPC_B]
    records: [{name: $NAME, type: A, ttl: 60, values: [10.2.0.20]}]
EOF
  # `ip netns exec` execs the command itself, so $! is vpcdns's own pid (signals reach it).
  ip netns exec "$3" "$VPCDNS" serve --config "$WORK/r$1/vpcdns.yaml" >"$WORK/r$1/serve.out" 2>"$WORK/r$1/serve.err" &
  PIDS+=($!)
  eval "PID_R$1=$!"
}
start_replica 1 "$R1" "$NS_R1"
start_replica 2 "$R2" "$NS_R2"
for n in 1 2; do
  for _ in $(seq 100); do grep -q "listening on tcp" "$WORK/r$n/serve.err" && break; sleep 0.1; done
  grep -q "listening on tcp" "$WORK/r$n/serve.err" || { cat "$WORK/r$n/serve.err"; echo "FAIL: replica $n did not start"; exit 1; }
done

# --- dnsdist. -----------------------------------------------------------------------------
cat > "$WORK/dnsdist.conf" <<EOF
setSecurityPollSuffix("")   -- never ask the host's resolver for dnsdist's security status
setLocal("$LB:53")
setACL({"10.0.0.0/8"})
setServerPolicy(roundrobin)
newServer{address="$R1:53", name="replica1", useProxyProtocol=true, checkInterval=1, maxCheckFailures=1, rise=1}
newServer{address="$R2:53", name="replica2", useProxyProtocol=true, checkInterval=1, maxCheckFailures=1, rise=1}
EOF
ip netns exec "$NS_LB" dnsdist --supervised --disable-syslog -C "$WORK/dnsdist.conf" >"$WORK/dnsdist.out" 2>"$WORK/dnsdist.err" &
PIDS+=($!)

ask() {  # HOST_NAMESPACE [dig options...]: the A record of $NAME through dnsdist
  local ns="$1"; shift
  in_ns "$ns" dig @"$LB" "$NAME" +short +time=1 +tries=1 "$@" 2>/dev/null | head -1
}
ready=0
for _ in $(seq 50); do
  [ "$(ask "$NS_A")" = 10.1.0.10 ] && ready=$((ready + 1)) || ready=0
  [ "$ready" -ge 4 ] && break
  sleep 0.2
done
[ "$ready" -ge 4 ] || { cat "$WORK/dnsdist.err"; echo "FAIL: dnsdist never answered steadily"; exit 1; }

step "Set up (namespace: address, role)"
printf '  %-22s %-12s %s\n' \
  "$NS_SW" "-" "the bridge br0 that joins the others" \
  "$NS_LB" "$LB" "dnsdist on :53, PROXY v2 to both replicas, health check every second" \
  "$NS_R1" "$R1" "vpcdns replica 1 on :53 (trusted_proxies: $LB/32)" \
  "$NS_R2" "$R2" "vpcdns replica 2 on :53 (trusted_proxies: $LB/32)" \
  "$NS_A" "$HOST_A" "test host in VPC alpha ($VPC_A, 10.1.0.0/16)" \
  "$NS_B" "$HOST_B" "test host in VPC beta ($VPC_B, 10.2.0.0/16)"
echo "  files: $WORK (removed on exit)"

# --- 1. Each VPC's own answer through dnsdist. ---------------------------------------------
step "1. Each test host asks dnsdist; the replicas see only $LB, and answer by the PROXY v2 client"
for host in "alpha $NS_A $HOST_A 10.1.0.10" "beta $NS_B $HOST_B 10.2.0.20"; do
  set -- $host
  echo "\$ ip netns exec $2 dig @$LB $NAME        # from $3 (VPC $1)"
  in_ns "$2" dig @"$LB" "$NAME" +time=1 +tries=1 +nocmd | grep -v '^;; WHEN\|^;; MSG SIZE\|^$'
  echo "\$ ip netns exec $2 dig @$LB $NAME +tcp +short"
  in_ns "$2" dig @"$LB" "$NAME" +tcp +short +time=1 +tries=1
done
views_ok=1
for _ in 1 2 3 4; do
  [ "$(ask "$NS_A")" = 10.1.0.10 ] && [ "$(ask "$NS_A" +tcp)" = 10.1.0.10 ] || views_ok=0
  [ "$(ask "$NS_B")" = 10.2.0.20 ] && [ "$(ask "$NS_B" +tcp)" = 10.2.0.20 ] || views_ok=0
done
[ "$views_ok" = 1 ] && ok "16 more queries over UDP and TCP: alpha's host always got 10.1.0.10, beta's 10.2.0.20" \
  || fail "a host got another VPC's answer, or none"

perf_num() {  # LABEL FILE: the number dnsperf printed after LABEL
  awk -F: -v l="$1" '$0 ~ l { split($2, f, " "); print f[1]; exit }' "$2"
}
printf '%s A\n' "$NAME" > "$WORK/queries.txt"

# --- 2. A zone change and SIGHUP to both replicas under load. -------------------------------
step "2. alpha's zone changes (10.1.0.10 -> 10.1.0.99) and both replicas get SIGHUP, 1 s into dnsperf from alpha's host (1,000 q/s, at most 5,000 queries, 5 s)"
ip netns exec "$NS_A" dnsperf -s "$LB" -d "$WORK/queries.txt" -n 5000 -l 5 -Q 1000 -c 2 -q 50 -t 2 >"$WORK/reload.perf" 2>&1 &
PERF=$!
sleep 1
zone 10.1.0.99 > "$WORK/alpha.zone.new" && mv "$WORK/alpha.zone.new" "$WORK/alpha.zone"
kill -HUP "$PID_R1" "$PID_R2"
wait "$PERF"
sent=$(perf_num "Queries sent" "$WORK/reload.perf"); lost=$(perf_num "Queries lost" "$WORK/reload.perf")
echo "  dnsperf: sent ${sent:-?}, lost ${lost:-?}"
grep -h "configuration reloaded" "$WORK/r1/serve.err" "$WORK/r2/serve.err" | sed 's/^/  /'
[ "${lost:-1}" = 0 ] && [ "${sent:-0}" -gt 1000 ] && ok "no query lost during the reload" || fail "queries lost during the reload: $(cat "$WORK/reload.perf")"
new_ok=1
for _ in 1 2 3 4; do [ "$(ask "$NS_A")" = 10.1.0.99 ] || new_ok=0; done
[ "$new_ok" = 1 ] && ok "after the reload both replicas answer alpha's host 10.1.0.99" || fail "an old answer after the reload"

# --- 3. Replica 2 stops under load. ---------------------------------------------------------
step "3. replica 2 stops (SIGTERM) 1.5 s into dnsperf from alpha's host (2,000 q/s, at most 8,000 queries, 6 s, 1 s timeout)"
ip netns exec "$NS_A" dnsperf -s "$LB" -d "$WORK/queries.txt" -n 8000 -l 6 -Q 2000 -c 4 -q 100 -t 1 >"$WORK/failover.perf" 2>&1 &
PERF=$!
sleep 1.5
kill -TERM "$PID_R2"
wait "$PID_R2"; r2_exit=$?
# Beside the load, beta's host asks once a time for 3 s, each with a 1 s timeout.
digs=0 dig_failed=0
end=$((SECONDS + 3))
while [ "$SECONDS" -lt "$end" ] && [ "$digs" -lt 100 ]; do
  digs=$((digs + 1))
  [ "$(ask "$NS_B")" = 10.2.0.20 ] || dig_failed=$((dig_failed + 1))
done
wait "$PERF"
sent=$(perf_num "Queries sent" "$WORK/failover.perf"); completed=$(perf_num "Queries completed" "$WORK/failover.perf")
lost=$(perf_num "Queries lost" "$WORK/failover.perf")
echo "  replica 2 exited with $r2_exit"
echo "  dnsperf from alpha's host: sent ${sent:-?}, completed ${completed:-?}, lost ${lost:-?} (those dnsdist sent to replica 2 before its next health check)"
echo "  dig from beta's host right after the stop: $digs queries, $dig_failed failed"
[ -n "$sent" ] && [ -n "$lost" ] && [ "$sent" -gt 1000 ] && [ "$lost" -lt $((sent / 4)) ] \
  && ok "dnsdist moved the load to replica 1: $lost of $sent lost in the switch" || fail "failover: $(cat "$WORK/failover.perf")"
after_ok=1
for _ in 1 2 3; do
  [ "$(ask "$NS_A")" = 10.1.0.99 ] && [ "$(ask "$NS_B")" = 10.2.0.20 ] || after_ok=0
done
[ "$after_ok" = 1 ] && ok "replica 1 alone answers both hosts, each as its own VPC" || fail "answers after the failover"

# --- 4. Both replicas' query logs as one timeline. ------------------------------------------
kill -TERM "$PID_R1"; wait "$PID_R1"
step "4. vpcdns logs filter r1/queries.jsonl r2/queries.jsonl: one timeline by received_at"
n1=$(wc -l < "$WORK/r1/queries.jsonl"); n2=$(wc -l < "$WORK/r2/queries.jsonl")
"$VPCDNS" logs filter "$WORK/r1/queries.jsonl" "$WORK/r2/queries.jsonl" > "$WORK/merged.jsonl"
nm=$(wc -l < "$WORK/merged.jsonl")
echo "  replica 1: $n1 records, replica 2: $n2, merged: $nm"
[ "$nm" -eq $((n1 + n2)) ] && ok "every record of both files is in the merged timeline" || fail "merged $nm of $((n1 + n2))"
jq -r '.vpcdns.received_at' "$WORK/merged.jsonl" | sort -c 2>/dev/null && ok "ordered by vpcdns.received_at" || fail "merged output out of order"
echo "\$ vpcdns logs filter r1/queries.jsonl r2/queries.jsonl --vpc $VPC_B | jq -c '[.vpcdns.received_at, .srcaddr, .vpcdns.proxy, .transport, .query_name, .rcode]' | head -6"
"$VPCDNS" logs filter "$WORK/r1/queries.jsonl" "$WORK/r2/queries.jsonl" --vpc "$VPC_B" \
  | jq -c '[.vpcdns.received_at, .srcaddr, .vpcdns.proxy, .transport, .query_name, .rcode]' | head -6
for f in r1 r2; do
  echo "  $f's log by srcaddr and rcode ($LB: dnsdist's own health checks, PROXY v2 LOCAL):"
  jq -r '"\(.srcaddr) \(.vpc_id) \(.rcode)"' "$WORK/$f/queries.jsonl" | sort | uniq -c | sed 's/^/  /'
done

echo
if [ "$FAILED" -eq 0 ]; then echo "scale-demo: every check passed"; else echo "scale-demo: some checks FAILED"; fi
exit "$FAILED"
