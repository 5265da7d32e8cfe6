# Shared by scripts/bench/run.sh and scripts/bench/scale.sh (sourced, not run).
# Everything listens and sends on 127.0.0.1 only. Every server started here is recorded in
# BENCH_PIDS and stopped by bench_cleanup (trap on EXIT), also on Ctrl-C or failure.

BENCH_DIR=${BENCH_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
VPCDNS_BIN=${VPCDNS_BIN:-.build/release/vpcdns}
BENCH_BIN=${BENCH_BIN:-$(dirname "$VPCDNS_BIN")/vpcdns-bench}  # vpcdns-bench udp-echo, when it has it
BENCH_SECONDS=${BENCH_SECONDS:-5}        # dnsperf -l: each measured run
BENCH_ROUNDS=${BENCH_ROUNDS:-2}          # rounds over all servers (run.sh); best round kept
BENCH_REPEAT=${BENCH_REPEAT:-2}          # whole tables (run.sh); each ratio's range reported
BENCH_CONSOLE_PAIRS=${BENCH_CONSOLE_PAIRS:-3}  # vpcdns+qlog / vpcdns+qlog+console pairs per round (run.sh)
BENCH_CLIENTS=${BENCH_CLIENTS:-10}       # dnsperf -c
BENCH_OUTSTANDING=${BENCH_OUTSTANDING:-100}  # dnsperf -q
BENCH_PASSES=${BENCH_PASSES:-1000}       # dnsperf -n for (a) (b): the count bound
BENCH_MISS_PASSES=${BENCH_MISS_PASSES:-2} # dnsperf -n for (c): each miss name at most twice
BENCH_PIDS=()
SERVER_PID=""
SERVER_PORT=""
UPSTREAM_PID=""

bench_log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

bench_cleanup() {
  local p
  for p in "${BENCH_PIDS[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${BENCH_PIDS[@]}"; do
    for _ in $(seq 1 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  BENCH_PIDS=()
}

free_port() {
  # A port free for both TCP and UDP on 127.0.0.1 (the servers bind it right after).
  python3 - <<'PY'
import socket
for _ in range(50):
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        u.close(); t.close()
PY
}

# wait_ready PID PORT NAME TYPE LOG: until the server on PORT answers NAME (5 s at most).
wait_ready() {
  local pid=$1 port=$2 name=$3 type=$4 log=$5
  for _ in $(seq 1 100); do
    if ! kill -0 "$pid" 2>/dev/null; then
      bench_log "server (pid $pid, port $port) exited during start; its log:"; cat "$log" >&2; return 1
    fi
    if dig +time=1 +tries=1 @127.0.0.1 -p "$port" "$name" "$type" 2>/dev/null | grep -q 'status: NOERROR'; then
      return 0
    fi
    sleep 0.05
  done
  bench_log "server (pid $pid, port $port) did not answer $name within 5 s; its log:"; cat "$log" >&2
  return 1
}

remember_pid() { BENCH_PIDS+=("$1"); }

forget_pid() {
  local p keep=()
  for p in "${BENCH_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  BENCH_PIDS=("${keep[@]}")
}

stop_server() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  forget_pid "$pid"
}

# start_from_template CONF_IN LABEL CHECK RUN...: a server from a generated config with @PORT@
# filled in here; CHECK validates the config file, RUN... starts the server on it (in the
# foreground mode, backgrounded here). Sets SERVER_PID, SERVER_PORT, SERVER_LOG.
start_from_template() {
  local conf_in=$1 label=$2 check=$3 port conf log
  shift 3
  port=$(free_port)
  conf="$WORK/run-$label-$port.conf"
  log="$WORK/run-$label-$port.log"
  sed "s|@PORT@|$port|g" "$conf_in" > "$conf"
  "$check" "$conf" >/dev/null
  "$@" "$conf" > "$log" 2>&1 &
  SERVER_PID=$!
  remember_pid "$SERVER_PID"
  SERVER_PORT=$port
  SERVER_LOG=$log
}

# start_nsd CONF_IN LABEL / start_unbound CONF_IN LABEL
start_nsd() { start_from_template "$1" "$2" nsd-checkconf nsd -d -c; }
start_unbound() { start_from_template "$1" "$2" unbound-checkconf unbound -d -c; }

# start_vpcdns CONFIG LABEL
start_vpcdns() {
  local config=$1 label=$2 port log
  port=$(free_port)
  log="$WORK/run-$label-$port.log"
  "$VPCDNS_BIN" serve --config "$config" --listen "127.0.0.1:$port" --log-level warning > "$log" 2>&1 &
  SERVER_PID=$!
  remember_pid "$SERVER_PID"
  SERVER_PORT=$port
  SERVER_LOG=$log
}

# start_echo LABEL PROGRAM ARGS...: a UDP echo (the physical-limit rows) on a free port;
# PROGRAM gets `ARGS... --listen 127.0.0.1:PORT`.
start_echo() {
  local label=$1 port log
  shift
  port=$(free_port)
  log="$WORK/run-$label-$port.log"
  "$@" --listen "127.0.0.1:$port" > "$log" 2>&1 &
  SERVER_PID=$!
  remember_pid "$SERVER_PID"
  SERVER_PORT=$port
  SERVER_LOG=$log
}

# dnsperf_run PORT FILE PASSES OUT [extra dnsperf args]: bounded in time (-l, plus `timeout`)
# and in count (-n passes over FILE).
dnsperf_run() {
  local port=$1 file=$2 passes=$3 out=$4
  shift 4
  timeout $((BENCH_SECONDS + 30)) dnsperf -s 127.0.0.1 -p "$port" -d "$file" -l "$BENCH_SECONDS" -n "$passes" \
    -c "$BENCH_CLIENTS" -q "$BENCH_OUTSTANDING" "$@" > "$out" 2>&1 || {
    bench_log "dnsperf failed (port $port, $file):"; tail -5 "$out" >&2; return 1; }
}

# warm PORT FILE [extra]: one pass over FILE, not measured (bounded: -n 1, 60 s at most).
warm() {
  local port=$1 file=$2
  shift 2
  timeout 90 dnsperf -s 127.0.0.1 -p "$port" -d "$file" -n 1 -l 60 -c "$BENCH_CLIENTS" -q 20 "$@" > "$WORK/warm.out" 2>&1 || true
}

# measure SERVER WORKLOAD FILE PASSES [extra dnsperf args]: one measured run against the
# already started server (SERVER_PID/SERVER_PORT), appended to $RESULTS.
measure() {
  local server=$1 workload=$2 file=$3 passes=$4
  shift 4
  local out="$WORK/dnsperf-$server-$workload.out" b a ub ua
  read -r b _ _ < <(python3 "$BENCH_DIR/procstat.py" "$SERVER_PID")
  ub=0; [ -n "$UPSTREAM_PID" ] && read -r ub _ _ < <(python3 "$BENCH_DIR/procstat.py" "$UPSTREAM_PID")
  dnsperf_run "$SERVER_PORT" "$file" "$passes" "$out" "$@"
  local hwm
  read -r a hwm _ < <(python3 "$BENCH_DIR/procstat.py" "$SERVER_PID")
  ua=0; [ -n "$UPSTREAM_PID" ] && read -r ua _ _ < <(python3 "$BENCH_DIR/procstat.py" "$UPSTREAM_PID")
  local sent completed lost qps lat secs rcodes
  sent=$(awk '/Queries sent:/{print $3; exit}' "$out")
  completed=$(awk '/Queries completed:/{print $3; exit}' "$out")
  lost=$(awk '/Queries lost:/{print $3; exit}' "$out")
  qps=$(awk '/Queries per second:/{print $4; exit}' "$out")
  lat=$(awk '/Average Latency/{print $4; exit}' "$out")
  secs=$(awk '/Run time \(s\):/{print $4; exit}' "$out")
  rcodes=$(sed -n 's/^ *Response codes: *//p' "$out" | sed 's/ ([0-9.]*%)//g')
  printf 'repeat=%s\tround=%s\tpair=%s\tserver=%s\tworkload=%s\tsent=%s\tcompleted=%s\tlost=%s\tqps=%s\tlat=%s\tticks=%s\tupticks=%s\thwm=%s\trcodes=%s\tsecs=%s\n' \
    "${repeat:-1}" "${round:-1}" "${pair:-0}" "$server" "$workload" "$sent" "$completed" "$lost" "$qps" "$lat" "$((a - b))" "$((ua - ub))" "$hwm" "$rcodes" "$secs" >> "$RESULTS"
  bench_log "  $server $workload: $(printf '%.0f' "${qps:-0}") QPS, $completed answered, $lost lost, CPU $((a - b)) ticks, $rcodes"
}
