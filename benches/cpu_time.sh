#!/usr/bin/env bash
# cpu_time.sh: CPU time per decoded frame of vidloader's CPU decoder against the ffmpeg CLI on the same file, for
# NATIVE (against `ffmpeg -f null`) and RGB / RGBP (against `ffmpeg -pix_fmt rgb24 -f null`).
#
#     benches/cpu_time.sh [FILE]
#
# `cargo bench --bench cpu_decode` compares frames/s, which on a machine that others share moves with their load;
# the CPU seconds (user + system, /usr/bin/time) a whole file costs are what the load disturbs least. FILE
# defaults to the one `cpu_decode` makes (target/bench/h264_1080p_gop30.mp4). For each of RUNS rounds (default
# 3), in turn: `examples/decode_into` (a `SimpleDecoder` with THREADS libavcodec threads, default 2, writing
# batches of 16 into one reused tensor) on FILE and on its first frame alone (a copy made with the ffmpeg CLI:
# what loading the program, libtorch and opening the file cost, subtracted), then the two ffmpeg commands with
# `-threads THREADS`, and `-f rawvideo -y /dev/null` (the planes written out: one copy of each picture, as NATIVE
# makes into its batch and `-f null` does not), likewise on FILE and on its first frame. Prints each run, then the medians of CPU milliseconds per frame and the ratios
# ffmpeg / vidloader (above 1: vidloader spends less CPU per frame).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
file="${1:-$repo/target/bench/h264_1080p_gop30.mp4}"
runs="${RUNS:-3}"
threads="${THREADS:-2}"
[ -s "$file" ] || { echo "no $file: run cargo bench --bench cpu_decode once, or name a file" >&2; exit 1; }
(cd "$repo" && cargo build --release --example decode_into >/dev/null 2>&1)
prog="$repo/target/release/examples/decode_into"
one="$(mktemp -d)/first_frame.${file##*.}"
ffmpeg -hide_banner -loglevel error -y -i "$file" -frames:v 1 -c copy "$one"
frames=$(ffprobe -v error -select_streams v:0 -count_packets -show_entries stream=nb_read_packets -of csv=p=0 "$file")
# CPU seconds (user + system) of a command.
cpu() {
    /usr/bin/time -f "%U %S" "$@" 2>&1 >/dev/null | tail -1 | awk '{ printf "%.3f", $1 + $2 }'
}
declare -A samples
for r in $(seq "$runs"); do
    for color in native rgb rgbp; do
        whole=$(cpu "$prog" "$file" "$color" "$threads")
        start=$(cpu "$prog" "$one" "$color" "$threads")
        ms=$(awk -v w="$whole" -v s="$start" -v n="$frames" 'BEGIN { printf "%.3f", (w - s) * 1000 / (n - 1) }')
        samples[$color]+="$ms "
        echo "run $r: vidloader $color: $whole s whole file, $start s first frame alone: $ms ms a frame"
    done
    for peer in null rgb24 rawvideo; do
        out=(-f null -)
        [ "$peer" = rgb24 ] && out=(-pix_fmt rgb24 -f null -)
        [ "$peer" = rawvideo ] && out=(-f rawvideo -y /dev/null)
        whole=$(cpu ffmpeg -loglevel error -threads "$threads" -i "$file" "${out[@]}")
        start=$(cpu ffmpeg -loglevel error -threads "$threads" -i "$one" "${out[@]}")
        ms=$(awk -v w="$whole" -v s="$start" -v n="$frames" 'BEGIN { printf "%.3f", (w - s) * 1000 / (n - 1) }')
        samples[ffmpeg_$peer]+="$ms "
        echo "run $r: ffmpeg $peer: $whole s whole file, $start s first frame alone: $ms ms a frame"
    done
done
median() { tr ' ' '\n' <<< "$1" | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "file: $file ($frames frames), threads: $threads, median of $runs runs, CPU ms per frame:"
for row in "native ffmpeg_null" "native ffmpeg_rawvideo" "rgb ffmpeg_rgb24" "rgbp ffmpeg_rgb24"; do
    set -- $row
    ours=$(median "${samples[$1]}")
    peer=$(median "${samples[$2]}")
    awk -v a="$ours" -v b="$peer" -v n="$1" -v p="$2" \
        'BEGIN { printf "%-8s vidloader %7.3f   %-13s %7.3f   ratio %.3f\n", n, a, p, b, b / a }'
done
