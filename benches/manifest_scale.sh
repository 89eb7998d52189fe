#!/usr/bin/env bash
# manifest_scale.sh: the first batch and the peak memory of a data set of a million manifest rows, against the
# same command on a 10-row manifest.
#
#     benches/manifest_scale.sh [ROWS]
#
# Makes (with the ffmpeg CLI and python3, once, in target/bench/scale/) four two-second 640x360 clips (H.264, 30
# fps, GOP 30, 2 B-frames), 1000 directory links to them (so that rows have 4000 distinct paths) and manifests of
# ROWS (default 1000000) and 10 rows with 400 class names: CSV and JSON lines with the metadata columns
# (num_frames, fps, width, height, duration_s), and CSV without them. Then, for each manifest, RUNS times (default
# 3), under /usr/bin/time -v: `vidloader bench M --sampler uniform:8 --batch 8 --resize 224x224 --max-batches 1
# --json` and `vidloader plan M --sampler uniform:8 --batch 8 --max-batches 1 --json`. Prints one line per run:
# the JSON's first_batch_s (or plan_s) and metadata_scan_s, the process's wall time and its peak RSS. Needs a
# `vidloader` binary (VIDLOADER, default target/release/vidloader) and /usr/bin/time.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
vid="${VIDLOADER:-$repo/target/release/vidloader}"
rows="${1:-1000000}"
runs="${RUNS:-3}"
dir="$repo/target/bench/scale"
mkdir -p "$dir"
cd "$dir"
for i in 0 1 2 3; do
    [ -s "clip_$i.mp4" ] && continue
    ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=640x360:rate=30" -frames:v 60 \
        -vf "hue=h=$((i * 90))" -c:v libx264 -g 30 -bf 2 -pix_fmt yuv420p "clip_$i.mp4"
done
for d in $(seq -w 0 999); do [ -e "d$d" ] || ln -s . "d$d"; done
for n in 10 "$rows"; do
    [ -s "plain_$n.csv" ] && continue
    python3 - "$n" <<'PY'
import random, sys
n = int(sys.argv[1])
random.seed(1)
rows = [(f"d{k % 1000:03d}/clip_{(k // 1000) % 4}.mp4", f"class_{random.randrange(400)}") for k in range(n)]
meta = {"num_frames": 60, "fps": 30, "width": 640, "height": 360, "duration_s": 2.0}
with open(f"meta_{n}.csv", "w") as f:
    f.write("path,label," + ",".join(meta) + "\n")
    f.writelines(f"{p},{l}," + ",".join(str(v) for v in meta.values()) + "\n" for p, l in rows)
with open(f"meta_{n}.jsonl", "w") as f:
    extra = ", ".join(f'"{k}": {v}' for k, v in meta.items())
    f.writelines(f'{{"path": "{p}", "label": "{l}", {extra}}}\n' for p, l in rows)
with open(f"plain_{n}.csv", "w") as f:
    f.write("path,label\n")
    f.writelines(f"{p},{l}\n" for p, l in rows)
PY
done
report() { # command manifest json-key
    python3 - "$1" "$2" "$3" <<'PY'
import json, re, sys
cmd, manifest, key = sys.argv[1:]
v = json.load(open("out.json"))
t = open("time.txt").read()
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", t).group(1)
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
print(f"{cmd:5} {manifest:22} {key} {v[key]:.2f} s, metadata_scan_s {v['metadata_scan_s']:.3f} s, "
      f"wall {wall}, peak RSS {rss / 1024:.0f} MiB")
PY
}
cache="$dir/cache"
for m in meta_10.csv "meta_$rows.csv" meta_10.jsonl "meta_$rows.jsonl" plain_10.csv "plain_$rows.csv"; do
    for ((r = 0; r < runs; r++)); do
        /usr/bin/time -v -o time.txt "$vid" bench "$m" --sampler uniform:8 --batch 8 --resize 224x224 \
            --max-batches 1 --json --cache-dir "$cache" >out.json
        report bench "$m" first_batch_s
        /usr/bin/time -v -o time.txt "$vid" plan "$m" --sampler uniform:8 --batch 8 --max-batches 1 --json \
            --cache-dir "$cache" >out.json
        report plan "$m" plan_s
    done
done
