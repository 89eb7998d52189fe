#!/usr/bin/env bash
# gpu.sh: build the bundle that runs vidloader's tests and benches on the GPU machine.
#
#   scripts/gpu.sh build      build everything with FFmpeg linked statically and fill <repo>/.gpu/
#   scripts/gpu.sh fixtures   run the bundled test executables HERE once, so that the test suite makes its
#                             fixtures (with the ffmpeg CLI, which the GPU machine lacks) in target/fixtures;
#                             then run `build` again (or `pack`) to bundle them
#   scripts/gpu.sh pack       redo only the fixture copy and the size check of an existing build
#   scripts/gpu.sh command    print the command to run on the GPU machine
#
# The GPU machine (Ubuntu 24.04, H100 / H200; NVDEC, no NVENC) has libtorch but no FFmpeg, no cargo and no network, so:
#   * FFmpeg is built statically by scripts/build-static-ffmpeg.sh (into target/ffmpeg-static) and linked
#     in with `--features static-ffmpeg` (FFMPEG_DIR points ffmpeg-sys-next at it);
#   * everything is built with CARGO_TARGET_DIR=target/gpu (so it never disturbs target/release), stripped,
#     and copied to .gpu/bin/; .gpu/manifest.tsv says what each file is (bin, test, bench, example);
#   * fixtures that the tests made in target/fixtures are copied to .gpu/fixtures/;
#   * the static build's `ffmpeg` program goes along as .gpu/bin/ffmpeg (manifest kind "tool"), for timing
#     comparisons; `fixtures` also makes the 1080p input of the transcode timing (transcode_1080p30_h264.mp4);
#   * `ldd` must show no libav*/libsw*/libpostproc library in any executable, and .gpu must stay under
#     60 MiB (the carry limit of the tool that ships it is 64 MiB). If the plain copy is too big, bin/ and
#     fixtures/ are packed into one solid .gpu/bundle.tar.xz (the static FFmpeg code repeated in every
#     executable then costs almost nothing); scripts/gpu-remote.sh unpacks it. Still too big: fail.
#
# Then, on the GPU machine, from the repo root (with .gpu carried along, it is git-ignored):
#     bash scripts/gpu-remote.sh [BENCH...] [-- BENCH_ARGS...]
#
# Environment:
#   FFMPEG_STATIC_PREFIX   where the static FFmpeg goes (default <repo>/target/ffmpeg-static)
#   GPU_STRIP              "all" (default: smallest) or "debug" (keep the symbol table, for readable
#                          backtraces; bigger)
#   GPU_PACK               "auto" (default: pack only when the plain copy is over the limit), "always", "never"
#   GPU_MAX_MIB            size limit of .gpu in MiB (default 60)
#   GPU_FIXTURES_SRC       fixture folder to make and bundle (default <repo>/target/fixtures, where the tests
#                          put them when VIDLOADER_FIXTURES is unset)
#   GPU_BUNDLE             "tests" (default): the bins, test executables, examples and test fixtures; "all":
#                          also the bench executables, the static `ffmpeg` tool and the transcode-timing input
#                          (the full set grew past the limit in session 14; the benches have their own small
#                          bundle, see GPU_ONLY)
#   GPU_ONLY               comma-separated target names (e.g. gpu_decode,vidloader): bundle only those
#                          executables (with GPU_FIXTURES_SRC=/nonexistent: no fixtures either), for a small
#                          benchmark-only bundle
#   GPU_DIR                where the bundle goes (default <repo>/.gpu; gpu-remote.sh reads ./.gpu)
#   CARGO_BUILD_JOBS       as for cargo
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
PREFIX="${FFMPEG_STATIC_PREFIX:-$repo/target/ffmpeg-static}"
TARGET_DIR="$repo/target/gpu"
GPU="${GPU_DIR:-$repo/.gpu}"
MAX_MIB="${GPU_MAX_MIB:-60}"
STRIP_MODE="${GPU_STRIP:-all}"
PACK_MODE="${GPU_PACK:-auto}"
BUNDLE_MODE="${GPU_BUNDLE:-tests}"
MESSAGES="$TARGET_DIR/build-messages.json"
FIXTURES_SRC="${GPU_FIXTURES_SRC:-$repo/target/fixtures}"
REMOTE_CMD="bash scripts/gpu-remote.sh"

log() { printf '[gpu.sh] %s\n' "$*" >&2; }
die() { printf '[gpu.sh] ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# Bench targets of the package, from cargo metadata. Built with `--bench NAME` rather than `--benches`:
# `--benches` also builds the lib and bin unit tests a second time in bench mode, which are of no use here.
bench_targets() {
    (cd "$repo" && cargo metadata --no-deps --format-version 1) | python3 -c '
import json, sys
m = json.load(sys.stdin)
for p in m["packages"]:
    for t in p["targets"]:
        if "bench" in t["kind"]:
            print(t["name"])
'
}

# Turns cargo's JSON messages into "kind<TAB>name<TAB>path" lines for the workspace's executables.
list_executables() {
    python3 - "$1" "$(cd "$repo" && cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
print(",".join(p["id"] for p in json.load(sys.stdin)["packages"]))')" <<'EOF'
import json, os, sys
messages, ids = sys.argv[1], set(sys.argv[2].split(","))
seen = {}
for line in open(messages):
    line = line.strip()
    if not line.startswith("{"):
        continue
    m = json.loads(line)
    if m.get("reason") != "compiler-artifact" or m.get("package_id") not in ids or not m.get("executable"):
        continue
    kind, name, exe = m["target"]["kind"], m["target"]["name"], m["executable"]
    if "bench" in kind:
        k = "bench"
    elif "example" in kind:
        k = "example"
    elif m["profile"]["test"]:
        k = "test"          # lib / bin unit tests and integration tests: <name>-<hash>
    elif "bin" in kind:
        k = "bin"
    else:
        continue
    seen[exe] = (k, name)
for exe, (k, name) in seen.items():
    print(f"{k}\t{name}\t{exe}")
EOF
}

# Hook: the test suite makes its fixtures (and the ffmpeg CLI's reference decodes of them) in
# target/fixtures the first time a test needs them; the GPU machine has no ffmpeg CLI to make them, so they
# travel in .gpu/fixtures (tests find them through VIDLOADER_FIXTURES). Some tests also make small inputs
# of their own with the CLI in fixtures/scratch/ when absent (an audio-only file, a rotated copy): the
# files directly in scratch/ go along too; its subfolders (test output) and temporaries do not.
copy_fixtures() {
    local src="$FIXTURES_SRC" n=0 f rel
    rm -rf "${GPU:?}/fixtures"
    mkdir -p "$GPU/fixtures"
    if [ ! -d "$src" ]; then
        log "no $src: no fixtures bundled (make them with: scripts/gpu.sh fixtures)"
        return 0
    fi
    local skip=()
    # The transcode-timing input goes along only with the benches (GPU_BUNDLE=all, or GPU_ONLY naming ffmpeg).
    if [ "$BUNDLE_MODE" != all ] && [[ ",${GPU_ONLY:-}," != *",ffmpeg,"* ]]; then
        skip=(! -name "$TRANSCODE_INPUT")
    fi
    while IFS= read -r -d '' f; do
        rel="${f#"$src"/}"
        mkdir -p "$GPU/fixtures/$(dirname "$rel")"
        cp -p "$f" "$GPU/fixtures/$rel"
        n=$((n + 1))
    done < <(find "$src" -mindepth 1 -maxdepth 1 -type f ! -name 'tmp-*' ! -name '*.tmp' "${skip[@]}" -print0
        [ -d "$src/scratch" ] && find "$src/scratch" -mindepth 1 -maxdepth 1 -type f ! -name 'tmp-*' ! -name '*.tmp' -print0)
    log "copied $n fixture files ($(du -sh "$GPU/fixtures" | cut -f1)) from $src"
}

size_bytes() { du -sb "$1" | cut -f1; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# Size check, packing into one solid .tar.xz when the plain files are too big (or GPU_PACK=always).
check_size_and_pack() {
    local max=$((MAX_MIB * 1048576)) total
    rm -f "$GPU/bundle.tar.xz"
    total=$(size_bytes "$GPU")
    log "plain .gpu: $(mib "$total") MiB (limit $MAX_MIB MiB)"
    if [ "$PACK_MODE" = always ] || { [ "$PACK_MODE" = auto ] && [ "$total" -gt "$max" ]; }; then
        log "packing bin/ and fixtures/ into .gpu/bundle.tar.xz"
        # A 256 MiB window lets xz see that every executable carries the same FFmpeg (and SQLite, and libtorch glue).
        (cd "$GPU" && tar -cf - bin fixtures | xz -T0 --lzma2=preset=6e,dict=256MiB >bundle.tar.xz.tmp)
        mv "$GPU/bundle.tar.xz.tmp" "$GPU/bundle.tar.xz"
        rm -rf "${GPU:?}/bin" "${GPU:?}/fixtures"
        total=$(size_bytes "$GPU")
        log "packed .gpu: $(mib "$total") MiB"
    fi
    if [ "$total" -gt "$max" ]; then
        du -ab "$GPU" | sort -n | tail -n 15 >&2
        die ".gpu is $(mib "$total") MiB, over the $MAX_MIB MiB limit: it cannot be carried to the GPU machine. Drop fixtures, use GPU_PACK=always, or build fewer targets."
    fi
}

check_no_ffmpeg_shared() {
    local bad=0 f libs
    for f in "$GPU"/bin/*; do
        [ -f "$f" ] || continue
        libs="$(ldd "$f" 2>&1 || true)"
        if grep -E 'lib(av(codec|format|util|device|filter|resample)|sw(scale|resample)|postproc)\.so' <<<"$libs" >&2; then
            log "FAIL: $(basename "$f") needs FFmpeg shared libraries"
            bad=1
        fi
    done
    [ "$bad" -eq 0 ] || die "some executables link FFmpeg dynamically: was FFMPEG_DIR/static-ffmpeg honoured?"
    log "ldd: no executable needs an FFmpeg shared library"
}

cmd_build() {
    command -v python3 >/dev/null || die "python3 is needed to read cargo's JSON"
    "$here/build-static-ffmpeg.sh" "$PREFIX"

    local bench_args=() b
    while IFS= read -r b; do
        [ -n "$b" ] && bench_args+=(--bench "$b")
    done < <(bench_targets)

    # rustc bundles the static FFmpeg archives into ffmpeg-sys-next's rlib, and cargo does not notice when
    # they change (its build script only watches the FFMPEG_DIR variable): rebuild that crate whenever the
    # FFmpeg build differs from the one the last build used.
    mkdir -p "$TARGET_DIR"
    local ffmpeg_id used="$TARGET_DIR/ffmpeg-static.used"
    ffmpeg_id="$(cat "$PREFIX/vidloader-ffmpeg.stamp"; cd "$PREFIX/lib" && sha256sum ./*.a)"
    if [ ! -f "$used" ] || [ "$(cat "$used")" != "$ffmpeg_id" ]; then
        log "FFmpeg build changed: cargo clean -p ffmpeg-sys-next"
        (cd "$repo" && CARGO_TARGET_DIR="$TARGET_DIR" cargo clean --release -p ffmpeg-sys-next) >&2
        rm -f "$used"
    fi
    log "cargo build --release --features static-ffmpeg --bins --tests --examples ${bench_args[*]} (CARGO_TARGET_DIR=$TARGET_DIR)"
    (
        cd "$repo"
        FFMPEG_DIR="$PREFIX" CARGO_TARGET_DIR="$TARGET_DIR" \
            cargo build --release --features static-ffmpeg --bins --tests --examples "${bench_args[@]}" \
            --message-format=json-render-diagnostics >"$MESSAGES"
    ) || die "cargo build failed (messages in $MESSAGES)"

    printf '%s\n' "$ffmpeg_id" >"$used"

    local listing
    listing="$(list_executables "$MESSAGES")"
    [ -n "$listing" ] || die "cargo reported no executables"

    rm -rf "${GPU:?}/bin" "${GPU:?}/fixtures" "$GPU/bundle.tar.xz" "$GPU/manifest.tsv" "$GPU/BUILD-INFO"
    mkdir -p "$GPU/bin"
    local kind name exe base strip_args=()
    case "$STRIP_MODE" in
        all) strip_args=(--strip-all) ;;
        debug) strip_args=(--strip-debug) ;;
        *) die "GPU_STRIP must be all or debug" ;;
    esac
    while IFS=$'\t' read -r kind name exe; do
        if [ -n "${GPU_ONLY:-}" ]; then
            [[ ",$GPU_ONLY," == *",$name,"* ]] || continue
        elif [ "$kind" = bench ] && [ "$BUNDLE_MODE" != all ]; then
            continue
        fi
        base="$(basename "$exe")"
        [ ! -e "$GPU/bin/$base" ] || die "two executables named $base"
        strip "${strip_args[@]}" -o "$GPU/bin/$base" "$exe"
        printf '%s\t%s\t%s\n' "$kind" "$name" "$base" >>"$GPU/manifest.tsv"
        log "$(printf '%-8s %-40s %7s MiB' "$kind" "$base" "$(mib "$(size_bytes "$GPU/bin/$base")")")"
    done <<<"$listing"

    # The static build's ffmpeg program (libx264 / libx265 / NVENC encoders), for timing comparisons there.
    local want_ffmpeg=0
    if [ -n "${GPU_ONLY:-}" ]; then
        [[ ",$GPU_ONLY," != *",ffmpeg,"* ]] || want_ffmpeg=1
    elif [ "$BUNDLE_MODE" = all ]; then
        want_ffmpeg=1
    fi
    if [ -x "$PREFIX/bin/ffmpeg" ] && [ "$want_ffmpeg" = 1 ]; then
        strip "${strip_args[@]}" -o "$GPU/bin/ffmpeg" "$PREFIX/bin/ffmpeg"
        printf 'tool\tffmpeg\tffmpeg\n' >>"$GPU/manifest.tsv"
        log "$(printf '%-8s %-40s %7s MiB' tool ffmpeg "$(mib "$(size_bytes "$GPU/bin/ffmpeg")")")"
    fi

    check_no_ffmpeg_shared
    {
        echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "host=$(hostname)"
        echo "git=$(cd "$repo" && git describe --always --dirty 2>/dev/null || echo unknown)"
        echo "repo=$repo"
        # tests/cli.rs finds the CLI through env!(\"CARGO_BIN_EXE_vidloader\"), a path compiled in at build
        # time; gpu-remote.sh puts a link there when that path does not exist on the GPU machine.
        echo "cargo_bin_exe_dir=$TARGET_DIR/release"
        grep -v '^configure=' "$PREFIX/vidloader-ffmpeg.stamp" | sed 's/^/ffmpeg_/'
        echo "strip=$STRIP_MODE"
    } >"$GPU/BUILD-INFO"

    copy_fixtures
    check_size_and_pack
    print_command
}

cmd_pack() {
    [ -f "$GPU/manifest.tsv" ] || die "no build in $GPU: run scripts/gpu.sh build"
    if [ -f "$GPU/bundle.tar.xz" ] && [ ! -d "$GPU/bin" ]; then
        (cd "$GPU" && xz -dc bundle.tar.xz | tar -xf - bin)
        rm -f "$GPU/bundle.tar.xz"
    fi
    copy_fixtures
    check_size_and_pack
    print_command
}

# Runs the bundled test executables here (CPU only, results ignored) so that they make every fixture they
# use, with the ffmpeg CLI, in $FIXTURES_SRC. Afterwards run `pack` (or `build`) to bundle the fixtures.
cmd_fixtures() {
    [ -f "$GPU/manifest.tsv" ] || die "no build in $GPU: run scripts/gpu.sh build"
    command -v ffmpeg >/dev/null || die "the ffmpeg CLI is needed to make fixtures"
    local bin="$GPU/bin"
    if [ ! -d "$bin" ]; then
        bin="$TARGET_DIR/unpacked/bin"
        rm -rf "$TARGET_DIR/unpacked"
        mkdir -p "$TARGET_DIR/unpacked"
        (cd "$TARGET_DIR/unpacked" && xz -dc "$GPU/bundle.tar.xz" | tar -xf - bin)
    fi
    mkdir -p "$FIXTURES_SRC"
    local log_file="$TARGET_DIR/fixtures-run.log" kind name file
    : >"$log_file"
    while IFS=$'\t' read -r kind name file; do
        [ "$kind" = test ] || continue
        log "running $file here to make fixtures"
        (cd "$repo" && VIDLOADER_FIXTURES="$FIXTURES_SRC" "$bin/$file") >>"$log_file" 2>&1 || true
    done <"$GPU/manifest.tsv"
    rm -rf "$TARGET_DIR/unpacked"
    make_transcode_input
    log "$FIXTURES_SRC now has $(find "$FIXTURES_SRC" -maxdepth 1 -type f | wc -l) files (log: $log_file)"
    log "next: scripts/gpu.sh pack"
}

# The input of the transcode timing on the GPU machine (scripts/gpu-remote.sh, GPU_TRANSCODE_TIMING=1):
# 10 s of 1080p30 H.264 (testsrc2, libx264 with B-frames, 2 s GOP).
TRANSCODE_INPUT=transcode_1080p30_h264.mp4
make_transcode_input() {
    local f="$FIXTURES_SRC/$TRANSCODE_INPUT"
    [ -f "$f" ] && return 0
    log "making $f"
    ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=1920x1080:rate=30 -t 10 \
        -c:v libx264 -preset veryfast -g 60 -bf 2 -pix_fmt yuv420p "$f.tmp.mp4"
    mv "$f.tmp.mp4" "$f"
}

print_command() {
    local benches
    benches="$(awk -F'\t' '$1 == "bench" { printf "%s ", $2 }' "$GPU/manifest.tsv" 2>/dev/null || true)"
    echo
    echo "Bundle ready: $GPU ($(mib "$(size_bytes "$GPU")") MiB; carry the git-ignored path \".gpu\")."
    echo "Run on the GPU machine, from the repo root:"
    echo
    echo "    $REMOTE_CMD ${benches% }"
    echo
}

case "$BUNDLE_MODE" in
    tests | all) ;;
    *) die "GPU_BUNDLE must be tests or all" ;;
esac

case "${1:-}" in
    build) cmd_build ;;
    pack) cmd_pack ;;
    fixtures) cmd_fixtures ;;
    command) print_command ;;
    *) usage ;;
esac
