#!/usr/bin/env bash
# `make run`: the example configuration, served on 127.0.0.1:1053 (and the VPCs' own
# loopback addresses), beside its demo "public" DNS: NSD on 127.0.0.1:1054 serving
# zones/public/. Everything stays on loopback. Ctrl-C (or SIGTERM) stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
config="${1:-config/vpcdns.yaml}"
bin="${VPCDNS_BIN:-.build/debug/vpcdns}"

rundir=$(mktemp -d "${TMPDIR:-/tmp}/vpcdns-demo.XXXXXX")
nsd_pid=""
orders_pid=""
cleanup() {
  [ -n "$nsd_pid" ] && kill "$nsd_pid" 2>/dev/null && wait "$nsd_pid" 2>/dev/null || true
  [ -n "$orders_pid" ] && kill "$orders_pid" 2>/dev/null && wait "$orders_pid" 2>/dev/null || true
  rm -rf "$rundir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if (exec 3<>/dev/udp/127.0.0.1/1054) 2>/dev/null && dig +time=1 +tries=1 @127.0.0.1 -p 1054 ec2.us-west-2.amazonaws.com +short | grep -q .; then
  echo "demo upstream: something already answers on 127.0.0.1:1054; using it" >&2
else
  sed "s|@RUNDIR@|$rundir|g" config/nsd-demo.conf.in > "$rundir/nsd.conf"
  nsd-checkconf "$rundir/nsd.conf"
  nsd -d -c "$rundir/nsd.conf" 2> "$rundir/nsd.log" &
  nsd_pid=$!
  for _ in $(seq 1 50); do
    dig +time=1 +tries=1 @127.0.0.1 -p 1054 ec2.us-west-2.amazonaws.com +short 2>/dev/null | grep -q . && break
    kill -0 "$nsd_pid" 2>/dev/null || { cat "$rundir/nsd.log" >&2; echo "demo upstream (NSD) did not start" >&2; exit 1; }
    sleep 0.1
  done
  echo "demo upstream: NSD on 127.0.0.1:1054 serving zones/public/ (pid $nsd_pid)" >&2
fi

# The target of the example's health check `orders-primary` (R18): a small HTTP server on
# 127.0.0.1:18080. Stop it (kill the pid printed) and orders.myservice.internal fails over
# to its SECONDARY within two probes (4 s); start it again and the PRIMARY comes back.
if (exec 3<>/dev/tcp/127.0.0.1/18080) 2>/dev/null; then
  echo "demo health-check target: something already listens on 127.0.0.1:18080; using it" >&2
else
  mkdir -p "$rundir/orders"
  python3 -m http.server 18080 --bind 127.0.0.1 --directory "$rundir/orders" >/dev/null 2>&1 &
  orders_pid=$!
  echo "demo health-check target: python3 -m http.server on 127.0.0.1:18080 (pid $orders_pid)" >&2
fi

cat >&2 <<'TXT'
try, in another terminal:
  dig @127.0.0.1 -p 1053 ec2.us-west-2.amazonaws.com      # app VPC: the endpoint's private IPs
  dig @127.0.20.2 -p 1053 ec2.us-west-2.amazonaws.com     # database VPC: the public answer
  dig @127.0.0.1 -p 1053 www.myservice.internal           # app's private hosted zone
  dig @127.0.0.1 -p 1053 -x 10.0.1.10                     # reverse DNS: the address's EC2 IP name
  nslookup -port=1053 db.bank.example.com 127.0.0.1       # a partner's PrivateLink service
  .build/debug/vpcdns explain ec2.us-west-2.amazonaws.com --from 127.0.0.1 --to 127.0.30.2:1053
  dig @127.0.0.1 -p 1053 orders.myservice.internal +short  # failover: 10.0.5.30 while 127.0.0.1:18080 is up, else 10.0.6.30
  for i in $(seq 20); do dig @127.0.0.1 -p 1053 api.myservice.internal +short | head -1; done | sort | uniq -c   # weighted 90/10
and open the troubleshooting console (live queries, explain, per-VPC chart) at the
"console on http://..." address printed below (config: console: 127.0.0.1:8053).
TXT
"$bin" serve --config "$config" &
vpcdns_pid=$!
trap 'kill -TERM "$vpcdns_pid" 2>/dev/null; wait "$vpcdns_pid"; exit 0' INT TERM
wait "$vpcdns_pid"
