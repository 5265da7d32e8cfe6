#!/usr/bin/env bash
# `make bench`: vpcdns against Unbound (1 and 2 threads) and NSD, same machine, same run.
#
# On loopback only: an upstream NSD (the "public" amazonaws.com and example.com, thousands
# of names), vpcdns with a split-horizon config, Unbound configured for the same answers
# (local-data for the private names, forward-zone "." to the same NSD), and NSD serving the
# private names itself (the ceiling). dnsperf drives each in turn, identical settings:
#   (a) private answers (endpoint private DNS names, vpce names, PHZ names), UDP and TCP
#   (b) forwarded names already in the cache (one warm-up pass first)
#   (c) forwarded names mostly missing from the cache (300,000 distinct names, <= 2 passes)
# More rows under (a), same query file, same dnsperf settings:
#   vpcdns+qlog+console: the query log on (a file) and `console` set with one live stream open
#     (curl reading /api/queries/stream for the whole run, as an open page does); compared
#     with vpcdns+qlog: the console's own cost (target <= 1.05x). A difference of a few percent
#     is smaller than what this shared machine moves from one run to the next, so these two
#     run BENCH_CONSOLE_PAIRS times per round as adjacent pairs (in turn A-B, B-A, ...) and the
#     target takes the median of the pairs' ratios (each pair's ratio is printed);
#   vpcdns+console: the same with the query log off; compared with plain `vpcdns` (console
#     off, query log off), informational: with `console` set the server builds the records
#     anyway; and vpcdns+console-idle, as vpcdns+console with no page open
#   the physical limit: a UDP echo that does no DNS work (scripts/bench/udp-echo.c, built here
#     with `cc -O2`: recvmmsg/sendmmsg, SO_REUSEPORT threads; and `vpcdns-bench udp-echo`,
#     vpcdns's own datapath with a trivial handler, when that binary has the command)
# The whole table is measured BENCH_REPEAT times; then the zone-scale test
# (scripts/bench/scale.sh). Prints each repeat's table with the ratios and the targets, and
# every ratio's range over the repeats, and writes it all to bench-results/latest.txt.
#
# Settings (environment): BENCH_SECONDS (5) per measured run, BENCH_ROUNDS (2) rounds per table,
# BENCH_REPEAT (2) tables, BENCH_CLIENTS (10),
# BENCH_OUTSTANDING (100), BENCH_CONSOLE_PAIRS (3), BENCH_SCALE (1: run the scale test), BENCH_KEEP (1: keep the
# temporary folder), VPCDNS_BIN (.build/release/vpcdns), BENCH_BIN (.build/release/vpcdns-bench),
# BENCH_WORKLOADS (all: a comma-separated
# subset of a, a-tcp, b, c, e.g. `BENCH_WORKLOADS=c` or `BENCH_WORKLOADS=a,b`; the others are
# not run and their rows and targets are left out of the table).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
source scripts/bench/lib.sh

BENCH_WORKLOADS=${BENCH_WORKLOADS:-a,a-tcp,b,c}
BENCH_WORKLOADS=${BENCH_WORKLOADS// /}
IFS=, read -r -a workloads <<< "$BENCH_WORKLOADS"
for w in "${workloads[@]}"; do
  case "$w" in a|a-tcp|b|c) ;; *) echo "BENCH_WORKLOADS: unknown workload '$w' (a, a-tcp, b, c)" >&2; exit 2 ;; esac
done
wanted() { case ",$BENCH_WORKLOADS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

[ -x "$VPCDNS_BIN" ] || { echo "no $VPCDNS_BIN: swift build -c release --product vpcdns" >&2; exit 1; }
for t in nsd nsd-checkconf unbound unbound-checkconf dnsperf dig python3 curl cc; do
  command -v "$t" >/dev/null || { echo "missing $t: scripts/install-deps.sh" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/vpcdns-bench.XXXXXX")
RESULTS="$WORK/results.tsv"
: > "$RESULTS"
: > "$WORK/notes.txt"  # one line per special run (query log, console stream), under the table
# The live stream's copy, counted after each console run: in memory (/dev/shm) when the machine
# has it, as a page holds what it reads; 150 MB a run written to disk would make the machine's
# writeback compete with the server being measured.
STREAM_DIR=$(mktemp -d /dev/shm/vpcdns-bench-stream.XXXXXX 2>/dev/null || echo "$WORK")
on_exit() {
  bench_cleanup
  [ "$STREAM_DIR" = "$WORK" ] || rm -rf "$STREAM_DIR"
  if [ "${BENCH_KEEP:-0}" = 1 ]; then bench_log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_time=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
bench_log "work folder $WORK; load average $load_before; ${BENCH_SECONDS} s per run; workloads $BENCH_WORKLOADS; $BENCH_REPEAT repeat(s) of $BENCH_ROUNDS round(s)"

# --- the physical limit: UDP echoes (no DNS work), driven like (a) ----------------------
ECHO_C="$WORK/udp-echo"
cc -O2 -Wall -pthread -o "$ECHO_C" scripts/bench/udp-echo.c
echo_servers="echo-c-1t echo-c-2t"
if [ -x "$BENCH_BIN" ] && "$BENCH_BIN" udp-echo --help >/dev/null 2>&1; then
  echo_servers="$echo_servers echo-vpcdns-1t echo-vpcdns-2t"
  echo_note="vpcdns-bench udp-echo (vpcdns's UDP datapath, trivial handler) and the C echo"
else
  echo_note="the C echo only: $BENCH_BIN has no \`udp-echo\` command (its rows are left out)"
  bench_log "no \`$BENCH_BIN udp-echo\`: the physical-limit rows are the C echo's only"
fi

# --- the upstream "internet": NSD on loopback, up for the whole run -----------------------
up_port=$(free_port)
python3 scripts/bench/gen.py main "$WORK" --upstream-port "$up_port" >&2
up_conf="$WORK/upstream/nsd.conf"
sed "s|@PORT@|$up_port|g" "$WORK/upstream/nsd.conf.in" > "$up_conf"
nsd-checkconf "$up_conf"
nsd -d -c "$up_conf" > "$WORK/upstream/nsd.log" 2>&1 &
UPSTREAM_PID=$!
remember_pid "$UPSTREAM_PID"
wait_ready "$UPSTREAM_PID" "$up_port" host1.example.com A "$WORK/upstream/nsd.log"
bench_log "upstream NSD on 127.0.0.1:$up_port (pid $UPSTREAM_PID)"

# start SERVER: vpcdns | vpcdns-1t | vpcdns+qlog | vpcdns+qlog+console | vpcdns+console[-idle] | unbound-1t | unbound-2t |
# nsd-1 | nsd-2 | echo-c-1t | echo-c-2t | echo-vpcdns-1t | echo-vpcdns-2t
start() {
  case "$1" in
    vpcdns) start_vpcdns "$WORK/vpcdns.yaml" "$1" ;;
    vpcdns-1t) start_vpcdns "$WORK/vpcdns-1t.yaml" "$1" ;;
    vpcdns+qlog) rm -f "$WORK/queries.jsonl"; start_vpcdns "$WORK/vpcdns-qlog.yaml" vpcdns-qlog ;;
    vpcdns+console|vpcdns+console-idle)
      CONSOLE_PORT=$(free_port)
      sed "s|@CONSOLE_PORT@|$CONSOLE_PORT|g" "$WORK/vpcdns-console.yaml" > "$WORK/vpcdns-console-$CONSOLE_PORT.yaml"
      start_vpcdns "$WORK/vpcdns-console-$CONSOLE_PORT.yaml" vpcdns-console ;;
    vpcdns+qlog+console)
      rm -f "$WORK/queries-console.jsonl"
      CONSOLE_PORT=$(free_port)
      sed "s|@CONSOLE_PORT@|$CONSOLE_PORT|g" "$WORK/vpcdns-qlog-console.yaml" > "$WORK/vpcdns-qlog-console-$CONSOLE_PORT.yaml"
      start_vpcdns "$WORK/vpcdns-qlog-console-$CONSOLE_PORT.yaml" vpcdns-qlog-console ;;
    echo-c-1t) start_echo "$1" "$ECHO_C" --threads 1 ;;
    echo-c-2t) start_echo "$1" "$ECHO_C" --threads 2 ;;
    echo-vpcdns-1t) start_echo "$1" "$BENCH_BIN" udp-echo --threads 1 ;;
    echo-vpcdns-2t) start_echo "$1" "$BENCH_BIN" udp-echo --threads 2 ;;
    unbound-1t) start_unbound "$WORK/unbound-1.conf.in" "$1" ;;
    unbound-2t) start_unbound "$WORK/unbound-2.conf.in" "$1" ;;
    nsd-1) start_nsd "$WORK/nsd-private/nsd-1.conf.in" "$1" ;;
    nsd-2) start_nsd "$WORK/nsd-private/nsd-2.conf.in" "$1" ;;
  esac
  wait_ready "$SERVER_PID" "$SERVER_PORT" ec2.us-west-2.amazonaws.com A "$SERVER_LOG"
}

# --- the answers are the same everywhere (else the comparison means nothing) -------------
answer_check="ok"
start vpcdns; v_pid=$SERVER_PID; v_port=$SERVER_PORT
start unbound-1t; u_pid=$SERVER_PID; u_port=$SERVER_PORT
start nsd-1; n_pid=$SERVER_PID; n_port=$SERVER_PORT
python3 scripts/bench/verify.py "$WORK/q-private-distinct.txt" vpcdns="$v_port" unbound="$u_port" nsd="$n_port" >&2 \
  || answer_check="DIFFERENCES in private answers (see the log above)"
python3 scripts/bench/verify.py "$WORK/q-cached-sample.txt" upstream="$up_port" vpcdns="$v_port" unbound="$u_port" >&2 \
  || answer_check="DIFFERENCES in forwarded answers (see the log above)"
stop_server "$v_pid"; stop_server "$u_pid"; stop_server "$n_pid"

# open_stream: the console page's live stream, opened on the vpcdns+console just started
# (SERVER_PID, CONSOLE_PORT) and read until close_stream. Waits (10 s at most) until the
# console answers and the stream has begun, so the whole measured run streams.
open_stream() {
  local i
  for i in $(seq 1 100); do
    curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$CONSOLE_PORT/healthz" && break
    kill -0 "$SERVER_PID" 2>/dev/null || { bench_log "$SERVER_LOG: the console server exited; its log:"; cat "$SERVER_LOG" >&2; return 1; }
    sleep 0.1
  done
  STREAM_OUT="$STREAM_DIR/stream-$repeat-$round${pair:+-$pair}.txt"
  : > "$STREAM_OUT.headers"
  curl -sN --max-time $((BENCH_SECONDS + 120)) -D "$STREAM_OUT.headers" \
    "http://127.0.0.1:$CONSOLE_PORT/api/queries/stream" > "$STREAM_OUT" 2> "$STREAM_OUT.err" &
  STREAM_PID=$!
  remember_pid "$STREAM_PID"
  # The stream's first bytes (an SSE comment) say it is open; -N writes them as they come.
  for i in $(seq 1 100); do
    [ -s "$STREAM_OUT" ] && return 0
    kill -0 "$STREAM_PID" 2>/dev/null || break
    sleep 0.1
  done
  bench_log "the console stream did not open (http://127.0.0.1:$CONSOLE_PORT/api/queries/stream):"
  cat "$STREAM_OUT.headers" "$STREAM_OUT.err" >&2
  return 1
}

# close_stream: stops the reader and notes what the stream delivered during the run.
close_stream() {  # close_stream SERVER
  kill -0 "$STREAM_PID" 2>/dev/null || bench_log "the console stream ended before the run did"
  stop_server "$STREAM_PID"
  local records skipped answered
  records=$(grep -c '^data: *{' "$STREAM_OUT" || true)
  skipped=$(awk '/^event: *skipped/{s=1; next} s && /^data:/{sub(/^data: */, ""); n=$0; s=0} END{print n+0}' "$STREAM_OUT")
  answered=$(tail -1 "$RESULTS" | tr '\t' '\n' | sed -n 's/^completed=//p')
  echo "$1, repeat $repeat round $round${pair:+ pair $pair}: the live stream delivered $records records ($skipped skipped) for $answered measured + $(wc -l < "$WORK/q-private-distinct.txt") warm-up queries" >> "$WORK/notes.txt"
  [ "$records" -gt 0 ] || bench_log "WARNING: the console stream delivered no records: the console row is not measuring a streaming page"
  [ "$STREAM_DIR" = "$WORK" ] || rm -f "$STREAM_OUT"
}

# --- the measured runs: one fresh server per run, workloads outer, servers inner ----------
run() {  # run SERVER WORKLOAD
  local server=$1 workload=$2
  start "$server"
  case "$server" in vpcdns+console|vpcdns+qlog+console) open_stream ;; esac
  case "$workload" in
    a) warm "$SERVER_PORT" "$WORK/q-private-distinct.txt"
       measure "$server" a "$WORK/q-private.txt" "$BENCH_PASSES" ;;
    a-tcp) warm "$SERVER_PORT" "$WORK/q-private-distinct.txt"
       measure "$server" a-tcp "$WORK/q-private.txt" "$BENCH_PASSES" -m tcp ;;
    b) warm "$SERVER_PORT" "$WORK/q-cached.txt"
       measure "$server" b "$WORK/q-cached.txt" "$BENCH_PASSES" ;;
    c) measure "$server" c "$WORK/q-miss.txt" "$BENCH_MISS_PASSES" ;;
  esac
  case "$server" in vpcdns+console|vpcdns+qlog+console) close_stream "$server" ;; esac
  stop_server "$SERVER_PID"
  if [ "$server" = vpcdns+qlog ]; then
    # The log is bounded and may drop records under load: say how many it wrote.
    local lines answered
    lines=$(wc -l < "$WORK/queries.jsonl" 2>/dev/null || echo 0)
    answered=$(tail -1 "$RESULTS" | tr '\t' '\n' | sed -n 's/^completed=//p')
    echo "vpcdns+qlog (query_log to a file in the temp folder), repeat $repeat round $round${pair:+ pair $pair}: query log wrote $lines lines for $answered measured + $(wc -l < "$WORK/q-private-distinct.txt") warm-up queries and the readiness probe$(grep -o "dropped=[0-9]*" "$SERVER_LOG" | tail -1 | sed "s/^/; /" || true)" >> "$WORK/notes.txt"
  fi
}

# BENCH_REPEAT tables, each of BENCH_ROUNDS rounds over every server: a busy spell of the
# machine then hits one round of everyone, each table keeps each server's best round, and the
# repeats show how far a ratio moves from one table to the next.
for repeat in $(seq 1 "$BENCH_REPEAT"); do
  for round in $(seq 1 "$BENCH_ROUNDS"); do
    bench_log "repeat $repeat of $BENCH_REPEAT, round $round of $BENCH_ROUNDS (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    if wanted a; then
      for s in vpcdns vpcdns-1t; do run "$s" a; done
      # The console's cost: adjacent pairs, the order turned each time so neither row always
      # runs first (report.py takes the median of the pairs' ratios).
      for pair in $(seq 1 "$BENCH_CONSOLE_PAIRS"); do
        if [ $((pair % 2)) = 1 ]; then run vpcdns+qlog a; run vpcdns+qlog+console a
        else run vpcdns+qlog+console a; run vpcdns+qlog a; fi
      done
      pair=""
      for s in vpcdns+console vpcdns+console-idle unbound-1t unbound-2t nsd-1 nsd-2 $echo_servers; do run "$s" a; done
    fi
    if wanted a-tcp; then for s in vpcdns vpcdns-1t unbound-1t unbound-2t nsd-1 nsd-2; do run "$s" a-tcp; done; fi
    if wanted b; then for s in vpcdns vpcdns-1t unbound-1t unbound-2t; do run "$s" b; done; fi
    if wanted c; then for s in vpcdns vpcdns-1t unbound-1t unbound-2t; do run "$s" c; done; fi
  done
done

# --- zone scale ------------------------------------------------------------------------
scale_file="$WORK/scale.txt"
if [ "${BENCH_SCALE:-1}" = 1 ]; then
  # Its row belongs to the last repeat (its CPU per query is compared with that table's vpcdns).
  repeat=$BENCH_REPEAT round=1 UPSTREAM_PORT=$up_port WORK="$WORK" RESULTS="$RESULTS" scripts/bench/scale.sh > "$scale_file"
fi

# --- the report --------------------------------------------------------------------------
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(( $(date +%s) - start_time ))
mkdir -p bench-results
{
  echo "vpcdns benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "machine: $(nproc) cores, $(sed -n 's/^model name.*: //p' /proc/cpuinfo | head -1); load average $load_before at start, $load_after at end"
  echo "servers: vpcdns (release, $(nproc) event loops), $(unbound -V | head -1 | sed 's/Version/Unbound/'), $(nsd -v 2>&1 | head -1); $(dnsperf -h 2>&1 | grep -m1 '^Version' | sed 's/Version/dnsperf/')"
  echo "workloads: $BENCH_WORKLOADS"
  echo "runs: every server fresh for every workload, $BENCH_ROUNDS rounds over all servers; each row is the server's best round (highest QPS);"
  echo "      the whole table measured $BENCH_REPEAT time(s) (repeats), the zone-scale test once after the last."
  echo "      vpcdns+qlog and vpcdns+qlog+console: $BENCH_CONSOLE_PAIRS adjacent pairs a round (order turned each pair); the rows show"
  echo "      each one's best run, the console target the median of the pairs' CPU/query ratios."
  echo "dnsperf: -s 127.0.0.1 -l $BENCH_SECONDS -c $BENCH_CLIENTS -q $BENCH_OUTSTANDING -T 1 (default), -t 5 (default); -n $BENCH_PASSES for (a)/(b), -n $BENCH_MISS_PASSES for (c); -m tcp for TCP."
  echo "         identical for every server; no CPU pinning (2 shared cores: dnsperf, the server and the upstream NSD compete)."
  echo "CPU us/q = server user+system CPU (/proc/PID/stat 14+15, all processes of the server) over the run / queries answered."
  echo "upstream us/q = the loopback NSD upstream's CPU in the same run, per answered query. Peak RSS = VmHWM (summed over processes)."
  echo "Unbound: local-zone/local-data for the same private names, forward-zone \".\" to the same NSD, so-rcvbuf 4m,"
  echo "         msg-cache 50m + rrset-cache 100m (vpcdns cache_size 100000), iterator only; NSD: minimal-responses, reuseport."
  echo "answer check (vpcdns, Unbound and NSD give the same answers): $answer_check"
  echo "physical limit: $echo_note; each answers every query with its own bytes and the QR bit set, no DNS work."
  cat "$WORK/notes.txt"
  [ -x scripts/bench-querylog.sh ] && echo "the query log's cost alone, on/off alternating: scripts/bench-querylog.sh"
  echo
  python3 scripts/bench/report.py "$RESULTS" "$scale_file"
  echo
  echo "total time of this benchmark run: ${elapsed} s"
} | tee bench-results/latest.txt
cp "$RESULTS" bench-results/latest.tsv
