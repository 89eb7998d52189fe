//! With libx264, the same frames, settings and thread count as the ffmpeg CLI must give the identical bitstream
//! (x264 is deterministic): this proves the encoder's time stamps, colour tags and frame plumbing.
//!
//! It has its own test process: x264's output for the same input and settings changed (119466 instead of 119519
//! bytes, measured 2026-12-02 with libx264 164 / FFmpeg 5.1) after the other encode tests had run other encoders
//! in the same process, though every one of them had finished.

mod common;

use std::process::Command;

use common::encode::{clis, dir, software, source_yuv, tensor_of, H, W};

use vidloader::{Codec, EncoderOptions, InputFormat, PicFlags, Preset};

#[test]
fn libx264_bitstream_is_identical_to_the_ffmpeg_cli() {
    if !clis() {
        return;
    }
    let (src_path, frames) = source_yuv();
    let cli = dir().join("cli_x264.h264");
    common::run(
        Command::new("ffmpeg")
            .args([
                "-y",
                "-loglevel",
                "error",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "yuv420p",
                "-s",
                "320x240",
                "-r",
                "30",
                "-i",
            ])
            .arg(&src_path)
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "faster",
                "-b:v",
                "600k",
                "-maxrate",
                "900k",
                "-bufsize",
                "900k",
                "-g",
                "30",
                "-keyint_min",
                "30",
                "-sc_threshold",
                "0",
                "-bf",
                "2",
                "-threads",
                "1",
                "-udu_sei",
                "1",
                "-f",
                "h264",
            ])
            .arg(&cli),
    );
    let opts = EncoderOptions {
        preset: Preset::P4,
        bitrate: Some(600_000),
        maxbitrate: Some(900_000),
        vbvbufsize: Some(900_000),
        gop: Some(30),
        bf: Some(2),
        threads: 1,
        ..software(Codec::H264)
    };
    let mut enc = vidloader::Encoder::new(W, H, InputFormat::Yuv420, opts).unwrap();
    let mut ours = Vec::new();
    for f in &frames {
        for p in enc.encode(&tensor_of(f), PicFlags::default(), &[]).unwrap() {
            ours.extend_from_slice(&p.data);
        }
    }
    for p in enc.end_encode().unwrap() {
        ours.extend_from_slice(&p.data);
    }
    let theirs = std::fs::read(&cli).unwrap();
    if ours != theirs {
        std::fs::write(dir().join("ours_x264.h264"), &ours).unwrap();
        // x264 writes its settings into an SEI: the settings that differ say what our plumbing does differently.
        let settings = |b: &[u8]| -> Vec<String> {
            let text = String::from_utf8_lossy(b);
            let start = text.find("options: ").map_or(0, |i| i + 9);
            let end = text[start..].find('\0').map_or(text.len(), |e| start + e);
            text[start..end].split(' ').map(str::to_string).collect()
        };
        let (a, b) = (settings(&ours), settings(&theirs));
        let differ: Vec<_> = a.iter().zip(&b).filter(|(x, y)| x != y).collect();
        panic!(
            "bitstreams differ ({} vs {} bytes); x264 settings that differ (ours, ffmpeg CLI): {differ:?}",
            ours.len(),
            theirs.len()
        );
    }
}
