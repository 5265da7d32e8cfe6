#!/usr/bin/env bash
# The cost of the query log (L1, L2): runs a release vpcdns on loopback twice with the same
# configuration except `query_log` (off / on), drives each with dnsperf for a fixed time on
# private names only, and prints QPS and the server's CPU time per query (user + system from
# /proc/PID/stat fields 14 and 15, before and after the load, divided by the queries
# completed), with the ratio on/off. Target: CPU per query with the log on <= 1.2 x off.
#
# Not a test: the figures depend on the machine and on whatever else runs on it. Both modes
# are run ROUNDS times, alternating, so that a burst of other load hits both.
#
#   scripts/bench-querylog.sh                  # 10 s per run, 2 rounds
#   BENCH_SECONDS=5 ROUNDS=1 scripts/bench-querylog.sh
#   SCRATCH=.build-release scripts/bench-querylog.sh   # build in another scratch folder
#   VPCDNS_BIN=path/to/vpcdns scripts/bench-querylog.sh  # skip the build
#
# Traffic goes to 127.0.0.1 only; every dnsperf run is bounded by -l.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${BENCH_SECONDS:-10}"
rounds="${ROUNDS:-2}"
clients="${CLIENTS:-10}"
outstanding="${OUTSTANDING:-100}"
command -v dnsperf >/dev/null || { echo "dnsperf is needed: apt-get install -y dnsperf" >&2; exit 1; }

if [ -n "${VPCDNS_BIN:-}" ]; then
  bin="$VPCDNS_BIN"
else
  scratch=()
  [ -n "${SCRATCH:-}" ] && scratch=(--scratch-path "$SCRATCH")
  swift build -c release --product vpcdns "${scratch[@]}" >&2
  bin="$(swift build -c release --product vpcdns "${scratch[@]}" --show-bin-path)/vpcdns"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/vpcdns-bench-qlog.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Private names only: a PHZ (A, AAAA, MX, TXT, NXDOMAIN), an endpoint's private DNS, an
# endpoint's own DNS name and a PrivateLink service. `upstreams` names a loopback port that
# no query here reaches (never `system`).
write_config() {  # $1 = query_log line or empty
  cat > "$work/vpcdns.yaml" <<YAML
account_id: "111122223333"
upstreams: ["127.0.0.1:9"]
$1
vpcs:
  - id: vpc-0a11ce0000000001a
    region: us-west-2
    cidrs: [10.0.0.0/16]
    clients: [127.0.0.0/8]
    enable_dns_hostnames: true
endpoints:
  - id: vpce-0ec2a1b2c3d4e5f60
    vpc: vpc-0a11ce0000000001a
    service: com.amazonaws.us-west-2.ec2
    dns_suffix: abcd1234
    subnets:
      - {az: us-west-2a, ipv4: 10.0.1.10}
      - {az: us-west-2b, ipv4: 10.0.2.10}
  - id: vpce-05aa5a1b2c3d4e5f64
    vpc: vpc-0a11ce0000000001a
    service: com.amazonaws.vpce.us-west-2.vpce-svc-05aa5000000000001
    subnets:
      - {az: us-west-2a, ipv4: 10.0.1.40}
endpoint_services:
  - id: vpce-svc-05aa5000000000001
    region: us-west-2
    private_dns_name: api.saas.example.net
    alias_style: flatten
hosted_zones:
  - name: myservice.internal
    vpcs: [vpc-0a11ce0000000001a]
    records:
      - {name: www.myservice.internal, type: A, values: [10.0.5.10]}
      - {name: www.myservice.internal, type: AAAA, values: ["2001:db8:10::10"]}
      - {name: myservice.internal, type: MX, values: ["10 mail.myservice.internal."]}
      - {name: txt.myservice.internal, type: TXT, values: ['"hello world"']}
YAML
}

cat > "$work/queries.txt" <<'Q'
www.myservice.internal A
WWW.MyService.Internal AAAA
nope.myservice.internal A
myservice.internal MX
txt.myservice.internal TXT
ec2.us-west-2.amazonaws.com A
vpce-0ec2a1b2c3d4e5f60-abcd1234.ec2.us-west-2.vpce.amazonaws.com A
api.saas.example.net A
Q

hz=$(getconf CLK_TCK)
cpu_ticks() {  # utime + stime of $1, fields 14 and 15 (counted after the ")" of comm)
  local rest
  rest=$(sed 's/^.*) //' "/proc/$1/stat")
  awk '{ print $12 + $13 }' <<< "$rest"
}

# run MODE -> prints "MODE QPS COMPLETED CPU_US_PER_QUERY LINES DROPPED"
run() {
  local mode=$1 log_line="" port
  rm -f "$work/q.jsonl"
  [ "$mode" = on ] && log_line="query_log: $work/q.jsonl"
  write_config "$log_line"
  "$bin" serve --config "$work/vpcdns.yaml" --listen 127.0.0.1:0 2> "$work/serve.err" &
  server_pid=$!
  for _ in $(seq 1 100); do
    grep -q 'listening on udp 127.0.0.1:' "$work/serve.err" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.err" >&2; exit 1; }
    sleep 0.05
  done
  port=$(grep -o 'listening on udp 127.0.0.1:[0-9]*' "$work/serve.err" | head -1 | sed 's/.*://')
  [ -n "$port" ] || { cat "$work/serve.err" >&2; exit 1; }

  dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries.txt" -l 1 -c "$clients" -q "$outstanding" > /dev/null 2>&1  # warm-up
  local before after out completed qps warm=0
  # The warm-up's records reach the file within 50 ms; the table counts the measured run's only.
  if [ "$mode" = on ]; then sleep 0.3; warm=$(wc -l < "$work/q.jsonl"); fi
  before=$(cpu_ticks "$server_pid")
  out=$(dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries.txt" -l "$seconds" -c "$clients" -q "$outstanding" 2>&1)
  after=$(cpu_ticks "$server_pid")
  completed=$(awk '/Queries completed:/ { print $3 }' <<< "$out")
  qps=$(awk '/Queries per second:/ { printf "%.0f", $4 }' <<< "$out")

  kill -TERM "$server_pid"
  wait "$server_pid" || { echo "vpcdns exited with $?" >&2; cat "$work/serve.err" >&2; exit 1; }
  server_pid=""
  local lines=- dropped=-
  if [ "$mode" = on ]; then
    lines=$(( $(wc -l < "$work/q.jsonl") - warm ))
    dropped=$(grep -o 'dropped=[0-9]*' "$work/serve.err" | tail -1 | cut -d= -f2)
  fi
  awk -v m="$mode" -v q="$qps" -v c="$completed" -v t=$((after - before)) -v hz="$hz" -v l="$lines" -v d="$dropped" \
    'BEGIN { printf "%s %s %s %.2f %s %s\n", m, q, c, t / hz * 1e6 / c, l, d }'
}

results="$work/results.txt"
: > "$results"
for r in $(seq 1 "$rounds"); do
  for mode in off on; do
    echo "round $r: query log $mode, ${seconds}s of dnsperf -c $clients -q $outstanding ..." >&2
    run "$mode" | tee -a "$results" >&2
  done
done

echo
echo "vpcdns query-log cost: release build, private names only, dnsperf -l $seconds -c $clients -q $outstanding, $(nproc) cores"
printf '%-6s %10s %12s %16s %10s %8s\n' log QPS completed "CPU us/query" "log lines" dropped
sort -s -k1,1r "$results" | while read -r m q c cpu l d; do
  printf '%-6s %10s %12s %16s %10s %8s\n' "$m" "$q" "$c" "$cpu" "$l" "$d"
done
awk '
  { cpu[$1] += $4 * $3; n[$1] += $3; qps[$1] += $2; k[$1]++ }
  END {
    off = cpu["off"] / n["off"]; on = cpu["on"] / n["on"]
    printf "\nCPU per query, all rounds: off %.2f us, on %.2f us, ratio on/off %.2f (target <= 1.20)\n", off, on, on / off
    printf "mean QPS: off %.0f, on %.0f\n", qps["off"] / k["off"], qps["on"] / k["on"]
  }' "$results"
