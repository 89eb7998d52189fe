#!/usr/bin/env bash
# shards.sh: the DataLoader over the same clips as plain files and as WebDataset tar shards, and the ratio of the
# frames/s delivered.
#
#     benches/shards.sh [CLIPS [SHARDS]]
#
# Makes (with the ffmpeg CLI and python3, once, in target/bench/shards/) eight two-second 640x360 H.264 clips (30
# fps, GOP 30, 2 B-frames, each a different hue) and CLIPS (default 200) videos of them: plain files (hard links,
# `files/class_C/clip_NNNN.mp4`, the class sub-directory the label) and the same videos packed in SHARDS (default
# 4) tar shards (`shard-NNNNNN.tar`: `clip_NNNN.mp4` and `clip_NNNN.cls` per sample, in the same order). Then
# RUNS times (default 4) each, alternately and in ABBA order (plain, shards, shards, plain, ...: a load that
# drifts during the runs weighs on both alike), `vidloader bench D --json` on the directory and on the shard
# pattern with the same settings (BENCH_ARGS, default `--sampler uniform:8 --batch 8 --resize 224x224
# --warmup-epochs 1 --epochs 2`, and one metadata cache directory per data set, warmed by a first untimed run),
# under /usr/bin/time. Prints one line per run (fps, decoded fps, first_batch_s, metadata_scan_s, and the
# process's CPU seconds, user + system: on a machine others share, the fairer measure of the work done), then the
# medians and the shards / plain ratios of fps and of CPU seconds. Needs a `vidloader` binary (VIDLOADER, default
# target/release/vidloader) and /usr/bin/time.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
vid="${VIDLOADER:-$repo/target/release/vidloader}"
clips="${1:-200}"
shards="${2:-4}"
runs="${RUNS:-4}"
read -r -a args <<< "${BENCH_ARGS:---sampler uniform:8 --batch 8 --resize 224x224 --warmup-epochs 1 --epochs 2}"
dir="$repo/target/bench/shards"
mkdir -p "$dir"
cd "$dir"
for i in 0 1 2 3 4 5 6 7; do
    [ -s "clip_$i.mp4" ] && continue
    ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=640x360:rate=30" -frames:v 60 \
        -vf "hue=h=$((i * 45))" -c:v libx264 -g 30 -bf 2 -pix_fmt yuv420p "clip_$i.mp4"
done
set_dir="set_${clips}_$shards"
if [ ! -d "$set_dir" ]; then
    python3 - "$clips" "$shards" "$set_dir.tmp" <<'PY'
import io, os, sys, tarfile
clips, shards, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
os.makedirs(out)
per = (clips + shards - 1) // shards
tars = [tarfile.open(f"{out}/shard-{s:06d}.tar", "w", format=tarfile.GNU_FORMAT) for s in range(shards)]
for k in range(clips):
    src, label = f"clip_{k % 8}.mp4", k % 4
    os.makedirs(f"{out}/files/class_{label}", exist_ok=True)
    os.link(src, f"{out}/files/class_{label}/clip_{k:04d}.mp4")
    t = tars[k // per]
    # Regular members (tarfile.add would store a file with several links as a hard link to its first copy).
    for name, data in ((f"clip_{k:04d}.mp4", open(src, "rb").read()), (f"clip_{k:04d}.cls", f"{label}\n".encode())):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
for t in tars:
    t.close()
PY
    mv "$set_dir.tmp" "$set_dir"
fi
plain="$set_dir/files"
pattern="$set_dir/shard-{000000..$(printf %06d $((shards - 1)))}.tar"
rm -rf cache_plain cache_shards
"$vid" bench "$plain" --json "${args[@]}" --cache-dir cache_plain > /dev/null
"$vid" bench "$pattern" --json "${args[@]}" --cache-dir cache_shards > /dev/null
: > runs.txt
for run in $(seq 1 "$runs"); do
    order="plain shards"
    [ $((run % 2)) -eq 0 ] && order="shards plain"
    for kind in $order; do
        if [ "$kind" = plain ]; then d="$plain"; else d="$pattern"; fi
        /usr/bin/time -f "%U %S" -o time.txt "$vid" bench "$d" --json "${args[@]}" --cache-dir "cache_$kind" > out.json
        python3 - "$kind" "$run" <<'PY' | tee -a runs.txt
import json, sys
kind, run = sys.argv[1:]
v = json.load(open("out.json"))
user, system = (float(x) for x in open("time.txt").read().split()[-2:])
print(f"{kind} {run} {v['fps']:.1f} {v['decoded_fps']:.1f} {v['first_batch_s']:.3f} {v['metadata_scan_s']:.3f} "
      f"{v['videos']} {v['shards']} {user + system:.2f}")
PY
    done
done
python3 - "${args[*]}" <<'PY'
import statistics, sys
rows = [l.split() for l in open("runs.txt")]
print(f"settings: {sys.argv[1]}")
med, cpu = {}, {}
for kind in ("plain", "shards"):
    r = [x for x in rows if x[0] == kind]
    fps = [float(x[2]) for x in r]
    med[kind] = statistics.median(fps)
    cpu[kind] = statistics.median(float(x[8]) for x in r)
    print(f"{kind:6} {r[0][6]} videos, {r[0][7]} shards: fps " + ", ".join(f"{f:.1f}" for f in fps)
          + f" (median {med[kind]:.1f}); CPU s " + ", ".join(x[8] for x in r) + f" (median {cpu[kind]:.2f})"
          + "; first_batch_s " + ", ".join(x[4] for x in r) + "; metadata_scan_s " + ", ".join(x[5] for x in r))
print(f"shards / plain (medians): fps {med['shards'] / med['plain']:.3f}, CPU seconds {cpu['shards'] / cpu['plain']:.3f}")
PY
