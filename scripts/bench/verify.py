#!/usr/bin/env python3
"""verify.py QUERYFILE NAME=PORT [NAME=PORT ...]: do these servers give the same answers?

Asks every `name type` line of QUERYFILE of each server on 127.0.0.1 (one `dig -f` batch per
server) and compares, per question, the rcode and the answer section as a set of
(owner, class, type, rdata) -- TTLs (caches count them down) and record order (round robin)
are left out. The first server is the reference. Exit status 1 on any difference.
"""
import re
import subprocess
import sys


def ask(qfile, port, one=None):
    """Answers by question; `one` = (name, type) asks just that (a retry), else all of qfile."""
    what = ["-q", one[0], "-t", one[1]] if one else ["-f", qfile]
    out = subprocess.run(
        ["dig", "@127.0.0.1", "-p", str(port), "+tries=2" if one else "+tries=1", "+time=2", "+noall",
         "+comments", "+question", "+answer", "+nocookie"] + what,
        capture_output=True, text=True, timeout=300).stdout
    res, cur = {}, None
    status = None
    for line in out.splitlines():
        if "->>HEADER<<-" in line:
            status = line.split("status:")[1].split(",")[0].strip()
        elif status is not None and re.match(r"^;\S+\s+IN\s+\S+$", line):
            f = line[1:].split()
            cur = (f[0].lower(), f[-1].upper())
            res[cur] = [status, set()]
            status = None
        elif line and not line.startswith(";") and cur is not None:
            f = line.split()
            if len(f) >= 5:
                res[cur][1].add((f[0].lower(), f[2], f[3], " ".join(f[4:]).lower()))
    return res


def main():
    qfile = sys.argv[1]
    servers = [a.split("=", 1) for a in sys.argv[2:]]
    wanted = []
    for line in open(qfile):
        f = line.split()
        if f:
            wanted.append((f[0].lower().rstrip(".") + ".", f[1].upper()))
    answers = {name: ask(qfile, port) for name, port in servers}
    ref_name = servers[0][0]
    ref = answers[ref_name]
    # A question that differs is asked again, alone, of every server (a reply lost on a busy
    # machine is not a wrong answer).
    for q in wanted:
        rs = [answers[n].get(q) for n, _ in servers]
        if any(r is None or r != rs[0] for r in rs) or (rs[0][0] == "NOERROR" and not rs[0][1]):
            for name, port in servers:
                answers[name].update(ask(qfile, port, one=q))
    bad = 0
    for q in wanted:
        r = ref.get(q)
        if r is None or (r[0] == "NOERROR" and not r[1] and not q[1] in ("TXT", "MX")):
            bad += 1
            if bad <= 5:
                print(f"  {ref_name}: no answer for {q[0]} {q[1]}: {r}")
            continue
        for name, _ in servers[1:]:
            o = answers[name].get(q)
            if o is None or o[0] != r[0] or o[1] != r[1]:
                bad += 1
                if bad <= 10:
                    print(f"  {q[0]} {q[1]}: {ref_name} {r[0]} {sorted(r[1])}\n      {name} {o[0] if o else None} {sorted(o[1]) if o else None}")
    names = ", ".join(n for n, _ in servers)
    if bad:
        print(f"answer check: {bad} of {len(wanted)} questions differ between {names}")
        sys.exit(1)
    print(f"answer check: {names} give the same answers to all {len(wanted)} questions of {qfile.rsplit('/', 1)[-1]}")


if __name__ == "__main__":
    main()
