#!/usr/bin/env bash
# Makes the benchmark data sets of the DataLoader with the ffmpeg CLI (libx264, libx265, libvpx-vp9, mpeg4),
# each in its own directory with a labels.csv manifest (path,label) that `vidloader bench DIR` and
# `VideoDataset::open(DIR)` read. Content is FFmpeg's testsrc2 pattern with its hue turned by a different angle in
# every clip, so that no two clips are alike; labels are the clip number modulo 4 (nominal classes).
#
#   datasets/make_bench_datasets.sh [OUT_DIR] [SETS...]
#
# OUT_DIR defaults to target/bench-data. SETS (default: all) are any of
#   short-1080p  256 clips, 1920x1080, 2 s at 30 fps, H.264 High, one GOP (60 frames), 2 B-frames
#   short-360p   512 clips,  640x360,  2 s at 30 fps, H.264 High, one GOP (60 frames), 2 B-frames
#   long-1080p     8 clips, 1920x1080, 60 s at 30 fps, H.264 High, GOP 30, 2 B-frames
#   mixed        128 clips: H.264 (.mp4), HEVC (.mkv), VP9 (.webm) and MPEG-4 part 2 (.avi, no B-frames) in turn, at
#                1920x1080, 1280x720, 854x480, 640x360, 642x362 and 426x240 in turn, 2 to 6 s, 24/25/30 fps
# SCALE=N (percent, default 100) scales the clip counts, e.g. SCALE=10 for a quick run. Clips that exist are kept,
# so an interrupted run picks up where it stopped. JOBS=N encodes N clips at once (default: the number of cores).
set -euo pipefail

out=${1:-target/bench-data}
shift || true
sets=("$@")
[ ${#sets[@]} -eq 0 ] && sets=(short-1080p short-360p long-1080p mixed)
scale=${SCALE:-100}
jobs=${JOBS:-$(nproc)}
command -v ffmpeg >/dev/null || { echo "the ffmpeg CLI is needed (apt-get install ffmpeg)" >&2; exit 1; }

count() { local n=$(( $1 * scale / 100 )); [ "$n" -lt 1 ] && n=1; echo "$n"; }

# encode OUT SIZE RATE SECONDS N ARGS...: clip number N, testsrc2 with its hue turned by N * 37 degrees.
encode() {
    local out=$1 size=$2 rate=$3 secs=$4 n=$5
    shift 5
    [ -e "$out" ] && return 0
    local tmp="${out%.*}.tmp.${out##*.}"
    ffmpeg -nostdin -y -loglevel error -f lavfi -i "testsrc2=size=${size}:rate=${rate}" \
        -t "$secs" -vf "hue=h=$(( n * 37 % 360 ))" "$@" "$tmp"
    mv "$tmp" "$out"
}
export -f encode

# make_set DIR N: runs the queued encode commands (one per line on stdin) JOBS at a time, then writes labels.csv.
make_set() {
    local dir=$1 n=$2
    mkdir -p "$dir"
    xargs -P "$jobs" -I{} bash -c '{}'
    {
        echo "path,label"
        local i=0
        for f in $(cd "$dir" && ls | grep -v -e '\.csv$' -e '\.tmp\.' | sort); do
            echo "$f,$(( i % 4 ))"
            i=$(( i + 1 ))
        done
    } > "$dir/labels.csv"
    echo "$dir: $(( $(wc -l < "$dir/labels.csv") - 1 )) clips (wanted $n)"
}

h264=(-c:v libx264 -preset veryfast -profile:v high -bf 2 -pix_fmt yuv420p)

for set in "${sets[@]}"; do
    dir="$out/$set"
    case "$set" in
    short-1080p | short-360p)
        if [ "$set" = short-1080p ]; then size=1920x1080 n=$(count 256); else size=640x360 n=$(count 512); fi
        for i in $(seq 0 $(( n - 1 ))); do
            printf 'encode %q %s 30 2 %d %s -g 60 -keyint_min 60 -sc_threshold 0\n' \
                "$dir/clip_$(printf %04d "$i").mp4" "$size" "$i" "${h264[*]}"
        done | make_set "$dir" "$n"
        ;;
    long-1080p)
        n=$(count 8)
        for i in $(seq 0 $(( n - 1 ))); do
            printf 'encode %q 1920x1080 30 60 %d %s -g 30 -keyint_min 30 -sc_threshold 0\n' \
                "$dir/long_$(printf %03d "$i").mp4" "$i" "${h264[*]}"
        done | make_set "$dir" "$n"
        ;;
    mixed)
        n=$(count 128)
        sizes=(1920x1080 1280x720 854x480 640x360 642x362 426x240)
        rates=(30 25 24)
        codecs=(
            "mp4|-c:v libx264 -preset veryfast -bf 2 -g 48 -pix_fmt yuv420p"
            "mkv|-c:v libx265 -preset veryfast -x265-params log-level=error:keyint=48:bframes=3 -pix_fmt yuv420p"
            "webm|-c:v libvpx-vp9 -deadline realtime -cpu-used 8 -g 48 -b:v 1M -pix_fmt yuv420p"
            "avi|-c:v mpeg4 -q:v 4 -g 24 -pix_fmt yuv420p"
        )
        for i in $(seq 0 $(( n - 1 ))); do
            c=${codecs[$(( i % 4 ))]}
            printf 'encode %q %s %s %d %d %s\n' \
                "$dir/mixed_$(printf %04d "$i").${c%%|*}" "${sizes[$(( i % 6 ))]}" "${rates[$(( i % 3 ))]}" \
                "$(( 2 + i % 5 ))" "$i" "${c#*|}"
        done | make_set "$dir" "$n"
        ;;
    *)
        echo "unknown set '$set' (short-1080p, short-360p, long-1080p, mixed)" >&2
        exit 1
        ;;
    esac
done
