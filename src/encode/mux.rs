//! Writing encoded video into a file: a container through libavformat (MP4 / MOV with `faststart`, Matroska,
//! IVF, anything FFmpeg guesses from the extension) with optional streams copied from an input (audio), or a raw
//! elementary stream (`.h264`, `.hevc`, `.obu` ...). [`VideoWriter`] is an [`Encoder`] and a file in one.

use std::io::Write;
use std::path::{Path, PathBuf};

use ffmpeg_next as ff;
use tch::Tensor;

use super::encoder::{EncodedPacket, Encoder};
use super::input::{ColorTags, InputLayout};
use super::options::{EncoderOptions, InputFormat, PicFlags};
use super::sei::Sei;
use crate::{Error, Result};

/// Extensions written as a raw elementary stream (no container).
const RAW_EXTENSIONS: [&str; 7] = ["h264", "264", "avc", "hevc", "h265", "265", "obu"];

/// Whether `path` names a raw elementary stream rather than a container.
pub(crate) fn is_raw_stream(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| RAW_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn open_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Open {
        source_name: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Where packets go.
enum Sink {
    Raw(std::io::BufWriter<std::fs::File>),
    Container {
        octx: ff::format::context::Output,
        video: usize,
        /// Encoder time base.
        enc_tb: ff::Rational,
        started: bool,
        faststart: bool,
        /// Copied streams: (output index, input time base).
        copies: Vec<(usize, ff::Rational)>,
        last_dts: Option<i64>,
    },
}

/// A file being written: one video stream, and streams copied from an input.
pub(crate) struct Muxer {
    path: PathBuf,
    sink: Sink,
    bytes: u64,
}

impl Muxer {
    /// Whether an encoder for `path` needs a global header (containers that store parameter sets out of band).
    pub(crate) fn needs_global_header(path: &Path) -> Result<bool> {
        if is_raw_stream(path) {
            return Ok(false);
        }
        crate::init_ffmpeg();
        crate::ffi::encode::output_needs_global_header(path)
            .ok_or_else(|| open_err(path, "no container format matches this file name"))
    }

    /// Creates `path` for `encoder`'s stream. Streams to copy are added with [`Muxer::add_copy`] before the
    /// first packet.
    pub(crate) fn create(path: &Path, encoder: &Encoder) -> Result<Self> {
        let sink = if is_raw_stream(path) {
            let f = std::fs::File::create(path)
                .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
            Sink::Raw(std::io::BufWriter::new(f))
        } else {
            let mut octx = ff::format::output(&path).map_err(|e| open_err(path, e))?;
            let name = octx.format().name().to_string();
            let faststart = name.contains("mp4") || name.contains("mov");
            let (num, den) = encoder.time_base();
            let enc_tb = ff::Rational::new(num, den);
            let mut st = octx
                .add_stream(ff::encoder::find(ff::codec::Id::None))
                .map_err(|e| Error::ffmpeg("avformat_new_stream", e))?;
            st.set_parameters(encoder.codec_parameters());
            st.set_time_base(enc_tb);
            st.set_avg_frame_rate(ff::Rational::new(den, num));
            let video = st.index();
            Sink::Container {
                octx,
                video,
                enc_tb,
                started: false,
                faststart,
                copies: Vec::new(),
                last_dts: None,
            }
        };
        Ok(Muxer {
            path: path.to_path_buf(),
            sink,
            bytes: 0,
        })
    }

    /// Adds a stream whose packets are copied from `input` (audio); returns its output index. `None` for a raw
    /// elementary stream, which holds video only.
    pub(crate) fn add_copy(
        &mut self,
        input: &ff::format::stream::Stream<'_>,
    ) -> Result<Option<usize>> {
        let Sink::Container {
            octx,
            copies,
            started,
            ..
        } = &mut self.sink
        else {
            return Ok(None);
        };
        if *started {
            return Err(Error::InvalidArgument(
                "stream added after the first packet".into(),
            ));
        }
        let mut st = octx
            .add_stream(ff::encoder::find(ff::codec::Id::None))
            .map_err(|e| Error::ffmpeg("avformat_new_stream", e))?;
        st.set_parameters(input.parameters());
        st.set_time_base(input.time_base());
        let index = st.index();
        crate::ffi::encode::clear_codec_tag(octx, index);
        copies.push((index, input.time_base()));
        Ok(Some(index))
    }

    /// Copies the display matrix (rotation) of `input` onto the video stream.
    pub(crate) fn copy_rotation(&mut self, input: &ff::format::stream::Stream<'_>) -> Result<()> {
        if let Sink::Container { octx, video, .. } = &mut self.sink {
            crate::ffi::encode::copy_display_matrix(input, octx, *video)?;
        }
        Ok(())
    }

    fn start(&mut self) -> Result<()> {
        if let Sink::Container {
            octx,
            started,
            faststart,
            ..
        } = &mut self.sink
        {
            if !*started {
                let mut opts = ff::Dictionary::new();
                if *faststart {
                    opts.set("movflags", "+faststart");
                }
                octx.write_header_with(opts)
                    .map_err(|e| open_err(&self.path, e))?;
                *started = true;
            }
        }
        Ok(())
    }

    /// Writes encoded video packets.
    pub(crate) fn write_video(&mut self, packets: &[EncodedPacket]) -> Result<()> {
        self.start()?;
        for p in packets {
            self.bytes += p.data.len() as u64;
            match &mut self.sink {
                Sink::Raw(w) => w
                    .write_all(&p.data)
                    .map_err(|e| Error::io(format!("writing {}", self.path.display()), e))?,
                Sink::Container {
                    octx,
                    video,
                    enc_tb,
                    last_dts,
                    ..
                } => {
                    let mut pkt = ff::Packet::copy(&p.data);
                    pkt.set_pts(Some(p.pts));
                    // A restarted encoder (reconfigure) may start its decode times below the last ones.
                    let dts = match *last_dts {
                        Some(l) if p.dts <= l => (l + 1).min(p.pts),
                        _ => p.dts,
                    };
                    *last_dts = Some(dts);
                    pkt.set_dts(Some(dts));
                    pkt.set_duration(1);
                    if p.keyframe {
                        pkt.set_flags(ff::codec::packet::Flags::KEY);
                    }
                    pkt.set_stream(*video);
                    let tb = octx
                        .stream(*video)
                        .map(|s| s.time_base())
                        .unwrap_or(*enc_tb);
                    pkt.rescale_ts(*enc_tb, tb);
                    pkt.write_interleaved(octx)
                        .map_err(|e| Error::ffmpeg("av_interleaved_write_frame", e))?;
                }
            }
        }
        Ok(())
    }

    /// Writes a packet of a copied stream, its time stamps shifted back by `shift` (input time base).
    pub(crate) fn write_copy(
        &mut self,
        packet: &ff::Packet,
        out_index: usize,
        shift: i64,
    ) -> Result<()> {
        self.start()?;
        let Sink::Container { octx, copies, .. } = &mut self.sink else {
            return Ok(());
        };
        let Some(&(_, in_tb)) = copies.iter().find(|(i, _)| *i == out_index) else {
            return Ok(());
        };
        let mut pkt = packet.clone();
        pkt.set_pts(packet.pts().map(|t| t - shift));
        pkt.set_dts(packet.dts().map(|t| t - shift));
        pkt.set_position(-1);
        pkt.set_stream(out_index);
        let tb = octx
            .stream(out_index)
            .map(|s| s.time_base())
            .unwrap_or(in_tb);
        pkt.rescale_ts(in_tb, tb);
        self.bytes += pkt.size() as u64;
        pkt.write_interleaved(octx)
            .map_err(|e| Error::ffmpeg("av_interleaved_write_frame", e))
    }

    /// Finishes the file (trailer; for MP4 the index moves to the front).
    pub(crate) fn finish(mut self) -> Result<u64> {
        self.start()?;
        match &mut self.sink {
            Sink::Raw(w) => w
                .flush()
                .map_err(|e| Error::io(format!("writing {}", self.path.display()), e))?,
            Sink::Container { octx, .. } => octx
                .write_trailer()
                .map_err(|e| Error::ffmpeg("av_write_trailer", e))?,
        }
        Ok(self.bytes)
    }
}

/// What a finished [`VideoWriter`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteStats {
    /// The file.
    pub path: PathBuf,
    /// Frames encoded.
    pub frames: u64,
    /// Bytes of compressed video (and copied streams).
    pub bytes: u64,
}

/// An [`Encoder`] writing into a file: MP4 / MOV (with the index in front, `faststart`), Matroska / WebM, IVF,
/// or a raw elementary stream for `.h264` / `.hevc` / `.obu`, chosen by the extension.
///
/// ```no_run
/// # fn main() -> vidloader::Result<()> {
/// use vidloader::{EncoderOptions, InputFormat, VideoWriter};
/// let mut w = VideoWriter::create("out.mp4", 320, 240, InputFormat::Rgb, EncoderOptions::default())?;
/// let frame = tch::Tensor::zeros([240, 320, 3], (tch::Kind::Uint8, tch::Device::Cpu));
/// w.write(&frame)?;
/// w.finish()?;
/// # Ok(()) }
/// ```
pub struct VideoWriter {
    encoder: Encoder,
    muxer: Option<Muxer>,
    frames: u64,
}

impl std::fmt::Debug for VideoWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoWriter")
            .field("encoder", &self.encoder)
            .field("frames", &self.frames)
            .finish()
    }
}

impl VideoWriter {
    /// Creates `path` for `width` x `height` frames laid out as `format`.
    ///
    /// Errors: those of [`Encoder::new`]; [`Error::Open`] when the file cannot be created or the extension
    /// names no container FFmpeg knows.
    pub fn create(
        path: impl AsRef<Path>,
        width: u32,
        height: u32,
        format: InputFormat,
        opts: EncoderOptions,
    ) -> Result<Self> {
        Self::with_layout(
            path.as_ref(),
            width,
            height,
            InputLayout::Format(format),
            opts,
        )
    }

    pub(crate) fn with_layout(
        path: &Path,
        width: u32,
        height: u32,
        layout: InputLayout,
        opts: EncoderOptions,
    ) -> Result<Self> {
        Self::with_layout_and_tags(path, width, height, layout, opts, None)
    }

    pub(crate) fn with_layout_and_tags(
        path: &Path,
        width: u32,
        height: u32,
        layout: InputLayout,
        opts: EncoderOptions,
        tags: Option<ColorTags>,
    ) -> Result<Self> {
        let global = Muxer::needs_global_header(path)?;
        let encoder = Encoder::open(width, height, layout, opts, global, tags)?;
        let muxer = Muxer::create(path, &encoder)?;
        Ok(VideoWriter {
            encoder,
            muxer: Some(muxer),
            frames: 0,
        })
    }

    pub(crate) fn muxer_mut(&mut self) -> Result<&mut Muxer> {
        self.muxer
            .as_mut()
            .ok_or_else(|| Error::InvalidArgument("the writer is finished".into()))
    }

    /// The encoder (to read its backend, or to [`Encoder::reconfigure`] it between frames).
    pub fn encoder(&mut self) -> &mut Encoder {
        &mut self.encoder
    }

    /// Encodes and writes one frame.
    pub fn write(&mut self, frame: &Tensor) -> Result<()> {
        self.write_with(frame, PicFlags::default(), &[])
    }

    /// Encodes and writes one frame with per-picture flags and SEI messages.
    pub fn write_with(&mut self, frame: &Tensor, flags: PicFlags, sei: &[Sei]) -> Result<()> {
        let packets = self.encoder.encode(frame, flags, sei)?;
        self.frames += 1;
        self.muxer_mut()?.write_video(&packets)
    }

    /// Encodes and writes one frame of packed planes in a contiguous host tensor (the transcoder's path).
    pub(crate) fn write_host(
        &mut self,
        frame: &Tensor,
        flags: PicFlags,
        sei: &[Sei],
    ) -> Result<()> {
        let packets = self.encoder.encode_host(frame, flags, sei)?;
        self.frames += 1;
        self.muxer_mut()?.write_video(&packets)
    }

    /// Flushes the encoder and finishes the file.
    pub fn finish(mut self) -> Result<WriteStats> {
        let rest = self.encoder.end_encode()?;
        let mut muxer = self
            .muxer
            .take()
            .ok_or_else(|| Error::InvalidArgument("the writer is finished".into()))?;
        muxer.write_video(&rest)?;
        let path = muxer.path.clone();
        let bytes = muxer.finish()?;
        Ok(WriteStats {
            path,
            frames: self.frames,
            bytes,
        })
    }
}
