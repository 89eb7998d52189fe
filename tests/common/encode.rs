//! The raw source frames the encode tests feed to encoders, made once with the ffmpeg CLI.

use std::path::PathBuf;
use std::process::Command;

use std::path::Path;

use tch::Tensor;
use vidloader::{Codec, EncoderBackend, EncoderOptions, InputFormat, TranscodeOptions, Transcoder};

pub const W: u32 = 320;
pub const H: u32 = 240;
pub const FRAMES: usize = 60;
/// The UUID x265 puts in front of every user-data-unregistered SEI it writes.
pub const X265_UUID: [u8; 16] = [
    0x2c, 0xa2, 0xde, 0x09, 0xb5, 0x17, 0x47, 0xdb, 0xbb, 0x55, 0xa4, 0xfe, 0x7f, 0xc2, 0xfc, 0x4e,
];

pub fn dir() -> PathBuf {
    let d = super::fixture_dir().join("encode");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `FRAMES` testsrc2 frames as packed yuv420p, made by the ffmpeg CLI once.
pub fn source_yuv() -> (PathBuf, Vec<Vec<u8>>) {
    let path = dir().join("src_320x240.yuv");
    if !path.exists() {
        let tmp = dir().join(format!(
            "tmp-{}-{:?}.yuv",
            std::process::id(),
            std::thread::current().id()
        ));
        super::run(
            Command::new("ffmpeg")
                .args([
                    "-y",
                    "-loglevel",
                    "error",
                    "-f",
                    "lavfi",
                    "-i",
                    "testsrc2=size=320x240:rate=30",
                    "-frames:v",
                    "60",
                    "-pix_fmt",
                    "yuv420p",
                    "-f",
                    "rawvideo",
                ])
                .arg(&tmp),
        );
        std::fs::rename(&tmp, &path).unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    let fb = InputFormat::Yuv420.frame_bytes(W, H);
    (path, bytes.chunks(fb).map(<[u8]>::to_vec).collect())
}

/// Whether the ffmpeg and ffprobe CLIs run here (the encode tests make their inputs and check their outputs with
/// them); when not, says "skipped: ..." (the GPU machine has neither: these CPU tests run in CI).
pub fn clis() -> bool {
    let runs = |tool: &str| {
        Command::new(tool)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let ok = runs("ffmpeg") && runs("ffprobe");
    if !ok {
        eprintln!("skipped: the encode tests need the ffmpeg and ffprobe CLIs");
    }
    ok
}

/// Settings for `codec`'s software encoder (libx264, libx265, SVT-AV1), whatever GPU the machine has.
pub fn software(codec: Codec) -> EncoderOptions {
    EncoderOptions {
        codec,
        backend: EncoderBackend::Software,
        ..Default::default()
    }
}

/// A CPU tensor holding `bytes`.
pub fn tensor_of(bytes: &[u8]) -> Tensor {
    Tensor::from_slice(bytes)
}

/// A transcoder from `src` to `out` with `codec`'s software encoder and the default decoder.
pub fn software_transcoder(src: &Path, out: &Path, codec: Codec) -> Transcoder {
    let opts = TranscodeOptions {
        encoder: software(codec),
        ..Default::default()
    };
    Transcoder::new(src, out, opts).unwrap()
}
