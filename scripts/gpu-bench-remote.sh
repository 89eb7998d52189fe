#!/usr/bin/env bash
# gpu-bench-remote.sh: the side-by-side GPU benchmark, vidloader against PyNvVideoCodec, in one command on the
# GPU machine (run from the repo root). It needs, next to the working tree:
#   .gpu/        the bundle of `scripts/gpu.sh build` (holds the gpu_decode bench executable)
#   .benchdata/  the files of `datasets/make-gpu-bench.sh`
#   .whl/        the PyNvVideoCodec wheel (pip download ... PyNvVideoCodec==2.2.4; scripts/slim-wheel.py makes it
#                smaller); torch and numpy come from the machine's Python
#
#     bash scripts/gpu-bench-remote.sh
#
# Steps: installs the wheel into /tmp/site; runs the Rust bench through scripts/gpu-remote.sh (which unpacks the
# bundle and points the loader at libtorch) and benches/pynvc_bench.py (GPU_BENCH_PROCESSES times each,
# alternating); the DataLoader (`vidloader bench`); benches/pynvc_loader.py; pairs the
# results with benches/compare.py. Results go to $OUT (default target/gpu-bench): vidloader.log, pynvc.log
# (vidloader.N.log, pynvc.N.log for process N of several), dataloader.log, pynvc-loader.log (the JSON lines and readable lines of each program), table.md (the comparison) and run.txt
# (machine, versions, step times). Exit status 0 when every step ran (single scenarios may still have failed:
# see table.md).
#
# Time: each program gets a share of GPU_BENCH_BUDGET_S (default 400 s; vidloader 45 %, PyNvVideoCodec
# scenarios 35 %, hand-written loader 20 %; the shares of the steps left out of GPU_BENCH_STEPS go to the others
# in the same proportions). When its share is spent a program stops its clip and loader loops
# early (the line says "truncated"), skips the scenarios left, and is killed if still running 45-60 s later. A
# normal run took about 5-6 minutes on an H100 before the short scenarios were repeated until 1 s of them is timed
# (VIDLOADER_BENCH_MIN_S, VIDLOADER_BENCH_MAX_REPEATS; both programs); it takes longer now: raise
# GPU_BENCH_BUDGET_S when clip or loader lines say "truncated". The worst case is about GPU_BENCH_BUDGET_S + 170 s
# (each process beyond the first adds up to 105 s of the programs' grace periods).
#
# Environment: GPU_BENCH_BUDGET_S; GPU_BENCH_PROCESSES (default 1): run the two scenario programs that many
# times each, alternating, each run a process of its own with its part of the budget; the table then gives each
# row the median over the processes and how far they lie apart (one program's 7-thread rows moved up to 2.5 %
# between processes while the repeats inside one agreed within 0.5 %, 2026-12-04: quote ratios from 3 processes);
# the DataLoader and hand-written loader steps run once, after them; GPU_BENCH_CLIPS (clips per clip scenario,
# default 210); GPU_BENCH_ONLY
# (scenario prefixes, comma-separated, for all programs); GPU_BENCH_STEPS (default "rust,dataloader,pynvc,loader");
# GPU_BENCH_DL_CPU_WORKERS (the DataLoader step's CPU decode workers beside NVDEC, space-separated settings, each
# run at every worker count; default "0 default": "0" = NVDEC only, result "loader", the row paired with the
# PyNvVideoCodec loader, which decodes on NVDEC only; "default" = the loader's own choice (hybrid: cores - 2 CPU
# workers), result "loader_hybrid"; another number N, result "loader_cpuN"); GPU_BENCH_DL_MIN_S (the
# DataLoader's --min-seconds, default 1); GPU_BENCH_PIN_CORES (default "1-<cores - 1>", "none" = not pinned):
# exported as VIDLOADER_BENCH_PIN_CORES, with which both benchmark programs pin their thread i to the
# (i % len)-th core listed (core 0 left out: unpinned, the 360p clip rows of both programs were bimodal, one thread
# of seven 5-30 % late with two to three times the others' CPU time; pinned, none was, 2026-12-04; see
# BENCHMARKS.md). The DataLoader and the hand-written loader are not pinned;
# PYTHON (default python3); TORCH_LIB (see gpu-remote.sh).
set -uo pipefail

repo="$(pwd)"
out="${OUT:-$repo/target/gpu-bench}"
budget="${GPU_BENCH_BUDGET_S:-400}"
steps="${GPU_BENCH_STEPS:-rust,dataloader,pynvc,loader}"
processes="${GPU_BENCH_PROCESSES:-1}"
[[ "$processes" =~ ^[1-9][0-9]*$ ]] || { echo "GPU_BENCH_PROCESSES must be a positive number" >&2; exit 2; }
py="${PYTHON:-python3}"
mkdir -p "$out"
run_txt="$out/run.txt"
: >"$run_txt"

say() { printf '%s\n' "$*" | tee -a "$run_txt"; }
wanted() { [[ ",$steps," == *",$1,"* ]]; }
# The shares of the steps that run add up to the whole budget (a run of only rust,pynvc gives them 45/80 and 35/80:
# with fixed shares, PyNvVideoCodec's clip rows were skipped for want of time, 2026-12-04).
share_total=0
for s_p in rust:45 pynvc:35 loader:20; do wanted "${s_p%%:*}" && share_total=$((share_total + ${s_p#*:})); done
share() { awk -v b="$budget" -v p="$1" -v t="$share_total" 'BEGIN { printf "%d", b * p / (t > 0 ? t : 100) }'; }

export PYTHONUNBUFFERED=1
export VIDLOADER_BENCH_DATA="$repo/.benchdata"
export VIDLOADER_BENCH_CLIPS="${GPU_BENCH_CLIPS:-210}"
export VIDLOADER_BENCH_ONLY="${GPU_BENCH_ONLY:-}"
export VIDLOADER_BENCH_TMP="${TMPDIR:-/tmp}"
pin="${GPU_BENCH_PIN_CORES:-1-$(($(nproc) - 1))}"
if [ "$pin" = none ]; then unset VIDLOADER_BENCH_PIN_CORES; else export VIDLOADER_BENCH_PIN_CORES="$pin"; fi

t0=$(date +%s)
say "=== vidloader vs PyNvVideoCodec GPU benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1 |
        sed 's/^/    gpu: /' | tee -a "$run_txt"
fi
say "    cpus: $(nproc) online; $(lscpu 2>/dev/null | grep -E '^(Model name|Thread\(s\) per core|NUMA node\(s\))' | tr -s ' ' | paste -sd ';' -)"
say "    benchmark threads pinned to cores: ${VIDLOADER_BENCH_PIN_CORES:-no}"
# Which cores take the GPU's interrupts (a thread sharing such a core may run late).
say "    nvidia interrupts by core: $(awk 'NR == 1 { n = NF } /nvidia/ { for (i = 2; i <= n + 1; i++) if ($i + 0 > 0) printf "cpu%d:%s ", i - 2, $i }' /proc/interrupts 2>/dev/null)"
[ -f .gpu/BUILD-INFO ] && sed 's/^/    build: /' .gpu/BUILD-INFO | tee -a "$run_txt"
say "    data: $(du -shL .benchdata 2>/dev/null | cut -f1) in .benchdata; budget ${budget} s;" \
    "clips $VIDLOADER_BENCH_CLIPS"
[ -d .benchdata ] || say "WARNING: no .benchdata (make it with datasets/make-gpu-bench.sh and carry it)"

# The wheel, into /tmp/site (no index, no dependencies: torch and numpy are the machine's).
if wanted pynvc || wanted loader; then
    if ls .whl/*.whl >/dev/null 2>&1 &&
        "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
            .whl/*.whl >>"$run_txt" 2>&1; then
        export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
        versions='import sys, torch; print(sys.version.split()[0], "torch", torch.__version__)'
        say "    python: $("$py" -c "$versions" 2>&1 | tail -n 1)"
        say "    PyNvVideoCodec: $("$py" -c 'import PyNvVideoCodec as n; print(n.__version__)' 2>&1 | tail -n 1)"
    else
        say "WARNING: could not install .whl/*.whl into /tmp/site: the PyNvVideoCodec steps will say why they skip"
    fi
fi

# step NAME SECONDS LOG COMMAND...: runs COMMAND under a time limit, its output into LOG (and the console).
step() {
    local name="$1" limit="$2" log="$3" start rc
    shift 3
    start=$(date +%s)
    say "=== $name (limit ${limit} s): $*"
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    say "=== $name: exit $rc after $(($(date +%s) - start)) s"
    return "$rc"
}

failed=0
# The two scenario programs, in GPU_BENCH_PROCESSES rounds (rust, pynvc, rust, pynvc, ...), each round with its
# part of their shares; logs vidloader.log / pynvc.log, or vidloader.N.log / pynvc.N.log for round N of several.
round_logs=()
for round in $(seq 1 "$processes"); do
    sfx=""
    [ "$processes" -gt 1 ] && sfx=".$round"
    if wanted rust; then
        b=$(($(share 45) / processes))
        # gpu-remote.sh unpacks the bundle, sets LD_LIBRARY_PATH and runs `<gpu_decode exe> --bench`; with OUT
        # unset it writes only to stdout (captured here).
        step "vidloader (gpu_decode)${sfx:+, process $round}" $((b + 60)) "$out/vidloader$sfx.log" \
            env OUT= GPU_TESTS=none GPU_TEST_TIMEOUT=$((b + 45)) VIDLOADER_BENCH_BUDGET_S="$b" \
            bash scripts/gpu-remote.sh gpu_decode || failed=1
        round_logs+=("$out/vidloader$sfx.log")
    fi
    if wanted pynvc; then
        b=$(($(share 35) / processes))
        step "PyNvVideoCodec scenarios${sfx:+, process $round}" $((b + 45)) "$out/pynvc$sfx.log" \
            "$py" benches/pynvc_bench.py --budget "$b" || failed=1
        round_logs+=("$out/pynvc$sfx.log")
    fi
done
if wanted dataloader; then
    # vidloader's DataLoader (the `vidloader bench` command) over 210 copies of the clips, with the sampling of the
    # hand-written PyNvVideoCodec loader: 16 evenly spaced frames per clip, 224x224, ImageNet normalisation, fp16,
    # batches of 8. Its JSON summary becomes a result line: scenario "loader" (NVDEC only, paired with
    # PyNvVideoCodec's) and "loader_hybrid" (the default: CPU workers beside NVDEC; its rate also depends on how
    # the CPU decoders fare on a busy host: it moved 1-11 % between runs where NVDEC only moved 0.2-2.3 %). One
    # warm-up epoch (metadata scans, decoder creation) is left out, as the hand-written loader warms its workers up;
    # then at least 3 epochs, more until 1 s is timed (at most 25), and the line gives their median.
    dl_log="$out/dataloader.log"
    : >"$dl_log"
    start=$(date +%s)
    bin_dir=.gpu/bin
    if [ ! -x "$bin_dir/vidloader" ]; then
        bin_dir="$VIDLOADER_BENCH_TMP/vidloader-dataloader-bin"
        rm -rf "$bin_dir" && mkdir -p "$bin_dir"
        "$py" -c 'import sys, tarfile
t = tarfile.open(sys.argv[1], "r:xz")
m = t.getmember("bin/vidloader"); m.name = "vidloader"; t.extract(m, sys.argv[2])' .gpu/bundle.tar.xz "$bin_dir"
        chmod +x "$bin_dir/vidloader"
    fi
    export LD_LIBRARY_PATH="${TORCH_LIB:-/opt/torch/.venv/lib/python3.12/site-packages/torch/lib}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    for set in clips_1080p clips_360p; do
        dir="$VIDLOADER_BENCH_TMP/vidloader-dataloader-$set"
        rm -rf "$dir" && mkdir -p "$dir"
        for i in $(seq 0 $((VIDLOADER_BENCH_CLIPS - 1))); do
            cp ".benchdata/$set/clip_$(printf %02d $((i % 12))).mp4" "$dir/clip_$(printf %03d "$i").mp4"
        done
        for w in 1 7 14; do
          for cw in ${GPU_BENCH_DL_CPU_WORKERS:-0 default}; do
            case "$cw" in
                0) scenario=loader cw_args=(--cpu-workers 0) ;;
                default) scenario=loader_hybrid cw_args=() ;;
                *) scenario="loader_cpu$cw" cw_args=(--cpu-workers "$cw") ;;
            esac
            rm -rf "$dir.cache"
            timeout 120 "$bin_dir/vidloader" bench "$dir" --sampler uniform:16 --batch 8 --resize 224x224 \
                --dtype f16 --normalize imagenet --no-shuffle --workers "$w" --gpu 0 --cache-dir "$dir.cache" \
                "${cw_args[@]}" --warmup-epochs 1 --epochs 3 --min-seconds "${GPU_BENCH_DL_MIN_S:-1}" --json \
                2>>"$dl_log" | "$py" -c '
import json, sys
r = json.load(sys.stdin)
runs = sorted(round(f, 1) for f in r["epoch_fps"])
fps = r["median_epoch_fps"]
print(json.dumps({"impl": "vidloader", "scenario": sys.argv[3], "file": sys.argv[1], "threads": int(sys.argv[2]),
                  "fps": round(fps, 1), "fps_runs": runs, "spread_pct": round((runs[-1] - runs[0]) / fps * 100, 1),
                  "frames": r["frames"], "decoded": r["frames_decoded"], "decoded_fps": round(r["decoded_fps"], 1),
                  "seconds": r["seconds"], "pool_hit_rate": r["pool_hit_rate"], "backend": r["backend"],
                  "cpu_workers": r.get("cpu_workers")}))' \
                "$set" "$w" "$scenario" \
                | tee -a "$dl_log" || failed=1
          done
        done
    done
    say "=== DataLoader: $(($(date +%s) - start)) s"
fi
if wanted loader; then
    b=$(share 20)
    step "PyNvVideoCodec hand-written loader" $((b + 45)) "$out/pynvc-loader.log" \
        "$py" benches/pynvc_loader.py --budget "$b" || failed=1
fi

logs=()
for f in "${round_logs[@]}" "$out/dataloader.log" "$out/pynvc-loader.log"; do [ -f "$f" ] && logs+=("$f"); done
say "=== comparison (vidloader / PyNvVideoCodec, higher is better)"
if [ "${#logs[@]}" -gt 0 ] && "$py" benches/compare.py "${logs[@]}" --out "$out/table.md" >/dev/null; then
    tee -a "$run_txt" <"$out/table.md"
else
    say "(no results to compare)"
    failed=1
fi
say "=== done in $(($(date +%s) - t0)) s; results in $out"
exit "$failed"
