#!/usr/bin/env bash
# Zone scale: 1,000 zone files x 1,000 records (1,000,000 PHZ records), 100 VPCs with 10
# zones each. Measures `vpcdns check` load time and peak RSS, `vpcdns serve` time to
# listening and its RSS after the load, workload (a) against it (names from the first VPC's
# zones), and `vpcdns-bench --config` (decision rate at that size). With BENCH_PROFILE=1,
# `perf record -g` profiles of `vpcdns check` and of `vpcdns serve` up to listening.
#
# Run by scripts/bench/run.sh (which passes WORK, RESULTS, UPSTREAM_PORT), or alone:
#   scripts/bench/scale.sh            (prints key=value lines, then the table of its one run)
# Scale knobs: SCALE_ZONES (1000), SCALE_RECORDS (1000 per zone), SCALE_VPCS (100).
# Output on stdout: key=value lines and notes (run.sh puts them under the table).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/lib.sh

standalone=0
if [ -z "${WORK:-}" ]; then
  standalone=1
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/vpcdns-scale.XXXXXX")
  RESULTS="$WORK/results.tsv"
  : > "$RESULTS"
fi
on_exit() {
  bench_cleanup
  if [ "$standalone" = 1 ] && [ "${BENCH_KEEP:-0}" != 1 ]; then rm -rf "$WORK"; fi
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

SD="$WORK/scale"
mkdir -p "$SD"
# The upstream is only named in the config (no query of this test is forwarded); without
# run.sh's NSD, an unused loopback port.
up=${UPSTREAM_PORT:-$(free_port)}
bench_log "scale: generating ${SCALE_ZONES:-1000} zones x ${SCALE_RECORDS:-1000} records, ${SCALE_VPCS:-100} VPCs"
t0=$(date +%s.%N)
python3 scripts/bench/gen.py scale "$SD" --upstream-port "$up" \
  --zones "${SCALE_ZONES:-1000}" --records "${SCALE_RECORDS:-1000}" --vpcs "${SCALE_VPCS:-100}" >&2
echo "generate_secs=$(echo "$(date +%s.%N) - $t0" | bc -l | xargs printf '%.2f')"
echo "zone_files_mb=$(du -sm "$SD/zones" | cut -f1)"
config="$SD/vpcdns-scale.yaml"

# 1. vpcdns check: wall time and peak RSS of loading and validating everything.
bench_log "scale: vpcdns check"
/usr/bin/time -f '%e %M %U %S' -o "$SD/check.time" "$VPCDNS_BIN" check --config "$config" > "$SD/check.out" 2> "$SD/check.err" \
  || { bench_log "vpcdns check failed:"; tail -5 "$SD/check.err" >&2; }
read -r cs cm cu csys < "$SD/check.time"
echo "check_secs=$cs"
echo "check_cpu_secs=$(echo "$cu + $csys" | bc -l)"
echo "check_maxrss_kb=$cm"

# 2. vpcdns serve: time from exec to "listening on", RSS after the load.
bench_log "scale: vpcdns serve"
t0=$(date +%s.%N)
start_vpcdns "$config" scale
for _ in $(seq 1 1200); do   # 60 s at most
  grep -q 'listening on udp' "$SERVER_LOG" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.05
done
if grep -q 'listening on udp' "$SERVER_LOG"; then
  echo "listen_secs=$(echo "$(date +%s.%N) - $t0" | bc -l | xargs printf '%.2f')"
  read -r ticks hwm _ < <(python3 "$BENCH_DIR/procstat.py" "$SERVER_PID")
  echo "listen_cpu_secs=$(echo "$ticks / $(getconf CLK_TCK)" | bc -l | xargs printf '%.2f')"
  echo "serve_hwm_kb=$hwm"
  echo "serve_rss_kb=$(awk '/^VmRSS:/{print $2}' /proc/"$SERVER_PID"/status)"
  first=$(head -1 "$SD/q-scale.txt")
  wait_ready "$SERVER_PID" "$SERVER_PORT" "${first% *}" A "$SERVER_LOG"
  # 3. workload (a) against 1M records: names of the first VPC's 10 zones.
  warm "$SERVER_PORT" "$SD/q-scale.txt"
  measure vpcdns-1M a "$SD/q-scale.txt" "$BENCH_PASSES"
  read -r _ hwm _ < <(python3 "$BENCH_DIR/procstat.py" "$SERVER_PID")
  echo "serve_hwm_after_run_kb=$hwm"
  stop_server "$SERVER_PID"
else
  echo "listen_secs=failed"
  tail -5 "$SERVER_LOG" | sed 's/^/serve: /'
  stop_server "$SERVER_PID"
fi

# 4. The decision rate at that size (vpcdns-bench: one endpoint name, one forwarded name).
bench_bin="$(dirname "$VPCDNS_BIN")/vpcdns-bench"
if [ -x "$bench_bin" ]; then
  bench_log "scale: vpcdns-bench"
  timeout 300 "$bench_bin" --config "$config" --seconds 2 2>&1 | sed 's/^/vpcdns-bench 1M: /' || echo "vpcdns-bench: failed"
  # The same two decisions with the small config, for comparison (run.sh's benchmark config,
  # else the example; vpcdns-bench opens no socket and writes no log).
  small="$WORK/vpcdns.yaml"
  [ -f "$small" ] || small=config/vpcdns.yaml
  timeout 120 "$bench_bin" --config "$small" --seconds 2 2>&1 | grep decisions/s | sed 's/^/vpcdns-bench small: /' || true
else
  echo "vpcdns-bench: not built ($bench_bin); swift build -c release --product vpcdns-bench"
fi

# 5. Profiles of the load (BENCH_PROFILE=1; they take as long as the loads themselves):
#    `vpcdns check` (load + validation + the summary it prints) and `vpcdns serve` from exec
#    to listening (the load alone). Top functions by self time and by inclusive time.
demangle() { if command -v swift-demangle >/dev/null; then swift-demangle --simplified; else cat; fi; }
perf_top() {  # perf_top DATA LABEL
  perf report -i "$1" --stdio --no-children --percent-limit 1.5 -g none 2>/dev/null > "$SD/perf-self.txt" || true
  perf report -i "$1" --stdio --children --percent-limit 4 -g none 2>/dev/null > "$SD/perf-children.txt" || true
  grep -E '^ +[0-9.]+%' "$SD/perf-self.txt" | head -15 | demangle | cut -c1-220 | sed "s/^/profile $2 (self): /" || true
  # Inclusive time, without the frames every call stack shares (threads, executors, main).
  grep -E '^ +[0-9.]+%' "$SD/perf-children.txt" | demangle \
    | grep -vE 'start_thread|_dispatch_|swift_job_run|runJobInEstablishedExecutorContext|AsyncParsableCommand|ParsableCommand|async_MainTQ|_start$|__libc_start|main$' \
    | head -25 | cut -c1-220 | sed "s/^/profile $2 (inclusive): /" || true
}
if [ "${BENCH_PROFILE:-0}" = 1 ]; then
  if command -v perf >/dev/null; then
    bench_log "scale: perf record -g vpcdns check"
    if perf record -F 499 -g -o "$SD/perf-check.data" -- "$VPCDNS_BIN" check --config "$config" > /dev/null 2> "$SD/perf.err"; then
      perf_top "$SD/perf-check.data" check
    else
      echo "profile: perf record failed: $(tail -1 "$SD/perf.err")"
    fi
    bench_log "scale: perf record -g vpcdns serve (until listening)"
    port=$(free_port)
    perf record -F 499 -g -o "$SD/perf-serve.data" -- "$VPCDNS_BIN" serve --config "$config" --listen "127.0.0.1:$port" \
      > "$SD/perf-serve.log" 2>&1 &
    perf_pid=$!
    remember_pid "$perf_pid"
    for _ in $(seq 1 2400); do   # 120 s at most
      grep -q 'listening on udp' "$SD/perf-serve.log" 2>/dev/null && break
      kill -0 "$perf_pid" 2>/dev/null || break
      sleep 0.05
    done
    # Stop the vpcdns that perf started (perf's own child), then perf writes its data.
    child=$(pgrep -P "$perf_pid" | head -1 || true)
    [ -n "$child" ] && kill -TERM "$child" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$perf_pid" 2>/dev/null || break; sleep 0.1; done
    stop_server "$perf_pid"
    perf_top "$SD/perf-serve.data" serve
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
      mkdir -p bench-results && cp "$SD"/perf-*.data bench-results/ 2>/dev/null || true
    fi
  else
    echo "profile: perf not installed (apt-get install -y linux-perf)"
  fi
elif [ "$(echo "$cs >= 10 || $cm >= 1048576" | bc -l)" = 1 ]; then
  echo "profile: the load misses its target; BENCH_PROFILE=1 scripts/bench/scale.sh shows where the time goes"
fi

if [ "$standalone" = 1 ]; then
  echo
  python3 scripts/bench/report.py "$RESULTS"
fi
