#!/usr/bin/env bash
# cache_scale.sh: `vidloader plan` over directories of many small clips with a cold and a warm metadata cache,
# and the number of files the cache directory holds.
#
#     benches/cache_scale.sh [N...]
#
# Makes (with the ffmpeg CLI, once, in target/bench/cache/) four two-second 640x360 H.264 clips (30 fps, GOP 30,
# 2 B-frames) and, per N (default 5000 and 20000), a directory of N hard links to them under distinct names. Then,
# for each binary (VIDLOADER, default target/release/vidloader, and VIDLOADER_BEFORE when it is set), an empty
# cache directory and `vidloader plan DIR --json --cache-dir CACHE` once cold and RUNS times (default 3) warm.
# Prints one line per run: wall time, the JSON's plan_s and metadata_scan_s, files per second of plan_s, the
# cache's counters (where the binary reports them) and the number of files under the cache directory.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
runs="${RUNS:-3}"
dir="$repo/target/bench/cache"
mkdir -p "$dir"
cd "$dir"
for i in 0 1 2 3; do
    [ -s "clip_$i.mp4" ] && continue
    ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=640x360:rate=30" -frames:v 60 \
        -vf "hue=h=$((i * 90))" -c:v libx264 -g 30 -bf 2 -pix_fmt yuv420p "clip_$i.mp4"
done
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(5000 20000)
bins=("after=${VIDLOADER:-$repo/target/release/vidloader}")
[ -n "${VIDLOADER_BEFORE:-}" ] && bins=("before=$VIDLOADER_BEFORE" "${bins[@]}")
for n in "${sizes[@]}"; do
    if [ ! -d "clips_$n" ]; then
        mkdir -p "clips_$n.tmp/a"
        for ((k = 0; k < n; k++)); do ln "clip_$((k % 4)).mp4" "clips_$n.tmp/a/clip_$k.mp4"; done
        mv "clips_$n.tmp" "clips_$n"
    fi
    for b in "${bins[@]}"; do
        tag="${b%%=*}"
        bin="${b#*=}"
        cache="$dir/cache_${tag}_$n"
        rm -rf "$cache"
        for run in cold $(seq -f "warm%g" 1 "$runs"); do
            start=$(date +%s.%N)
            "$bin" plan "clips_$n" --json --cache-dir "$cache" > plan.json
            end=$(date +%s.%N)
            python3 - "$n" "$tag" "$run" "$start" "$end" "$cache" <<'PY'
import json, os, sys
n, tag, run, start, end, cache = sys.argv[1:]
v = json.load(open("plan.json"))
files = sum(len(f) for _, _, f in os.walk(cache))
print(f"{n:>6} {tag:6} {run:5} wall {float(end) - float(start):5.2f} s, plan_s {v['plan_s']:5.2f}, "
      f"metadata_scan_s {v['metadata_scan_s']:5.2f}, {int(n) / v['plan_s']:6.0f} files/s, "
      f"cache {v.get('cache', '-')}, {files} files in the cache directory")
PY
        done
    done
done
