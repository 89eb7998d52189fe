#!/usr/bin/env bash
# gpu-multi-remote.sh: one DataLoader per GPU under torchrun-style ranks, on a machine with several GPUs (run from
# the repo root there). For each world size W in GPU_MULTI_WORLDS (default: 1 2 4 ... up to the GPUs present),
# starts W processes at once with RANK = LOCAL_RANK = i and WORLD_SIZE = W set as torchrun sets them, each running
#     vidloader bench DIR --gpu $LOCAL_RANK ... --json
# over its rank's share of the clips (the loader settings of BENCHMARKS.md: uniform:16, batches of 8, 224x224,
# ImageNet normalisation, f16), while `nvidia-smi --query-compute-apps` is sampled every half second. It reports
# per world size: the aggregate delivered frames/s (all ranks' frames / the slowest rank's seconds), its ratio to
# W x the one-GPU figure, each rank's GPU memory at its peak, and whether any process was ever seen on a GPU other
# than its own (the check that nothing touches GPU 0 from another rank). Exit status 1 if such a stray context
# was seen or a rank failed.
#
# Needs, next to the working tree: .gpu/ (a bundle of `scripts/gpu.sh build`; GPU_ONLY=vidloader is enough) and
# .benchdata/ (datasets/make-gpu-bench.sh). Results go to $OUT (default target/gpu-multi): ranks.jsonl (one line
# per rank and world size), apps.csv (the nvidia-smi samples) and summary.txt.
#
# Environment: GPU_MULTI_WORLDS ("1 2 4 8"); GPU_MULTI_SET (clips_1080p); GPU_BENCH_CLIPS (clips per rank,
# default 210: the data set holds W x that many names, so every rank reads as much as the one-GPU run);
# GPU_MULTI_WORKERS (loader workers per rank, default 14); GPU_MULTI_EPOCHS (2); GPU_MULTI_DEVICE ("gpu": each rank
# on --gpu $LOCAL_RANK; "cpu" runs the same launch on the CPU, for checking the script where no GPU exists);
# VIDLOADER_BIN (the program, instead of the bundle's); TORCH_LIB (see gpu-remote.sh).
set -uo pipefail

repo="$(pwd)"
out="${OUT:-$repo/target/gpu-multi}"
set_name="${GPU_MULTI_SET:-clips_1080p}"
per_rank="${GPU_BENCH_CLIPS:-210}"
workers="${GPU_MULTI_WORKERS:-14}"
epochs="${GPU_MULTI_EPOCHS:-2}"
device="${GPU_MULTI_DEVICE:-gpu}"
tmp="${TMPDIR:-/tmp}"
mkdir -p "$out"
: >"$out/ranks.jsonl"
: >"$out/summary.txt"
say() { printf '%s\n' "$*" | tee -a "$out/summary.txt"; }

have_smi=0
command -v nvidia-smi >/dev/null && have_smi=1
gpus=0
[ "$have_smi" = 1 ] && gpus=$(nvidia-smi --query-gpu=index --format=csv,noheader | wc -l)
if [ -n "${GPU_MULTI_WORLDS:-}" ]; then
    worlds="$GPU_MULTI_WORLDS"
else
    worlds=""
    for w in 1 2 4 8 16; do [ "$w" -le "$gpus" ] && worlds="$worlds $w"; done
fi
[ -n "$worlds" ] || { say "no GPU found (nvidia-smi lists none) and GPU_MULTI_WORLDS unset"; exit 1; }
if [ "$device" = gpu ] && [ "$have_smi" = 1 ]; then
    nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader >"$out/gpus.csv"
    say "GPUs: $gpus ($(cut -d, -f3 "$out/gpus.csv" | sort -u | xargs))"
fi

# The vidloader program: plain bundle, or out of the packed one.
bin="${VIDLOADER_BIN:-.gpu/bin/vidloader}"
if [ ! -x "$bin" ]; then
    bin="$tmp/vidloader-multi-bin/vidloader"
    rm -rf "$(dirname "$bin")" && mkdir -p "$(dirname "$bin")"
    python3 -c 'import sys, tarfile
t = tarfile.open(sys.argv[1], "r:xz")
m = t.getmember("bin/vidloader"); m.name = "vidloader"; t.extract(m, sys.argv[2])' .gpu/bundle.tar.xz \
        "$(dirname "$bin")" || { say "no vidloader in .gpu"; exit 1; }
    chmod +x "$bin"
fi
export LD_LIBRARY_PATH="${TORCH_LIB:-/opt/torch/.venv/lib/python3.12/site-packages/torch/lib}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

failed=0
for world in $worlds; do
    # W x per_rank names over the distinct clips, so each rank reads as many clips as the one-GPU run.
    dir="$tmp/vidloader-multi-$set_name-$world"
    rm -rf "$dir" && mkdir -p "$dir"
    distinct=(".benchdata/$set_name"/*.mp4)
    [ -e "${distinct[0]}" ] || { say "no clips in .benchdata/$set_name"; exit 1; }
    for i in $(seq 0 $((world * per_rank - 1))); do
        ln -s "$repo/${distinct[$((i % ${#distinct[@]}))]}" "$dir/clip_$(printf %05d "$i").mp4"
    done
    apps="$out/apps-$world.csv"
    : >"$apps"
    sampler=""
    if [ "$have_smi" = 1 ]; then
        (while :; do
            nvidia-smi --query-compute-apps=pid,gpu_uuid,used_memory --format=csv,noheader,nounits 2>/dev/null |
                sed "s/^/$(date +%s.%N),/" >>"$apps"
            sleep 0.5
        done) &
        sampler=$!
    fi
    pids=()
    for rank in $(seq 0 $((world - 1))); do
        dev_args=(--gpu "$rank")
        [ "$device" = cpu ] && dev_args=()
        (
            export RANK=$rank LOCAL_RANK=$rank WORLD_SIZE=$world
            timeout 540 "$bin" bench "$dir" --sampler uniform:16 --batch 8 --resize 224x224 --dtype f16 \
                --normalize imagenet --no-shuffle --workers "$workers" "${dev_args[@]}" \
                --cache-dir "$dir.cache-$rank" --warmup-epochs 1 --epochs "$epochs" --json \
                >"$out/rank-$world-$rank.json" 2>"$out/rank-$world-$rank.err"
        ) &
        pids+=("$!:$rank")
    done
    for entry in "${pids[@]}"; do
        pid=${entry%%:*}
        rank=${entry##*:}
        if ! wait "$pid"; then
            say "world $world rank $rank failed: $(tail -n 3 "$out/rank-$world-$rank.err" | tr '\n' ' ')"
            failed=1
        fi
    done
    [ -n "$sampler" ] && kill "$sampler" 2>/dev/null && wait "$sampler" 2>/dev/null
    for rank in $(seq 0 $((world - 1))); do
        python3 - "$out/rank-$world-$rank.json" "$world" "$rank" >>"$out/ranks.jsonl" <<'PY'
import json, sys
path, world, rank = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
try:
    r = json.load(open(path))
except (OSError, ValueError):
    sys.exit(0)
print(json.dumps({"world": world, "rank": rank, "fps": r["fps"], "frames": r["frames"],
                  "seconds": r["seconds"], "backend": r.get("backend"), "result": path}))
PY
    done
done
[ -n "$(ls "$out"/apps-*.csv 2>/dev/null)" ] && cat "$out"/apps-*.csv >"$out/apps.csv"

# Summary: aggregate fps per world size against linear scaling from the one-GPU run; stray contexts.
python3 - "$out" "$device" <<'PY' | tee -a "$out/summary.txt"
import collections, csv, glob, json, os, sys
out, device = sys.argv[1], sys.argv[2]
ranks = [json.loads(l) for l in open(os.path.join(out, "ranks.jsonl")) if l.strip()]
by_world = collections.defaultdict(list)
for r in ranks:
    by_world[r["world"]].append(r)
uuids = {}
if os.path.exists(os.path.join(out, "gpus.csv")):
    for row in csv.reader(open(os.path.join(out, "gpus.csv"))):
        uuids[row[1].strip()] = int(row[0])
one = None
stray = False
print("| GPUs | aggregate fps | vs linear | per-rank fps | peak MiB per rank (GPU seen) |")
print("| ---: | ---: | ---: | --- | --- |")
for world in sorted(by_world):
    rs = sorted(by_world[world], key=lambda r: r["rank"])
    agg = sum(r["frames"] for r in rs) / max(r["seconds"] for r in rs)
    if world == 1:
        one = agg
    linear = f"{agg / (world * one):.3f}" if one else "-"
    # The processes of this world size, by pid, from the samples.
    seen = collections.defaultdict(lambda: collections.defaultdict(int))
    path = os.path.join(out, f"apps-{world}.csv")
    if os.path.exists(path):
        for row in csv.reader(open(path)):
            if len(row) < 4:
                continue
            pid, uuid, mem = row[1].strip(), row[2].strip(), row[3].strip()
            gpu = uuids.get(uuid, uuid)
            seen[pid][gpu] = max(seen[pid][gpu], int(mem) if mem.isdigit() else 0)
    mem = []
    for pid, gpus in sorted(seen.items()):
        mem.append(f"{pid}: " + ", ".join(f"GPU {g} {m}" for g, m in sorted(gpus.items(), key=str)))
        if len(gpus) > 1:
            stray = True
    if len(rs) != world:
        print(f"(world {world}: {len(rs)} of {world} ranks reported)")
    fps = ", ".join("%.0f" % r["fps"] for r in rs)
    print(f"| {world} | {agg:.1f} | {linear} | {fps} | {'; '.join(mem) or '-'} |")
if device == "gpu" and uuids:
    print("stray contexts (a process on two GPUs):", "YES" if stray else "none")
sys.exit(1 if stray else 0)
PY
[ "${PIPESTATUS[0]}" = 0 ] || failed=1
exit "$failed"
