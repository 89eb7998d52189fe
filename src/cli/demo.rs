//! `vidloader demo`: the default job. Makes a small labelled dataset (if it is not there yet), decodes it into
//! batches through one pooled decoder and prints the batch shape and the decode rate.

use std::path::Path;
use std::time::Instant;

use vidloader::synth::{write_dataset, SynthSpec, CLASSES};
use vidloader::{Backend, ColorType, DecoderOptions, DecoderPool, Result, SimpleDecoder};

/// `k` indices spread evenly over `n` frames, first and last included (numpy `linspace(0, n-1, k)` truncated).
fn linspace(n: usize, k: usize) -> Vec<i64> {
    if k <= 1 || n <= 1 {
        return vec![0; k.min(1)];
    }
    (0..k).map(|i| ((i * (n - 1)) / (k - 1)) as i64).collect()
}

pub fn run(dir: &Path, per_class: usize, frames_per_video: usize, backend: Backend) -> Result<()> {
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
    let pool = DecoderPool::new(4);
    let opts = DecoderOptions::default()
        .backend(backend)
        .color(ColorType::Rgbp);
    let start = Instant::now();
    let mut decoder: Option<SimpleDecoder> = None;
    let mut frames = 0usize;
    for (i, (path, label)) in videos.iter().enumerate() {
        let d = match decoder.as_mut() {
            Some(d) => {
                d.reconfigure(path)?;
                d
            }
            None => decoder.insert(SimpleDecoder::open_with_pool(
                path,
                opts.clone(),
                pool.clone(),
            )?),
        };
        let batch = d.get_batch_frames_by_index(&linspace(d.len(), frames_per_video))?;
        frames += batch.len();
        if i == 0 {
            println!(
                "batch: {:?} {:?} on {:?} (backend {:?}), label {} ({}), frames {:?}",
                batch.frames.size(),
                batch.frames.kind(),
                batch.frames.device(),
                d.backend(),
                label,
                CLASSES[*label],
                batch.indices
            );
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let stats = pool.stats();
    println!(
        "decoded {frames} frames from {} videos in {secs:.3} s: {:.0} frames/s, decoder pool hit rate {:.2}",
        videos.len(),
        frames as f64 / secs.max(1e-9),
        stats.hit_rate()
    );
    Ok(())
}
