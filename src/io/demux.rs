//! Container demuxing over FFmpeg: open a file, bytes or reader; iterate the video stream's packets; read the
//! stream's metadata; seek; hand out H.264/HEVC packets in Annex-B form for NVDEC.

use std::collections::VecDeque;
use std::io::{Cursor, Read};
use std::sync::{Arc, Once};

use ffmpeg_next as ff;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::ffi::ffmpeg::{self as ffx, AnnexBFilter};
use crate::frame::color::{ColorMatrix, ColorRange};
use crate::io::source::{FileRange, Source};

/// Initialises FFmpeg once and keeps its logging quiet (errors come back as values).
pub(crate) fn init_ffmpeg() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let _ = ff::init();
        ff::util::log::set_level(ff::util::log::Level::Fatal);
    });
}

/// How [`Demuxer::open_with_probe`] reads the stream's parameters (pixel format, colour description, reorder
/// delay) when it opens a file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum ProbeMode {
    /// From the codec headers where they say everything, without decoding a picture: H.264 with an `avcC` record
    /// (MP4, MOV, Matroska) whose sequence parameter set describes a progressive 4:2:0/4:2:2/4:4:4 stream of 8 or
    /// 10 bits with its reorder depth. Other streams get [`ProbeMode::Full`] (for HEVC that costs no decoding
    /// anyway: FFmpeg's HEVC decoder reads its parameters from the `hvcC` record). The result is the same;
    /// FFmpeg's probe of H.264 decodes a picture first, which is most of the cost of opening a short clip (about
    /// 11 ms of 12 for a 1080p clip).
    #[default]
    Headers,
    /// FFmpeg's own probe (`avformat_find_stream_info`), which decodes pictures until every parameter is known.
    Full,
}

impl ProbeMode {
    /// The probe that ran: [`ProbeMode::Headers`] when the headers said everything, else [`ProbeMode::Full`].
    fn used(headers_sufficed: bool) -> Self {
        if headers_sufficed {
            ProbeMode::Headers
        } else {
            ProbeMode::Full
        }
    }

    /// The probe [`Demuxer::open`] uses: [`ProbeMode::Headers`], or [`ProbeMode::Full`] when the
    /// environment sets `VIDLOADER_PROBE=full`.
    pub fn from_env() -> ProbeMode {
        static PROBE: std::sync::LazyLock<ProbeMode> =
            std::sync::LazyLock::new(|| match std::env::var("VIDLOADER_PROBE").as_deref() {
                Ok("full") => ProbeMode::Full,
                _ => ProbeMode::Headers,
            });
        *PROBE
    }
}

/// Metadata of the video stream, from the container and codec headers.
#[derive(Clone, Debug, Serialize)]
pub struct StreamInfo {
    /// Codec name as FFmpeg calls it (`h264`, `hevc`, `vp9`, `mpeg4`, ...).
    pub codec: String,
    /// Container format name (`mov,mp4,m4a,3gp,3g2,mj2`, `matroska,webm`, `avi`, ...).
    pub container: String,
    /// Coded picture width.
    pub width: u32,
    /// Coded picture height.
    pub height: u32,
    /// Average frame rate from the container (frames per second); 0 when unknown.
    pub fps: f64,
    /// Duration in seconds from the container; 0 when unknown.
    pub duration_s: f64,
    /// Bit rate in bits per second; 0 when unknown.
    pub bit_rate: i64,
    /// Bits per sample (8, 10, 12).
    pub bit_depth: u32,
    /// Chroma subsampling: `420`, `422`, `444` or `400` (monochrome).
    pub chroma: String,
    /// The decoder's pixel format name (`yuv420p`, `yuv420p10le`, ...).
    pub pixel_format: String,
    /// The YUV -> RGB matrix used for this stream.
    pub color_matrix: ColorMatrix,
    /// Limited or full range.
    pub color_range: ColorRange,
    /// Colour primaries as FFmpeg names them.
    pub color_primaries: String,
    /// Transfer characteristic as FFmpeg names it.
    pub color_transfer: String,
    /// Display rotation in degrees (counter-clockwise), 0 when none.
    pub rotation: f64,
    /// Stream time base (numerator, denominator).
    pub time_base: (i32, i32),
    /// Stream start time in time-base units (0 when unknown).
    pub start_pts: i64,
    /// Frame count the container header claims (0 when it does not say); see the frame index for the exact one.
    pub container_frames: i64,
    /// Codec profile number (-99 when unknown).
    pub profile: i32,
    /// The decoder's pixel format.
    #[serde(skip)]
    pub(crate) pixel: ff::format::Pixel,
}

impl StreamInfo {
    /// Seconds per time-base tick.
    pub fn tick_seconds(&self) -> f64 {
        f64::from(self.time_base.0) / f64::from(self.time_base.1.max(1))
    }
}

/// One compressed packet of the video stream.
pub struct Packet {
    inner: ff::Packet,
    time_base: (i32, i32),
}

impl Packet {
    /// The compressed bytes.
    pub fn data(&self) -> &[u8] {
        self.inner.data().unwrap_or(&[])
    }
    /// Presentation time stamp in stream time base, if the container gives one.
    pub fn pts(&self) -> Option<i64> {
        self.inner.pts()
    }
    /// Decode time stamp in stream time base, if the container gives one.
    pub fn dts(&self) -> Option<i64> {
        self.inner.dts()
    }
    /// Duration in stream time base (0 when unknown).
    pub fn duration(&self) -> i64 {
        self.inner.duration()
    }
    /// Whether the container marks this packet as a keyframe (random-access point).
    pub fn is_key(&self) -> bool {
        self.inner.is_key()
    }
    /// Whether the container says to decode this packet but drop its frame (edit-list pre-roll).
    pub fn is_discard(&self) -> bool {
        ffx::packet_is_discard(&self.inner)
    }
    /// Byte position in the file (-1 when unknown).
    pub fn position(&self) -> i64 {
        self.inner.position() as i64
    }
    /// Stream time base of the time stamps.
    pub fn time_base(&self) -> (i32, i32) {
        self.time_base
    }
    /// Presentation time in seconds (falls back to the decode time).
    pub fn pts_seconds(&self) -> Option<f64> {
        let ts = self.pts().or(self.dts())?;
        Some(ts as f64 * f64::from(self.time_base.0) / f64::from(self.time_base.1.max(1)))
    }
    /// Decode time in seconds.
    pub fn dts_seconds(&self) -> Option<f64> {
        Some(self.dts()? as f64 * f64::from(self.time_base.0) / f64::from(self.time_base.1.max(1)))
    }
    /// A packet of other bytes with this one's time stamps, duration, flags, stream and position.
    pub(crate) fn with_data(&self, data: &[u8]) -> Packet {
        let mut inner = ff::Packet::copy(data);
        inner.set_pts(self.inner.pts());
        inner.set_dts(self.inner.dts());
        inner.set_duration(self.inner.duration());
        inner.set_flags(self.inner.flags());
        inner.set_stream(self.inner.stream());
        inner.set_position(self.inner.position());
        Packet {
            inner,
            time_base: self.time_base,
        }
    }

    pub(crate) fn ffmpeg(&self) -> &ff::Packet {
        &self.inner
    }
}

impl std::fmt::Debug for Packet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packet")
            .field("size", &self.data().len())
            .field("pts", &self.pts())
            .field("dts", &self.dts())
            .field("key", &self.is_key())
            .finish()
    }
}

/// A byte buffer shared with FFmpeg's reader.
struct SharedBytes(Arc<[u8]>);
impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Reads the video stream of a container packet by packet.
pub struct Demuxer {
    input: ff::format::context::Input,
    probe: ProbeMode,
    source: Source,
    stream_index: usize,
    info: StreamInfo,
    parameters: ff::codec::Parameters,
    annexb: Option<AnnexBFilter>,
    annexb_queue: VecDeque<ff::Packet>,
}

impl std::fmt::Debug for Demuxer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demuxer")
            .field("source", &self.source)
            .field("codec", &self.info.codec)
            .finish()
    }
}

impl Demuxer {
    /// Opens `source` and finds its video stream.
    ///
    /// Errors: [`Error::NotFound`] for a missing file, [`Error::NotVideo`] for a file FFmpeg does not recognise
    /// or one without a video stream, [`Error::Corrupt`] for a recognised but broken container.
    pub fn open(source: impl Into<Source>) -> Result<Self> {
        Self::open_with_probe(source, ProbeMode::from_env())
    }

    /// Opens `source`, reading the stream's parameters as `probe` says.
    pub fn open_with_probe(source: impl Into<Source>, probe: ProbeMode) -> Result<Self> {
        init_ffmpeg();
        let source = source.into();
        let name = source.name();
        let (head, opened) = match &source {
            Source::Path(path) => {
                let mut file = open_file(path, &name)?;
                if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
                    return Err(Error::Open {
                        source_name: name,
                        reason: "is a directory".into(),
                    });
                }
                let mut head = vec![0u8; 4096];
                let n = read_up_to(&mut file, &mut head)
                    .map_err(|e| Error::io(format!("{name}: reading"), e))?;
                head.truncate(n);
                let opened = ffx::open_input(path, &head, probe == ProbeMode::Headers)
                    .map(|(i, headers)| (i, ProbeMode::used(headers)));
                (head, opened)
            }
            Source::Memory { bytes, name } => {
                let head = bytes[..bytes.len().min(4096)].to_vec();
                let io = ff::format::context::StreamIo::from_read_seek(Cursor::new(SharedBytes(
                    bytes.clone(),
                )))
                .map_err(|e| Error::ffmpeg("avio_alloc_context", e))?;
                let opened = ff::format::input_from_stream(io, Some(name), None);
                (head, opened.map(|i| (i, ProbeMode::Full)))
            }
            Source::Range {
                path, offset, len, ..
            } => {
                let file = open_file(path, &name)?;
                let mut range = FileRange::new(file, *offset, *len);
                let mut head = vec![0u8; 4096];
                let n = read_up_to(&mut range, &mut head)
                    .map_err(|e| Error::io(format!("{name}: reading"), e))?;
                head.truncate(n);
                let make_io = || {
                    let file = std::fs::File::open(path).map_err(|e| ff::Error::Other {
                        errno: e.raw_os_error().unwrap_or(libc::EIO),
                    })?;
                    ff::format::context::StreamIo::from_read_seek(FileRange::new(
                        file, *offset, *len,
                    ))
                };
                let opened = ffx::open_input_io(&make_io, &name, probe == ProbeMode::Headers)
                    .map(|(i, headers)| (i, ProbeMode::used(headers)));
                (head, opened)
            }
        };
        if head.is_empty() {
            return Err(Error::NotVideo { source_name: name });
        }
        // Whether FFmpeg knows the format at all is asked only of a file it could not open (the probe runs every
        // demuxer's prober).
        let (input, probe) = opened.map_err(|e| match e {
            ff::Error::InvalidData | ff::Error::Eof if !ffx::probe_is_known_format(&head) => {
                Error::NotVideo {
                    source_name: name.clone(),
                }
            }
            ff::Error::InvalidData | ff::Error::Eof => Error::Corrupt {
                source_name: name.clone(),
                reason: e.to_string(),
            },
            other => Error::Open {
                source_name: name.clone(),
                reason: other.to_string(),
            },
        })?;
        let stream = video_stream(&input).ok_or_else(|| Error::NotVideo {
            source_name: name.clone(),
        })?;
        let stream_index = stream.index();
        let info = stream_info(&input, &stream)?;
        // No picture size: FFmpeg's probe found no sequence header (an H.264 recording cut after its only
        // parameter sets, for one), and the ffmpeg CLI decodes no picture from such a stream either.
        if info.width == 0 || info.height == 0 {
            return Err(Error::Corrupt {
                source_name: name,
                reason:
                    "the video stream gives no picture size: no sequence header could be read (a \
                         recording cut after its parameter sets?), so no picture can be decoded"
                        .into(),
            });
        }
        let parameters = stream.parameters();
        Ok(Demuxer {
            input,
            probe,
            source,
            stream_index,
            info,
            parameters,
            annexb: None,
            annexb_queue: VecDeque::new(),
        })
    }

    /// Hands out H.264 and HEVC packets in Annex-B form (start codes, parameter sets before keyframes), the form
    /// NVDEC's parser takes. Other codecs are unaffected.
    pub fn set_annexb(&mut self, on: bool) -> Result<()> {
        self.annexb = None;
        self.annexb_queue.clear();
        if on {
            let stream = self
                .input
                .stream(self.stream_index)
                .ok_or_else(|| Error::NotVideo {
                    source_name: self.source.name(),
                })?;
            self.annexb = AnnexBFilter::new(&stream)?;
        }
        Ok(())
    }

    /// Parameter sets in Annex-B form when [`Demuxer::set_annexb`] is on, otherwise the container's extradata.
    pub fn extradata(&self) -> Vec<u8> {
        match &self.annexb {
            Some(f) => f.extradata(),
            None => match self.input.stream(self.stream_index) {
                Some(s) => ffx::codecpar_extras(&s).extradata,
                None => Vec::new(),
            },
        }
    }

    /// Frames of reordering delay of the stream (non-zero when it has B-frames), as FFmpeg's probe found it.
    pub(crate) fn reorder_delay(&self) -> i32 {
        self.input
            .stream(self.stream_index)
            .map_or(0, |s| ffx::codecpar_extras(&s).video_delay)
    }

    /// How the stream's parameters were read: [`ProbeMode::Full`] when asked for, for sources in memory, and
    /// where the codec headers did not say everything.
    pub fn probe(&self) -> ProbeMode {
        self.probe
    }

    /// The video stream's metadata.
    pub fn info(&self) -> &StreamInfo {
        &self.info
    }

    /// The source this demuxer reads.
    pub fn source(&self) -> &Source {
        &self.source
    }

    pub(crate) fn parameters(&self) -> ff::codec::Parameters {
        self.parameters.clone()
    }

    /// The next packet of the video stream, `None` at the end.
    ///
    /// Unlike ffmpeg-next's packet iterator, a read error other than the end of the file is returned as
    /// [`Error::Corrupt`] instead of ending the stream silently.
    pub fn read_packet(&mut self) -> Result<Option<Packet>> {
        loop {
            if let Some(p) = self.annexb_queue.pop_front() {
                return Ok(Some(Packet {
                    inner: p,
                    time_base: self.info.time_base,
                }));
            }
            let mut packet = ff::Packet::empty();
            match packet.read(&mut self.input) {
                Ok(()) => {}
                Err(ff::Error::Eof) => return Ok(None),
                Err(e) => {
                    return Err(Error::Corrupt {
                        source_name: self.source.name(),
                        reason: e.to_string(),
                    })
                }
            }
            if packet.stream() != self.stream_index {
                continue;
            }
            match self.annexb.as_mut() {
                None => {
                    return Ok(Some(Packet {
                        inner: packet,
                        time_base: self.info.time_base,
                    }))
                }
                Some(filter) => {
                    let mut out = Vec::new();
                    filter.filter(&packet, &mut out)?;
                    self.annexb_queue.extend(out);
                }
            }
        }
    }

    /// Seeks to the last keyframe at or before `seconds`; the next packet read is that keyframe (or one shortly
    /// before it, depending on the container's index).
    pub fn seek(&mut self, seconds: f64) -> Result<()> {
        let tick = self.info.tick_seconds();
        let ts = (seconds / tick).floor() as i64 + self.info.start_pts;
        self.seek_to_timestamp(ts)
    }

    /// Seeks to the last keyframe at or before `ts` (stream time base, compared with decode time stamps for most
    /// containers).
    pub(crate) fn seek_to_timestamp(&mut self, ts: i64) -> Result<()> {
        ffx::seek_stream_backward(&mut self.input, self.stream_index, ts)?;
        if let Some(f) = self.annexb.as_mut() {
            f.flush();
        }
        self.annexb_queue.clear();
        Ok(())
    }

    /// Seeks back to the first packet.
    pub(crate) fn rewind(&mut self) -> Result<()> {
        if self.seek_to_timestamp(i64::MIN / 2).is_err() {
            // Some demuxers refuse a timestamp before the start; the byte-0 seek of the generic API works there.
            self.input
                .seek(i64::MIN / 2, ..)
                .map_err(|e| Error::ffmpeg("avformat_seek_file", e))?;
        }
        Ok(())
    }
}

impl Iterator for Demuxer {
    type Item = Result<Packet>;
    fn next(&mut self) -> Option<Self::Item> {
        self.read_packet().transpose()
    }
}

/// Opens the file behind a source: a missing one is [`Error::NotFound`], any other failure [`Error::Open`].
fn open_file(path: &std::path::Path, source_name: &str) -> Result<std::fs::File> {
    std::fs::File::open(path).map_err(|e| Error::opening(path, source_name, e))
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn rational(r: ff::Rational) -> f64 {
    if r.denominator() == 0 {
        0.0
    } else {
        f64::from(r.numerator()) / f64::from(r.denominator())
    }
}

fn stream_info(
    input: &ff::format::context::Input,
    stream: &ff::format::stream::Stream<'_>,
) -> Result<StreamInfo> {
    let par = stream.parameters();
    let extras = ffx::codecpar_extras(stream);
    let id = par.id();
    let codec = ff::codec::decoder::find(id)
        .map(|c| c.name().to_string())
        .ok_or_else(|| {
            Error::Unsupported(format!(
                "codec {}: no decoder for it in this FFmpeg build",
                format!("{id:?}").to_lowercase()
            ))
        })?;
    // The picture's description straight from the codec parameters: what a decoder context made from them
    // (avcodec_parameters_to_context) would report, without allocating one per file.
    let format = extras.pixel_format;
    let (bit_depth, chroma) = pixel_format_depth_chroma(format, extras.bits_per_raw_sample);
    let tb = stream.time_base();
    let fps = {
        let avg = rational(stream.avg_frame_rate());
        if avg > 0.0 {
            avg
        } else {
            rational(stream.rate())
        }
    };
    let duration_s = if stream.duration() > 0 {
        stream.duration() as f64 * rational(tb)
    } else if input.duration() > 0 {
        input.duration() as f64 / f64::from(ff::ffi::AV_TIME_BASE)
    } else {
        0.0
    };
    let rotation = stream
        .side_data()
        .find(|sd| sd.kind() == ff::codec::packet::side_data::Type::DisplayMatrix)
        .and_then(|sd| ffx::display_matrix_rotation(sd.data()))
        .map(|r| if r == 0.0 { 0.0 } else { r })
        .unwrap_or(0.0);
    let bit_rate = if extras.bit_rate > 0 {
        extras.bit_rate
    } else {
        input.bit_rate()
    };
    Ok(StreamInfo {
        codec,
        container: input.format().name().to_string(),
        width: extras.width,
        height: extras.height,
        fps,
        duration_s,
        bit_rate,
        bit_depth,
        chroma: chroma.to_string(),
        pixel_format: format
            .descriptor()
            .map(|d| d.name().to_string())
            .unwrap_or_else(|| "unknown".into()),
        color_matrix: ColorMatrix::from_ffmpeg(extras.color_space),
        color_range: ColorRange::from_ffmpeg(extras.color_range, format),
        color_primaries: format!("{:?}", extras.color_primaries).to_lowercase(),
        color_transfer: format!("{:?}", extras.color_trc).to_lowercase(),
        rotation,
        time_base: (tb.numerator(), tb.denominator()),
        start_pts: if stream.start_time() == ff::ffi::AV_NOPTS_VALUE {
            0
        } else {
            stream.start_time()
        },
        container_frames: stream.frames().max(0),
        profile: extras.profile,
        pixel: format,
    })
}

/// Bit depth and chroma subsampling of a pixel format.
pub(crate) fn pixel_format_depth_chroma(
    format: ff::format::Pixel,
    raw_bits: i32,
) -> (u32, &'static str) {
    use ff::format::Pixel as P;
    let chroma = match format {
        P::GRAY8 | P::GRAY10LE | P::GRAY12LE | P::GRAY16LE => "400",
        P::YUV422P | P::YUVJ422P | P::YUV422P10LE | P::YUV422P12LE | P::NV16 => "422",
        P::YUV444P | P::YUVJ444P | P::YUV444P10LE | P::YUV444P12LE => "444",
        _ => "420",
    };
    let depth = match format {
        P::YUV420P10LE | P::YUV422P10LE | P::YUV444P10LE | P::GRAY10LE | P::P010LE => 10,
        P::YUV420P12LE | P::YUV422P12LE | P::YUV444P12LE | P::GRAY12LE => 12,
        P::None if raw_bits > 0 => raw_bits as u32,
        _ if raw_bits > 8 => raw_bits as u32,
        _ => 8,
    };
    (depth, chroma)
}

/// The video stream the ffmpeg CLI picks from `input`: the largest picture, a stream marked default counting
/// 5,000,000 pixels more, the first of equals; never an attached picture (cover art). A still-image track stored
/// before the video (a PNG cover kept as a Matroska video track) is thereby not taken for the video.
pub(crate) fn video_stream(
    input: &ff::format::context::Input,
) -> Option<ff::format::stream::Stream<'_>> {
    input
        .streams()
        .filter(|s| s.parameters().medium() == ff::media::Type::Video)
        .filter(|s| {
            !s.disposition()
                .contains(ff::format::stream::Disposition::ATTACHED_PIC)
        })
        .fold(
            None,
            |best: Option<(u64, ff::format::stream::Stream<'_>)>, s| {
                let extras = ffx::codecpar_extras(&s);
                let default = s
                    .disposition()
                    .contains(ff::format::stream::Disposition::DEFAULT);
                let score = u64::from(extras.width) * u64::from(extras.height)
                    + if default { 5_000_000 } else { 0 };
                match best {
                    Some((b, _)) if b >= score => best,
                    _ => Some((score, s)),
                }
            },
        )
        .map(|(_, s)| s)
}
