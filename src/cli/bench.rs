//! `vidloader bench DATASET --sampler ... --batch ... [--gpu N] [--max-batches N]`: runs the DataLoader over a data
//! set and prints frames/s (delivered and decoded), batches/s, the decoder pool's hit rate, the seconds to the
//! first batch and the seconds spent reading video metadata. `--min-seconds` repeats short epochs until enough
//! time is measured, and the JSON report gives each timed epoch's rate and their median.

use std::time::Instant;

use serde::Serialize;
use tch::Device;
use vidloader::LoaderSummary;
use vidloader::Result;

use super::loader_args::{dtype, normalize, LoaderArgs};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub loader: LoaderArgs,
    /// Epochs to run (and time).
    #[arg(long, default_value_t = 1)]
    pub epochs: u64,
    /// After `--epochs`, run more epochs until the timed ones add up to this many seconds (at most
    /// `--max-epochs` in all), so that a short epoch still gives a steady median (`median_epoch_fps`).
    #[arg(long, default_value_t = 0.0)]
    pub min_seconds: f64,
    /// The most timed epochs `--min-seconds` may run.
    #[arg(long, default_value_t = 25)]
    pub max_epochs: u64,
    /// Epochs run first and left out of the numbers (metadata scans and decoder creation happen in them).
    #[arg(long, default_value_t = 0)]
    pub warmup_epochs: u64,
    /// Stop every epoch after this many batches.
    #[arg(long)]
    pub max_batches: Option<usize>,
    /// Decode workers (default: one per core, at most 8).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Batches decoded ahead.
    #[arg(long, default_value_t = 2)]
    pub prefetch: usize,
    /// Element type: u8, f16, bf16 or f32.
    #[arg(long, default_value = "u8")]
    pub dtype: String,
    /// Normalise: imagenet, or MEAN,MEAN,MEAN/STD,STD,STD (needs a float dtype).
    #[arg(long)]
    pub normalize: Option<String>,
    /// Decode with NVDEC on this GPU and deliver batches there.
    #[arg(long)]
    pub gpu: Option<usize>,
    /// With --gpu: CPU decode workers beside the NVDEC ones (hybrid decoding; default: cores - 2; 0 = NVDEC only).
    #[arg(long)]
    pub cpu_workers: Option<usize>,
    /// Print one JSON object instead of text (and no progress bar).
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    dataset: String,
    videos: usize,
    /// Tar shards the data set was read from (0: not read from shards).
    shards: usize,
    sampler: &'a str,
    batch_shape: Vec<i64>,
    dtype: String,
    device: String,
    backend: String,
    workers: usize,
    cpu_workers: usize,
    /// Share of the samples the CPU workers decoded.
    cpu_share: f64,
    /// Frames delivered per second over all timed epochs.
    fps: f64,
    /// Frames per second of each timed epoch, in the order they ran.
    epoch_fps: Vec<f64>,
    /// The median of `epoch_fps` (the mean of the middle two for an even count).
    median_epoch_fps: f64,
    decoded_fps: f64,
    batches_per_s: f64,
    pool_hit_rate: f64,
    /// Seconds from the start of the command (reading the data set included) to the first batch.
    first_batch_s: f64,
    /// Seconds spent reading video metadata (disk cache and packet scans; none for manifest rows that give it),
    /// summed over the threads that read it.
    metadata_scan_s: f64,
    #[serde(flatten)]
    summary: &'a LoaderSummary,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let started = Instant::now();
    let kind = dtype(&args.dtype)?;
    let mut b = args
        .loader
        .builder()?
        .epochs(args.warmup_epochs + args.epochs)
        .prefetch(args.prefetch)
        .dtype(kind)
        .progress(!args.json);
    if let Some(w) = args.workers {
        b = b.workers(w);
    }
    if let Some(n) = &args.normalize {
        let (mean, std) = normalize(n)?;
        b = b.normalize(mean, std);
    }
    if let Some(g) = args.gpu {
        b = b.device(Device::Cuda(g));
    }
    if let Some(n) = args.cpu_workers {
        b = b.cpu_workers(n);
    }
    let loader = b.build()?;
    if !args.json {
        println!(
            "{} videos from {}, sampler {}, batches {:?} {:?} on {:?} (backend {:?}), {} workers, {} CPU workers",
            loader.dataset().len(),
            args.loader.dataset.display(),
            args.loader.sampler,
            loader.batch_shape(),
            kind,
            loader.device(),
            loader.backend(),
            loader.workers(),
            loader.cpu_workers()
        );
    }
    let sync = || {
        if let Some(g) = args.gpu {
            if tch::Cuda::is_available() {
                tch::Cuda::synchronize(g as i64);
            }
        }
    };
    let mut first_batch_s = None;
    // Summaries at the start of the first timed epoch and at the end of each, for the per-epoch rates and the
    // totals since the warm-up.
    let mut marks: Vec<LoaderSummary> = Vec::new();
    let timed_s = |marks: &[LoaderSummary]| match (marks.first(), marks.last()) {
        (Some(a), Some(b)) => b.since(a).seconds,
        _ => 0.0,
    };
    let mut e: u64 = 0;
    loop {
        let timed = e.saturating_sub(args.warmup_epochs);
        let more = e < args.warmup_epochs + args.epochs
            || (timed < args.max_epochs.max(args.epochs) && timed_s(&marks) < args.min_seconds);
        if !more {
            break;
        }
        if e == args.warmup_epochs {
            sync();
            marks.push(loader.summary());
        }
        // Each batch is handed back once done with, as a training loop can (`DataLoader::recycle`).
        for batch in loader.epoch(e).take(args.max_batches.unwrap_or(usize::MAX)) {
            let batch = batch?;
            first_batch_s.get_or_insert_with(|| started.elapsed().as_secs_f64());
            loader.recycle(batch);
        }
        if e >= args.warmup_epochs {
            sync();
            marks.push(loader.summary());
        }
        e += 1;
    }
    let epoch_fps: Vec<f64> = marks.windows(2).map(|w| w[1].since(&w[0]).fps()).collect();
    let first_batch_s = first_batch_s.unwrap_or(0.0);
    let metadata_scan_s = loader.dataset().metadata_seconds();
    sync();
    // Since the first timed epoch began (with no warm-up, that summary is all zeros: the whole run).
    let s = match marks.first() {
        Some(start) => loader.summary().since(start),
        None => loader.summary(),
    };
    if args.json {
        let report = Report {
            dataset: args.loader.dataset.display().to_string(),
            videos: loader.dataset().len(),
            shards: loader.dataset().shard_count(),
            sampler: &args.loader.sampler,
            batch_shape: loader.batch_shape(),
            dtype: format!("{kind:?}"),
            device: format!("{:?}", loader.device()),
            backend: format!("{:?}", loader.backend()),
            workers: loader.workers(),
            cpu_workers: loader.cpu_workers(),
            cpu_share: s.cpu_samples as f64 / s.samples.max(1) as f64,
            fps: s.fps(),
            median_epoch_fps: median(&epoch_fps),
            epoch_fps,
            decoded_fps: s.decoded_fps(),
            batches_per_s: s.batches_per_s(),
            pool_hit_rate: s.pool.hit_rate(),
            first_batch_s,
            metadata_scan_s,
            summary: &s,
        };
        println!("{}", serde_json::to_string(&report).expect("serialisable"));
    } else {
        println!("{s}");
        if epoch_fps.len() > 1 {
            let lo = epoch_fps.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = epoch_fps.iter().copied().fold(0.0, f64::max);
            println!(
                "{} timed epochs: median {:.0} frames/s (slowest {lo:.0}, fastest {hi:.0})",
                epoch_fps.len(),
                median(&epoch_fps)
            );
        }
        println!(
            "first batch after {first_batch_s:.3} s, {metadata_scan_s:.3} s reading video metadata"
        );
    }
    Ok(())
}

/// The median of `v` (the mean of the middle two for an even count; 0 for none).
fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}
