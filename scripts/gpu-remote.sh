#!/usr/bin/env bash
# gpu-remote.sh: runs on the GPU machine (Ubuntu 24.04, H100 / H200; libtorch, no FFmpeg, no cargo), from the
# repo root, with the .gpu/ bundle that `scripts/gpu.sh build` made here carried along.
#
#     bash scripts/gpu-remote.sh [BENCH...] [-- BENCH_ARGS...]
#
# 1. points the loader at libtorch (LD_LIBRARY_PATH) and the tests at the bundled fixtures
#    (VIDLOADER_FIXTURES), unpacking .gpu/bundle.tar.xz first if the bundle was packed;
# 2. runs every test executable of .gpu/manifest.tsv (lib and bin unit tests, integration tests), each with
#    the default libtest options, and goes on after a failure;
# 3. runs each BENCH named on the command line (a bench target name, e.g. cpu_decode) as `<exe> --bench
#    BENCH_ARGS...`, as `cargo bench` would;
# 4. with GPU_TRANSCODE_TIMING=N, times the transcodes below (before the benches);
# 5. prints a summary. Everything is also written to $OUT/gpu-log.txt when $OUT is set.
# Exit status: 0 if every test executable and bench passed, 1 otherwise.
#
# Environment:
#   VIDLOADER_REQUIRE_GPU  1 (default here): a GPU test without a usable GPU fails; 0 lets it skip
#   TORCH_LIB          libtorch folder (default /opt/torch/.venv/lib/python3.12/site-packages/torch/lib)
#   GPU_TESTS          comma-separated test names to run (manifest names, e.g. api,errors; default: all);
#                      GPU_TESTS=none runs only the benches
#   TEST_ARGS          extra arguments for every test executable (a filter, --test-threads=1, ...)
#   GPU_TEST_TIMEOUT   seconds allowed per executable (default 300; 0 = no limit)
#   GPU_KEEP_UNPACKED  keep the folder a packed bundle was unpacked into (default: removed at exit)
#   GPU_TRANSCODE_TIMING=N   after the tests, time N runs each (alternating) of `vidloader transcode` of the
#                      bundled 1080p input (fixtures/transcode_1080p30_h264.mp4) with `--gpu 0 --preset p4`
#                      (NVDEC decode, libx264) and with `--preset p4` (CPU decode, libx264), and of the bundled
#                      ffmpeg program (`-c:v libx264 -preset faster`, the same x264 preset) when there is one
#
# It finds the bundle in <current directory>/.gpu, so it also runs as `bash .gpu/gpu-remote.sh` from the
# repository root (a copy of this script carried inside the bundle).
set -euo pipefail

TORCH_LIB="${TORCH_LIB:-/opt/torch/.venv/lib/python3.12/site-packages/torch/lib}"
# On the GPU machine a GPU test that finds no usable GPU fails instead of skipping (set 0 to allow skips).
export VIDLOADER_REQUIRE_GPU="${VIDLOADER_REQUIRE_GPU:-1}"
GPU_TEST_TIMEOUT="${GPU_TEST_TIMEOUT:-300}"
repo_root="$(pwd)"

main() {
    local gpu="$repo_root/.gpu"
    [ -d "$gpu" ] || { echo "no .gpu/ in $repo_root: run scripts/gpu.sh build on the build machine and carry .gpu" >&2; return 1; }

    echo "=== vidloader GPU run: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
    [ -f "$gpu/BUILD-INFO" ] && sed 's/^/    /' "$gpu/BUILD-INFO"
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/    gpu: /' || true
    else
        echo "    (no nvidia-smi)"
    fi

    # A packed bundle is unpacked into a scratch folder (the carried copy may be read-only).
    if [ -f "$gpu/bundle.tar.xz" ] && [ ! -d "$gpu/bin" ]; then
        local unpacked
        unpacked="$(mktemp -d "${TMPDIR:-/tmp}/vidloader-gpu.XXXXXX")"
        # Removed when the run ends (set GPU_KEEP_UNPACKED=1 to keep it for a look).
        # The path is expanded now: `unpacked` is local to main and gone when the trap runs.
        # shellcheck disable=SC2064
        [ -n "${GPU_KEEP_UNPACKED:-}" ] || trap "rm -rf '$unpacked'" EXIT
        echo "=== unpacking .gpu/bundle.tar.xz into $unpacked"
        if command -v xz >/dev/null; then
            xz -dc "$gpu/bundle.tar.xz" | tar -xf - -C "$unpacked"
        else
            # No xz binary: Python's lzma module (the torch venv has a Python) does it.
            local py
            py="$(command -v python3 || echo /opt/torch/.venv/bin/python)"
            "$py" -c 'import sys, tarfile; tarfile.open(sys.argv[1], "r:xz").extractall(sys.argv[2])' \
                "$gpu/bundle.tar.xz" "$unpacked"
        fi
        cp "$gpu/manifest.tsv" "$unpacked/"
        [ -f "$gpu/BUILD-INFO" ] && cp "$gpu/BUILD-INFO" "$unpacked/"
        gpu="$unpacked"
    fi
    local bin="$gpu/bin"
    [ -d "$bin" ] || { echo "no $bin" >&2; return 1; }
    chmod +x "$bin"/* 2>/dev/null || true

    # Tests write scratch files under the fixture folder: use a writable copy if the carried one is not.
    local fixtures="$gpu/fixtures"
    mkdir -p "$fixtures" 2>/dev/null || true
    if [ ! -w "$fixtures" ]; then
        local copy
        copy="$(mktemp -d "${TMPDIR:-/tmp}/vidloader-fixtures.XXXXXX")"
        cp -a "$fixtures/." "$copy/" 2>/dev/null || true
        fixtures="$copy"
    fi
    export VIDLOADER_FIXTURES="$fixtures"
    echo "    fixtures: $VIDLOADER_FIXTURES ($(find "$fixtures" -maxdepth 1 -type f | wc -l) files)"

    if [ ! -d "$TORCH_LIB" ]; then
        echo "WARNING: no libtorch at $TORCH_LIB (set TORCH_LIB)"
    fi
    export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

    # tests/cli.rs runs env!("CARGO_BIN_EXE_vidloader"), a path of the build machine compiled into the test:
    # make that path lead to the bundled binary when it does not exist here. (VIDLOADER_BIN is exported too,
    # for tests that prefer it to the compiled-in path.)
    [ -f "$bin/vidloader" ] && export VIDLOADER_BIN="$bin/vidloader"
    local exe_dir
    exe_dir="$(sed -n 's/^cargo_bin_exe_dir=//p' "$gpu/BUILD-INFO" 2>/dev/null || true)"
    if [ -n "$exe_dir" ] && [ -f "$bin/vidloader" ] && [ ! -e "$exe_dir/vidloader" ]; then
        if mkdir -p "$exe_dir" 2>/dev/null && ln -sf "$bin/vidloader" "$exe_dir/vidloader" 2>/dev/null; then
            echo "    linked $exe_dir/vidloader -> $bin/vidloader (for CARGO_BIN_EXE_vidloader)"
        else
            echo "WARNING: cannot create $exe_dir/vidloader: tests that run the CLI will fail"
        fi
    fi

    # Libraries the executables cannot find here (FFmpeg should be linked in, libtorch found above).
    local f missing
    for f in "$bin"/*; do
        missing="$(ldd "$f" 2>/dev/null | grep 'not found' || true)"
        [ -z "$missing" ] || printf 'WARNING: %s lacks:\n%s\n' "$(basename "$f")" "$missing"
    done

    # Split the arguments: BENCH... [-- BENCH_ARGS...]
    local benches=() bench_args=()
    while [ "$#" -gt 0 ]; do
        if [ "$1" = "--" ]; then shift; bench_args=("$@"); break; fi
        benches+=("$1"); shift
    done

    local test_args=()
    # Word splitting is intended: TEST_ARGS is a list of arguments in one variable.
    # shellcheck disable=SC2206
    [ -n "${TEST_ARGS:-}" ] && test_args=(${TEST_ARGS})

    local results=() failed=0 kind name file rc start secs
    run_one() { # label, command...
        local label="$1"; shift
        echo
        echo "=== $label: $*"
        start=$(date +%s)
        rc=0
        if [ "$GPU_TEST_TIMEOUT" != 0 ]; then
            timeout --kill-after=10 "$GPU_TEST_TIMEOUT" "$@" || rc=$?
        else
            "$@" || rc=$?
        fi
        secs=$(($(date +%s) - start))
        local verdict=ok
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then verdict="TIMEOUT after ${GPU_TEST_TIMEOUT}s"
        elif [ "$rc" -ne 0 ]; then verdict="FAILED (exit $rc)"; fi
        [ "$rc" -eq 0 ] || failed=1
        echo "=== $label: $verdict in ${secs}s"
        results+=("$(printf '%-44s %s (%ss)' "$label" "$verdict" "$secs")")
    }

    # Test executables: from the manifest, or every <name>-<16 hex> file when there is none.
    local tests=()
    if [ -f "$gpu/manifest.tsv" ]; then
        while IFS=$'\t' read -r kind name file; do
            [ "$kind" = test ] || continue
            if [ -n "${GPU_TESTS:-}" ] && [[ ",$GPU_TESTS," != *",$name,"* ]]; then continue; fi
            tests+=("$file")
        done <"$gpu/manifest.tsv"
    else
        for f in "$bin"/*; do
            [[ "$(basename "$f")" =~ -[0-9a-f]{16}$ ]] && tests+=("$(basename "$f")")
        done
    fi

    cd "$repo_root"
    for file in "${tests[@]}"; do
        run_one "test $file" "$bin/$file" "${test_args[@]}"
    done

    if [ -n "${GPU_TRANSCODE_TIMING:-}" ] && [ "${GPU_TRANSCODE_TIMING}" != 0 ]; then
        transcode_timing "$GPU_TRANSCODE_TIMING" "$bin" || failed=1
    fi

    local b exe
    for b in "${benches[@]}"; do
        exe=""
        if [ -f "$gpu/manifest.tsv" ]; then
            exe="$(awk -F'\t' -v b="$b" '$1 == "bench" && ($2 == b || $3 == b) { print $3; exit }' "$gpu/manifest.tsv")"
        fi
        if [ -z "$exe" ]; then
            exe="$(find "$bin" -maxdepth 1 -type f -name "$b-*" -printf '%f\n' | head -n 1)"
        fi
        if [ -z "$exe" ]; then
            echo "=== bench $b: NOT FOUND in $bin"
            results+=("$(printf '%-44s %s' "bench $b" "NOT FOUND")")
            failed=1
            continue
        fi
        run_one "bench $b" "$bin/$exe" --bench "${bench_args[@]}"
    done

    echo
    echo "=== summary"
    local r
    for r in "${results[@]}"; do echo "    $r"; done
    if [ "$failed" -eq 0 ]; then echo "=== all passed"; else echo "=== SOME FAILED"; fi
    return "$failed"
}

# transcode_timing RUNS BIN: wall-clock times of the three transcodes, alternating, then min / median per kind.
transcode_timing() {
    local runs="$1" bin="$2" input tmp i label secs rc
    input="$VIDLOADER_FIXTURES/transcode_1080p30_h264.mp4"
    echo
    if [ ! -f "$input" ]; then
        echo "=== transcode timing: no $input (make it with scripts/gpu.sh fixtures)"
        return 1
    fi
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/vidloader-transcode.XXXXXX")"
    echo "=== transcode timing: $(basename "$input") ($(du -h "$input" | cut -f1)), $runs runs each, alternating, $(nproc) cores"
    local times="$tmp/times.tsv"
    : >"$times"
    timed() { # label, command...
        label="$1"; shift
        local t0 t1 log="$tmp/last.log"
        t0=$(date +%s.%N)
        rc=0
        "$@" >"$log" 2>&1 || rc=$?
        t1=$(date +%s.%N)
        secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
        printf '%s\t%s\n' "$label" "$secs" >>"$times"
        printf '    run %s  %-34s %6s s%s\n' "$i" "$label" "$secs" "$([ "$rc" -eq 0 ] || echo "  FAILED (exit $rc)")"
        if [ "$i" = 1 ] || [ "$rc" -ne 0 ]; then sed 's/^/        | /' "$log" | tail -n 6; fi
        return "$rc"
    }
    local bad=0
    for i in $(seq 1 "$runs"); do
        timed "vidloader --gpu 0 (NVDEC + libx264)" \
            "$bin/vidloader" transcode "$input" "$tmp/nvdec.mp4" --gpu 0 --preset p4 || bad=1
        timed "vidloader (CPU decode + libx264)" \
            "$bin/vidloader" transcode "$input" "$tmp/cpu.mp4" --preset p4 || bad=1
        if [ -x "$bin/ffmpeg" ]; then
            timed "ffmpeg -c:v libx264 -preset faster" \
                "$bin/ffmpeg" -hide_banner -loglevel error -y -i "$input" -c:v libx264 -preset faster "$tmp/ffmpeg.mp4" || bad=1
        fi
    done
    echo "    kind                                  min    median  (s, wall clock)"
    awk -F'\t' '{ t[$1] = t[$1] " " $2; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
        END { for (k = 1; k <= n; k++) { m = split(substr(t[order[k]], 2), v, " ");
                  for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] + 0 < v[i] + 0) { x = v[i]; v[i] = v[j]; v[j] = x }
                  med = (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2;
                  printf "    %-36s %6.2f %8.2f\n", order[k], v[1], med } }' "$times"
    rm -rf "$tmp"
    return "$bad"
}

# (With pipefail the pipeline's status is main's; main keeps errexit, so a broken bundle stops it early.)
if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    main "$@" 2>&1 | tee "$OUT/gpu-log.txt"
else
    main "$@"
fi
