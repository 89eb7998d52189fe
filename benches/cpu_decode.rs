//! CPU decode throughput against the ffmpeg CLI on the same file, in the same run.
//!
//! `cargo bench --bench cpu_decode` makes `target/bench/h264_1080p_gop30.mp4` (300 frames of testsrc2, libx264,
//! GOP 30, 2 B-frames) if missing, then times, best of `REPEATS`:
//!   - `ffmpeg -threads N -i FILE -f null -` (decode only, the reference),
//!   - SimpleDecoder reading the whole file in batches of 16, NATIVE and RGBP,
//!   - ThreadedDecoder doing the same with background prefetch,
//!
//! and prints frames/sec and the ratio to ffmpeg. Set `VIDLOADER_BENCH_FILE` to time another file and
//! `VIDLOADER_BENCH_THREADS` to change N (default: all cores).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use vidloader::{
    Backend, ColorType, DecoderOptions, SimpleDecoder, ThreadedDecoder, ThreadedOptions,
};

const REPEATS: usize = 3;
const BATCH: usize = 16;

fn bench_file() -> PathBuf {
    if let Some(p) = std::env::var_os("VIDLOADER_BENCH_FILE") {
        return PathBuf::from(p);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("h264_1080p_gop30.mp4");
    if !path.exists() {
        let ok = Command::new("ffmpeg")
            .args([
                "-y",
                "-loglevel",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=1920x1080:rate=30",
                "-frames:v",
                "300",
            ])
            .args([
                "-c:v", "libx264", "-preset", "medium", "-g", "30", "-bf", "2", "-pix_fmt",
                "yuv420p",
            ])
            .arg(&path)
            .status()
            .expect("the ffmpeg CLI is needed to make the benchmark file")
            .success();
        assert!(ok, "ffmpeg failed to make {}", path.display());
    }
    path
}

fn best_of(mut f: impl FnMut() -> usize) -> (usize, f64) {
    let mut best = f64::INFINITY;
    let mut frames = 0;
    for _ in 0..REPEATS {
        let t = Instant::now();
        frames = f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    (frames, best)
}

fn main() {
    let path = bench_file();
    let threads: usize = std::env::var("VIDLOADER_BENCH_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
    let n_frames = SimpleDecoder::open(&path, DecoderOptions::default().backend(Backend::Cpu))
        .unwrap()
        .len();

    let (_, ffmpeg_s) = best_of(|| {
        let ok = Command::new("ffmpeg")
            .args(["-loglevel", "error", "-threads", &threads.to_string(), "-i"])
            .arg(&path)
            .args(["-f", "null", "-"])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        n_frames
    });
    let ffmpeg_fps = n_frames as f64 / ffmpeg_s;
    println!(
        "file: {} ({n_frames} frames), threads: {threads}, best of {REPEATS}",
        path.display()
    );
    println!("{:<38} {:>10} {:>8}", "decoder", "frames/s", "ratio");
    println!(
        "{:<38} {:>10.1} {:>8.3}",
        format!("ffmpeg -threads {threads} -f null"),
        ffmpeg_fps,
        1.0
    );

    let report = |name: String, frames: usize, secs: f64| {
        assert_eq!(
            frames, n_frames,
            "{name} read {frames} of {n_frames} frames"
        );
        let fps = frames as f64 / secs;
        println!("{name:<38} {fps:>10.1} {:>8.3}", fps / ffmpeg_fps);
    };
    for color in [ColorType::Native, ColorType::Rgbp] {
        let opts = DecoderOptions::default()
            .backend(Backend::Cpu)
            .threads(threads)
            .color(color);
        let (frames, secs) = best_of(|| {
            let mut d = SimpleDecoder::open(&path, opts.clone()).unwrap();
            read_to_end(|| d.get_batch_frames(BATCH).unwrap())
        });
        report(
            format!("SimpleDecoder {color:?} batch {BATCH}"),
            frames,
            secs,
        );

        let (frames, secs) = best_of(|| {
            let topts = ThreadedOptions {
                buffer_size: 4 * BATCH,
                batch_size: BATCH,
                decoder: opts.clone(),
            };
            let mut d = ThreadedDecoder::open(&path, topts, 0).unwrap();
            read_to_end(|| d.get_batch_frames(BATCH).unwrap())
        });
        report(
            format!("ThreadedDecoder {color:?} batch {BATCH}"),
            frames,
            secs,
        );
    }
}

/// Calls `next_batch` until it returns an empty batch; the number of frames read.
fn read_to_end(mut next_batch: impl FnMut() -> vidloader::FrameBatch) -> usize {
    let mut n = 0;
    loop {
        let b = next_batch();
        if b.is_empty() {
            return n;
        }
        n += b.len();
    }
}
