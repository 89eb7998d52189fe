//! Decode a whole video into one reused batch tensor, the way a training loop should read a file front to back:
//! `cargo run --release --example decode_into [VIDEO] [native|rgb|rgbp] [THREADS]`.
//!
//! `SimpleDecoder::decode_frames_into` writes each batch of 16 frames into the same tensor, so no batch memory is
//! allocated (and faulted in) after the first. Without a video a synthetic clip is written to the system temp
//! directory first. `benches/cpu_time.sh` runs this program beside the ffmpeg CLI to compare CPU time per frame.

use tch::{Device, Kind, Tensor};
use vidloader::synth::{write_moving_square, SynthSpec};
use vidloader::{Backend, ColorType, DecoderOptions, FrameTransform, SimpleDecoder};

const BATCH: usize = 16;

fn main() -> vidloader::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = match args.next() {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            let p = std::env::temp_dir().join("vidloader-example.mp4");
            write_moving_square(&p, &SynthSpec::default(), 0, 1)?;
            p
        }
    };
    let color: ColorType = args.next().as_deref().unwrap_or("rgbp").parse()?;
    let threads: usize = match args.next() {
        Some(t) => t
            .parse()
            .map_err(|_| vidloader::Error::InvalidArgument(format!("threads '{t}'")))?,
        None => 0,
    };
    let started = std::time::Instant::now();
    let opts = DecoderOptions::default()
        .backend(Backend::Cpu)
        .threads(threads)
        .color(color);
    let mut dec = SimpleDecoder::open(&path, opts)?;
    let n = dec.len();
    let dims = dec.batch_dims(BATCH);
    let out = Tensor::zeros(dims.as_slice(), (Kind::Uint8, Device::Cpu));
    let indices: Vec<usize> = (0..n).collect();
    for chunk in indices.chunks(BATCH) {
        let mut view = out.narrow(0, 0, chunk.len() as i64);
        dec.decode_frames_into(chunk, &mut view, &FrameTransform::identity())?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}: {n} frames as {color:?} in {secs:.3} s ({:.1} frames/s)",
        path.display(),
        n as f64 / secs
    );
    Ok(())
}
