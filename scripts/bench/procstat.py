#!/usr/bin/env python3
"""procstat.py PID: CPU and peak memory of a server, summed over its whole process tree.

Prints `TICKS HWM_KB NPROC`: user+system CPU in clock ticks (/proc/PID/stat fields 14 and 15,
all threads of each process included) summed over PID and all its descendants (NSD forks
server and xfrd processes), and the sum of their VmHWM (peak resident set) in kB.
"""
import os
import sys


def ppid_map():
    m = {}
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            s = open(f"/proc/{e}/stat").read()
        except OSError:
            continue
        rest = s[s.rindex(")") + 2:].split()
        m[int(e)] = (int(rest[1]), rest)  # rest[0] is field 3 (state), rest[1] field 4 (ppid)
    return m


def tree(root, m):
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        if p in m:
            out.append(p)
            todo += [c for c, (pp, _) in m.items() if pp == p]
    return out


def hwm_kb(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    root = int(sys.argv[1])
    m = ppid_map()
    pids = tree(root, m)
    # Field 14 utime, 15 stime: indexes 11 and 12 of the fields after the command name.
    ticks = sum(int(m[p][1][11]) + int(m[p][1][12]) for p in pids)
    print(ticks, sum(hwm_kb(p) for p in pids), len(pids))


if __name__ == "__main__":
    main()
