#!/usr/bin/env python3
"""Side-by-side table of the GPU benchmark: reads the JSON lines that benches/gpu_decode.rs,
benches/pynvc_bench.py and benches/pynvc_loader.py print (other lines are ignored), pairs them by
(scenario, file, threads) and prints a markdown table of frames/s and the ratio vidloader / PyNvVideoCodec
(higher is better for vidloader); --out also writes it to a file.

    python3 benches/compare.py LOG... [--out TABLE.md] [--ours vidloader] [--peer pynvc]
"""

import argparse
import json
import sys


def read_results(paths):
    """{(scenario, file, threads): {impl: line}} in order of first appearance."""
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
                results.setdefault(key, {})[line["impl"]] = line
    return results


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


def table(results, ours, peer):
    rows = [
        f"| scenario | file | threads | {LABELS.get(ours, ours)} fps | {LABELS.get(peer, peer)} fps | ratio |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    notes, truncated = [], False
    for (scenario, file, threads), by_impl in results.items():
        a, b = by_impl.get(ours), by_impl.get(peer)
        if a is None and b is None:
            continue
        ratio = "-"
        if a is not None and b is not None and a.get("fps") and b.get("fps"):
            ratio = f"{a['fps'] / b['fps']:.2f}"
        rows.append(f"| {scenario} | {file} | {threads} | {cell(a)} | {cell(b)} | {ratio} |")
        truncated |= any(x is not None and x.get("truncated") for x in (a, b))
        for name, line in ((ours, a), (peer, b)):
            if line is not None and ("error" in line or "skipped" in line):
                what = line.get("error") or line.get("skipped")
                notes.append(f"- {LABELS.get(name, name)} {scenario} {file} threads {threads}: {str(what)[:300]}")
    out = "\n".join(rows) + "\n"
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
