//! Decode a video into batches of tensors: `cargo run --release --example decode_batches [VIDEO]`.
//! Without an argument a synthetic clip is written to the system temp directory first.

use vidloader::synth::{write_moving_square, SynthSpec};
use vidloader::{ColorType, DecoderOptions, SimpleDecoder, ThreadedDecoder, ThreadedOptions};

fn main() -> vidloader::Result<()> {
    let path = match std::env::args().nth(1) {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            let p = std::env::temp_dir().join("vidloader-example.mp4");
            write_moving_square(&p, &SynthSpec::default(), 0, 1)?;
            p
        }
    };
    let mut dec = SimpleDecoder::open(&path, DecoderOptions::default().color(ColorType::Rgbp))?;
    let info = dec.stream_metadata();
    println!(
        "{}: {} {}x{}, {} frames",
        path.display(),
        info.codec,
        info.width,
        info.height,
        dec.len()
    );
    let last = dec.len() as i64 - 1;
    let batch = dec.get_batch_frames_by_index(&[last, 0, last / 2, 0])?;
    println!(
        "random access {:?} -> {:?}",
        batch.indices,
        batch.frames.size()
    );

    let mut prefetch = ThreadedDecoder::open(&path, ThreadedOptions::default(), 0)?;
    let mut total = 0;
    loop {
        let b = prefetch.get_batch_frames(8)?;
        if b.is_empty() {
            break;
        }
        total += b.len();
    }
    println!("threaded: {total} frames in batches of 8");
    Ok(())
}
