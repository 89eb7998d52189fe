#!/usr/bin/env bash
# gpu-hybrid-remote.sh: the hybrid-decoding benchmark on the GPU machine (run from the repo root with the .gpu
# bundle of `scripts/gpu.sh build` carried along):
#
#     bash scripts/gpu-hybrid-remote.sh
#
# Takes the benchmark clips from .benchdata/clips_1080p and .benchdata/clips_360p (made on the build machine with
# `CLIPS_ONLY=1 datasets/make-gpu-bench.sh` and carried: 12 distinct 2 s clips at each size; the bundle's static
# ffmpeg has no test-pattern source to make them here; fewer clips are fine), copies each set to GPU_BENCH_CLIPS files (default 210), then runs
# `vidloader bench` with the settings of the NVDEC loader rows of BENCHMARKS.md (uniform:16, 224x224, ImageNet
# normalisation, f16, batches of 8, 14 NVDEC workers, one warm-up epoch left out) with --cpu-workers 0 (NVDEC
# alone) and with each count of HYBRID_CPU_WORKERS (default "8 14"), alternating, ROUNDS times (default 2).
# Prints one JSON line per run (fps, the CPU workers' share of the samples) and the median ratio of each hybrid
# setting to NVDEC alone. Output also goes to $OUT/hybrid.log when OUT is set.
#
# VIDLOADER_BIN=PATH takes that vidloader executable instead of the bundle's.
# CPU_HOG=N keeps N busy-looping processes running beside every run (a training step's own threads, say): the
# CPU workers must then back off, so that hybrid stays at or above NVDEC alone under the same load.
set -uo pipefail

repo="$(pwd)"
tmp="${TMPDIR:-/tmp}/vidloader-hybrid"
rounds="${ROUNDS:-2}"
clips="${GPU_BENCH_CLIPS:-210}"
hybrid="${HYBRID_CPU_WORKERS:-8 14}"
workers="${NVDEC_WORKERS:-14}"
log="${OUT:+$OUT/hybrid.log}"
log="${log:-/dev/null}"
export LD_LIBRARY_PATH="${TORCH_LIB:-/opt/torch/.venv/lib/python3.12/site-packages/torch/lib}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

mkdir -p "$tmp/bin"
if [ -n "${VIDLOADER_BIN:-}" ]; then
    cp "$VIDLOADER_BIN" "$tmp/bin/vidloader"
elif [ -x .gpu/bin/vidloader ]; then
    cp .gpu/bin/vidloader "$tmp/bin/"
else
    tar -xJf .gpu/bundle.tar.xz -C "$tmp" bin/vidloader
fi
export PATH="$tmp/bin:$PATH"
[ -d .benchdata/clips_1080p ] || { echo "no .benchdata/clips_1080p: make it with CLIPS_ONLY=1 datasets/make-gpu-bench.sh and carry .benchdata" >&2; exit 1; }

results="$tmp/results.jsonl"
hog="${CPU_HOG:-0}"
hog_pids=()
stop_hog() { [ ${#hog_pids[@]} -gt 0 ] && kill "${hog_pids[@]}" 2>/dev/null; hog_pids=(); }
trap stop_hog EXIT
for _ in $(seq 1 "$hog"); do
    sh -c 'while :; do :; done' &
    hog_pids+=("$!")
done
[ "$hog" -gt 0 ] && echo "CPU hog: $hog busy processes beside every run" | tee -a "$log"
: >"$results"
for set in clips_1080p clips_360p; do
    dir="$tmp/$set"
    rm -rf "$dir" && mkdir -p "$dir"
    mapfile -t sources < <(ls "$repo/.benchdata/$set"/clip_*.mp4)
    for i in $(seq 0 $((clips - 1))); do
        cp "${sources[$((i % ${#sources[@]}))]}" "$dir/clip_$(printf %03d "$i").mp4"
    done
    for r in $(seq 1 "$rounds"); do
        for cpu in 0 $hybrid; do
            rm -rf "$dir.cache"
            timeout 180 vidloader bench "$dir" --sampler uniform:16 --batch 8 --resize 224x224 --dtype f16 \
                --normalize imagenet --no-shuffle --workers "$workers" --cpu-workers "$cpu" --gpu 0 \
                --cache-dir "$dir.cache" --warmup-epochs 1 --json 2>>"$tmp/stderr.log" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(json.dumps({"set": sys.argv[1], "round": int(sys.argv[2]), "hog": int(sys.argv[3]), "cpu_workers": r["cpu_workers"],
                  "workers": r["workers"], "fps": round(r["fps"], 1), "cpu_share": round(r["cpu_share"], 3),
                  "samples": r["samples"], "seconds": round(r["seconds"], 3)}))' "$set" "$r" "$hog" | tee -a "$results" "$log"
        done
    done
done
python3 - "$results" <<'PY' | tee -a "$log"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for s in sorted({r["set"] for r in rows}):
    base = statistics.median(r["fps"] for r in rows if r["set"] == s and r["cpu_workers"] == 0)
    for c in sorted({r["cpu_workers"] for r in rows if r["set"] == s}):
        fps = [r["fps"] for r in rows if r["set"] == s and r["cpu_workers"] == c]
        share = statistics.median(r["cpu_share"] for r in rows if r["set"] == s and r["cpu_workers"] == c)
        print(f"{s}: cpu_workers {c:2d}: median {statistics.median(fps):7.1f} fps over {len(fps)} runs "
              f"({', '.join(map(str, fps))}), {statistics.median(fps) / base:.2f}x NVDEC alone, CPU share {share:.2f}")
PY
tail -n 5 "$tmp/stderr.log" 2>/dev/null
