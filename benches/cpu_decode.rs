//! CPU decode throughput against the ffmpeg CLI on the same file, in the same run.
//!
//! `cargo bench --bench cpu_decode` makes `target/bench/h264_1080p_gop30.mp4` (300 frames of testsrc2, libx264,
//! GOP 30, 2 B-frames) if missing, then times, best of `REPEATS`:
//!   - `ffmpeg -threads N -i FILE -f null -` (decode only, the reference for NATIVE) and the same with
//!     `-pix_fmt rgb24` (decode plus conversion, the reference for RGB/RGBP), and for one NATIVE row
//!     `ffmpeg -threads N -i FILE -f rawvideo -y /dev/null` (decode plus writing the planes out: the one copy of
//!     each picture that NATIVE also makes, into its batch, and `-f null` does not),
//!   - SimpleDecoder reading the whole file in batches of 16, NATIVE, RGB and RGBP, each batch a new tensor, each
//!     handed back once read (`recycle`), and into one tensor the caller reuses (`decode_frames_into`),
//!   - ThreadedDecoder doing the same with background prefetch, new tensors and recycled ones,
//!   - opening the file (`Demuxer::open_with_probe`) with FFmpeg's full stream probe, which decodes a picture,
//!     and with the headers-only probe (the default; it applies to H.264 in MP4/MOV/Matroska): ms per open, and the
//!     ratio,
//!
//! and prints frames/sec and the ratio to ffmpeg. Each of vidloader's rows runs its ffmpeg command beside it,
//! alternating (peer, row, peer, row, ...), and the ratio is the median of the pairs' ratios, so that a change in
//! the machine's load during the run moves both sides of a ratio together. Set `VIDLOADER_BENCH_FILE` to time
//! another file, `VIDLOADER_BENCH_THREADS` to change N (default: all cores) and `VIDLOADER_BENCH_COLORS` to time
//! only some colour types (comma-separated: `native,rgb,rgbp`, the default; the opening rows then run only when it
//! names all three).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use tch::{Device, Kind, Tensor};
use vidloader::{
    Backend, ColorType, DecoderOptions, Demuxer, FrameTransform, ProbeMode, SimpleDecoder,
    ThreadedDecoder, ThreadedOptions,
};

const REPEATS: usize = 5;
const BATCH: usize = 16;

/// Whether the ffmpeg CLI runs here.
fn ffmpeg_available() -> bool {
    Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The file to time: `VIDLOADER_BENCH_FILE`, or one made with the ffmpeg CLI (`None` when there is neither).
fn bench_file() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VIDLOADER_BENCH_FILE") {
        return Some(PathBuf::from(p));
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("h264_1080p_gop30.mp4");
    if !path.exists() && !ffmpeg_available() {
        return None;
    }
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
    Some(path)
}

/// The ffmpeg command a row is timed against.
#[derive(Clone, Copy, PartialEq)]
enum Peer {
    /// `-f null -`: decode only.
    Null,
    /// `-pix_fmt rgb24 -f null -`: decode and convert to RGB.
    Rgb24,
    /// `-f rawvideo -y /dev/null`: decode and write the planes out (the bytes NATIVE gives), so ffmpeg copies
    /// every picture once as vidloader does into its batch.
    Raw,
}

impl Peer {
    /// The peer of each output: `Null` for NATIVE, `Rgb24` for RGB and RGBP.
    fn of(color: ColorType) -> Peer {
        if color == ColorType::Native {
            Peer::Null
        } else {
            Peer::Rgb24
        }
    }
}

/// Time of one run of `ffmpeg -threads N -i FILE ...` with `peer`'s output.
fn ffmpeg_once(path: &Path, threads: usize, peer: Peer) -> f64 {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-loglevel", "error", "-threads", &threads.to_string(), "-i"])
        .arg(path);
    match peer {
        Peer::Null => cmd.args(["-f", "null", "-"]),
        Peer::Rgb24 => cmd.args(["-pix_fmt", "rgb24", "-f", "null", "-"]),
        Peer::Raw => cmd.args(["-f", "rawvideo", "-y", "/dev/null"]),
    };
    let t = Instant::now();
    assert!(cmd.status().unwrap().success());
    t.elapsed().as_secs_f64()
}

/// Runs `peer` and `ours` alternately `REPEATS` times: ours' best time (with its frame count), the peer's best
/// time, and the median of the ratios peer time / our time of each pair.
fn paired(
    mut peer: impl FnMut() -> f64,
    mut ours: impl FnMut() -> usize,
) -> (usize, f64, f64, f64) {
    let (mut best, mut best_peer, mut frames) = (f64::INFINITY, f64::INFINITY, 0);
    let mut ratios = Vec::with_capacity(REPEATS);
    for _ in 0..REPEATS {
        let p = peer();
        let t = Instant::now();
        frames = ours();
        let o = t.elapsed().as_secs_f64();
        best = best.min(o);
        best_peer = best_peer.min(p);
        ratios.push(p / o);
    }
    ratios.sort_by(f64::total_cmp);
    (frames, best, best_peer, ratios[ratios.len() / 2])
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
    let Some(path) = bench_file() else {
        println!("skipped: no benchmark file (set VIDLOADER_BENCH_FILE, or install the ffmpeg CLI to make one)");
        return;
    };
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
    let have_ffmpeg = ffmpeg_available();
    println!(
        "file: {} ({n_frames} frames), threads: {threads}, {REPEATS} runs each, alternating with its ffmpeg command",
        path.display()
    );
    println!("peers: `ffmpeg -threads {threads} -f null -` for NATIVE, the same with `-pix_fmt rgb24` for RGB/RGBP,");
    println!("       and `-f rawvideo -y /dev/null` (the planes written out, as NATIVE gives them) where a row says so");
    println!(
        "{:<38} {:>10} {:>12} {:>14}",
        "decoder", "frames/s", "ffmpeg fps", "ratio (median)"
    );
    // One row: `read` decodes the whole file and returns the frames it read.
    let row = |name: String, peer: Peer, read: &mut dyn FnMut() -> usize| {
        let (frames, secs, peer_fps, ratio) = if have_ffmpeg {
            let (frames, secs, peer, ratio) =
                paired(|| ffmpeg_once(&path, threads, peer), &mut *read);
            (
                frames,
                secs,
                format!("{:.1}", n_frames as f64 / peer),
                format!("{ratio:.3}"),
            )
        } else {
            let (frames, secs) = best_of(&mut *read);
            (frames, secs, "-".into(), "-".into())
        };
        assert_eq!(
            frames, n_frames,
            "{name} read {frames} of {n_frames} frames"
        );
        println!(
            "{name:<38} {:>10.1} {peer_fps:>12} {ratio:>14}",
            frames as f64 / secs
        );
    };
    let colors: Vec<ColorType> = match std::env::var("VIDLOADER_BENCH_COLORS") {
        Ok(list) => list
            .split(',')
            .map(|c| {
                c.trim()
                    .parse()
                    .expect("VIDLOADER_BENCH_COLORS: native, rgb or rgbp")
            })
            .collect(),
        Err(_) => vec![ColorType::Native, ColorType::Rgb, ColorType::Rgbp],
    };
    for &color in &colors {
        let opts = DecoderOptions::default()
            .backend(Backend::Cpu)
            .threads(threads)
            .color(color);
        let threaded = ThreadedOptions {
            buffer_size: 4 * BATCH,
            batch_size: BATCH,
            decoder: opts.clone(),
        };
        // Each batch dropped, then handed back once read (`recycle`): the next is written into it.
        for recycle in [false, true] {
            row(
                format!("SimpleDecoder {color:?} batch {BATCH}{}", recycled(recycle)),
                Peer::of(color),
                &mut || {
                    read_all(
                        &mut SimpleDecoder::open(&path, opts.clone()).unwrap(),
                        recycle,
                    )
                },
            );
        }

        // The same into one tensor the caller reuses (`decode_frames_into`, the DataLoader's path): no fresh
        // batch memory to fault in for every batch. The tensor is made once, outside the timed runs, as a caller
        // that reuses it makes it once.
        let dims = SimpleDecoder::open(&path, opts.clone())
            .unwrap()
            .batch_dims(BATCH);
        let mut out = Tensor::zeros(dims.as_slice(), (Kind::Uint8, Device::Cpu));
        let mut into_reused = || {
            let mut d = SimpleDecoder::open(&path, opts.clone()).unwrap();
            let indices: Vec<usize> = (0..n_frames).collect();
            for chunk in indices.chunks(BATCH) {
                let mut view = out.narrow(0, 0, chunk.len() as i64);
                d.decode_frames_into(chunk, &mut view, &FrameTransform::identity())
                    .unwrap();
            }
            std::hint::black_box(&mut out);
            n_frames
        };
        row(
            format!("SimpleDecoder {color:?} into a reused tensor"),
            Peer::of(color),
            &mut into_reused,
        );
        if color == ColorType::Native {
            // The same row against ffmpeg writing the same bytes out (`-f rawvideo`): `-f null` copies nothing.
            row(
                "  the same, against `-f rawvideo`".to_string(),
                Peer::Raw,
                &mut into_reused,
            );
        }

        for recycle in [true, false] {
            row(
                format!(
                    "ThreadedDecoder {color:?} batch {BATCH}{}",
                    recycled(recycle)
                ),
                Peer::of(color),
                &mut || {
                    read_all(
                        &mut ThreadedDecoder::open(&path, threaded.clone(), 0).unwrap(),
                        recycle,
                    )
                },
            );
        }
    }

    if colors.len() < 3 {
        return;
    }
    // Opening the file: what a short clip pays before its first frame.
    const OPENS: usize = 50;
    let open_ms = |probe: ProbeMode| {
        let (_, secs) = best_of(|| {
            for _ in 0..OPENS {
                let d = Demuxer::open_with_probe(path.as_path(), probe).unwrap();
                std::hint::black_box(d.info());
            }
            OPENS
        });
        secs * 1e3 / OPENS as f64
    };
    let full = open_ms(ProbeMode::Full);
    let headers = open_ms(ProbeMode::Headers);
    println!(
        "{:<38} {:>10} {:>8}",
        "opening the file", "ms/open", "ratio"
    );
    println!("{:<38} {full:>10.2} {:>8.3}", "full probe (FFmpeg)", 1.0);
    println!(
        "{:<38} {headers:>10.2} {:>8.3}",
        "headers-only probe (default)",
        headers / full
    );
}

/// Reads batches of `BATCH` from `d` until an empty one, dropping each or (`recycle`) handing it back to be written
/// over; the frames read.
fn read_all(d: &mut impl BatchReader, recycle: bool) -> usize {
    let mut n = 0;
    loop {
        let b = d.next_batch();
        if b.is_empty() {
            return n;
        }
        n += b.len();
        if recycle {
            d.recycle_batch(b);
        }
    }
}

/// The row name's suffix for recycled batches.
fn recycled(recycle: bool) -> &'static str {
    if recycle {
        ", recycled"
    } else {
        ""
    }
}

/// The two decoders the rows read batch by batch.
trait BatchReader {
    fn next_batch(&mut self) -> vidloader::FrameBatch;
    fn recycle_batch(&mut self, batch: vidloader::FrameBatch);
}

impl BatchReader for SimpleDecoder {
    fn next_batch(&mut self) -> vidloader::FrameBatch {
        self.get_batch_frames(BATCH).unwrap()
    }
    fn recycle_batch(&mut self, batch: vidloader::FrameBatch) {
        self.recycle(batch)
    }
}

impl BatchReader for ThreadedDecoder {
    fn next_batch(&mut self) -> vidloader::FrameBatch {
        self.get_batch_frames(BATCH).unwrap()
    }
    fn recycle_batch(&mut self, batch: vidloader::FrameBatch) {
        self.recycle(batch)
    }
}
