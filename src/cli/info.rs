//! `vidloader info PATH [--json]`.

use std::path::Path;

use serde::Serialize;
use vidloader::{Backend, DecoderOptions, Result, SimpleDecoder, StreamInfo};

#[derive(Serialize)]
struct InfoReport<'a> {
    path: String,
    #[serde(flatten)]
    stream: &'a StreamInfo,
    num_frames: usize,
    keyframes: &'a [u32],
    first_pts_s: f64,
    measured_fps: f64,
    vfr: bool,
    /// Decode segments (more than 1: an edit list of several edits, or streams concatenated with restarting
    /// clocks).
    segments: usize,
    /// The first frame of another picture size, and that size (frames from there on are not decoded).
    size_change: Option<SizeChange>,
    backend: Backend,
}

#[derive(Serialize)]
struct SizeChange {
    frame: usize,
    width: u32,
    height: u32,
}

pub fn run(path: &Path, json: bool, backend: Backend) -> Result<()> {
    let dec = SimpleDecoder::open(path, DecoderOptions::default().backend(backend))?;
    let index = dec.scanned_stream_metadata();
    let report = InfoReport {
        path: path.display().to_string(),
        stream: dec.stream_metadata(),
        num_frames: dec.len(),
        keyframes: index.keyframes(),
        first_pts_s: index.time_of(0),
        measured_fps: index.measured_fps(),
        vfr: index.is_vfr(),
        segments: index.segment_count(),
        size_change: index
            .size_change()
            .map(|(frame, width, height)| SizeChange {
                frame,
                width,
                height,
            }),
        backend: dec.backend(),
    };
    if json {
        println!("{}", serde_json::to_string(&report).expect("serialisable"));
    } else {
        let s = report.stream;
        println!("{}", report.path);
        println!(
            "  codec      {} ({}, {}), container {}",
            s.codec, s.pixel_format, s.chroma, s.container
        );
        println!("  size       {}x{}, {} bit", s.width, s.height, s.bit_depth);
        println!(
            "  frames     {} (keyframes: {})",
            report.num_frames,
            report.keyframes.len()
        );
        println!(
            "  fps        {:.3} (measured {:.3}{})",
            s.fps,
            report.measured_fps,
            if report.vfr { ", variable" } else { "" }
        );
        println!("  duration   {:.3} s", s.duration_s);
        println!(
            "  colour     {:?} {:?}, primaries {}, transfer {}",
            s.color_matrix, s.color_range, s.color_primaries, s.color_transfer
        );
        if s.rotation != 0.0 {
            println!("  rotation   {} degrees", s.rotation);
        }
        if report.segments > 1 {
            println!(
                "  segments   {} (the time stamps restart: several edits, or concatenated streams)",
                report.segments
            );
        }
        if let Some(c) = &report.size_change {
            println!(
                "  size change at frame {} to {}x{}: frames from there on are not decoded (ffmpeg scales them to \
                 the first size; split or re-encode the file)",
                c.frame, c.width, c.height
            );
        }
    }
    Ok(())
}
