//! Feed a model from a ThreadedDecoder: `cargo run --release --example inference [-- VIDEO] [--gpu N]`.
//!
//! Decodes a video sequentially in the background (batches of 16 frames, 32 frames buffered), takes every 2nd
//! frame of each batch as one clip, resizes and normalises it with torch, and classifies the direction of motion
//! with the model `examples/train.rs` trained (from `target/train-model.ot`; without it the weights are random and
//! the predictions meaningless). Without a VIDEO a square moving down is generated first.

#[path = "shared/model.rs"]
mod model;

use std::time::Instant;

use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};
use vidloader::synth::{write_moving_square, SynthSpec, CLASSES};
use vidloader::{Backend, ColorType, DecoderOptions, ThreadedDecoder, ThreadedOptions};

fn main() -> vidloader::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let gpu = args
        .iter()
        .position(|a| a == "--gpu")
        .and_then(|i| args.get(i + 1))
        .and_then(|g| g.parse::<usize>().ok());
    let video = match args.first().filter(|a| !a.starts_with("--")) {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            let p = std::env::temp_dir().join("vidloader-inference-down.mp4");
            let spec = SynthSpec {
                frames: 96,
                ..SynthSpec::default()
            };
            write_moving_square(&p, &spec, 2, 12345)?;
            p
        }
    };
    let device = gpu.map_or(Device::Cpu, Device::Cuda);
    let mut vs = nn::VarStore::new(device);
    let net = model::classifier(&vs.root(), CLASSES.len() as i64);
    match vs.load("target/train-model.ot") {
        Ok(()) => println!("model: target/train-model.ot"),
        Err(_) => println!(
            "model: random weights (run the train example first for meaningful predictions)"
        ),
    }
    let clip = model::FRAMES * model::STRIDE;
    let opts = ThreadedOptions {
        buffer_size: 2 * clip,
        batch_size: clip,
        decoder: DecoderOptions::default()
            .color(ColorType::Rgbp)
            .backend(gpu.map_or(Backend::Cpu, Backend::Nvdec)),
    };
    let mut decoder = ThreadedDecoder::open(&video, opts, 0)?;
    let mean = Tensor::from_slice(&model::MEAN)
        .view([1, 3, 1, 1])
        .to_device(device);
    let std = Tensor::from_slice(&model::STD)
        .view([1, 3, 1, 1])
        .to_device(device);
    let size = i64::from(model::SIZE);
    let start = Instant::now();
    let mut frames = 0usize;
    let mut votes = vec![0usize; CLASSES.len()];
    loop {
        let batch = decoder.get_batch_frames(clip)?;
        if batch.len() < clip {
            break; // the end of the video (a partial clip is not classified)
        }
        frames += batch.len();
        let x = batch
            .frames
            .to_device(device)
            .slice(0, 0, clip as i64, model::STRIDE as i64)
            .to_kind(Kind::Float)
            .upsample_bilinear2d([size, size], false, None, None);
        let x = ((x / 255.0 - &mean) / &std).unsqueeze(0); // [1, T, 3, H, W]
        let probs = tch::no_grad(|| net.forward_t(&x, false)).softmax(-1, Kind::Float);
        let class = probs.argmax(-1, false).int64_value(&[0]) as usize;
        votes[class] += 1;
        println!(
            "frames {:>3}..{:<3} -> {:<5} (p = {:.2})",
            batch.indices[0],
            batch.indices[clip - 1],
            CLASSES[class],
            probs.double_value(&[0, class as i64])
        );
    }
    let best = (0..votes.len()).max_by_key(|&c| votes[c]).unwrap_or(0);
    println!(
        "{}: {frames} frames in {:.3} s; most clips say '{}'",
        video.display(),
        start.elapsed().as_secs_f64(),
        CLASSES[best]
    );
    Ok(())
}
