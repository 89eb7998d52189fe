#!/usr/bin/env bash
# build-shared-ffmpeg.sh [PREFIX]
#
# Builds a minimal SHARED FFmpeg (Debian 12's 5.1 source, the one scripts/build-static-ffmpeg.sh uses) for
# torchcodec on machines without FFmpeg (the GPU machine): torchcodec's libtorchcodec_core5.so and
# libtorchcodec_custom_ops5.so need exactly the sonames
#
#     libavutil.so.57 libavcodec.so.59 libavformat.so.59 libavdevice.so.59 libavfilter.so.8
#     libswscale.so.6 libswresample.so.4
#
# (with FFmpeg's symbol versions LIBAVUTIL_57, LIBAVCODEC_59, ...), and this build provides them. Use it with
#
#     LD_LIBRARY_PATH=<PREFIX>/lib python -c 'import torchcodec'
#
# torchcodec tries FFmpeg 9, 8, 7, 6, then 5 and loads the first whose libraries resolve. On CUDA its default
# "nvdec" backend decodes with NVDEC directly and needs FFmpeg only to demux, to run bitstream filters and to
# open a decoder context for the stream's codec; on the CPU it decodes with libavcodec and converts with
# swscale or a filter graph. scripts/torchcodec-gpu-pack.sh packs <PREFIX>/lib/*.so* for the GPU machine.
#
# PREFIX defaults to <repo>/target/ffmpeg-shared; the build tree is <repo>/target/ffmpeg-shared-work/build
# (override the work dir with FFMPEG_SHARED_WORK_DIR). Idempotent: does nothing when <PREFIX>/lib/libavcodec.so.59
# exists and the stamp <PREFIX>/vidloader-ffmpeg-shared.stamp matches this script's configuration; otherwise
# rebuilds from scratch. It never touches the static build (target/ffmpeg-work/build, target/ffmpeg-static).
#
# What it does the first time:
#   * installs `nasm`, `build-essential` and `dpkg-dev` if missing (needs root or sudo only then);
#   * finds the FFmpeg source: FFMPEG_SRC_DIR, else the tree the static script unpacked
#     (<repo>/target/ffmpeg-work/src/ffmpeg-*, only read: the build is out of tree), else one in
#     <work>/src, else `apt-get source ffmpeg` into <work>/src (adding a deb-src entry for Debian's
#     mirrors first if apt has none, as the static script does);
#   * configure, `make -j$JOBS` (default 2), `make install` (which strips the libraries);
#   * checks sonames, rpath and that nothing outside glibc (libc, libm) is linked.
#
# What the build contains (everything else is disabled, including all autodetected external libraries,
# hwaccels, encoders, muxers, devices and postproc). LGPL: no GPL or external library is enabled.
#   libs     : avutil avcodec avformat avdevice (it must exist as a library: torchcodec links it; no input or
#              output devices) avfilter swscale swresample, with pthreads; rpath $ORIGIN so that they find
#              each other wherever they are unpacked
#   demuxers : mov matroska mpegts ivf
#   parsers  : h264 hevc vp9 av1 mpeg4video
#   bsfs     : h264_mp4toannexb hevc_mp4toannexb vp9_superframe_split extract_extradata null
#              mpeg4_unpack_bframes (the bitstream filters torchcodec's NVDEC backend asks for by name)
#   decoders : h264 hevc vp9 mpeg4 (software decoding on the CPU, and the decoder context torchcodec opens
#              for every video stream, CUDA included: without a decoder for the codec it fails with
#              "Codec not found"), av1 (FFmpeg's native AV1 decoder only fronts hwaccels and cannot decode
#              here, but it lets torchcodec open AV1 streams for NVDEC)
#   protocols: file
#   filters  : format scale null copy, and buffer buffersink (always built) (torchcodec's CPU filter graph:
#              "copy" or "format=rgb24,scale=..." between buffer and buffersink; swscale is used directly when
#              the width is a multiple of 32)
# Beyond libc, libm and libpthread the libraries need nothing: any glibc >= Debian 12's 2.36 runs them
# (Ubuntu 24.04 has 2.39).
#
# Environment:
#   JOBS                      parallel make jobs (default 2, at most 2: the build VM has 2 cores)
#   FFMPEG_SHARED_WORK_DIR    where the build tree (and a fetched source tree) go
#   FFMPEG_SRC_DIR            use this FFmpeg source tree
#   FFMPEG_EXTRA_CONFIGURE    extra configure flags; they are part of the stamp, so changing them rebuilds
set -euo pipefail

SCRIPT_VERSION=1
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
PREFIX="${1:-$repo/target/ffmpeg-shared}"
mkdir -p "$PREFIX"
PREFIX="$(cd "$PREFIX" && pwd)"
case "$PREFIX" in
    / | /usr | /usr/local | /opt | "$repo/target/ffmpeg-static" | "$repo/target/ffmpeg-work"*)
        echo "refusing PREFIX=$PREFIX (it is wiped and rebuilt)" >&2; exit 1 ;;
esac
WORK="${FFMPEG_SHARED_WORK_DIR:-$repo/target/ffmpeg-shared-work}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
case "$WORK" in
    "$repo/target/ffmpeg-work" | "$repo/target/ffmpeg-work/"* | "$PREFIX")
        echo "refusing FFMPEG_SHARED_WORK_DIR=$WORK (the static build's tree, or PREFIX)" >&2; exit 1 ;;
esac
JOBS="${JOBS:-2}"
[ "$JOBS" -ge 1 ] 2>/dev/null || JOBS=2
[ "$JOBS" -le 2 ] || JOBS=2
STAMP="$PREFIX/vidloader-ffmpeg-shared.stamp"
SONAMES=(libavutil.so.57 libavcodec.so.59 libavformat.so.59 libavdevice.so.59 libavfilter.so.8 libswscale.so.6
    libswresample.so.4)

log() { printf '[build-shared-ffmpeg] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Commas below are FFmpeg's list separators, not array separators.
# shellcheck disable=SC2054
CONFIGURE_FLAGS=(
    --disable-everything
    --disable-programs
    --disable-doc
    --disable-network
    --disable-autodetect
    --disable-debug
    --disable-static
    --enable-shared
    --enable-pic
    # --disable-autodetect also turns off thread detection: without this FFmpeg decodes on one thread.
    --enable-pthreads
    --disable-postproc
    --enable-avutil
    --enable-avcodec
    --enable-avformat
    --enable-avdevice
    --enable-avfilter
    --enable-swscale
    --enable-swresample
    --enable-demuxer=mov,matroska,mpegts,ivf
    --enable-parser=h264,hevc,vp9,av1,mpeg4video
    --enable-bsf=h264_mp4toannexb,hevc_mp4toannexb,vp9_superframe_split,extract_extradata,null,mpeg4_unpack_bframes
    --enable-decoder=h264,hevc,vp9,mpeg4,av1
    --enable-protocol=file
    # buffer and buffersink (and abuffer, abuffersink) are always built: they are not configurable components.
    --enable-filter=format,scale,null,copy
)
# rpath $ORIGIN for the libraries, appended to config.mak after configure rather than passed as
# --extra-ldsoflags (configure evals its flags, so a '$' does not survive it). In config.mak the '$' goes
# through two make expansions (library.mak's $(eval $(RULES)), then the recipe) and the shell: hence \$$$$.
# Checked below with readelf.
# shellcheck disable=SC2016
RPATH_LINE='LDSOFLAGS += -Wl,-rpath,\$$$$ORIGIN'
if [ -n "${FFMPEG_EXTRA_CONFIGURE:-}" ]; then
    # Word splitting is intended: a list of flags in one variable.
    # shellcheck disable=SC2206
    CONFIGURE_FLAGS+=(${FFMPEG_EXTRA_CONFIGURE})
fi

stamp_key() {
    printf 'script-version=%s\nsource=%s\nconfigure=%s\nconfig.mak=%s\n' \
        "$SCRIPT_VERSION" "${FFMPEG_SRC_DIR:-debian:ffmpeg}" "${CONFIGURE_FLAGS[*]}" "$RPATH_LINE"
}

if [ -f "$PREFIX/lib/libavcodec.so.59" ] && [ -f "$STAMP" ] \
    && [ "$(grep -v '^ffmpeg-version=' "$STAMP")" = "$(stamp_key)" ]; then
    log "up to date: $PREFIX ($(grep '^ffmpeg-version=' "$STAMP" | cut -d= -f2-))"
    exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then
    SUDO=(sudo)
fi
apt_install_missing() {
    local missing=() pkg
    for pkg in "$@"; do
        [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" = "install ok installed" ] || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        [ "$(id -u)" -eq 0 ] || [ "${#SUDO[@]}" -gt 0 ] || die "missing ${missing[*]}, and not root and no sudo"
        log "installing: ${missing[*]}"
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
    fi
}

# (Not `apt-cache ... | grep -q`: with pipefail, grep exiting early makes the pipeline fail on SIGPIPE.)
has_ffmpeg_source() {
    local out
    out="$(apt-cache showsrc ffmpeg 2>/dev/null || true)"
    [[ "$out" == *"Package: ffmpeg"* ]]
}

# As in build-static-ffmpeg.sh: deb-src entries mirroring the enabled Debian deb entries, in a file of our own,
# only when apt knows no ffmpeg source package (that script usually added them already).
ensure_deb_src() {
    has_ffmpeg_source && return 0
    local dst=/etc/apt/sources.list.d/vidloader-deb-src.sources tmp f
    tmp="$(mktemp)"
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        [ "$f" = "$dst" ] && continue
        grep -q 'debian\.org' "$f" || continue
        sed -E 's/^Types:[[:space:]]*deb[[:space:]]*$/Types: deb-src/' "$f" >>"$tmp"
        printf '\n' >>"$tmp"
    done
    if ! grep -q '^Types: deb-src' "$tmp"; then
        cat >"$tmp" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    fi
    log "adding deb-src entries: $dst"
    "${SUDO[@]}" install -m 0644 "$tmp" "$dst"
    rm -f "$tmp"
    "${SUDO[@]}" apt-get update -q >&2
    has_ffmpeg_source || die "apt still has no source package for ffmpeg after adding $dst"
}

newest_tree() { # dir: the newest ffmpeg-* source tree with a configure script in dir, or nothing
    local d
    d="$(find "$1" -mindepth 1 -maxdepth 1 -type d -name 'ffmpeg-*' 2>/dev/null | sort | tail -n 1)"
    if [ -n "$d" ] && [ -x "$d/configure" ]; then echo "$d"; fi
}

fetch_source() {
    if [ -n "${FFMPEG_SRC_DIR:-}" ]; then
        [ -x "$FFMPEG_SRC_DIR/configure" ] || die "FFMPEG_SRC_DIR=$FFMPEG_SRC_DIR has no configure script"
        SRC="$(cd "$FFMPEG_SRC_DIR" && pwd)"
        return 0
    fi
    SRC="$(newest_tree "$repo/target/ffmpeg-work/src")"
    [ -n "$SRC" ] || SRC="$(newest_tree "$WORK/src")"
    if [ -n "$SRC" ]; then
        log "reusing source tree $SRC"
        return 0
    fi
    ensure_deb_src
    mkdir -p "$WORK/src"
    log "apt-get source ffmpeg (into $WORK/src)"
    (cd "$WORK/src" && apt-get source -q ffmpeg >&2)
    SRC="$(newest_tree "$WORK/src")"
    [ -n "$SRC" ] || die "apt-get source ffmpeg gave no source tree in $WORK/src"
}

apt_install_missing nasm build-essential dpkg-dev
fetch_source
# An in-tree configure leaves config.h in the source, and FFmpeg then refuses out-of-tree builds.
[ ! -f "$SRC/config.h" ] || die "$SRC has been configured in tree (config.h): use a clean source tree"
VERSION_STR="$(cat "$SRC/RELEASE" 2>/dev/null || basename "$SRC")"

BUILD="$WORK/build"
log "building shared FFmpeg $VERSION_STR from $SRC into $PREFIX (make -j$JOBS)"
start=$(date +%s)
rm -rf "$BUILD"
mkdir -p "$BUILD"
rm -rf "${PREFIX:?}/lib" "${PREFIX:?}/include" "${PREFIX:?}/share" "$STAMP"
(
    cd "$BUILD"
    "$SRC/configure" --prefix="$PREFIX" "${CONFIGURE_FLAGS[@]}" >configure.log 2>&1 \
        || { tail -n 40 configure.log >&2; tail -n 40 ffbuild/config.log >&2 || true; exit 1; }
    printf '%s\n' "$RPATH_LINE" >>ffbuild/config.mak
    make -j"$JOBS" >make.log 2>&1 || { tail -n 60 make.log >&2; exit 1; }
    make install >install.log 2>&1 || { tail -n 40 install.log >&2; exit 1; }
)

# Sanity checks: the sonames torchcodec needs, rpath $ORIGIN, nothing linked beyond glibc and each other,
# no static archives, threads on, the wanted components in.
for so in "${SONAMES[@]}"; do
    f="$PREFIX/lib/$so"
    [ -e "$f" ] || die "missing $f"
    # Into a variable, not piped into grep -q: with pipefail an early grep exit can fail the pipeline.
    dyn="$(readelf -d "$f")"
    [[ "$dyn" == *"Library soname: [$so]"* ]] || die "$f has another soname"
    [[ "$dyn" =~ Library\ (rpath|runpath):\ \[\$ORIGIN\] ]] \
        || die "$f has no rpath \$ORIGIN: $(grep -E 'RPATH|RUNPATH' <<<"$dyn" || echo none)"
    while read -r need; do
        case "$need" in
            libc.so.6 | libm.so.6 | libpthread.so.0 | libdl.so.2 | ld-linux-x86-64.so.2) ;;
            libav*.so.* | libsw*.so.*) [ -e "$PREFIX/lib/$need" ] || die "$f needs $need, not built" ;;
            *) die "$f links an external library: $need" ;;
        esac
    done < <(sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' <<<"$dyn")
done
if compgen -G "$PREFIX/lib/*.a" >/dev/null; then
    die "static libraries were installed in $PREFIX/lib"
fi
grep -q '^#define HAVE_PTHREADS 1' "$BUILD/config.h" || die "FFmpeg was configured without pthreads"
check_component() { # name kind
    grep -qs "^#define CONFIG_$(echo "$1" | tr '[:lower:]' '[:upper:]')_$2 1" \
        "$BUILD/config.h" "$BUILD/config_components.h" || die "$2 $1 is not enabled"
}
for c in h264 hevc vp9 mpeg4 av1; do check_component "$c" DECODER; done
for c in mov matroska mpegts ivf; do check_component "$c" DEMUXER; done
for c in h264_mp4toannexb hevc_mp4toannexb vp9_superframe_split extract_extradata null mpeg4_unpack_bframes; do
    check_component "$c" BSF
done
for c in format scale null copy; do check_component "$c" FILTER; done

{ stamp_key; printf 'ffmpeg-version=%s\n' "$VERSION_STR"; } >"$STAMP"
end=$(date +%s)
log "done in $((end - start)) s: $(du -shL "$PREFIX/lib" | cut -f1) in $PREFIX/lib"
ls -l "$PREFIX"/lib/*.so* >&2
