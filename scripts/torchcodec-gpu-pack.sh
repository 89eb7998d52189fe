#!/usr/bin/env bash
# torchcodec-gpu-pack.sh: packs torchcodec and a shared FFmpeg for the GPU machine (which has PyTorch but no
# FFmpeg, no compiler and no network), so that scripts/torchcodec-gpu-remote.sh can run the torchcodec peer
# loader (benches/torchcodec_loader.py --device cuda) beside `vidloader bench` there.
#
#     scripts/torchcodec-gpu-pack.sh
#
# Writes <repo>/.tcgpu/ (git-ignored; carry it along with .benchdata):
#   torchcodec.tar.xz   site/torchcodec/, site/torchcodec.libs/, site/torchcodec-*.dist-info/, ffmpeg/lib/*.so*
#                       (the shared FFmpeg 5.1 of scripts/build-shared-ffmpeg.sh, target/ffmpeg-shared; built
#                       when missing), benches/torchcodec_loader.py and MANIFEST
#   vidloader.xz        target/gpu/release/vidloader (the static-FFmpeg build of scripts/gpu.sh), stripped and
#                       xz'd, when that binary exists; else the remote script takes .gpu's vidloader
#   MANIFEST            what went in, with versions
#
# Which torchcodec: the version installed in <repo>/.venv (0.17.0, the CUDA 13 build PyPI ships), but built for
# the GPU machine's python (TC_PYTHON_VERSION, default 3.12): its custom-ops and pybind libraries are pybind11
# modules for one CPython version, and a cp311 build does not import on 3.12. When the .venv's python is that
# version its install is packed; otherwise the wheel for it (TC_WHEEL, else one in target/tcgpu-wheels, else
# `pip download torchcodec==VERSION --python-version 3.12 --abi cp312 --platform manylinux_2_28_x86_64` into
# target/tcgpu-wheels, once).
#
# Left out of torchcodec/: the core and custom-ops libraries for FFmpeg 4, 6, 7, 8 and 9 (torchcodec tries them
# in turn and skips those that are missing), libtorchcodec_heic.so (loaded only for HEIC images; needs libheif)
# and __pycache__. torchcodec.libs/ is kept whole: libtorchcodec_image.so, loaded at every import, needs it all.
#
# Checked here before packing, with only the packed FFmpeg on the library path: torchcodec imports, finds
# FFmpeg 5 and decodes 16 frames of a .benchdata/clips_360p clip on the CPU, every libav*/libsw* mapped being
# a packed one (the packed tree itself when it is built for this python, else the .venv's torchcodec of the
# same version); and the packed libtorchcodec_core5.so loads with RTLD_NOW against the packed FFmpeg. Fails
# if .tcgpu is over TCGPU_MAX_MIB (default 30) MiB.
#
# Environment:
#   PYTHON              python of the .venv with torch and torchcodec (default <repo>/.venv/bin/python)
#   TC_PYTHON_VERSION   the GPU machine's python (default 3.12)
#   TC_WHEEL            torchcodec wheel to pack; TC_WHEEL_DIR where wheels are kept (default target/tcgpu-wheels)
#   TC_VERSION          torchcodec version to fetch (default: the .venv's)
#   FFMPEG_SHARED       shared FFmpeg prefix (default <repo>/target/ffmpeg-shared)
#   VIDLOADER_BIN       vidloader binary to pack (default target/gpu/release/vidloader; "none" leaves it out)
#   TCGPU_MAX_MIB       size limit of .tcgpu (default 30)
#   TCGPU_OUT           where to write instead of <repo>/.tcgpu (emptied first)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
out="${TCGPU_OUT:-$repo/.tcgpu}"
py="${PYTHON:-$repo/.venv/bin/python}"
ffmpeg="${FFMPEG_SHARED:-$repo/target/ffmpeg-shared}"
vid="${VIDLOADER_BIN:-$repo/target/gpu/release/vidloader}"
remote_py="${TC_PYTHON_VERSION:-3.12}"
wheels="${TC_WHEEL_DIR:-$repo/target/tcgpu-wheels}"
max_mib="${TCGPU_MAX_MIB:-30}"

log() { printf '[torchcodec-gpu-pack] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ -x "$py" ] || die "no python at $py (set PYTHON)"
site="$(compgen -G "$repo/.venv/lib/python3*/site-packages" | head -n 1 || true)"
[ -n "$site" ] && [ -d "$site/torchcodec" ] || die "no torchcodec in <repo>/.venv's site-packages (the version to pack, and the CPU check)"
local_py="$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
tc_version="${TC_VERSION:-$(sed -n 's/^Version: //p' "$site"/torchcodec-*.dist-info/METADATA | head -n 1)}"
[ -n "$tc_version" ] || die "cannot tell the torchcodec version of $site (set TC_VERSION)"
if [ ! -e "$ffmpeg/lib/libavcodec.so.59" ]; then
    log "no shared FFmpeg in $ffmpeg: building it"
    "$here/build-shared-ffmpeg.sh" "$ffmpeg"
fi

stage="$(mktemp -d "${TMPDIR:-/tmp}/tcgpu-stage.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/site" "$stage/ffmpeg/lib" "$stage/benches"

# torchcodec's custom-ops and pybind libraries are built for one CPython (pybind11): the remote python's
# version decides the wheel. The .venv's own install when it is that version, else the wheel for it.
abi="cp${remote_py/./}"
if [ -n "${TC_WHEEL:-}" ] || [ "$local_py" != "$remote_py" ]; then
    wheel="${TC_WHEEL:-}"
    if [ -z "$wheel" ]; then
        wheel="$(compgen -G "$wheels/torchcodec-$tc_version-$abi-$abi-*manylinux*_x86_64.whl" | head -n 1 || true)"
    fi
    if [ -z "$wheel" ]; then
        log "pip download torchcodec==$tc_version for CPython $remote_py (into $wheels)"
        mkdir -p "$wheels"
        "$py" -m pip download -q "torchcodec==$tc_version" --no-deps --only-binary=:all: --python-version "$remote_py" \
            --implementation cp --abi "$abi" --platform manylinux_2_28_x86_64 -d "$wheels" >&2
        wheel="$(compgen -G "$wheels/torchcodec-$tc_version-$abi-$abi-*manylinux*_x86_64.whl" | head -n 1 || true)"
    fi
    [ -f "$wheel" ] || die "no torchcodec $tc_version wheel for $abi (set TC_WHEEL)"
    log "torchcodec from $wheel"
    "$py" -m zipfile -e "$wheel" "$stage/site"
    src="$wheel"
else
    log "torchcodec from $site (CPython $local_py)"
    cp -a "$site/torchcodec" "$site/torchcodec.libs" "$site"/torchcodec-*.dist-info "$stage/site/"
    src="$site"
fi
[ -d "$stage/site/torchcodec.libs" ] || die "no torchcodec.libs in $src"
grep -q "^Tag: $abi-$abi-" "$stage"/site/torchcodec-*.dist-info/WHEEL || die "$src is not built for $abi"
find "$stage/site" -name __pycache__ -type d -prune -exec rm -rf {} +
find "$stage/site" -name '*.so*' -type f -exec chmod 755 {} +
for v in 4 6 7 8 9; do
    rm -f "$stage/site/torchcodec/libtorchcodec_core$v.so" "$stage/site/torchcodec/libtorchcodec_custom_ops$v.so"
done
rm -f "$stage/site/torchcodec/libtorchcodec_heic.so"
[ -f "$stage/site/torchcodec/libtorchcodec_core5.so" ] || die "this torchcodec has no libtorchcodec_core5.so (FFmpeg 5)"
# The sonames and their real files (symlinks stay symlinks); no .so dev links, headers or pkg-config files.
for so in libavutil.so.57 libavcodec.so.59 libavformat.so.59 libavdevice.so.59 libavfilter.so.8 libswscale.so.6 \
    libswresample.so.4; do
    [ -e "$ffmpeg/lib/$so" ] || die "missing $ffmpeg/lib/$so"
    cp -a "$ffmpeg/lib/$so" "$stage/ffmpeg/lib/"
    real="$(readlink "$ffmpeg/lib/$so" || true)"
    [ -z "$real" ] || cp -a "$ffmpeg/lib/$real" "$stage/ffmpeg/lib/"
done
cp "$repo/benches/torchcodec_loader.py" "$stage/benches/"

# Checks, with only the packed FFmpeg on the library path (the host's own FFmpeg, if any, must not resolve):
#  1. torchcodec imports and decodes a clip on the CPU (16 frames, as the peer does), and every libav*/libsw*
#     mapped comes from the stage. With the packed tree when it is built for this python; otherwise with the
#     .venv's torchcodec (same version, same FFmpeg symbols, built for this python).
#  2. the packed libtorchcodec_core5.so loads with RTLD_NOW (every FFmpeg symbol and version resolved) against
#     the packed FFmpeg (it has no Python symbols, so this python can load it).
clip="$(compgen -G "$repo/.benchdata/clips_360p/*.mp4" | head -n 1 || true)"
check_site="$stage/site"
[ "$local_py" = "$remote_py" ] || check_site="$site"
log "checking torchcodec from $check_site with the packed FFmpeg (${clip:-no clip: import only})"
LD_LIBRARY_PATH="$stage/ffmpeg/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" PYTHONPATH="$check_site" \
    TORCHCODEC_DEVICE_BACKEND_AUTOLOAD=0 "$py" - "$stage" "$check_site" "$clip" <<'PY' >&2
import re, sys
FF = re.compile(r"/lib(avutil|avcodec|avformat|avdevice|avfilter|swscale|swresample)\.so")
stage, check_site, clip = sys.argv[1:4]
import torchcodec
from torchcodec._core import ops
assert torchcodec.__file__.startswith(check_site), torchcodec.__file__
assert ops._FFMPEG_AVAILABLE and ops.ffmpeg_major_version == 5, (ops._FFMPEG_AVAILABLE, ops.ffmpeg_major_version)
if clip:
    from torchcodec.decoders import VideoDecoder
    d = VideoDecoder(clip, seek_mode="exact", num_ffmpeg_threads=1)
    n = d.metadata.num_frames
    x = d.get_frames_at([round(k * (n - 1) / 15) for k in range(16)]).data
    assert tuple(x.shape[:2]) == (16, 3), x.shape
maps = sorted({l.split()[-1] for l in open("/proc/self/maps") if FF.search(l)})
bad = [m for m in maps if not m.startswith(stage)]
assert maps and not bad, bad
print(f"  torchcodec {torchcodec.__version__}: FFmpeg {ops.ffmpeg_major_version}, {len(maps)} libav*/libsw* files, "
      f"all from the stage" + (f"; decoded {tuple(x.shape)}" if clip else ""))
PY
LD_LIBRARY_PATH="$stage/ffmpeg/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$py" - "$stage" <<'PY' >&2
import ctypes, os, re, sys
FF = re.compile(r"/lib(avutil|avcodec|avformat|avdevice|avfilter|swscale|swresample)\.so")
stage = sys.argv[1]
import torch  # libtorch, libc10_cuda, libcudart, libnvrtc: what core5 needs beside FFmpeg
core = os.path.join(stage, "site/torchcodec/libtorchcodec_core5.so")
ctypes.CDLL(core, mode=os.RTLD_NOW | os.RTLD_GLOBAL)
maps = sorted({l.split()[-1] for l in open("/proc/self/maps") if FF.search(l)})
assert len(maps) == 7 and all(m.startswith(stage) for m in maps), maps
print(f"  packed libtorchcodec_core5.so: loaded with RTLD_NOW against the packed FFmpeg ({len(maps)} libraries)")
PY

{
    echo "packed $(date -u +%FT%TZ) on $(uname -n)"
    echo "torchcodec $(sed -n "s/^__version__ = '\(.*\)'/\1/p" "$stage/site/torchcodec/version.py") ($abi) from $src"
    echo "ffmpeg $(grep '^ffmpeg-version=' "$ffmpeg/vidloader-ffmpeg-shared.stamp" 2>/dev/null | cut -d= -f2-) (shared) from $ffmpeg"
    echo "checked with torch $("$py" -c 'import torch; print(torch.__version__)' 2>/dev/null)"
    (cd "$stage" && find . -type f -o -type l | sort)
} >"$stage/MANIFEST"

case "$out" in / | "$repo" | "$repo/" | "${HOME:-/}" | "$repo/target" | "$repo/.gpu") die "refusing TCGPU_OUT=$out (it is emptied)" ;; esac
rm -rf "$out"
mkdir -p "$out"
cp "$stage/MANIFEST" "$out/MANIFEST"
log "packing $out/torchcodec.tar.xz"
tar -C "$stage" -cf - MANIFEST site ffmpeg benches | xz -T1 -9e >"$out/torchcodec.tar.xz"

if [ "$vid" != none ] && [ -f "$vid" ]; then
    log "packing $vid (stripped) as $out/vidloader.xz"
    strip -o "$stage/vidloader" "$vid" || die "cannot strip $vid (still being linked?)"
    "$stage/vidloader" --version >/dev/null 2>&1 || "$stage/vidloader" --help >/dev/null 2>&1 \
        || log "note: $vid does not run here (no libtorch on the path?); packed anyway"
    xz -T1 -9e -c "$stage/vidloader" >"$out/vidloader.xz"
    echo "vidloader: $vid ($(stat -c %y "$vid"))" >>"$out/MANIFEST"
else
    log "no vidloader binary packed ($vid): the remote script will use .gpu/bin/vidloader or .gpu/bundle.tar.xz"
fi

bytes="$(du -sb "$out" | cut -f1)"
ls -l "$out" >&2
log "$out: $((bytes / 1024)) KiB"
[ "$bytes" -le $((max_mib * 1024 * 1024)) ] || die "$out is $((bytes / 1048576)) MiB, over the limit of $max_mib MiB"
log "on the GPU machine, from the repo root with .tcgpu and .benchdata carried: bash scripts/torchcodec-gpu-remote.sh"
