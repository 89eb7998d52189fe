//! Train a small video classifier on the moving-squares data set, fed by the DataLoader:
//! `cargo run --release --example train [-- --epochs 10 --gpu 0]`.
//!
//! The data set (256 videos, the direction a square moves in being the class) is made in `target/train-dataset`
//! on first use. Each sample is one clip of 8 frames, every 2nd frame, at a random position, resized to 32x32 and
//! normalised in the loader. The loss printed per epoch falls as the model learns the direction of motion; the
//! weights are saved to `target/train-model.ot` for `examples/inference.rs`.

#[path = "shared/model.rs"]
mod model;

use std::path::Path;
use std::time::Instant;

use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind};
use vidloader::synth::{write_dataset, SynthSpec, CLASSES};
use vidloader::{ClipSampler, DataLoader, VideoDataset};

fn arg<T: std::str::FromStr>(name: &str) -> Option<T> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn main() -> vidloader::Result<()> {
    let epochs: u64 = arg("--epochs").unwrap_or(10);
    let device = match arg::<usize>("--gpu") {
        Some(g) => Device::Cuda(g),
        None => Device::Cpu,
    };
    let dir = Path::new("target/train-dataset");
    let t0 = Instant::now();
    write_dataset(dir, &SynthSpec::default(), 64)?;
    let dataset = VideoDataset::from_manifest(dir.join("labels.csv"))?.with_classes(&CLASSES)?;
    println!(
        "{} videos, classes {:?} ({:.1} s to make)",
        dataset.len(),
        CLASSES,
        t0.elapsed().as_secs_f64()
    );
    let loader = DataLoader::builder(dataset)
        .sampler(ClipSampler::random(1, model::FRAMES).stride(model::STRIDE))
        .batch_size(16)
        .shuffle(true)
        .seed(0)
        .drop_last(true)
        .resize(model::SIZE, model::SIZE)
        .normalize(model::MEAN, model::STD)
        .dtype(Kind::Float)
        .device(device)
        .build()?;
    println!(
        "batches {:?} on {:?} (backend {:?}), {} per epoch",
        loader.batch_shape(),
        loader.device(),
        loader.backend(),
        loader.num_batches()
    );

    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let net = model::classifier(&vs.root(), CLASSES.len() as i64);
    let mut opt = nn::Adam::default().build(&vs, 2e-3)?;
    for epoch in 0..epochs {
        let t = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0i64, 0i64);
        for batch in loader.epoch(epoch) {
            let batch = batch?;
            let logits = net.forward_t(&batch.frames, true);
            let loss = logits.cross_entropy_for_logits(&batch.labels);
            opt.backward_step(&loss);
            loss_sum += loss.double_value(&[]) * batch.len() as f64;
            correct += logits
                .argmax(-1, false)
                .eq_tensor(&batch.labels)
                .sum(Kind::Int64)
                .int64_value(&[]);
            seen += batch.len() as i64;
        }
        println!(
            "epoch {epoch}: loss {:.3}, accuracy {:.2} ({:.1} s)",
            loss_sum / seen.max(1) as f64,
            correct as f64 / seen.max(1) as f64,
            t.elapsed().as_secs_f64()
        );
    }
    let s = loader.summary();
    println!(
        "data: {} frames in {:.1} s of epochs ({:.0} frames/s with training in the loop), decoder pool hit rate {:.2}",
        s.frames,
        s.seconds,
        s.fps(),
        s.pool.hit_rate()
    );
    vs.save("target/train-model.ot")?;
    println!("weights saved to target/train-model.ot");
    Ok(())
}
