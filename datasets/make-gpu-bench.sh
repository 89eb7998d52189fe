#!/usr/bin/env bash
# make-gpu-bench.sh: make the files of the GPU benchmark (benches/gpu_decode.rs, benches/pynvc_bench.py,
# benches/pynvc_loader.py) with the ffmpeg CLI, into <repo>/.benchdata (git-ignored).
#
#     datasets/make-gpu-bench.sh [OUT_DIR]
#
# Files (synthetic testsrc2 content, yuv420p, 30 fps, 2 B-frames, closed fixed-length GOPs):
#   h264_1080p_gop30.mp4    300 frames, libx264, GOP 30
#   h264_1080p_gop250.mp4   300 frames, libx264, GOP 250
#   hevc_1080p_gop30.mp4    300 frames, libx265, GOP 30
#   clips_1080p/clip_NN.mp4 CLIPS distinct 2 s clips (60 frames, one GOP of 60), libx264
#   clips_360p/clip_NN.mp4  the same at 640x360
# The benchmarks turn the short clips into 210 files by linking/copying each under several names (see
# datasets/README.md). Output is deterministic for a given FFmpeg/x264/x265 build: fixed encoder thread counts,
# no scene-cut keyframes, bit-exact container flags, no metadata. Existing files are kept (delete the folder to
# remake it); a manifest with sizes and checksums is written to OUT_DIR/MANIFEST.txt.
#
# Environment: CLIPS_ONLY=1 (only the clip folders), CLIPS (distinct clips per resolution, default 12), CRF_MAIN (default 28), CRF_HEVC (default 33),
# CRF_CLIP_1080 (default 30), CRF_CLIP_360 (default 28), MAX_MIB (fail above this total, default 18).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
out="${1:-$repo/.benchdata}"
CLIPS="${CLIPS:-12}"
CRF_MAIN="${CRF_MAIN:-28}"
CRF_HEVC="${CRF_HEVC:-33}"
CRF_CLIP_1080="${CRF_CLIP_1080:-30}"
CRF_CLIP_360="${CRF_CLIP_360:-28}"
MAX_MIB="${MAX_MIB:-18}"

command -v ffmpeg >/dev/null || { echo "make-gpu-bench.sh: the ffmpeg CLI is needed" >&2; exit 1; }
mkdir -p "$out/clips_1080p" "$out/clips_360p"

# Output options: bit-exact container and encoder tags, no metadata, fixed pixel format.
exact=(-fflags +bitexact -flags:v +bitexact -map_metadata -1 -pix_fmt yuv420p)
x264() { # gop crf
    echo -c:v libx264 -preset medium -threads 4 -crf "$2" -g "$1" -keyint_min "$1" -sc_threshold 0 -bf 2
}

# encode OUT_FILE LAVFI_SOURCE FRAMES ENCODER_ARGS...: encodes into a temporary name, then renames (an
# interrupted run leaves no half-written file behind).
encode() {
    local file="$1" src="$2" frames="$3"
    shift 3
    if [ -s "$file" ]; then return 0; fi
    echo "making $(basename "$(dirname "$file")")/$(basename "$file")" >&2
    ffmpeg -hide_banner -loglevel error -y -f lavfi -i "$src" -frames:v "$frames" "${exact[@]}" "$@" \
        -f mp4 "$file.tmp"
    mv "$file.tmp" "$file"
}

src1080="testsrc2=size=1920x1080:rate=30"
if [ "${CLIPS_ONLY:-0}" != 1 ]; then
    # shellcheck disable=SC2046 # the encoder arguments are meant to be split
    encode "$out/h264_1080p_gop30.mp4" "$src1080" 300 $(x264 30 "$CRF_MAIN")
    # shellcheck disable=SC2046
    encode "$out/h264_1080p_gop250.mp4" "$src1080" 300 $(x264 250 "$CRF_MAIN")
    encode "$out/hevc_1080p_gop30.mp4" "$src1080" 300 -c:v libx265 -preset medium -crf "$CRF_HEVC" -tag:v hvc1 \
        -x265-params "log-level=error:pools=4:frame-threads=2:keyint=30:min-keyint=30:scenecut=0:bframes=2:open-gop=0"
fi

# Distinct clips: testsrc2 started k*3 s in (its counter and moving parts differ) with the hue turned by k*30
# degrees, so no two clips hold the same pictures.
for ((k = 0; k < CLIPS; k++)); do
    name="$(printf 'clip_%02d.mp4' "$k")"
    for res in 1080p 360p; do
        if [ "$res" = 1080p ]; then size=1920x1080 crf=$CRF_CLIP_1080; else size=640x360 crf=$CRF_CLIP_360; fi
        # shellcheck disable=SC2046
        encode "$out/clips_$res/$name" \
            "testsrc2=size=$size:rate=30,trim=start_frame=$((k * 90)),setpts=PTS-STARTPTS,hue=h=$((k * 30))" \
            60 $(x264 60 "$crf")
    done
done

# Manifest: size and checksum of every file, and the total.
(
    cd "$out"
    find . -name '*.mp4' -type f | LC_ALL=C sort | while read -r f; do
        printf '%s  %9d  %s\n' "$(sha256sum "$f" | cut -c1-16)" "$(stat -c %s "$f")" "${f#./}"
    done
) >"$out/MANIFEST.txt"
total=$(du -sb "$out" | cut -f1)
mib=$(awk -v b="$total" 'BEGIN { printf "%.1f", b / 1048576 }')
echo "$out: $(grep -c mp4 "$out/MANIFEST.txt") files, $mib MiB (limit $MAX_MIB MiB)" >&2
if [ "$total" -gt $((MAX_MIB * 1048576)) ]; then
    echo "make-gpu-bench.sh: $out is over $MAX_MIB MiB: raise the CRFs or make fewer clips" >&2
    exit 1
fi
