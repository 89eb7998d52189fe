#!/usr/bin/env python3
"""Reads a trace of scripts/nvcuvid-trace/nvcuvid_trace.c.

    timeline.py TRACE                 one line per thread: span and calls made
    timeline.py TRACE TID [--full]    the thread's timed part (after its longest pause, which in the benchmarks is
                                      the start barrier): span, calls, time inside each kind of call, time outside
                                      any call; with --full every call (start, gap since the previous call ended,
                                      kind, duration, argument)
"""
import collections
import sys

NAMES = {1: "decode", 2: "map", 3: "unmap", 4: "parse", 5: "status", 6: "create", 7: "destroy", 8: "reconfigure",
         9: "create_parser", 10: "destroy_parser"}


def load(path):
    events = [tuple(map(int, line.split())) for line in open(path)]
    events.sort(key=lambda e: e[2])
    return events


def threads(events):
    by_tid = collections.OrderedDict()
    for e in events:
        by_tid.setdefault(e[1], []).append(e)
    t0 = events[0][2]
    for tid, es in by_tid.items():
        calls = dict(collections.Counter(NAMES[e[0]] for e in es))
        print(f"{tid} {(es[0][2] - t0) / 1e6:.1f}-{(es[-1][3] - t0) / 1e6:.1f} ms {calls}")


def timed_part(events, tid, full):
    es = [e for e in events if e[1] == tid]
    if len(es) < 2:
        sys.exit(f"thread {tid}: fewer than two calls")
    gap, at = max((es[i + 1][2] - es[i][3], i) for i in range(len(es) - 1))
    part = es[at + 1:]
    t0 = part[0][2]
    span = part[-1][3] - t0
    counts = collections.Counter(NAMES[e[0]] for e in part)
    print(f"longest pause {gap / 1e6:.3f} ms before call {at + 1} of {len(es)}; timed part {span / 1e6:.3f} ms, "
          f"{dict(counts)}")
    inside = collections.defaultdict(float)
    for e in part:
        inside[NAMES[e[0]]] += (e[3] - e[2]) / 1e6
    print("time inside calls (ms, nested calls counted in both):", {k: round(v, 2) for k, v in inside.items()})
    covered, end = 0, t0
    for e in part:
        s = max(e[2], end)
        if e[3] > s:
            covered += e[3] - s
            end = e[3]
    print(f"outside any call: {(span - covered) / 1e6:.3f} ms")
    if full:
        prev = t0
        for e in part:
            print(f"{(e[2] - t0) / 1e6:8.3f} {(e[2] - prev) / 1e6:8.3f} {NAMES[e[0]]:<14} "
                  f"{(e[3] - e[2]) / 1e6:6.3f} {e[4]}")
            prev = e[3]


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    ev = load(sys.argv[1])
    if len(sys.argv) == 2:
        threads(ev)
    else:
        timed_part(ev, int(sys.argv[2]), "--full" in sys.argv[3:])
