#!/usr/bin/env bash
# torchcodec-gpu-remote.sh: vidloader against torchcodec's NVDEC decoder on the GPU machine, the CUDA version of
# benches/torchcodec_compare.sh. Run from the repo root with .tcgpu (scripts/torchcodec-gpu-pack.sh) and
# .benchdata (`CLIPS_ONLY=1 datasets/make-gpu-bench.sh`) carried:
#
#     bash scripts/torchcodec-gpu-remote.sh
#
# Unpacks .tcgpu/torchcodec.tar.xz (torchcodec 0.17, a shared FFmpeg 5.1, benches/torchcodec_loader.py) to
# $TMPDIR/vidloader-tcgpu and runs, for each clip set (clips_360p, clips_1080p, each copied to GPU_BENCH_CLIPS
# files, default 210, as scripts/gpu-hybrid-remote.sh does) and each worker count of WORKERS (default "1 8"),
# ROUNDS times (default 2), alternating:
#   vidloader bench DIR --sampler uniform:16 --batch 8 --resize 224x224 --dtype f16 --normalize imagenet
#       --workers W --gpu 0 --cpu-workers VIDLOADER_CPU_WORKERS --warmup-epochs 1 --epochs 1
#   python benches/torchcodec_loader.py DIR W --device cuda --epochs 2
# (the same work: 16 evenly spaced frames per video, bilinear resize to 224x224, ImageNet normalisation, f16,
# shuffled batches of 8; one warm-up epoch left out on both sides). VIDLOADER_CPU_WORKERS defaults to 0 (NVDEC
# alone, like torchcodec's W NVDEC threads; vidloader's own default would add cores - 2 CPU decoders).
# Prints one JSON line per run and the median ratio vidloader / torchcodec per set and worker count; output
# also goes to $OUT/torchcodec-gpu.log when OUT is set.
#
# The vidloader binary: .tcgpu/vidloader.xz (or .tcgpu/vidloader, xz'd or not), else .gpu/bin/vidloader, else
# bin/vidloader from .gpu/bundle.tar.xz.
#
# Environment:
#   TORCH_VENV              python venv with torch (default /opt/torch/.venv); its torch/lib and nvidia/*/lib
#                           folders go on LD_LIBRARY_PATH (libc10_cuda, libcudart.so.13, libnvrtc.so.13, ...)
#   DEVICE                  cuda (default) or cpu (a dry run on a machine without a GPU: vidloader without
#                           --gpu, torchcodec on the CPU)
#   WORKERS ROUNDS GPU_BENCH_CLIPS VIDLOADER_CPU_WORKERS SETS (default "clips_360p clips_1080p")
#   RUN_TIMEOUT             seconds per run (default 300)
set -uo pipefail

repo="$(pwd)"
tmp="${TMPDIR:-/tmp}/vidloader-tcgpu"
device="${DEVICE:-cuda}"
rounds="${ROUNDS:-2}"
clips="${GPU_BENCH_CLIPS:-210}"
workers="${WORKERS:-1 8}"
sets="${SETS:-clips_360p clips_1080p}"
cpu_workers="${VIDLOADER_CPU_WORKERS:-0}"
run_timeout="${RUN_TIMEOUT:-300}"
venv="${TORCH_VENV:-/opt/torch/.venv}"
py="$venv/bin/python"
log="${OUT:+$OUT/torchcodec-gpu.log}"
log="${log:-/dev/null}"

die() { echo "torchcodec-gpu-remote: $*" >&2; exit 1; }
[ -x "$py" ] || die "no python at $py (set TORCH_VENV)"
[ -f .tcgpu/torchcodec.tar.xz ] || die "no .tcgpu/torchcodec.tar.xz: make it with scripts/torchcodec-gpu-pack.sh and carry .tcgpu"

rm -rf "$tmp"
mkdir -p "$tmp/bin" || die "cannot make $tmp"
tar -xJf .tcgpu/torchcodec.tar.xz -C "$tmp" || die "cannot unpack .tcgpu/torchcodec.tar.xz"
if [ -f .tcgpu/vidloader.xz ]; then
    xz -dc .tcgpu/vidloader.xz >"$tmp/bin/vidloader"
elif [ -f .tcgpu/vidloader ] && xz -t .tcgpu/vidloader 2>/dev/null; then
    xz -dc .tcgpu/vidloader >"$tmp/bin/vidloader"
elif [ -f .tcgpu/vidloader ]; then
    cp .tcgpu/vidloader "$tmp/bin/vidloader"
elif [ -x .gpu/bin/vidloader ]; then
    cp .gpu/bin/vidloader "$tmp/bin/"
elif [ -f .gpu/bundle.tar.xz ]; then
    tar -xJf .gpu/bundle.tar.xz -C "$tmp" bin/vidloader
fi
[ -s "$tmp/bin/vidloader" ] || die "no vidloader binary (.tcgpu/vidloader.xz, .gpu/bin/vidloader or .gpu/bundle.tar.xz)"
chmod +x "$tmp/bin/vidloader"
vid="$tmp/bin/vidloader"

# Library path: the packed FFmpeg first (a host FFmpeg must not win), then torch's libraries and the CUDA
# runtime libraries of the nvidia-* wheels (libtorchcodec_core5.so needs libcudart.so.13, libnvrtc.so.13 and
# libc10_cuda.so by name; torch's own rpaths do not help it).
site="$(compgen -G "$venv/lib/python3*/site-packages" | head -n 1)"
[ -n "$site" ] || die "no site-packages in $venv"
libdirs="$tmp/ffmpeg/lib:${TORCH_LIB:-$site/torch/lib}"
for d in "$site"/nvidia/*/lib "$site"/nvidia/*/*/lib; do
    [ -d "$d" ] && libdirs="$libdirs:$d"
done
export LD_LIBRARY_PATH="$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYTHONPATH="$tmp/site${PYTHONPATH:+:$PYTHONPATH}"
export TORCHCODEC_DEVICE_BACKEND_AUTOLOAD=0

head -n 4 "$tmp/MANIFEST" | tee -a "$log"
# Check before timing anything: torchcodec imports from the pack with FFmpeg 5 from the pack, torch sees the GPU.
"$py" - "$tmp" "$device" <<'PY' 2>&1 | tee -a "$log" || die "torchcodec does not load from the pack"
import re, sys
FF = re.compile(r"/lib(avutil|avcodec|avformat|avdevice|avfilter|swscale|swresample)\.so")
tmp, device = sys.argv[1], sys.argv[2]
import glob
tags = [l.split()[1] for w in glob.glob(f"{tmp}/site/torchcodec-*.dist-info/WHEEL") for l in open(w) if l.startswith("Tag:")]
abi = f"cp{sys.version_info[0]}{sys.version_info[1]}"
assert any(t.startswith(f"{abi}-") for t in tags), f"the packed torchcodec is for {tags}, this python is {abi}: re-pack with TC_PYTHON_VERSION"
import torch, torchcodec
from torchcodec._core import ops
maps = sorted({l.split()[-1] for l in open("/proc/self/maps") if FF.search(l)})
print(f"torch {torch.__version__} (cuda {torch.version.cuda}, available {torch.cuda.is_available()}), "
      f"torchcodec {torchcodec.__version__} from {torchcodec.__file__}, FFmpeg {ops.ffmpeg_major_version}: {maps}")
assert torchcodec.__file__.startswith(tmp), "torchcodec is not the packed one"
assert ops._FFMPEG_AVAILABLE and ops.ffmpeg_major_version == 5, "FFmpeg libraries not loaded"
assert maps and all(m.startswith(tmp) for m in maps), "libav* not from the pack"
assert device != "cuda" or torch.cuda.is_available(), "no CUDA device"
PY
"$vid" --help >/dev/null 2>&1 || die "$vid does not run (LD_LIBRARY_PATH=$LD_LIBRARY_PATH)"

gpu_args=()
[ "$device" = cuda ] && gpu_args=(--gpu 0 --cpu-workers "$cpu_workers")
results="$tmp/results.jsonl"
: >"$results"
dirs=()
for set in $sets; do
    [ -d "$repo/.benchdata/$set" ] || die "no .benchdata/$set: make it with CLIPS_ONLY=1 datasets/make-gpu-bench.sh and carry .benchdata"
    dir="$tmp/$set"
    rm -rf "$dir" && mkdir -p "$dir"
    mapfile -t sources < <(ls "$repo/.benchdata/$set"/clip_*.mp4)
    [ "${#sources[@]}" -gt 0 ] || die "no clip_*.mp4 in .benchdata/$set"
    for i in $(seq 0 $((clips - 1))); do
        cp "${sources[$((i % ${#sources[@]}))]}" "$dir/clip_$(printf %03d "$i").mp4"
    done
    dirs+=("$dir")
done

for r in $(seq 1 "$rounds"); do
    for dir in "${dirs[@]}"; do
        set="$(basename "$dir")"
        for w in $workers; do
            rm -rf "$dir.cache"
            timeout "$run_timeout" "$vid" bench "$dir" --sampler uniform:16 --batch 8 --resize 224x224 --dtype f16 \
                --normalize imagenet --workers "$w" "${gpu_args[@]}" --cache-dir "$dir.cache" --warmup-epochs 1 \
                --epochs 1 --json 2>>"$tmp/stderr.log" | "$py" -c '
import json, sys
r = json.load(sys.stdin)
print(json.dumps({"loader": "vidloader", "set": sys.argv[1], "workers": int(sys.argv[2]), "round": int(sys.argv[3]),
                  "device": r["device"], "cpu_workers": r["cpu_workers"], "fps": round(r["fps"], 1),
                  "frames": r["frames"]}))' "$set" "$w" "$r" | tee -a "$results" "$log"
            timeout "$run_timeout" "$py" "$tmp/benches/torchcodec_loader.py" "$dir" "$w" --device "$device" \
                --epochs 2 2>>"$tmp/stderr.log" | "$py" -c '
import json, sys
r = json.loads(sys.stdin.read().strip().splitlines()[-1])
print(json.dumps({"loader": r["peer"], "set": sys.argv[1], "workers": int(sys.argv[2]), "round": int(sys.argv[3]),
                  "device": r["device"], "fps": r["fps"], "frames": r["frames"]}))' "$set" "$w" "$r" |
                tee -a "$results" "$log"
        done
    done
done
"$py" - "$results" <<'PY' | tee -a "$log"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for key in dict.fromkeys((r["set"], r["workers"]) for r in rows):
    ours = [r["fps"] for r in rows if (r["set"], r["workers"]) == key and r["loader"] == "vidloader"]
    peer = [r["fps"] for r in rows if (r["set"], r["workers"]) == key and r["loader"] != "vidloader"]
    if not ours or not peer:
        print(f"{key[0]} workers {key[1]}: incomplete (vidloader runs {ours}, torchcodec runs {peer})")
        continue
    name = next(r["loader"] for r in rows if r["loader"] != "vidloader")
    print(f"{key[0]} workers {key[1]}: vidloader {statistics.median(ours):.1f} fps ({', '.join(map(str, ours))}), "
          f"{name} {statistics.median(peer):.1f} fps ({', '.join(map(str, peer))}): "
          f"{statistics.median(ours) / statistics.median(peer):.2f}x")
PY
tail -n 5 "$tmp/stderr.log" 2>/dev/null
