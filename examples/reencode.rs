//! Decode -> process -> encode with no glue: `cargo run --release --example reencode [VIDEO]`.
//! Frames are decoded as RGB batches (NVDEC where present), mirrored left-right with torch (a stand-in for a
//! model), and encoded from the same tensors into an MP4 with an SEI message on the first picture; the result is
//! read back. Without an argument a synthetic clip is written to the system temp directory first.

use vidloader::synth::{write_moving_square, SynthSpec};
use vidloader::{
    read_sei, ColorType, DecoderOptions, EncoderOptions, InputFormat, PicFlags, Sei, SimpleDecoder,
    VideoWriter,
};

fn main() -> vidloader::Result<()> {
    let path = match std::env::args().nth(1) {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            let p = std::env::temp_dir().join("vidloader-example.mp4");
            write_moving_square(&p, &SynthSpec::default(), 0, 1)?;
            p
        }
    };
    let mut dec = SimpleDecoder::open(&path, DecoderOptions::default().color(ColorType::Rgb))?;
    let (w, h) = (dec.stream_metadata().width, dec.stream_metadata().height);
    let out = std::env::temp_dir().join("vidloader-example-mirrored.mp4");
    let opts = EncoderOptions {
        gop: Some(16),
        ..Default::default()
    };
    let mut writer = VideoWriter::create(&out, w, h, InputFormat::Rgb, opts)?;
    println!("encoder: {}", writer.encoder().backend_note());
    let note = Sei::unregistered(*b"vidloader-exampl", b"mirrored".to_vec())?;
    let mut first = true;
    loop {
        let batch = dec.get_batch_frames(16)?; // [N, H, W, 3] u8
        if batch.is_empty() {
            break;
        }
        let mirrored = batch.frames.flip([2]);
        for i in 0..batch.len() as i64 {
            let sei: &[Sei] = if first {
                std::slice::from_ref(&note)
            } else {
                &[]
            };
            writer.write_with(&mirrored.get(i), PicFlags::default(), sei)?;
            first = false;
        }
    }
    let stats = writer.finish()?;
    let back = SimpleDecoder::open(&out, DecoderOptions::default())?;
    let sei = read_sei(out.as_path())?;
    println!(
        "{}: {} frames encoded, {} bytes, {} frames read back, SEI on frames {:?}",
        out.display(),
        stats.frames,
        stats.bytes,
        back.len(),
        sei.iter().map(|f| f.index).collect::<Vec<_>>()
    );
    Ok(())
}
