//! WebDataset tar shards through the DataLoader: `cargo run --release --example shards [PATTERN]`.
//!
//! Without an argument, 24 synthetic labelled videos are written and packed into three shards in the system temp
//! directory (`shard-000000.tar` ... with `NNNNNN.mp4`, `NNNNNN.cls` and `NNNNNN.json` per sample, as WebDataset
//! writes them); with one, the shards it names are read (`'data/shard-{000000..000099}.tar'`). The loader reads
//! every video in place from its shard; rank 0 of 2 gets the shards 0, 2, ...

use tch::Device;
use vidloader::synth::{write_moving_square, SynthSpec, CLASSES};
use vidloader::{DataLoader, UniformSampler, VideoDataset};

/// Writes `shards` tar shards of `per_shard` synthetic samples into `dir`; returns their brace pattern.
fn write_shards(
    dir: &std::path::Path,
    shards: usize,
    per_shard: usize,
) -> vidloader::Result<String> {
    let io = |e: std::io::Error| vidloader::Error::io("writing a shard", e);
    std::fs::create_dir_all(dir).map_err(io)?;
    let spec = SynthSpec {
        width: 96,
        height: 96,
        frames: 32,
        ..SynthSpec::default()
    };
    let video = dir.join("tmp.mp4");
    for s in 0..shards {
        let file = std::fs::File::create(dir.join(format!("shard-{s:06}.tar"))).map_err(io)?;
        let mut tar = tar::Builder::new(file);
        for k in s * per_shard..(s + 1) * per_shard {
            let class = k % CLASSES.len();
            write_moving_square(&video, &spec, class, k as u64)?;
            let json = format!("{{\"class\": \"{}\", \"seed\": {k}}}", CLASSES[class]);
            let members = [
                ("mp4", std::fs::read(&video).map_err(io)?),
                ("cls", class.to_string().into_bytes()),
                ("json", json.into_bytes()),
            ];
            for (ext, data) in members {
                let mut header = tar::Header::new_gnu();
                header.set_size(data.len() as u64);
                header.set_mode(0o644);
                tar.append_data(&mut header, format!("{k:06}.{ext}"), data.as_slice())
                    .map_err(io)?;
            }
        }
        tar.into_inner().map_err(io)?;
    }
    std::fs::remove_file(&video).map_err(io)?;
    Ok(format!(
        "{}/shard-{{000000..{:06}}}.tar",
        dir.display(),
        shards - 1
    ))
}

fn main() -> vidloader::Result<()> {
    let pattern = match std::env::args().nth(1) {
        Some(p) => p,
        None => write_shards(&std::env::temp_dir().join("vidloader-shards"), 3, 8)?,
    };
    let dataset = VideoDataset::from_shards(&pattern)?;
    println!(
        "{} samples in {} shards ({pattern})",
        dataset.len(),
        dataset.shard_count()
    );
    let loader = DataLoader::builder(dataset)
        .sampler(UniformSampler::new(8))
        .batch_size(4)
        .resize(64, 64)
        .shuffle(true)
        .shuffle_buffer(6)
        .seed(7)
        .shard(0, 2)
        .device(Device::Cpu)
        .build()?;
    for batch in loader.epoch(0) {
        let batch = batch?;
        let keys: Vec<String> = batch
            .samples
            .iter()
            .map(|s| {
                let shard = s.path.file_name().unwrap_or_default().to_string_lossy();
                format!("{shard}:{}", s.key.as_deref().unwrap_or("?"))
            })
            .collect();
        println!(
            "batch {:?}, labels {:?}, samples {keys:?}",
            batch.frames.size(),
            Vec::<i64>::try_from(&batch.labels).unwrap_or_default()
        );
    }
    println!("{}", loader.summary());
    Ok(())
}
