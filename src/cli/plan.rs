//! `vidloader plan DATASET --sampler ... --seed S --epoch E --rank R --world W [--max-batches N] [--json]`: the
//! samples the loader would deliver (file, label, frame indices, in batch order), computed from the videos' indices
//! (or the metadata a manifest gives) without decoding.

use std::io::Write;
use std::time::Instant;

use serde::Serialize;
use vidloader::{CacheStats, Error, Plan, Result};

use super::loader_args::LoaderArgs;

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub loader: LoaderArgs,
    /// The epoch to plan.
    #[arg(long, default_value_t = 0)]
    pub epoch: u64,
    /// Plan only the first N batches.
    #[arg(long)]
    pub max_batches: Option<usize>,
    /// Print one JSON object (epoch, rank, world_size, seed, batch_size, batches of samples, skipped,
    /// metadata_scan_s, cache, plan_s).
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    plan: &'a Plan,
    /// Seconds spent reading video metadata (disk cache and packet scans), summed over the threads that read it.
    metadata_scan_s: f64,
    /// The metadata cache's counters: disk hits, scans, rejected entries.
    cache: CacheStats,
    /// Seconds from the start of the command (reading the data set included) to the finished plan.
    plan_s: f64,
}

pub fn run(args: &PlanArgs) -> Result<()> {
    let started = Instant::now();
    // Decoding settings do not change the plan; one worker is enough since nothing is decoded.
    let loader = args.loader.builder()?.workers(1).build()?;
    let plan = loader.plan_batches(args.epoch, args.max_batches.unwrap_or(usize::MAX))?;
    if args.json {
        let report = Report {
            plan: &plan,
            metadata_scan_s: loader.dataset().metadata_seconds(),
            cache: loader.dataset().cache_stats(),
            plan_s: started.elapsed().as_secs_f64(),
        };
        // Written as it is serialised: the plan of a million videos is hundreds of megabytes of JSON.
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        serde_json::to_writer(&mut out, &report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
            .and_then(|()| out.flush())
            .map_err(|e| Error::io("writing the plan", e))?;
        return Ok(());
    }
    println!(
        "epoch {}, rank {} of {}, seed {}: {} batches of up to {}",
        plan.epoch,
        plan.rank,
        plan.world_size,
        plan.seed,
        plan.batches.len(),
        plan.batch_size
    );
    for (b, batch) in plan.batches.iter().enumerate() {
        for (slot, s) in batch.iter().enumerate() {
            let key = s.key.as_deref().map_or(String::new(), |k| format!(" {k}"));
            println!(
                "{b:>4} {slot:>3}  {}{key}  label {}  frames {:?}",
                s.path.display(),
                s.label,
                s.frames
            );
        }
    }
    for s in &plan.skipped {
        println!("skipped  {}: {}", s.path.display(), s.reason);
    }
    Ok(())
}
