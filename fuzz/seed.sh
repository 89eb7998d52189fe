#!/usr/bin/env bash
# Seed corpora for the fuzz targets, made with the ffmpeg CLI: tiny videos (64x64, a few frames) in several codecs
# and containers for `decode`, their parameter sets and packets for `bitstream`, manifests and sampler
# descriptions for `manifest`. Usage: fuzz/seed.sh [CORPUS_DIR] (default fuzz/corpus).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/corpus}
mkdir -p "$out/decode" "$out/bitstream" "$out/manifest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

src="testsrc2=size=64x64:rate=25"
make() { # name, frames, ffmpeg output arguments...
    local name=$1 frames=$2
    shift 2
    ffmpeg -v error -y -f lavfi -i "$src" -frames:v "$frames" "$@" "$out/decode/$name"
}
make h264_b.mp4 6 -c:v libx264 -bf 2 -g 4 -pix_fmt yuv420p
make h264_gop1.mkv 3 -c:v libx264 -g 1 -pix_fmt yuv420p
make h264.ts 4 -c:v libx264 -bf 1 -g 2 -pix_fmt yuv420p
make h264.avi 3 -c:v libx264 -bf 0 -g 2 -pix_fmt yuv420p
make h264_10bit.mkv 3 -c:v libx264 -pix_fmt yuv422p10le -g 2
make hevc.mp4 4 -c:v libx265 -x265-params log-level=error:keyint=2:bframes=1 -pix_fmt yuv420p -tag:v hvc1
make vp9.webm 4 -c:v libvpx-vp9 -g 2 -deadline realtime -cpu-used 8 -b:v 50k
make vp8.ivf 3 -c:v libvpx -g 2 -b:v 50k
make mpeg4_b.avi 6 -c:v mpeg4 -bf 2 -g 4 -q:v 10
make mpeg2.mpg 4 -c:v mpeg2video -bf 1 -g 2 -q:v 10
make mjpeg.mov 2 -c:v mjpeg -q:v 20
make av1.mkv 2 -c:v libaom-av1 -cpu-used 8 -g 2 -b:v 20k 2>/dev/null || rm -f "$out/decode/av1.mkv"
make raw.y4m 2 -pix_fmt yuv420p
make h264.264 3 -c:v libx264 -g 2 -bsf:v h264_mp4toannexb -f h264
make hevc.265 3 -c:v libx265 -x265-params log-level=error:keyint=2 -f hevc

# bitstream: Annex-B streams (parameter sets and slices), the avcC record of an MP4, single NAL units.
cp "$out/decode/h264.264" "$out/decode/hevc.265" "$out/bitstream/"
ffmpeg -v error -y -f lavfi -i "$src" -frames:v 2 -c:v libx264 -g 2 -f h264 "$tmp/sps.264"
python3 - "$tmp/sps.264" "$out/decode/h264_b.mp4" "$out/bitstream" <<'PY'
import sys
stream = open(sys.argv[1], 'rb').read()
units = [u.rstrip(b'\0') for u in stream.split(b'\0\0\1')[1:]]
for i, u in enumerate(units[:6]):
    open(f"{sys.argv[3]}/nal{i}.bin", 'wb').write(u)
mp4 = open(sys.argv[2], 'rb').read()
at = mp4.find(b'avcC')
if at > 0:
    size = int.from_bytes(mp4[at - 4:at], 'big')
    open(f"{sys.argv[3]}/avcc.bin", 'wb').write(mp4[at + 4:at - 4 + size])
PY

# manifest: CSV and JSON-lines manifests, sampler descriptions, a cache entry written by the CLI.
m=$out/manifest
printf 'path,label,start,end\na.mp4,cat,0.5,2\n"b, c.mkv",dog,,\n' > "$m/header.csv"
printf '# comment\nclips/a.mp4,0\nclips/b.mp4,1,1.0,3.5\n' > "$m/plain.csv"
printf '{"path": "a.mp4", "label": 3, "start": 1.5, "end": 4.0}\n{"path": "b.mp4"}\n' > "$m/ints.jsonl"
printf '{"path": "a.mp4", "label": "cat"}\n{"path": "b.mp4", "label": "dog", "end": 2}\n' > "$m/names.jsonl"
printf 'uniform:16\nclips:2:8:3\nrandom-clips:1:4:0.5s\nrandom:5\nclips:3:2\n' > "$m/samplers.txt"
printf 'path,num_frames,fps,width,height,duration_s\na.mp4,60,30,64,48,2\nb.mp4,4294967295,0.001,1,1,\nclips:2:3:0.5s\n' > "$m/metadata.csv"
printf '{"path": "a.mp4", "num_frames": 60, "fps": 29.97, "width": 64, "height": 48}\n{"path": "b.mp4"}\n' > "$m/metadata.jsonl"
bin=${VIDLOADER_BIN:-$(command -v vidloader || echo "${CARGO_TARGET_DIR:-$here/../target}/release/vidloader")}
if [ -x "$bin" ]; then
    cp "$out/decode/h264_b.mp4" "$tmp/v.mp4"
    printf 'v.mp4,0\n' > "$tmp/labels.csv"
    VIDLOADER_CACHE_DIR=$tmp/cache "$bin" plan "$tmp/labels.csv" > /dev/null 2>&1 || true
    python3 - "$tmp/cache/metadata.sqlite" "$m/cache-entry.bin" <<'PY' || true
import sqlite3, sys
row = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True).execute("SELECT entry FROM index_v2").fetchone()
if row:
    open(sys.argv[2], 'wb').write(row[0])
PY
fi
echo "seeds in $out: $(find "$out" -type f | wc -l) files, $(du -sh "$out" | cut -f1)"
