//! `vidloader plan DATASET --sampler ... --seed S --epoch E --rank R --world W [--json]`: the samples the loader
//! would deliver (file, label, frame indices, in batch order), computed from the videos' indices without decoding.

use vidloader::Result;

use super::loader_args::LoaderArgs;

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub loader: LoaderArgs,
    /// The epoch to plan.
    #[arg(long, default_value_t = 0)]
    pub epoch: u64,
    /// Print one JSON object (epoch, rank, world_size, seed, batch_size, batches of samples, skipped).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &PlanArgs) -> Result<()> {
    // Decoding settings do not change the plan; one worker is enough since nothing is decoded.
    let loader = args.loader.builder()?.workers(1).build()?;
    let plan = loader.plan(args.epoch)?;
    if args.json {
        println!("{}", serde_json::to_string(&plan).expect("serialisable"));
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
            println!(
                "{b:>4} {slot:>3}  {}  label {}  frames {:?}",
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
