#!/usr/bin/env bash
# build-static-ffmpeg.sh [PREFIX]
#
# Builds a small, static, position-independent FFmpeg (Debian 12's 5.1 source) for linking into vidloader
# binaries that must run on machines without FFmpeg (the GPU machine). Use it with
#
#     FFMPEG_DIR=<PREFIX> cargo build --release --features static-ffmpeg
#
# ffmpeg-sys-next (with `static` and FFMPEG_DIR set) adds `<PREFIX>/lib` to the link path, links
# avcodec, avformat, avutil and swscale statically and runs bindgen on `<PREFIX>/include`; it needs no
# pkg-config files (they are installed anyway, under <PREFIX>/lib/pkgconfig).
#
# PREFIX defaults to <repo>/target/ffmpeg-static. Source and build trees live in <repo>/target/ffmpeg-work
# (override with FFMPEG_WORK_DIR). Idempotent: does nothing when <PREFIX>/lib/libavcodec.a exists and the
# stamp <PREFIX>/vidloader-ffmpeg.stamp matches this script's configuration; otherwise rebuilds from scratch.
#
# What it does the first time:
#   * adds a deb-src entry for bookworm (a separate file in /etc/apt/sources.list.d/, mirroring the deb
#     entries already there) if `apt-get source` has nothing to fetch, then `apt-get update`;
#   * installs `nasm`, `meson`, `ninja-build`, `build-essential` (and dpkg-dev, pkg-config) and the external encoders' packages
#     (libx264-dev, libx265-dev, libnuma-dev, libffmpeg-nvenc-dev) if missing;
#   * copies libx264.a, libx265.a and libnuma.a into <PREFIX>/lib;
#   * `apt-get source dav1d`, built static (meson, ninja) and installed into <PREFIX>;
#   * `apt-get source ffmpeg` (5.1.x with Debian's patches), configure, `make -j$JOBS`, `make install`;
#   * writes <PREFIX>/vidloader-link-args: what the static libraries need at link time beyond themselves, one
#     linker argument a line (-lx264 -lx265 -lstdc++ -lnuma -ldl ...). vidloader's build.rs passes them on to
#     every executable when the `static-ffmpeg` feature is on; ffmpeg-sys-next links only FFmpeg's own libs.
#
# What the build contains (everything else is disabled, including all autodetected external libraries,
# hwaccels, most encoders, muxers and filters, avdevice and postproc). It is GPL (libx264, libx265):
#   demuxers : mov matroska avi mpegts mpegps ivf h264 hevc m4v mpegvideo flv
#   decoders : h264 hevc vp8 vp9 mpeg4 mpeg1video mpeg2video mjpeg rawvideo, and libdav1d for AV1 (the
#              GPUs we run on have no AV1 NVDEC, so AV1 decodes on the CPU under Backend::Auto).
#              Debian 12 ships no static libdav1d (libdav1d-dev has only the shared library), so this
#              script builds Debian's dav1d source (1.0) with meson as a static library into <PREFIX>
#              first. Not FFmpeg 5.1's native `av1` decoder: it is only a front end for hwaccels (an AV1
#              file opens, every packet logs "Missing Sequence Header" and decoding fails).
#   parsers  : h264 hevc vp8 vp9 mpeg4video mpegvideo mjpeg av1
#   bsfs     : h264_mp4toannexb hevc_mp4toannexb vp9_superframe_split extract_extradata null
#   protocols: file pipe
#   encoders : libx264, libx265 (Debian 12's static libx264.a / libx265.a; x265 brings libstdc++ and a
#              static libnuma), h264_nvenc, hevc_nvenc (FFmpeg's nv-codec-headers: the driver's libcuda and
#              libnvidia-encode are opened at run time, so on a GPU without NVENC, or a machine without a
#              driver, opening them fails cleanly), mpeg4. No AV1 encoder: Debian 12 ships no static SVT-AV1
#              (libsvtav1enc-dev has only libSvtAv1Enc.so), so `Codec::Av1` is Unsupported in this build.
#              `vidloader synth` / the CLI demo write H.264 with libx264. wrapped_avframe and rawvideo, with
#              the null and rawvideo muxers, only for the ffmpeg program: the CPU benchmark's peers
#              (`-f null -`, `-f rawvideo`) on the GPU machine.
#   muxers   : mp4 mov matroska h264 hevc null rawvideo
#   filters  : scale format null aformat anull aresample atrim trim crop hflip vflip transpose setpts fps
#              (only for the ffmpeg program)
#   libs     : avcodec avformat avutil swscale, with pthreads (frame/slice threaded decoding); avfilter and
#              swresample are built for the ffmpeg program only (the Rust side links neither)
#   programs : ffmpeg (static apart from libc, libm, libstdc++ and libgcc_s), in <PREFIX>/bin, for timing
#              comparisons on the GPU machine (scripts/gpu.sh bundles it)
# Beyond libc, libm and libpthread, executables linking these libraries need libstdc++ (which libtorch needs
# anyway), libdl and libgcc_s: nothing the GPU machine lacks.
#
# Environment:
#   JOBS                      parallel make jobs (default 2)
#   FFMPEG_WORK_DIR           where the source and build trees go
#   FFMPEG_SRC_DIR            use this FFmpeg source tree instead of `apt-get source`
#   FFMPEG_EXTRA_CONFIGURE    extra configure flags (e.g. "--enable-muxer=mp4 --enable-encoder=mpeg4");
#                             they are part of the stamp, so changing them triggers a rebuild
set -euo pipefail

SCRIPT_VERSION=6
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
PREFIX="${1:-$repo/target/ffmpeg-static}"
mkdir -p "$PREFIX"
PREFIX="$(cd "$PREFIX" && pwd)"
case "$PREFIX" in
    / | /usr | /usr/local | /opt) echo "refusing PREFIX=$PREFIX (it is wiped and rebuilt)" >&2; exit 1 ;;
esac
WORK="${FFMPEG_WORK_DIR:-$repo/target/ffmpeg-work}"
JOBS="${JOBS:-2}"
STAMP="$PREFIX/vidloader-ffmpeg.stamp"
LINK_ARGS="$PREFIX/vidloader-link-args"

log() { printf '[build-static-ffmpeg] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "not root and no sudo: cannot use apt-get"
    SUDO=(sudo)
fi

# Commas below are FFmpeg's list separators, not array separators.
# shellcheck disable=SC2054
CONFIGURE_FLAGS=(
    --disable-everything
    --disable-programs
    # The ffmpeg program, for timing comparisons on the GPU machine (it needs avfilter and swresample; the
    # Rust side links neither).
    --enable-ffmpeg
    --disable-doc
    --disable-network
    --disable-autodetect
    --disable-debug
    --enable-static
    --disable-shared
    --enable-pic
    # --disable-autodetect also turns off thread detection: without this FFmpeg decodes on one thread.
    --enable-pthreads
    # libx264 and libx265 are GPL: the static FFmpeg (and every executable linking it) is GPL.
    --enable-gpl
    --enable-libx264
    --enable-libx265
    # NVENC: FFmpeg's nv-codec-headers (Debian's libffmpeg-nvenc-dev); the driver's libcuda and
    # libnvidia-encode are opened with dlopen at run time, so nothing NVIDIA is linked.
    --enable-ffnvcodec
    --enable-nvenc
    # Static external libraries: pkg-config's private libs (x265 needs libstdc++ and libnuma), found first in
    # the prefix's lib folder, where only static archives are copied (see copy_external_libs).
    --pkg-config-flags=--static
    --disable-avdevice
    --disable-postproc
    --enable-avcodec
    --enable-avformat
    --enable-avutil
    --enable-swscale
    --enable-avfilter
    --enable-swresample
    --enable-demuxer=mov,matroska,avi,mpegts,mpegps,ivf,h264,hevc,m4v,mpegvideo,flv
    --enable-decoder=h264,hevc,vp8,vp9,mpeg4,mpeg1video,mpeg2video,mjpeg,rawvideo,libdav1d
    --enable-libdav1d
    --enable-parser=h264,hevc,vp8,vp9,mpeg4video,mpegvideo,mjpeg,av1
    --enable-bsf=h264_mp4toannexb,hevc_mp4toannexb,vp9_superframe_split,extract_extradata,null
    --enable-protocol=file,pipe
    --enable-encoder=mpeg4,libx264,libx265,h264_nvenc,hevc_nvenc,wrapped_avframe,rawvideo
    --enable-muxer=mp4,mov,matroska,h264,hevc,null,rawvideo
    # What the ffmpeg program's filter graph needs (format conversion, and what ffmpeg selects anyway).
    --enable-filter=scale,format,null,aformat,anull,aresample,atrim,trim,crop,hflip,vflip,transpose,setpts,fps
)
if [ -n "${FFMPEG_EXTRA_CONFIGURE:-}" ]; then
    # Word splitting is intended: a list of flags in one variable.
    # shellcheck disable=SC2206
    CONFIGURE_FLAGS+=(${FFMPEG_EXTRA_CONFIGURE})
fi

# The stamp records what decides the build's content: this script's version, the configure flags and the
# source (a given FFMPEG_SRC_DIR, or Debian's source package). The FFmpeg version is written after it,
# for information only, so that deleting the work tree does not force a rebuild.
stamp_key() {
    printf 'script-version=%s\nsource=%s\nconfigure=%s\n' \
        "$SCRIPT_VERSION" "${FFMPEG_SRC_DIR:-debian:ffmpeg}" "${CONFIGURE_FLAGS[*]}"
}

if [ -f "$PREFIX/lib/libavcodec.a" ] && [ -f "$STAMP" ] && [ -f "$LINK_ARGS" ] \
    && [ "$(grep -v '^ffmpeg-version=' "$STAMP")" = "$(stamp_key)" ]; then
    log "up to date: $PREFIX ($(grep '^ffmpeg-version=' "$STAMP" | cut -d= -f2-))"
    exit 0
fi

apt_install_missing() {
    local missing=() pkg
    for pkg in "$@"; do
        [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" = "install ok installed" ] || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing: ${missing[*]}"
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
    fi
}

# Add deb-src entries mirroring the enabled Debian deb entries (deb822 *.sources files, or one-line
# sources.list entries), in a file of our own, unless apt already knows the ffmpeg source package.
# (Not `apt-cache ... | grep -q`: with pipefail, grep exiting early makes the pipeline fail on SIGPIPE.)
has_ffmpeg_source() {
    local out
    out="$(apt-cache showsrc ffmpeg 2>/dev/null || true)"
    [[ "$out" == *"Package: ffmpeg"* ]]
}

ensure_deb_src() {
    if has_ffmpeg_source; then
        return 0
    fi
    local dst=/etc/apt/sources.list.d/vidloader-deb-src.sources tmp f
    tmp="$(mktemp)"
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        [ "$f" = "$dst" ] && continue
        grep -q 'debian\.org' "$f" || continue
        # One stanza per paragraph; turn "Types: deb" into "Types: deb-src", keep everything else.
        sed -E 's/^Types:[[:space:]]*deb[[:space:]]*$/Types: deb-src/' "$f" >>"$tmp"
        printf '\n' >>"$tmp"
    done
    if ! grep -q '^Types: deb-src' "$tmp"; then
        local lists=() l
        for l in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [ -f "$l" ] && lists+=("$l")
        done
        if [ "${#lists[@]}" -gt 0 ] \
            && grep -hE '^deb[[:space:]]+[^#]*debian\.org' "${lists[@]}" >/dev/null 2>&1; then
            dst=/etc/apt/sources.list.d/vidloader-deb-src.list
            grep -hE '^deb[[:space:]]+[^#]*debian\.org' "${lists[@]}" | sed -E 's/^deb([[:space:]])/deb-src\1/' >"$tmp"
        else
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
    fi
    log "adding deb-src entries: $dst"
    "${SUDO[@]}" install -m 0644 "$tmp" "$dst"
    rm -f "$tmp"
    log "apt-get update"
    "${SUDO[@]}" apt-get update -q >&2
    has_ffmpeg_source || die "apt still has no source package for ffmpeg after adding $dst"
}

fetch_source() {
    if [ -n "${FFMPEG_SRC_DIR:-}" ]; then
        [ -x "$FFMPEG_SRC_DIR/configure" ] || die "FFMPEG_SRC_DIR=$FFMPEG_SRC_DIR has no configure script"
        SRC="$(cd "$FFMPEG_SRC_DIR" && pwd)"
        return 0
    fi
    mkdir -p "$WORK/src"
    local existing
    existing="$(find "$WORK/src" -mindepth 1 -maxdepth 1 -type d -name 'ffmpeg-*' | sort | tail -n 1)"
    if [ -n "$existing" ] && [ -x "$existing/configure" ]; then
        SRC="$existing"
        log "reusing source tree $SRC"
        return 0
    fi
    ensure_deb_src
    log "apt-get source ffmpeg (into $WORK/src)"
    # As root apt warns that the _apt user cannot write here; harmless, the download is done unsandboxed.
    (cd "$WORK/src" && apt-get source -q ffmpeg >&2)
    SRC="$(find "$WORK/src" -mindepth 1 -maxdepth 1 -type d -name 'ffmpeg-*' | sort | tail -n 1)"
    if [ -z "$SRC" ] || [ ! -x "$SRC/configure" ]; then
        die "apt-get source ffmpeg gave no source tree in $WORK/src"
    fi
}

# The external encoders' static archives (Debian 12 ships libx264.a, libx265.a and libnuma.a; it ships no
# static SVT-AV1, so AV1 encoding stays out; dav1d is built from source, see build_dav1d).
EXTERNAL_PACKAGES=(libx264-dev libx265-dev libnuma-dev libffmpeg-nvenc-dev)
EXTERNAL_ARCHIVES=(libx264.a libx265.a libnuma.a)

# Copies the external static archives into <PREFIX>/lib, so that FFmpeg's configure and link (which search
# there first, --extra-ldflags) and the Rust link (ffmpeg-sys-next puts <PREFIX>/lib on the search path) find
# them before the shared libraries of the same name in the system folder, and so that the prefix holds
# everything a static link needs.
copy_external_libs() {
    local multiarch a found
    multiarch="$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"
    mkdir -p "$PREFIX/lib"
    for a in "${EXTERNAL_ARCHIVES[@]}"; do
        found=""
        for d in "/usr/lib/$multiarch" /usr/lib /usr/local/lib; do
            if [ -f "$d/$a" ]; then found="$d/$a"; break; fi
        done
        [ -n "$found" ] || die "no static $a (install ${EXTERNAL_PACKAGES[*]})"
        cp "$found" "$PREFIX/lib/$a"
    done
}

# libdav1d, static, from Debian's source package (Debian 12 ships only the shared library), installed into
# <PREFIX> (lib/libdav1d.a, include/dav1d, lib/pkgconfig/dav1d.pc) where FFmpeg's configure finds it.
build_dav1d() {
    local src
    src="$(find "$WORK/src" -mindepth 1 -maxdepth 1 -type d -name 'dav1d-*' 2>/dev/null | sort | tail -n 1)"
    if [ -z "$src" ]; then
        ensure_deb_src
        mkdir -p "$WORK/src"
        log "apt-get source dav1d (into $WORK/src)"
        (cd "$WORK/src" && apt-get source -q dav1d >&2)
        src="$(find "$WORK/src" -mindepth 1 -maxdepth 1 -type d -name 'dav1d-*' | sort | tail -n 1)"
        [ -n "$src" ] && [ -f "$src/meson.build" ] || die "apt-get source dav1d gave no source tree"
    fi
    log "building dav1d from $src (static)"
    rm -rf "$WORK/dav1d-build"
    meson setup "$WORK/dav1d-build" "$src" --prefix="$PREFIX" --libdir=lib --buildtype=release \
        --default-library=static -Denable_tools=false -Denable_tests=false -Db_staticpic=true \
        >"$WORK/dav1d-setup.log" 2>&1 || { tail -n 40 "$WORK/dav1d-setup.log" >&2; exit 1; }
    ninja -C "$WORK/dav1d-build" -j "$JOBS" install >"$WORK/dav1d-build.log" 2>&1 \
        || { tail -n 40 "$WORK/dav1d-build.log" >&2; exit 1; }
    [ -f "$PREFIX/lib/libdav1d.a" ] || die "dav1d did not install $PREFIX/lib/libdav1d.a"
}

apt_install_missing nasm meson ninja-build build-essential dpkg-dev pkg-config "${EXTERNAL_PACKAGES[@]}"
fetch_source
VERSION_STR="$(cat "$SRC/RELEASE" 2>/dev/null || basename "$SRC")"

BUILD="$WORK/build"
log "building FFmpeg $VERSION_STR from $SRC into $PREFIX (make -j$JOBS)"
start=$(date +%s)
rm -rf "$BUILD"
mkdir -p "$BUILD"
# Remove what an earlier build installed so stale libraries or headers cannot survive a reconfigure.
rm -rf "${PREFIX:?}/lib" "${PREFIX:?}/include" "${PREFIX:?}/share" "${PREFIX:?}/bin" "$STAMP" "$LINK_ARGS"
copy_external_libs
build_dav1d
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
(
    cd "$BUILD"
    "$SRC/configure" --prefix="$PREFIX" --extra-ldflags="-L$PREFIX/lib" "${CONFIGURE_FLAGS[@]}" >configure.log 2>&1 \
        || { tail -n 40 configure.log >&2; tail -n 40 ffbuild/config.log >&2 || true; exit 1; }
    make -j"$JOBS" >make.log 2>&1 || { tail -n 60 make.log >&2; exit 1; }
    make install >install.log 2>&1 || { tail -n 40 install.log >&2; exit 1; }
)

# Sanity checks: the libraries ffmpeg-sys-next links, no shared objects, threads on, wanted components in.
for lib in avcodec avformat avutil swscale; do
    [ -f "$PREFIX/lib/lib$lib.a" ] || die "missing $PREFIX/lib/lib$lib.a"
done
if compgen -G "$PREFIX/lib/*.so*" >/dev/null; then
    die "shared libraries were installed in $PREFIX/lib"
fi
grep -q '^#define HAVE_PTHREADS 1' "$BUILD/config.h" || die "FFmpeg was configured without pthreads"
for c in h264 hevc vp9 vp8 mpeg4 mpeg1video mpeg2video mjpeg rawvideo libdav1d; do
    # 5.1 keeps the component switches in config_components.h, older versions in config.h.
    grep -qs "^#define CONFIG_$(echo "$c" | tr '[:lower:]' '[:upper:]')_DECODER 1" \
        "$BUILD/config.h" "$BUILD/config_components.h" || die "decoder $c is not enabled"
done
for c in libx264 libx265 h264_nvenc hevc_nvenc mpeg4; do
    grep -qs "^#define CONFIG_$(echo "$c" | tr '[:lower:]' '[:upper:]')_ENCODER 1" \
        "$BUILD/config.h" "$BUILD/config_components.h" || die "encoder $c is not enabled"
done
[ -x "$PREFIX/bin/ffmpeg" ] || die "the ffmpeg program was not built"
if ldd "$PREFIX/bin/ffmpeg" | grep -E 'lib(x264|x265|numa|dav1d|av[a-z]*|sw[a-z]*)\.so' >&2; then
    die "$PREFIX/bin/ffmpeg links an external library dynamically"
fi

# What the static libraries need at link time beyond themselves (x264, x265 and its libstdc++ and libnuma,
# libdl for NVENC), one linker argument a line: vidloader's build.rs passes them on to every executable when
# the static-ffmpeg feature is on (ffmpeg-sys-next links only the FFmpeg libraries themselves). -L flags are
# left out: the archives are in <PREFIX>/lib, which is on the link path already.
extralibs="$(grep -hE '^EXTRALIBS-(avcodec|avformat|avutil|swscale)=' "$BUILD/ffbuild/config.mak" | cut -d= -f2- | tr '\n' ' ')"
log "libraries FFmpeg asks for (config.mak): $extralibs"
# Word splitting is intended: a list of flags.
# shellcheck disable=SC2086
printf '%s\n' $extralibs | grep -E '^-l' >"$LINK_ARGS" || true

{ stamp_key; printf 'ffmpeg-version=%s\n' "$VERSION_STR"; } >"$STAMP"
end=$(date +%s)
log "done in $((end - start)) s: $(du -sh "$PREFIX/lib" | cut -f1) of static libs in $PREFIX/lib"
ls -l "$PREFIX"/lib/*.a >&2
