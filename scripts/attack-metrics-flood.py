#!/usr/bin/env python3
"""Holds many idle TCP connections to vpcdns's metrics port while asking forwarded DNS
questions over UDP and TCP, and reports what kept working (docs/operations.md, "Limits and
what they protect"). Loopback only.

  scripts/attack-metrics-flood.py --metrics 127.0.0.1:9153 --dns 127.0.0.1:1053 \
      --zone flood.example.org --pid PID [--connections 1100] [--seconds 60]

Every DNS name asked is new (NAME-RANDOM.ZONE), so each one is a cache miss that vpcdns must
forward: the zone's upstream should answer any name under it (a wildcard).
"""
import argparse, os, random, socket, subprocess, sys, time, urllib.request


def endpoint(text):
    host, port = text.rsplit(":", 1)
    if not host.startswith("127."):
        sys.exit(f"{text}: loopback addresses only")
    return host, int(port)


def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def cpu_seconds(pid):
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return -1.0


def dig(server, name, tcp):
    args = ["dig", f"@{server[0]}", "-p", str(server[1]), name, "A", "+time=2", "+tries=1"]
    if tcp:
        args.append("+tcp")
    out = subprocess.run(args, capture_output=True, text=True, timeout=10).stdout
    for line in out.splitlines():
        if "status: " in line:
            return line.split("status: ")[1].split(",")[0]
    return "no answer"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--metrics", required=True, type=endpoint)
    p.add_argument("--dns", required=True, type=endpoint)
    p.add_argument("--zone", required=True)
    p.add_argument("--pid", type=int, default=0)
    p.add_argument("--connections", type=int, default=1100)
    p.add_argument("--seconds", type=float, default=60)
    a = p.parse_args()

    held = []
    start_cpu = cpu_seconds(a.pid) if a.pid else -1
    print(f"server fds before: {fds(a.pid) if a.pid else '?'}")
    for i in range(0, a.connections, 50):
        for _ in range(min(50, a.connections - i)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(a.metrics)
            except (BlockingIOError, OSError):
                pass
            held.append(s)
        time.sleep(0.03)
    print(f"{len(held)} connections opened; server fds: {fds(a.pid) if a.pid else '?'}")

    results = {}
    t0 = time.monotonic()
    n = 0
    max_fds = 0
    while time.monotonic() - t0 < a.seconds:
        n += 1
        tcp = n % 3 == 0
        status = dig(a.dns, f"q{n}-{random.getrandbits(32)}.{a.zone}", tcp)
        key = ("tcp " if tcp else "udp ") + status
        results[key] = results.get(key, 0) + 1
        if a.pid:
            max_fds = max(max_fds, fds(a.pid))
        time.sleep(0.2)
    closed = 0
    for s in held:
        try:
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds(a.pid) - start_cpu if a.pid else -1
    print(f"held {elapsed:.0f} s: answers {dict(sorted(results.items()))}; server fds at most {max_fds}; "
          f"{closed} of {len(held)} connections closed by the server; server CPU {cpu:.1f} s ({100 * cpu / elapsed:.0f}%)")
    for s in held:
        s.close()
    time.sleep(1)
    try:
        with urllib.request.urlopen(f"http://{a.metrics[0]}:{a.metrics[1]}/metrics", timeout=5) as r:
            print(f"/metrics after the flood: {r.status}")
    except Exception as e:
        print(f"/metrics after the flood: {e}")
    print(f"server fds after: {fds(a.pid) if a.pid else '?'}")


if __name__ == "__main__":
    main()
