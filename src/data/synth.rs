//! Synthetic labelled videos made with libavcodec (no ffmpeg CLI needed): a square moving over a textured
//! background, the direction of motion being the class. Used for the demo dataset, examples and benchmarks.

use std::path::{Path, PathBuf};

use ff::format::Pixel;
use ffmpeg_next as ff;

use crate::error::{Error, Result};
use crate::init_ffmpeg;

/// Names of the classes: the direction the square moves in.
pub const CLASSES: [&str; 4] = ["right", "left", "down", "up"];

/// What to generate.
#[derive(Clone, Debug)]
pub struct SynthSpec {
    /// Frame width (even).
    pub width: u32,
    /// Frame height (even).
    pub height: u32,
    /// Number of frames.
    pub frames: u32,
    /// Frames per second.
    pub fps: u32,
    /// Keyframe interval.
    pub gop: u32,
    /// B-frames between references.
    pub b_frames: u32,
}

impl Default for SynthSpec {
    fn default() -> Self {
        SynthSpec {
            width: 128,
            height: 128,
            frames: 48,
            fps: 24,
            gop: 24,
            b_frames: 2,
        }
    }
}

fn ff_err(call: &'static str) -> impl Fn(ff::Error) -> Error {
    move |e| Error::ffmpeg(call, e)
}

/// Writes one video of class `class` (an index into [`CLASSES`]) to `path`; `seed` varies position, colour
/// and background. The container follows the file extension; H.264 (libx264) when FFmpeg has it, else MPEG-4.
pub fn write_moving_square(path: &Path, spec: &SynthSpec, class: usize, seed: u64) -> Result<()> {
    init_ffmpeg();
    if spec.width % 2 != 0
        || spec.height % 2 != 0
        || spec.width < 16
        || spec.height < 16
        || spec.frames == 0
    {
        return Err(Error::InvalidArgument(format!(
            "synthetic video {}x{} with {} frames",
            spec.width, spec.height, spec.frames
        )));
    }
    let codec = ff::encoder::find_by_name("libx264")
        .or_else(|| ff::encoder::find(ff::codec::Id::MPEG4))
        .ok_or_else(|| {
            Error::Unsupported("this FFmpeg build has no H.264 or MPEG-4 encoder".into())
        })?;
    let mut octx = ff::format::output(&path).map_err(|e| Error::Open {
        source_name: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let global_header = octx
        .format()
        .flags()
        .contains(ff::format::Flags::GLOBAL_HEADER);
    let mut enc = ff::codec::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(ff_err("avcodec_alloc_context3"))?;
    enc.set_width(spec.width);
    enc.set_height(spec.height);
    enc.set_format(Pixel::YUV420P);
    enc.set_time_base(ff::Rational::new(1, spec.fps as i32));
    enc.set_frame_rate(Some(ff::Rational::new(spec.fps as i32, 1)));
    enc.set_gop(spec.gop);
    enc.set_max_b_frames(spec.b_frames as usize);
    if global_header {
        enc.set_flags(ff::codec::Flags::GLOBAL_HEADER);
    }
    let mut opts = ff::Dictionary::new();
    if codec.name() == "libx264" {
        opts.set("preset", "veryfast");
        opts.set("crf", "23");
        opts.set(
            "x264-params",
            &format!(
                "keyint={}:min-keyint={}:scenecut=0:log-level=none",
                spec.gop, spec.gop
            ),
        );
    } else {
        opts.set("qscale", "4");
    }
    let mut encoder = enc
        .open_as_with(codec, opts)
        .map_err(ff_err("avcodec_open2"))?;
    {
        let mut stream = octx
            .add_stream(codec)
            .map_err(ff_err("avformat_new_stream"))?;
        stream.set_parameters(&encoder);
        stream.set_time_base(ff::Rational::new(1, spec.fps as i32));
    }
    octx.write_header()
        .map_err(ff_err("avformat_write_header"))?;
    let stream_tb = octx
        .stream(0)
        .map(|s| s.time_base())
        .unwrap_or(ff::Rational::new(1, spec.fps as i32));
    let enc_tb = ff::Rational::new(1, spec.fps as i32);

    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (w, h) = (spec.width as i64, spec.height as i64);
    let side = (h.min(w) / 4).max(4);
    let (mut x, mut y) = ((next() % w as u64) as i64, (next() % h as u64) as i64);
    let speed = 1 + (next() % 3) as i64 + w.min(h) / 64;
    let (dx, dy) = match class % 4 {
        0 => (speed, 0),
        1 => (-speed, 0),
        2 => (0, speed),
        _ => (0, -speed),
    };
    let color = [
        (next() % 140 + 100) as u8,
        (next() % 200 + 28) as u8,
        (next() % 200 + 28) as u8,
    ];
    let bg = (next() % 64) as u8;

    let mut frame = ff::frame::Video::new(Pixel::YUV420P, spec.width, spec.height);
    let mut packet = ff::Packet::empty();
    let mut drain =
        |encoder: &mut ff::encoder::Video, octx: &mut ff::format::context::Output| -> Result<()> {
            while encoder.receive_packet(&mut packet).is_ok() {
                packet.set_stream(0);
                // One frame long: without a duration the MP4 muxer ends the edit list at the last frame's start,
                // which hides that frame (ffmpeg then shows one frame fewer).
                packet.set_duration(1);
                packet.rescale_ts(enc_tb, stream_tb);
                packet
                    .write_interleaved(octx)
                    .map_err(ff_err("av_interleaved_write_frame"))?;
            }
            Ok(())
        };
    for t in 0..spec.frames {
        for (plane, &value) in color.iter().enumerate() {
            let stride = frame.stride(plane);
            let (pw, ph, shift) = if plane == 0 {
                (w, h, 0)
            } else {
                (w / 2, h / 2, 1)
            };
            let data = frame.data_mut(plane);
            for py in 0..ph {
                for px in 0..pw {
                    let (fx, fy) = (px << shift, py << shift);
                    let inside = (fx - x).rem_euclid(w) < side && (fy - y).rem_euclid(h) < side;
                    data[py as usize * stride + px as usize] = if inside {
                        value
                    } else if plane == 0 {
                        // A static checker texture so that motion is the only thing that tells the classes apart.
                        bg + 40 + ((((fx / 8) + (fy / 8)) % 2) * 30) as u8
                    } else {
                        128
                    };
                }
            }
        }
        frame.set_pts(Some(i64::from(t)));
        encoder
            .send_frame(&frame)
            .map_err(ff_err("avcodec_send_frame"))?;
        drain(&mut encoder, &mut octx)?;
        x = (x + dx).rem_euclid(w);
        y = (y + dy).rem_euclid(h);
    }
    encoder.send_eof().map_err(ff_err("avcodec_send_frame"))?;
    drain(&mut encoder, &mut octx)?;
    octx.write_trailer().map_err(ff_err("av_write_trailer"))?;
    Ok(())
}

/// Writes `per_class` videos of each class into `dir` (`<class>_<n>.mp4`) and a manifest `labels.csv`
/// (`path,label`). Files that already exist are kept. Returns the video paths with their labels.
pub fn write_dataset(
    dir: &Path,
    spec: &SynthSpec,
    per_class: usize,
) -> Result<Vec<(PathBuf, usize)>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let mut out = Vec::new();
    let mut manifest = String::from("path,label\n");
    for n in 0..per_class {
        for (class, name) in CLASSES.iter().enumerate() {
            let file = format!("{name}_{n:03}.mp4");
            let path = dir.join(&file);
            if !path.exists() {
                let tmp = dir.join(format!("tmp_{file}"));
                write_moving_square(&tmp, spec, class, (n * CLASSES.len() + class) as u64 + 1)?;
                std::fs::rename(&tmp, &path)
                    .map_err(|e| Error::io(format!("renaming {}", tmp.display()), e))?;
            }
            manifest.push_str(&format!("{file},{name}\n"));
            out.push((path, class));
        }
    }
    let m = dir.join("labels.csv");
    std::fs::write(&m, manifest).map_err(|e| Error::io(format!("writing {}", m.display()), e))?;
    Ok(out)
}
