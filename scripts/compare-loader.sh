#!/usr/bin/env bash
# compare-loader.sh A_BIN B_BIN DATASET_DIR... : two `vidloader` binaries (e.g. two builds of the project) side by
# side on the same data, alternating, ROUNDS times (default 2): `vidloader bench DIR --sampler uniform:16 --batch 8
# --resize 224x224 --dtype f16 --normalize imagenet --no-shuffle --workers W (default 2) --warmup-epochs 1
# --epochs 2` on the CPU, each run with an empty metadata cache. Prints one line per run (round, data set, binary,
# delivered frames/s, samples, seconds) and the median ratio B / A per data set. Extra `vidloader bench` options
# go in BENCH_ARGS (for example "--gpu 0 --cpu-workers 0").
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,7p' "$0" >&2; exit 2; }
a="$1" b="$2"
shift 2
rounds="${ROUNDS:-2}"
workers="${WORKERS:-2}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for r in $(seq 1 "$rounds"); do
    for dir in "$@"; do
        for which in A B; do
            bin="$a"; [ "$which" = B ] && bin="$b"
            rm -rf "$tmp/cache"
            # BENCH_ARGS is a list of options: split on purpose.
            # shellcheck disable=SC2086
            "$bin" bench "$dir" --sampler uniform:16 --batch 8 --resize 224x224 --dtype f16 --normalize imagenet \
                --no-shuffle --workers "$workers" --cache-dir "$tmp/cache" --warmup-epochs 1 --epochs 2 --json \
                ${BENCH_ARGS:-} 2>/dev/null |
                python3 -c 'import json, sys
r = json.load(sys.stdin)
print(sys.argv[1], sys.argv[2], sys.argv[3], round(r["fps"], 1), r["samples"], round(r["seconds"], 2))' \
                    "$r" "$(basename "$dir")" "$which" | tee -a "$tmp/runs"
        done
    done
done
python3 - "$tmp/runs" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
for d in dict.fromkeys(r[1] for r in rows):
    fps = {w: [float(r[3]) for r in rows if r[1] == d and r[2] == w] for w in "AB"}
    ratios = [b / a for a, b in zip(fps["A"], fps["B"])]
    print(f"{d}: A {statistics.median(fps['A']):.1f} fps, B {statistics.median(fps['B']):.1f} fps, "
          f"B / A per round {', '.join(f'{x:.2f}' for x in ratios)}, median {statistics.median(ratios):.2f}")
PY
