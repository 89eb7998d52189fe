#!/usr/bin/env python3
"""Side-by-side table of the GPU benchmark: reads the JSON lines that benches/gpu_decode.rs,
benches/pynvc_bench.py and benches/pynvc_loader.py print (other lines are ignored), pairs them by
(scenario, file, threads) and prints a markdown table of frames/s and the ratio vidloader / PyNvVideoCodec
(higher is better for vidloader; three decimals within 2 % of 1.0, two elsewhere); --out also writes it to a file.

Several logs of one program (the GPU_BENCH_PROCESSES runs of scripts/gpu-bench-remote.sh, one process each) give
each row the median of their frames/s, and the table two more columns: how far the processes of each program
lie apart, (max - min) / median. A row's frames/s within one process is already the median of its repeats; the
spread across processes is the repeatability the ratio can claim (2026-12-04: one program's 7-thread rows moved up
to 2.5 % between processes while their repeats inside one process agreed within 0.5 %). A ratio whose distance from
1 is smaller than the wider of the two programs' spreads is marked "(level)": those processes do not say which
program is faster.

    python3 benches/compare.py LOG... [--out TABLE.md] [--ours vidloader] [--peer pynvc]
"""

import argparse
import json
import statistics
import sys


def format_ratio(r):
    """Two decimals, three within 2 % of 1 (where two would print 1.00 for a row 0.5 % below the peer)."""
    return f"{r:.3f}" if abs(r - 1.0) < 0.02 else f"{r:.2f}"


def read_results(paths):
    """{(scenario, file, threads): {impl: [line, ...]}} in order of first appearance (a line per process)."""
    results = {}
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            for raw in f:
                raw = raw.strip()
                if not raw.startswith('{"') or '"impl"' not in raw:
                    continue
                try:
                    line = json.loads(raw)
                except json.JSONDecodeError:
                    continue
                if not isinstance(line, dict) or "scenario" not in line:
                    continue
                key = (line["scenario"], line.get("file", ""), int(line.get("threads", 0)))
                results.setdefault(key, {}).setdefault(line["impl"], []).append(line)
    return results


def merge(lines):
    """One line standing for a program's processes: the median of their frames/s (with "fps_processes" and
    "process_spread_pct" where several measured), else the first error or skip."""
    if not lines:
        return None
    measured = [x for x in lines if x.get("fps")]
    if not measured:
        return lines[0]
    fps = [x["fps"] for x in measured]
    merged = dict(measured[0])
    merged["fps"] = statistics.median(fps)
    merged["truncated"] = any(x.get("truncated") for x in measured)
    if len(measured) > 1:
        merged["fps_processes"] = fps
        merged["process_spread_pct"] = (max(fps) - min(fps)) / merged["fps"] * 100
    failed = [x for x in lines if not x.get("fps")]
    if failed:
        merged["failed_processes"] = failed
    return merged


def cell(line):
    if line is None:
        return "-"
    if "fps" in line:
        return f"{line['fps']:.1f}" + ("*" if line.get("truncated") else "")
    if "error" in line:
        return "error"
    if "skipped" in line:
        return "skipped"
    return "-"


LABELS = {"pynvc": "PyNvVideoCodec"}


def spread(line):
    if line is None or "process_spread_pct" not in line:
        return "-"
    return f"{line['process_spread_pct']:.1f} % of {len(line['fps_processes'])}"


def is_level(ratio, a, b):
    """Whether `ratio` (a / b) of two merged lines of several processes each lies closer to 1 than the wider of their
    process spreads ((max - min) / median): the difference is then inside what the processes moved."""
    if "process_spread_pct" not in a or "process_spread_pct" not in b:
        return False
    return abs(ratio - 1.0) * 100.0 < max(a["process_spread_pct"], b["process_spread_pct"])


def table(results, ours, peer):
    several = any(len(lines) > 1 for by_impl in results.values() for lines in by_impl.values())
    a_name, b_name = LABELS.get(ours, ours), LABELS.get(peer, peer)
    if several:
        rows = [
            f"| scenario | file | threads | {a_name} fps | {b_name} fps | ratio | {a_name} processes apart "
            f"| {b_name} processes apart |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
    else:
        rows = [
            f"| scenario | file | threads | {a_name} fps | {b_name} fps | ratio |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
        ]
    notes, truncated, level = [], False, False
    for (scenario, file, threads), by_impl in results.items():
        a, b = merge(by_impl.get(ours, [])), merge(by_impl.get(peer, []))
        if a is None and b is None:
            continue
        ratio = "-"
        if a is not None and b is not None and a.get("fps") and b.get("fps"):
            r = a["fps"] / b["fps"]
            ratio = format_ratio(r)
            if is_level(r, a, b):
                ratio += " (level)"
                level = True
        row = f"| {scenario} | {file} | {threads} | {cell(a)} | {cell(b)} | {ratio} |"
        if several:
            row += f" {spread(a)} | {spread(b)} |"
        rows.append(row)
        truncated |= any(x is not None and x.get("truncated") for x in (a, b))
        for name, line in ((ours, a), (peer, b)):
            if line is None:
                continue
            for bad in [line] + line.get("failed_processes", []):
                if "error" in bad or "skipped" in bad:
                    what = bad.get("error") or bad.get("skipped")
                    notes.append(f"- {LABELS.get(name, name)} {scenario} {file} threads {threads}: {str(what)[:300]}")
    out = "\n".join(rows) + "\n"
    if several:
        out += ("\nEach frames/s is the median over the processes of each program; \"processes apart\" is (max - min) "
                "/ median of their frames/s.\n")
    if level:
        out += ("\n(level): the two programs' medians differ by less than the wider of their two process spreads, "
                "so the processes do not say which one is faster.\n")
    if truncated:
        out += "\n\\* the time budget ran out during the scenario: frames/s over the part that ran.\n"
    if notes:
        out += "\nNot measured:\n" + "\n".join(notes) + "\n"
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("logs", nargs="+", help="log files holding the JSON result lines")
    ap.add_argument("--out", help="also write the table here")
    ap.add_argument("--ours", default="vidloader")
    ap.add_argument("--peer", default="pynvc")
    args = ap.parse_args()
    results = read_results(args.logs)
    if not results:
        print("no result lines found in " + ", ".join(args.logs), file=sys.stderr)
        return 1
    text = table(results, args.ours, args.peer)
    print(text, end="")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
