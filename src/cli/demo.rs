//! `vidloader demo`: the default job. Makes a small labelled dataset (if it is not there yet) and runs the
//! DataLoader over it with a progress bar, printing the batch shape, labels, frames/s and decoder pool hit rate.

use std::path::Path;
use std::time::Instant;

use tch::Device;
use vidloader::synth::{write_dataset, SynthSpec, CLASSES};
use vidloader::{DataLoader, Result, UniformSampler, VideoDataset};

pub fn run(
    dir: &Path,
    per_class: usize,
    frames_per_video: usize,
    batch_size: usize,
    gpu: Option<usize>,
) -> Result<()> {
    let spec = SynthSpec::default();
    let t0 = Instant::now();
    let videos = write_dataset(dir, &spec, per_class)?;
    println!(
        "dataset: {} videos of {}x{}, {} frames, {} classes ({}) in {} ({:.1} s)",
        videos.len(),
        spec.width,
        spec.height,
        spec.frames,
        CLASSES.len(),
        CLASSES.join(", "),
        dir.display(),
        t0.elapsed().as_secs_f64()
    );
    let dataset = VideoDataset::from_manifest(dir.join("labels.csv"))?.with_classes(&CLASSES)?;
    let loader = DataLoader::builder(dataset)
        .sampler(UniformSampler::new(frames_per_video))
        .batch_size(batch_size)
        .shuffle(true)
        .device(gpu.map_or(Device::Cpu, Device::Cuda))
        .progress(true)
        .build()?;
    println!(
        "loader: uniform:{frames_per_video}, shuffled batches of {batch_size}, {} workers, backend {:?}",
        loader.workers(),
        loader.backend()
    );
    for batch in loader.epoch(0) {
        let batch = batch?;
        if batch.index == 0 {
            let labels: Vec<String> = batch
                .samples
                .iter()
                .map(|s| CLASSES[s.label as usize].to_string())
                .collect();
            println!(
                "batch: {:?} {:?} on {:?}, labels [{}], frames of the first sample {:?}",
                batch.frames.size(),
                batch.frames.kind(),
                batch.frames.device(),
                labels.join(", "),
                batch.samples[0].frames
            );
        }
    }
    let s = loader.summary();
    println!(
        "{} batches, {} frames in {:.3} s: {:.0} frames/s, decoder pool hit rate {:.2}",
        s.batches,
        s.frames,
        s.seconds,
        s.fps(),
        s.pool.hit_rate()
    );
    Ok(())
}
