//! DataLoader throughput against the decode-bound ceiling, measured in the same run on the same files.
//!
//! `cargo bench --bench loader` makes (once, with the ffmpeg CLI, as `datasets/make_bench_datasets.sh` does:
//! testsrc2 with a different hue per clip, libx264 High, 2 B-frames) the data sets below in `target/bench/loader-*`,
//! then per scenario:
//!
//! 1. plain decode: every frame of every file, decoded in order (NATIVE planes, no conversion) by the same number
//!    of worker threads and decoder threads as the loader, through one shared decoder pool: the decode rate of
//!    this machine on these files;
//! 2. the loader: one warm-up epoch, then the best of `REPEATS` epochs (16 evenly spaced frames or 4 clips of 8,
//!    resized to 224x224, normalised, f16, as a training job would ask): frames delivered per second, and the
//!    pictures the decoders decoded for them per second (counted by the decoders);
//! 3. the ceiling: plain decode rate x delivered / decoded, and the loader's share of it.
//!
//! Environment: `VIDLOADER_BENCH_SCENARIOS` (comma-separated names, default all), `VIDLOADER_BENCH_WORKERS`
//! (default: one per core), `VIDLOADER_BENCH_GPU=N` (decode with NVDEC on GPU N and deliver batches there; the
//! bench says so and stops when no CUDA device is there), `VIDLOADER_BENCH_DATASET` + `VIDLOADER_BENCH_SAMPLER`
//! (a data set of your own, instead of the generated ones).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tch::{Device, Kind};
use vidloader::LoaderSummary;
use vidloader::{parse_sampler, ShortVideoPolicy, TimeRange};
use vidloader::{
    Backend, ColorType, DataLoader, DecoderOptions, DecoderPool, SimpleDecoder, VideoDataset,
};

const REPEATS: u64 = 3;

struct Scenario {
    name: &'static str,
    what: &'static str,
    size: &'static str,
    seconds: u32,
    gop: u32,
    clips: usize,
    sampler: &'static str,
    batch: usize,
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "short-360p",
            what: "640x360, 2 s at 30 fps (60 frames, one GOP)",
            size: "640x360",
            seconds: 2,
            gop: 60,
            clips: 32,
            sampler: "uniform:16",
            batch: 8,
        },
        Scenario {
            name: "long-360p",
            what: "640x360, 10 s at 30 fps (300 frames, GOP 30)",
            size: "640x360",
            seconds: 10,
            gop: 30,
            clips: 8,
            sampler: "random-clips:4:8:2",
            batch: 4,
        },
        Scenario {
            name: "short-1080p",
            what: "1920x1080, 2 s at 30 fps (60 frames, one GOP)",
            size: "1920x1080",
            seconds: 2,
            gop: 60,
            clips: 8,
            sampler: "uniform:16",
            batch: 8,
        },
    ]
}

/// Makes the clips of `sc` in `dir` with the ffmpeg CLI (those that exist are kept) and a `labels.csv`.
fn make_set(dir: &Path, sc: &Scenario) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut manifest = String::from("path,label\n");
    for i in 0..sc.clips {
        let name = format!("clip_{i:04}.mp4");
        let path = dir.join(&name);
        if !path.exists() {
            let tmp = dir.join(format!("tmp_{name}"));
            let gop = sc.gop.to_string();
            let status = std::process::Command::new("ffmpeg")
                .args(["-nostdin", "-y", "-loglevel", "error", "-f", "lavfi", "-i"])
                .arg(format!("testsrc2=size={}:rate=30", sc.size))
                .args(["-t", &sc.seconds.to_string(), "-vf"])
                .arg(format!("hue=h={}", i * 37 % 360))
                .args([
                    "-c:v",
                    "libx264",
                    "-preset",
                    "veryfast",
                    "-profile:v",
                    "high",
                    "-bf",
                    "2",
                ])
                .args([
                    "-g",
                    &gop,
                    "-keyint_min",
                    &gop,
                    "-sc_threshold",
                    "0",
                    "-pix_fmt",
                    "yuv420p",
                ])
                .arg(&tmp)
                .status()
                .map_err(|e| format!("the ffmpeg CLI is needed to make the data sets ({e})"))?;
            if !status.success() {
                return Err(format!("ffmpeg failed to make {}", path.display()));
            }
            std::fs::rename(&tmp, &path).map_err(|e| e.to_string())?;
        }
        manifest.push_str(&format!("{name},{}\n", i % 4));
    }
    std::fs::write(dir.join("labels.csv"), manifest).map_err(|e| e.to_string())
}

fn env_usize(k: &str) -> Option<usize> {
    std::env::var(k).ok().and_then(|v| v.parse().ok())
}

/// Decodes every frame of `files` with `workers` threads (files dealt round-robin), each with one decoder
/// reconfigured from file to file on a shared pool. Returns (frames, seconds).
fn plain_decode(files: &[PathBuf], workers: usize, threads: usize, backend: Backend) -> (u64, f64) {
    let pool = DecoderPool::new(workers.max(4));
    let files = Arc::new(files.to_vec());
    let start = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let (files, pool) = (files.clone(), pool.clone());
            std::thread::spawn(move || {
                let opts = DecoderOptions::default()
                    .backend(backend)
                    .threads(threads)
                    .color(ColorType::Native);
                let mut dec: Option<SimpleDecoder> = None;
                let mut frames = 0u64;
                for f in files.iter().skip(w).step_by(workers) {
                    let d = match dec.as_mut() {
                        Some(d) => {
                            d.reconfigure(f).unwrap();
                            d
                        }
                        None => dec.insert(
                            SimpleDecoder::open_with_pool(f, opts.clone(), pool.clone()).unwrap(),
                        ),
                    };
                    loop {
                        let b = d.get_batch_frames(64).unwrap();
                        if b.is_empty() {
                            break;
                        }
                        frames += b.len() as u64;
                    }
                }
                frames
            })
        })
        .collect();
    let frames = handles.into_iter().map(|h| h.join().unwrap()).sum();
    (frames, start.elapsed().as_secs_f64())
}

fn delta(after: &LoaderSummary, before: &LoaderSummary) -> (u64, u64) {
    (
        after.frames - before.frames,
        after.frames_decoded - before.frames_decoded,
    )
}

struct Row {
    name: String,
    videos: usize,
    sampler: String,
    plain_fps: f64,
    fps: f64,
    decoded_fps: f64,
    hit_rate: f64,
}

fn run(
    name: &str,
    dataset: VideoDataset,
    sampler: &str,
    batch: usize,
    workers: usize,
    device: Device,
) -> Row {
    let videos = dataset.len();
    let files: Vec<PathBuf> = dataset.entries().iter().map(|e| e.path.clone()).collect();
    let threads = (std::thread::available_parallelism().map_or(1, |n| n.get()) / workers).max(1);
    let backend = match device {
        Device::Cuda(n) => Backend::Nvdec(n),
        _ => Backend::Cpu,
    };
    let sampler_arc = parse_sampler(sampler, ShortVideoPolicy::RepeatLast, TimeRange::ALL).unwrap();
    let loader = DataLoader::builder(dataset)
        .sampler_arc(sampler_arc)
        .batch_size(batch)
        .shuffle(true)
        .seed(1)
        .workers(workers)
        .decode_threads(threads)
        .device(device)
        .resize(224, 224)
        .normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
        .dtype(Kind::Half)
        .build()
        .unwrap();
    // Warm-up: metadata, page cache, decoder pool.
    for b in loader.epoch(0) {
        b.unwrap();
    }
    let (_, _) = plain_decode(&files, workers, threads, backend);
    let mut best_plain = 0.0f64;
    let mut best = (0.0f64, 0.0f64);
    for e in 1..=REPEATS {
        let (frames, secs) = plain_decode(&files, workers, threads, backend);
        best_plain = best_plain.max(frames as f64 / secs);
        let before = loader.summary();
        let t = Instant::now();
        for b in loader.epoch(e) {
            b.unwrap();
        }
        if let Device::Cuda(n) = device {
            tch::Cuda::synchronize(n as i64);
        }
        let secs = t.elapsed().as_secs_f64();
        let (delivered, decoded) = delta(&loader.summary(), &before);
        let fps = delivered as f64 / secs;
        if fps > best.0 {
            best = (fps, decoded as f64 / secs);
        }
    }
    Row {
        name: name.to_string(),
        videos,
        sampler: sampler.to_string(),
        plain_fps: best_plain,
        fps: best.0,
        decoded_fps: best.1,
        hit_rate: loader.summary().pool.hit_rate(),
    }
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = env_usize("VIDLOADER_BENCH_WORKERS").unwrap_or(cores);
    let device = match env_usize("VIDLOADER_BENCH_GPU") {
        Some(n) if tch::Cuda::is_available() && (n as i64) < tch::Cuda::device_count() => {
            Device::Cuda(n)
        }
        Some(n) => {
            println!("skipped: VIDLOADER_BENCH_GPU={n} but torch sees no CUDA device {n}");
            return;
        }
        None => Device::Cpu,
    };
    let threads = (cores / workers).max(1);
    println!(
        "{cores} cores; loader and plain decode: {workers} workers x {threads} decoder threads, {device:?}; best of {REPEATS} epochs after a warm-up"
    );
    println!(
        "loader output: [B, T, 3, 224, 224] f16, normalised; decoded = pictures the decoders decoded (their own count)"
    );
    let mut rows = Vec::new();
    if let Ok(ds) = std::env::var("VIDLOADER_BENCH_DATASET") {
        let sampler =
            std::env::var("VIDLOADER_BENCH_SAMPLER").unwrap_or_else(|_| "uniform:16".into());
        let dataset = match VideoDataset::open(&ds) {
            Ok(d) => d,
            Err(e) => {
                println!("skipped: {ds}: {e}");
                return;
            }
        };
        rows.push(run(&ds, dataset, &sampler, 8, workers, device));
    } else {
        let wanted: Option<Vec<String>> = std::env::var("VIDLOADER_BENCH_SCENARIOS")
            .ok()
            .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
        for sc in scenarios() {
            if wanted
                .as_ref()
                .is_some_and(|w| !w.iter().any(|n| n == sc.name))
            {
                continue;
            }
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/bench")
                .join(format!("loader-{}", sc.name));
            let t = Instant::now();
            if let Err(e) = make_set(&dir, &sc) {
                println!("skipped {}: cannot make the data set: {e}", sc.name);
                continue;
            }
            println!(
                "{}: {} videos of {} in {} ({:.1} s to make or check)",
                sc.name,
                sc.clips,
                sc.what,
                dir.display(),
                t.elapsed().as_secs_f64()
            );
            let dataset = VideoDataset::from_manifest(dir.join("labels.csv"))
                .unwrap()
                .with_cache_dir(Some(dir.join("cache")));
            rows.push(run(sc.name, dataset, sc.sampler, sc.batch, workers, device));
        }
    }
    println!();
    println!(
        "| data set | videos | sampler | plain decode fps | loader delivered fps | loader decoded fps | delivered / decoded | ceiling fps | loader / ceiling | pool hit rate |"
    );
    println!("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in rows {
        let share = r.fps / r.decoded_fps.max(1e-9);
        let ceiling = r.plain_fps * share;
        println!(
            "| {} | {} | `{}` | {:.1} | {:.1} | {:.1} | {:.3} | {:.1} | {:.2} | {:.2} |",
            r.name,
            r.videos,
            r.sampler,
            r.plain_fps,
            r.fps,
            r.decoded_fps,
            share,
            ceiling,
            r.fps / ceiling.max(1e-9),
            r.hit_rate
        );
    }
}
