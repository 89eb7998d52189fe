#!/usr/bin/env bash
# torchcodec_compare.sh: vidloader's DataLoader against the loader a PyTorch user writes with torchcodec
# (benches/torchcodec_loader.py: torch DataLoader worker processes on the CPU, torchcodec's NVDEC decoder in
# threads on CUDA), same data, same run, alternating.
#
#     benches/torchcodec_compare.sh [--device cpu|cuda] DATASET_DIR...
#
# Both do: 16 evenly spaced frames per video, bilinear resize of the whole picture to 224x224, ImageNet
# normalisation, f16, batches of 8; one warm-up epoch left out (torchcodec: its last of 2 epochs; vidloader:
# `--warmup-epochs 1 --epochs 1`). For each data set and each worker count of WORKERS (default "1 N", N = cores),
# ROUNDS rounds (default 2). Needs a `vidloader` binary (VIDLOADER, default target/release/vidloader) and a python
# with torch and torchcodec (PYTHON, default .venv/bin/python, else python3). Prints one JSON line per run and the
# median ratio vidloader / torchcodec per data set and worker count.
#
# With no DATASET_DIR it makes (with the ffmpeg CLI, once, in target/bench/torchcodec/) three sets like the
# issue's: 32 two-second 640x360 clips (one GOP of 60), 16 two-second 1920x1080 clips, and 16 ten-second
# 640x360 videos (300 frames, GOP 60: 16 of 300 frames are read).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
device=cpu
if [ "${1:-}" = --device ]; then device="$2"; shift 2; fi
vid="${VIDLOADER:-$repo/target/release/vidloader}"
py="${PYTHON:-$repo/.venv/bin/python}"
[ -x "$py" ] || py=python3
cores=$(nproc)
workers="${WORKERS:-1 $cores}"
rounds="${ROUNDS:-2}"
gpu_args=()
[ "$device" = cuda ] && gpu_args=(--gpu 0)

make_set() { # dir count size frames
    local dir="$1" n="$2" size="$3" frames="$4" k
    mkdir -p "$dir"
    for ((k = 0; k < n; k++)); do
        local f="$dir/clip_$(printf %03d "$k").mp4"
        [ -s "$f" ] && continue
        ffmpeg -hide_banner -loglevel error -y -f lavfi \
            -i "testsrc2=size=$size:rate=30,trim=start_frame=$((k * 90)),setpts=PTS-STARTPTS,hue=h=$((k * 23))" \
            -frames:v "$frames" -c:v libx264 -preset veryfast -crf 28 -g 60 -keyint_min 60 -sc_threshold 0 -bf 2 \
            -pix_fmt yuv420p "$f.tmp.mp4"
        mv "$f.tmp.mp4" "$f"
    done
}
if [ $# -eq 0 ]; then
    base="$repo/target/bench/torchcodec"
    make_set "$base/short-360p" 32 640x360 60
    make_set "$base/short-1080p" 16 1920x1080 60
    make_set "$base/long-360p" 16 640x360 300
    set -- "$base/short-360p" "$base/short-1080p" "$base/long-360p"
fi

runs="$(mktemp)"
trap 'rm -f "$runs"' EXIT
for r in $(seq 1 "$rounds"); do
    for dir in "$@"; do
        for w in $workers; do
            cache="$(mktemp -d)"
            "$vid" bench "$dir" --sampler uniform:16 --batch 8 --resize 224x224 --dtype f16 --normalize imagenet \
                --workers "$w" --cache-dir "$cache" --warmup-epochs 1 --epochs 1 --json "${gpu_args[@]}" 2>/dev/null |
                "$py" -c 'import json, sys
r = json.load(sys.stdin)
print(json.dumps({"loader": "vidloader", "set": sys.argv[1], "workers": int(sys.argv[2]), "round": int(sys.argv[3]),
                  "fps": round(r["fps"], 1), "frames": r["frames"]}))' "$(basename "$dir")" "$w" "$r" | tee -a "$runs"
            rm -rf "$cache"
            "$py" "$here/torchcodec_loader.py" "$dir" "$w" --device "$device" --epochs 2 2>/dev/null |
                "$py" -c 'import json, sys
r = json.loads(sys.stdin.read().strip().splitlines()[-1])
print(json.dumps({"loader": r["peer"], "set": sys.argv[1], "workers": int(sys.argv[2]), "round": int(sys.argv[3]),
                  "fps": r["fps"], "frames": r["frames"]}))' "$(basename "$dir")" "$w" "$r" | tee -a "$runs"
        done
    done
done
"$py" - "$runs" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for key in dict.fromkeys((r["set"], r["workers"]) for r in rows):
    ours = [r["fps"] for r in rows if (r["set"], r["workers"]) == key and r["loader"] == "vidloader"]
    peer = [r["fps"] for r in rows if (r["set"], r["workers"]) == key and r["loader"] != "vidloader"]
    name = next(r["loader"] for r in rows if r["loader"] != "vidloader")
    print(f"{key[0]} workers {key[1]}: vidloader {statistics.median(ours):.1f} fps ({', '.join(map(str, ours))}), "
          f"{name} {statistics.median(peer):.1f} fps ({', '.join(map(str, peer))}): "
          f"{statistics.median(ours) / statistics.median(peer):.2f}x")
PY
