//! `vidloader extract PATH --indices 17,0,17 --color native|rgb --out DIR`.

use std::io::Write;
use std::path::Path;

use vidloader::{Backend, ColorType, DecoderOptions, Error, Result, SimpleDecoder};

pub fn run(path: &Path, indices: &[i64], color: &str, out: &Path, backend: Backend) -> Result<()> {
    let color = match color.parse::<ColorType>()? {
        ColorType::Rgbp => ColorType::Rgb,
        c => c,
    };
    let mut dec = SimpleDecoder::open(
        path,
        DecoderOptions::default().backend(backend).color(color),
    )?;
    let batch = dec.get_batch_frames_by_index(indices)?;
    std::fs::create_dir_all(out)
        .map_err(|e| Error::io(format!("creating {}", out.display()), e))?;
    let info = dec.stream_metadata();
    for (slot, &index) in batch.indices.iter().enumerate() {
        let frame = batch
            .frame(slot)?
            .f_to_device(tch::Device::Cpu)?
            .contiguous();
        let mut bytes = vec![0u8; frame.numel()];
        frame.f_copy_data_u8(&mut bytes, frame.numel())?;
        let (file, header) = match color {
            ColorType::Native => (out.join(format!("{index}.yuv")), Vec::new()),
            _ => (
                out.join(format!("{index}.ppm")),
                format!("P6\n{} {}\n255\n", info.width, info.height).into_bytes(),
            ),
        };
        let mut f = std::fs::File::create(&file)
            .map_err(|e| Error::io(format!("creating {}", file.display()), e))?;
        f.write_all(&header)
            .and_then(|_| f.write_all(&bytes))
            .map_err(|e| Error::io(format!("writing {}", file.display()), e))?;
    }
    Ok(())
}
