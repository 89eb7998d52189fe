//! A safe NVDEC decode session: one `cuvid` parser plus the decoder it creates, fed with Annex-B packets.
//!
//! ```text
//! decode(packet) ──► parser ──► sequence callback: check caps, create / reconfigure / recreate the decoder
//!                          ├─► decode callback:   cuvidDecodePicture   (Zero latency: queue the picture here)
//!                          ├─► SEI callback:      copy the messages, keep them per picture index
//!                          └─► display callback:  queue a DisplayedFrame (display order)
//! next_frame() ──► map(frame, stream) ──► MappedSurface (device pointer, pitch, ...) ──► convert ──► drop = unmap
//! ```
//!
//! The callbacks never unwind into C: each runs under `catch_unwind`, and the first failure is kept and returned by
//! the call that fed the data (`decode`, `flush`, ...). On driver 580 a callback returning 0 does not make
//! `cuvidParseVideoData` fail, so this sticky error is the only reliable report.
//!
//! # Frame lifetime
//! A [`DisplayedFrame`] names a decode surface; the parser reuses that surface for a later picture once the frame
//! has been displayed. Map (and convert) the queued frames before feeding much more data: the usual loop is
//! "decode one packet, drain `next_frame()`, map + convert each". Extra decode surfaces
//! ([`SessionConfig::extra_decode_surfaces`]) give slack for a few queued frames. A frame whose surface was reused,
//! or whose decoder was reconfigured or replaced, is detected: [`NvdecSession::map`] returns
//! [`Error::InvalidArgument`] for it instead of wrong pixels.

use std::collections::{HashMap, VecDeque};
use std::ffi::{c_int, c_ulong, c_void};
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use super::api::{api, check, NvcuvidApi};
use super::caps::{query_caps, ChromaFormat, DecoderCaps, NvCodec};
use super::recycle;
use super::sys;
use crate::cuda::{GpuContext, GpuStream, SourceSurface, SurfaceFormat};
use crate::error::{Error, Result};
use crate::frame::color::{ColorMatrix, ColorRange};

/// How early decoded pictures are handed out (PyNvVideoCodec's latency modes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum LatencyMode {
    /// Display order with the parser's display queue (`ulMaxDisplayDelay` = [`SessionConfig::display_delay`],
    /// default 1, as NVIDIA's NvDecoder). Packets may be arbitrary chunks of the byte stream.
    #[default]
    Native,
    /// Display order, no display queue (`ulMaxDisplayDelay` = 0), and every packet is flagged ENDOFPICTURE so the
    /// parser decodes it at once: **each packet must hold exactly one whole picture** (an access unit, as demuxers
    /// return them). B-frames still impose their reorder delay.
    Low,
    /// Like [`LatencyMode::Low`], but pictures are handed out from the decode callback, in **decode order**, as soon
    /// as they are submitted. Only correct for streams without B-frames (all-intra or IPPP). Each frame's timestamp
    /// is the pts of the packet that carried it.
    Zero,
}

/// Deinterlacing applied by NVDEC to interlaced streams (progressive streams always use weave).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Deinterlace {
    /// No deinterlacing: both fields woven into one frame (what FFmpeg's software decoders output).
    #[default]
    Weave,
    /// Keep one field, line-doubled.
    Bob,
    /// Motion-adaptive deinterlacing.
    Adaptive,
}

/// Settings of an [`NvdecSession`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// The codec of the stream.
    pub codec: NvCodec,
    /// Largest coded width the session should handle without recreating its decoder (0 = the first stream's).
    /// Later sequences up to this size reuse the decoder through `cuvidReconfigureDecoder`.
    pub max_width: u32,
    /// Largest coded height, as [`SessionConfig::max_width`].
    pub max_height: u32,
    /// Latency mode.
    pub latency: LatencyMode,
    /// `ulMaxDisplayDelay` in [`LatencyMode::Native`] (`None` = 1). Ignored in Low/Zero (always 0).
    pub display_delay: Option<u32>,
    /// Collect SEI messages and attach them to the displayed frames.
    pub extract_sei: bool,
    /// `ulNumOutputSurfaces`: frames the driver keeps mappable at once (default 2).
    pub output_surfaces: u32,
    /// Decode surfaces added to the stream's minimum (plus the display delay), so that queued frames are not
    /// overwritten before they are mapped (default 6). The total is capped at 32.
    pub extra_decode_surfaces: u32,
    /// Out-of-band sequence header in Annex-B form (SPS/PPS/VPS with start codes, e.g. the `par_out` extradata of
    /// `h264_mp4toannexb`). Given to the parser at creation and again after every [`NvdecSession::reset`].
    pub sequence_header: Option<Vec<u8>>,
    /// Timestamp units in Hz (`ulClockRate`; 0 = 10 MHz). Only affects timestamps the parser synthesises for
    /// packets given without one; pass e.g. the stream time base's denominator.
    pub clock_rate: u32,
    /// `ulErrorThreshold`: percentage of corruption above which a picture is not decoded (100 = always decode,
    /// the default, so the frame count stays exact).
    pub error_threshold: u32,
    /// Deinterlacing for interlaced streams.
    pub deinterlace: Deinterlace,
    /// Take the hardware decoder from the process-wide cache of idle decoders when one fits, and park it there
    /// when done, instead of creating and destroying one (tens of ms each, serialised by the driver); see
    /// [`set_idle_decoder_limit`](super::set_idle_decoder_limit). Off by default; the frame-exact decoders turn
    /// it on. Decoders taken from the cache count in [`SessionStats::decoders_recycled`].
    pub recycle_decoders: bool,
}

impl SessionConfig {
    /// Defaults for `codec`: native latency, no SEI, sizes from the first sequence.
    pub fn new(codec: NvCodec) -> Self {
        SessionConfig {
            codec,
            max_width: 0,
            max_height: 0,
            latency: LatencyMode::Native,
            display_delay: None,
            extract_sei: false,
            output_surfaces: 2,
            extra_decode_surfaces: 6,
            sequence_header: None,
            clock_rate: 0,
            error_threshold: 100,
            deinterlace: Deinterlace::Weave,
            recycle_decoders: false,
        }
    }

    fn effective_display_delay(&self) -> u32 {
        match self.latency {
            LatencyMode::Native => self.display_delay.unwrap_or(1),
            LatencyMode::Low | LatencyMode::Zero => 0,
        }
    }
}

/// One SEI message of a picture.
///
/// For most payload types this is the raw SEI payload (e.g. type 5, user data unregistered: 16-byte UUID + data;
/// type 4: ITU-T T.35 data). For the types NVIDIA's parser decodes itself it is the parser's struct: type 1 (H.264
/// picture timing) and 136 (HEVC time code) a 64-byte `TIMECODE`, 137 a 24-byte `SEIMASTERINGDISPLAYINFO`, 144 an
/// 8-byte `SEICONTENTLIGHTLEVELINFO`, 147 one byte (layouts in `shared/nvdec.md`, section 3 "SEI").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeiMessage {
    /// SEI payload type.
    pub sei_type: u8,
    /// Payload bytes.
    pub payload: Vec<u8>,
}

/// A rectangle in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Rect {
    /// Left edge.
    pub left: u32,
    /// Top edge.
    pub top: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// Colour description from the stream's video signal description (VUI), as H.273 code points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct ColorDescription {
    /// `video_format` (0 component, 1 PAL, 2 NTSC, 3 SECAM, 4 MAC, 5 unspecified).
    pub video_format: u8,
    /// `video_full_range_flag`.
    pub full_range: bool,
    /// Colour primaries (1 BT.709, 2 unspecified, 9 BT.2020, ...).
    pub primaries: u8,
    /// Transfer characteristics (1 BT.709, 2 unspecified, 16 PQ, 18 HLG, ...).
    pub transfer: u8,
    /// Matrix coefficients (1 BT.709, 2 unspecified, 5/6 BT.601, 9 BT.2020 NCL, 10 BT.2020 CL).
    pub matrix: u8,
}

impl ColorDescription {
    /// The YUV -> RGB matrix, with the same policy as [`ColorMatrix::from_ffmpeg`] (which the CPU path uses):
    /// BT.709 for 1, BT.2020 for 9 and 10, BT.601 for everything else including "unspecified".
    pub fn color_matrix(&self) -> ColorMatrix {
        match self.matrix {
            1 => ColorMatrix::Bt709,
            9 | 10 => ColorMatrix::Bt2020,
            _ => ColorMatrix::Bt601,
        }
    }

    /// Limited or full range.
    pub fn color_range(&self) -> ColorRange {
        if self.full_range {
            ColorRange::Full
        } else {
            ColorRange::Limited
        }
    }
}

/// The format of the stream being decoded (from the last sequence header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoFormat {
    /// Codec.
    pub codec: NvCodec,
    /// Coded width (multiple of the codec's block size).
    pub coded_width: u32,
    /// Coded height.
    pub coded_height: u32,
    /// The visible area inside the coded picture.
    pub display: Rect,
    /// Luma bit depth.
    pub bit_depth: u32,
    /// Chroma bit depth.
    pub bit_depth_chroma: u32,
    /// Chroma subsampling.
    pub chroma: ChromaFormat,
    /// Progressive sequence.
    pub progressive: bool,
    /// Frame rate (numerator, denominator); numerator 0 = unknown.
    pub frame_rate: (u32, u32),
    /// Smallest number of decode surfaces that decodes this stream.
    pub min_decode_surfaces: u32,
    /// Bit rate in bits per second (0 = unknown).
    pub bitrate: u32,
    /// Display aspect ratio (x, y).
    pub aspect_ratio: (i32, i32),
    /// Colour description.
    pub color: ColorDescription,
    /// The surface format frames are mapped in.
    pub surface_format: SurfaceFormat,
}

impl VideoFormat {
    /// Visible width.
    pub fn width(&self) -> u32 {
        self.display.width
    }
    /// Visible height.
    pub fn height(&self) -> u32 {
        self.display.height
    }

    fn from_raw(f: &sys::CUVIDEOFORMAT) -> Result<Self> {
        let codec = NvCodec::from_raw(f.codec).ok_or_else(|| {
            Error::Unsupported(format!("NVDEC reported unknown codec {}", f.codec))
        })?;
        let chroma = ChromaFormat::from_raw(f.chroma_format).ok_or_else(|| {
            Error::Unsupported(format!(
                "NVDEC reported unknown chroma format {}",
                f.chroma_format
            ))
        })?;
        let bit_depth = 8 + u32::from(f.bit_depth_luma_minus8);
        let bit_depth_chroma = 8 + u32::from(f.bit_depth_chroma_minus8);
        let surface_format = match (chroma, bit_depth) {
            (ChromaFormat::Yuv420, 8) => SurfaceFormat::Nv12,
            (ChromaFormat::Yuv420, _) => SurfaceFormat::P016,
            (ChromaFormat::Yuv444, 8) => SurfaceFormat::Yuv444,
            (ChromaFormat::Yuv444, _) => SurfaceFormat::Yuv444_16Bit,
            (c, _) => {
                return Err(Error::Unsupported(format!(
                    "{} {} streams: vidloader's NVDEC path handles 4:2:0 and 4:4:4 only",
                    codec.name(),
                    c.name()
                )))
            }
        };
        let (cw, ch) = (f.coded_width, f.coded_height);
        let a = f.display_area;
        let clamp = |v: c_int, hi: u32| (v.max(0) as u32).min(hi);
        let (l, t, r, b) = (
            clamp(a.left, cw),
            clamp(a.top, ch),
            clamp(a.right, cw),
            clamp(a.bottom, ch),
        );
        let display = if r > l && b > t {
            Rect {
                left: l,
                top: t,
                width: r - l,
                height: b - t,
            }
        } else {
            Rect {
                left: 0,
                top: 0,
                width: cw,
                height: ch,
            }
        };
        let sd = f.video_signal_description;
        Ok(VideoFormat {
            codec,
            coded_width: cw,
            coded_height: ch,
            display,
            bit_depth,
            bit_depth_chroma,
            chroma,
            progressive: f.progressive_sequence != 0,
            frame_rate: (f.frame_rate.numerator, f.frame_rate.denominator),
            min_decode_surfaces: u32::from(f.min_num_decode_surfaces),
            bitrate: f.bitrate,
            aspect_ratio: (f.display_aspect_ratio.x, f.display_aspect_ratio.y),
            color: ColorDescription {
                video_format: sd.video_format(),
                full_range: sd.video_full_range_flag(),
                primaries: sd.color_primaries,
                transfer: sd.transfer_characteristics,
                matrix: sd.matrix_coefficients,
            },
            surface_format,
        })
    }
}

/// A decoded picture ready to be mapped, in display order (decode order in [`LatencyMode::Zero`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplayedFrame {
    /// The decode surface index (`CUVIDPARSERDISPINFO.picture_index`).
    pub picture_index: i32,
    /// Presentation timestamp: the packets' pts handed out in display order (see `shared/nvdec.md` 5.4), or
    /// synthesised from the frame rate for packets given without one.
    pub timestamp: i64,
    /// Progressive frame.
    pub progressive: bool,
    /// Top field first (interlaced frames).
    pub top_field_first: bool,
    /// Extra fields to repeat (1 = 3:2 pulldown, 2 = doubling, 4 = tripling, -1 = unpaired field).
    pub repeat_first_field: i32,
    /// Whether the picture was intra-coded (`intra_pic_flag`; FFmpeg's key-frame flag for NVDEC output).
    pub key_frame: bool,
    /// SEI messages of this picture (empty unless [`SessionConfig::extract_sei`]).
    pub sei: Vec<SeiMessage>,
    epoch: u64,
    generation: u64,
}

/// `cuvidGetDecodeStatus` result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecodeStatus {
    /// Unknown picture.
    Invalid,
    /// Still decoding (this is not a wait: map the frame to wait for it).
    InProgress,
    /// Decoded without error.
    Success,
    /// Decode error, not concealed.
    Error,
    /// Decode error, concealed.
    ErrorConcealed,
    /// A value this version does not know.
    Other(u32),
}

impl DecodeStatus {
    fn from_raw(v: u32) -> Self {
        match v {
            sys::cuvidDecodeStatus_Invalid => DecodeStatus::Invalid,
            sys::cuvidDecodeStatus_InProgress => DecodeStatus::InProgress,
            sys::cuvidDecodeStatus_Success => DecodeStatus::Success,
            sys::cuvidDecodeStatus_Error => DecodeStatus::Error,
            sys::cuvidDecodeStatus_Error_Concealed => DecodeStatus::ErrorConcealed,
            v => DecodeStatus::Other(v),
        }
    }
}

/// Counters of a session (for pools and benchmarks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Decoders created (`cuvidCreateDecoder`, about 50-70 ms each at 1080p).
    pub decoders_created: u64,
    /// Decoders taken from the process-wide idle cache instead of being created
    /// ([`SessionConfig::recycle_decoders`]).
    pub decoders_recycled: u64,
    /// Successful `cuvidReconfigureDecoder` calls (a few ms each).
    pub reconfigurations: u64,
    /// Pictures submitted to the hardware.
    pub frames_decoded: u64,
    /// Pictures queued for output.
    pub frames_queued: u64,
}

/// Per-16x16-block decode statistics (SDK 13.1 / driver 590+). Not produced by this version; see
/// [`NvdecSession::decode_stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Blocks per row.
    pub blocks_wide: u32,
    /// Block rows.
    pub blocks_high: u32,
    /// Luma QP per block.
    pub qp_luma: Vec<u8>,
    /// CU type per block (0 intra, 1 inter, 2 skip, 3 PCM, 7 invalid).
    pub cu_type: Vec<u8>,
    /// List-0 motion vector per block.
    pub mv0: Vec<(i16, i16)>,
    /// List-1 motion vector per block.
    pub mv1: Vec<(i16, i16)>,
}

/// One NVDEC decoder instance (handle plus what it was created for).
struct Decoder {
    handle: sys::CUvideodecoder,
    epoch: u64,
    codec: NvCodec,
    chroma: ChromaFormat,
    bit_depth: u32,
    surface_format: SurfaceFormat,
    coded: (u32, u32),
    max: (u32, u32),
    target: (u32, u32),
    num_surfaces: u32,
    display: Rect,
    caps: DecoderCaps,
    /// Bumped every time a picture is decoded into surface `i`.
    generations: Vec<u64>,
    /// `intra_pic_flag` of the last picture decoded into surface `i`.
    intra: Vec<bool>,
    /// `ulNumOutputSurfaces` and `DeinterlaceMode` it was created with.
    output_surfaces: u32,
    deinterlace: sys::cudaVideoDeinterlaceMode,
    /// Park it in the idle cache when dropped (instead of destroying it).
    recycle: bool,
    api: &'static NvcuvidApi,
    gpu: Arc<GpuContext>,
}

impl Drop for Decoder {
    fn drop(&mut self) {
        let parked = recycle::ParkedDecoder {
            api: self.api,
            handle: self.handle,
            gpu: self.gpu.clone(),
            key: self.parking_key(),
            max: self.max,
            coded: self.coded,
            target: self.target,
            num_surfaces: self.num_surfaces,
            caps: self.caps.clone(),
        };
        if self.recycle {
            recycle::park(parked);
        } else {
            recycle::destroy_later(parked);
        }
    }
}

impl Decoder {
    fn parking_key(&self) -> recycle::ParkingKey {
        recycle::ParkingKey {
            codec: self.codec,
            chroma: self.chroma,
            bit_depth: self.bit_depth,
            surface_format: self.surface_format,
            output_surfaces: self.output_surfaces,
            deinterlace: self.deinterlace,
        }
    }
}

/// Everything the parser callbacks touch. Lives behind a raw pointer (from `Box::into_raw`) that the parser holds
/// as `pUserData`.
struct State {
    api: &'static NvcuvidApi,
    gpu: Arc<GpuContext>,
    codec: NvCodec,
    latency: LatencyMode,
    display_delay: u32,
    extra_surfaces: u32,
    output_surfaces: u32,
    max_size: (u32, u32),
    deinterlace: Deinterlace,
    recycle: bool,
    decoder: Option<Decoder>,
    /// Replaced decoders that queued frames still refer to.
    retired: Vec<Decoder>,
    next_epoch: u64,
    format: Option<VideoFormat>,
    queue: VecDeque<DisplayedFrame>,
    sei_pending: HashMap<i32, Vec<SeiMessage>>,
    error: Option<Error>,
    rejected: Option<String>,
    discard: bool,
    current_pts: Option<i64>,
    stats: SessionStats,
}

enum SequenceAction {
    Keep,
    Reconfigure,
    Recreate,
}

impl State {
    /// NVDEC's capabilities for a stream of this GPU (asked once per process, see [`query_caps`]).
    fn caps(&self, codec: NvCodec, chroma: ChromaFormat, bit_depth: u32) -> Result<DecoderCaps> {
        query_caps(self.api, &self.gpu, codec, chroma, bit_depth)
    }

    fn on_sequence(
        &mut self,
        f: &sys::CUVIDEOFORMAT,
        av1_max: Option<(u32, u32)>,
    ) -> Result<c_int> {
        let vf = match VideoFormat::from_raw(f) {
            Ok(vf) => vf,
            Err(e) => {
                self.rejected = Some(e.to_string());
                return Err(e);
            }
        };
        match self.apply_sequence(&vf, av1_max) {
            Ok(n) => {
                self.rejected = None;
                self.format = Some(vf);
                Ok(n as c_int)
            }
            Err(e) => {
                self.rejected = Some(e.to_string());
                Err(e)
            }
        }
    }

    fn apply_sequence(&mut self, vf: &VideoFormat, av1_max: Option<(u32, u32)>) -> Result<u32> {
        if vf.codec != self.codec {
            return Err(Error::Unsupported(format!(
                "the stream is {} but the session was created for {}",
                vf.codec.name(),
                self.codec.name()
            )));
        }
        if vf.bit_depth_chroma != vf.bit_depth {
            return Err(Error::Unsupported(format!(
                "{}-bit luma with {}-bit chroma",
                vf.bit_depth, vf.bit_depth_chroma
            )));
        }
        let caps = self.caps(vf.codec, vf.chroma, vf.bit_depth)?;
        if !caps.supported {
            return Err(Error::Unsupported(format!(
                "NVDEC on {} does not decode {} {}-bit {}",
                self.gpu.name(),
                vf.codec.name(),
                vf.bit_depth,
                vf.chroma.name()
            )));
        }
        if !caps.supports_output(vf.surface_format) {
            return Err(Error::Unsupported(format!(
                "NVDEC on {} cannot output {:?} for {} {}-bit {} (output mask {:#x})",
                self.gpu.name(),
                vf.surface_format,
                vf.codec.name(),
                vf.bit_depth,
                vf.chroma.name(),
                caps.output_format_mask
            )));
        }
        caps.check_size(vf.coded_width, vf.coded_height)?;
        let min = vf.min_decode_surfaces.max(1);
        let wanted = (min + self.display_delay + self.extra_surfaces)
            .min(32)
            .max(min);
        let coded = (vf.coded_width, vf.coded_height);
        if self.decoder.is_none() && self.recycle {
            self.decoder = self.take_parked(vf);
        }

        let action = match &self.decoder {
            None => SequenceAction::Recreate,
            Some(d)
                if d.codec == vf.codec && d.chroma == vf.chroma && d.bit_depth == vf.bit_depth =>
            {
                let queued = self.queue.iter().any(|fr| fr.epoch == d.epoch);
                if d.coded == coded && d.num_surfaces >= wanted {
                    SequenceAction::Keep
                } else if coded.0 <= d.max.0
                    && coded.1 <= d.max.1
                    && !queued
                    && self.api.reconfigure_decoder.is_some()
                {
                    SequenceAction::Reconfigure
                } else {
                    SequenceAction::Recreate
                }
            }
            Some(_) => SequenceAction::Recreate,
        };
        match action {
            SequenceAction::Keep => {
                let d = self.decoder.as_mut().expect("matched Some");
                d.display = vf.display;
                Ok(d.num_surfaces)
            }
            SequenceAction::Reconfigure => {
                let epoch = self.next_epoch;
                let d = self.decoder.as_mut().expect("matched Some");
                let n = wanted.max(d.num_surfaces).min(32);
                let target = (align2(coded.0), align2(coded.1));
                let mut rc = sys::CUVIDRECONFIGUREDECODERINFO {
                    ulWidth: coded.0,
                    ulHeight: coded.1,
                    ulTargetWidth: target.0,
                    ulTargetHeight: target.1,
                    ulNumDecodeSurfaces: n,
                    display_area: sys::CUVIDRECT16 {
                        left: 0,
                        top: 0,
                        right: coded.0 as i16,
                        bottom: coded.1 as i16,
                    },
                    ..Default::default()
                };
                let f = self.api.reconfigure_decoder.expect("checked");
                // SAFETY: valid decoder handle, initialised struct, called from inside the sequence callback with
                // the context bound (nvcuvid's requirement); no frame of this decoder is mapped or queued.
                let code = unsafe { f(d.handle, &mut rc) };
                if code == 0 {
                    self.next_epoch += 1;
                    self.stats.reconfigurations += 1;
                    d.epoch = epoch;
                    d.coded = coded;
                    d.target = target;
                    d.num_surfaces = n;
                    d.display = vf.display;
                    d.generations = vec![0; n as usize];
                    d.intra = vec![false; n as usize];
                    return Ok(n);
                }
                // Fall back to a new decoder (e.g. the driver refused the size).
                self.recreate(vf, wanted, caps, av1_max)
            }
            SequenceAction::Recreate => self.recreate(vf, wanted, caps, av1_max),
        }
    }

    /// `DeinterlaceMode` for a decoder of `vf`'s stream.
    fn deinterlace_mode(&self, vf: &VideoFormat) -> sys::cudaVideoDeinterlaceMode {
        if vf.progressive {
            return sys::cudaVideoDeinterlaceMode_Weave;
        }
        match self.deinterlace {
            Deinterlace::Weave => sys::cudaVideoDeinterlaceMode_Weave,
            Deinterlace::Bob => sys::cudaVideoDeinterlaceMode_Bob,
            Deinterlace::Adaptive => sys::cudaVideoDeinterlaceMode_Adaptive,
        }
    }

    /// A parked decoder that can serve `vf` (after a reconfigure if its size differs), made this session's.
    fn take_parked(&mut self, vf: &VideoFormat) -> Option<Decoder> {
        let key = recycle::ParkingKey {
            codec: vf.codec,
            chroma: vf.chroma,
            bit_depth: vf.bit_depth,
            surface_format: vf.surface_format,
            output_surfaces: self.output_surfaces.max(1),
            deinterlace: self.deinterlace_mode(vf),
        };
        let p = recycle::take(&self.gpu, &key, (vf.coded_width, vf.coded_height))?;
        let epoch = self.next_epoch;
        self.next_epoch += 1;
        self.stats.decoders_recycled += 1;
        let n = p.num_surfaces as usize;
        Some(Decoder {
            handle: p.handle,
            epoch,
            codec: key.codec,
            chroma: key.chroma,
            bit_depth: key.bit_depth,
            surface_format: key.surface_format,
            coded: p.coded,
            max: p.max,
            target: p.target,
            num_surfaces: p.num_surfaces,
            display: vf.display,
            caps: p.caps.clone(),
            generations: vec![0; n],
            intra: vec![false; n],
            output_surfaces: key.output_surfaces,
            deinterlace: key.deinterlace,
            recycle: true,
            api: p.api,
            gpu: p.gpu.clone(),
        })
    }

    fn recreate(
        &mut self,
        vf: &VideoFormat,
        n: u32,
        caps: DecoderCaps,
        av1_max: Option<(u32, u32)>,
    ) -> Result<u32> {
        if let Some(old) = self.decoder.take() {
            if self.queue.iter().any(|fr| fr.epoch == old.epoch) {
                self.retired.push(old);
            }
        }
        let (aw, ah) = av1_max.unwrap_or((0, 0));
        let max_w = self
            .max_size
            .0
            .max(vf.coded_width)
            .max(aw)
            .min(caps.max_width)
            .max(vf.coded_width);
        let max_h = self
            .max_size
            .1
            .max(vf.coded_height)
            .max(ah)
            .min(caps.max_height)
            .max(vf.coded_height);
        let target = (align2(vf.coded_width), align2(vf.coded_height));
        let deinterlace = self.deinterlace_mode(vf);
        let mut ci = sys::CUVIDDECODECREATEINFO {
            ulWidth: c_ulong::from(vf.coded_width),
            ulHeight: c_ulong::from(vf.coded_height),
            ulNumDecodeSurfaces: c_ulong::from(n),
            CodecType: vf.codec.to_raw(),
            ChromaFormat: vf.chroma.to_raw(),
            ulCreationFlags: c_ulong::from(sys::cudaVideoCreate_PreferCUVID),
            bitDepthMinus8: c_ulong::from(vf.bit_depth - 8),
            ulIntraDecodeOnly: 0,
            ulMaxWidth: c_ulong::from(max_w),
            ulMaxHeight: c_ulong::from(max_h),
            Reserved1: 0,
            display_area: sys::CUVIDRECT16::default(),
            OutputFormat: vf.surface_format.to_raw(),
            DeinterlaceMode: deinterlace,
            ulTargetWidth: c_ulong::from(target.0),
            ulTargetHeight: c_ulong::from(target.1),
            ulNumOutputSurfaces: c_ulong::from(self.output_surfaces.max(1)),
            vidLock: std::ptr::null_mut(),
            target_rect: sys::CUVIDRECT16::default(),
            enableHistogram: 0,
            enableDecodeFeatures: 0,
            Reserved2: [0; 3],
        };
        let mut handle: sys::CUvideodecoder = std::ptr::null_mut();
        // SAFETY: `ci` is fully initialised and outlives the call; the context is bound (we are inside
        // cuvidParseVideoData, called with it bound); `handle` receives the new decoder.
        check("cuvidCreateDecoder", unsafe {
            (self.api.create_decoder)(&mut handle, &mut ci)
        })?;
        let epoch = self.next_epoch;
        self.next_epoch += 1;
        self.stats.decoders_created += 1;
        self.decoder = Some(Decoder {
            handle,
            epoch,
            codec: vf.codec,
            chroma: vf.chroma,
            bit_depth: vf.bit_depth,
            surface_format: vf.surface_format,
            coded: (vf.coded_width, vf.coded_height),
            max: (max_w, max_h),
            target,
            num_surfaces: n,
            display: vf.display,
            caps,
            generations: vec![0; n as usize],
            intra: vec![false; n as usize],
            output_surfaces: self.output_surfaces.max(1),
            deinterlace,
            recycle: self.recycle,
            api: self.api,
            gpu: self.gpu.clone(),
        });
        Ok(n)
    }

    fn no_decoder_error(&self) -> Error {
        match &self.rejected {
            Some(why) => Error::Unsupported(format!(
                "no decoder: the stream's sequence was rejected: {why}"
            )),
            None => Error::Nvdec {
                call: "cuvidDecodePicture (no decoder)",
                code: 1,
            },
        }
    }

    fn on_decode(&mut self, pic: *mut sys::CUVIDPICPARAMS) -> Result<c_int> {
        if self.discard {
            return Ok(1);
        }
        // After a rejected sequence the parser keeps calling back (driver 580): never decode the new stream's
        // pictures with a decoder made for the previous one.
        if self.decoder.is_none() || self.rejected.is_some() {
            return Err(self.no_decoder_error());
        }
        let d = self.decoder.as_mut().expect("checked");
        // SAFETY: the parser hands a valid CUVIDPICPARAMS for the duration of the callback.
        let p = unsafe { &*pic };
        let idx = p.curr_pic_idx();
        if idx < 0 {
            return Err(Error::Nvdec {
                call: "decode callback (negative CurrPicIdx)",
                code: 1,
            });
        }
        let i = idx as usize;
        if d.generations.len() <= i {
            d.generations.resize(i + 1, 0);
            d.intra.resize(i + 1, false);
        }
        d.generations[i] += 1;
        d.intra[i] = p.intra_pic_flag() != 0;
        // SAFETY: valid decoder handle; `pic` is the parser's own struct, passed through unchanged during the
        // callback; the context is bound.
        check("cuvidDecodePicture", unsafe {
            (self.api.decode_picture)(d.handle, pic)
        })?;
        self.stats.frames_decoded += 1;
        let complete = p.field_pic_flag() == 0 || p.second_field() != 0;
        if self.latency == LatencyMode::Zero && complete {
            let frame = DisplayedFrame {
                picture_index: idx,
                timestamp: self
                    .current_pts
                    .unwrap_or(self.stats.frames_decoded as i64 - 1),
                progressive: p.field_pic_flag() == 0,
                top_field_first: true,
                repeat_first_field: 0,
                key_frame: d.intra[i],
                sei: self.sei_pending.remove(&idx).unwrap_or_default(),
                epoch: d.epoch,
                generation: d.generations[i],
            };
            self.queue.push_back(frame);
            self.stats.frames_queued += 1;
        }
        Ok(1)
    }

    fn on_display(&mut self, info: *mut sys::CUVIDPARSERDISPINFO) -> Result<c_int> {
        if info.is_null() {
            return Ok(1); // NOTIFY_EOS marker
        }
        // SAFETY: non-null pointer from the parser, valid during the callback.
        let di = unsafe { *info };
        if self.discard {
            self.sei_pending.remove(&di.picture_index);
            return Ok(1);
        }
        let Some(d) = self.decoder.as_ref().filter(|_| self.rejected.is_none()) else {
            return Err(self.no_decoder_error());
        };
        let i = di.picture_index.max(0) as usize;
        let frame = DisplayedFrame {
            picture_index: di.picture_index,
            timestamp: di.timestamp,
            progressive: di.progressive_frame != 0,
            top_field_first: di.top_field_first != 0,
            repeat_first_field: di.repeat_first_field,
            key_frame: d.intra.get(i).copied().unwrap_or(false),
            sei: self
                .sei_pending
                .remove(&di.picture_index)
                .unwrap_or_default(),
            epoch: d.epoch,
            generation: d.generations.get(i).copied().unwrap_or(0),
        };
        self.queue.push_back(frame);
        self.stats.frames_queued += 1;
        Ok(1)
    }

    fn on_sei(&mut self, info: *mut sys::CUVIDSEIMESSAGEINFO) -> Result<c_int> {
        if self.discard || info.is_null() {
            return Ok(1);
        }
        // SAFETY: non-null pointer from the parser, valid during the callback.
        let si = unsafe { *info };
        let count = si.sei_message_count as usize;
        if count == 0 || si.pSEIMessage.is_null() {
            return Ok(1);
        }
        // SAFETY: the parser provides `count` message headers at pSEIMessage, valid during the callback.
        let headers = unsafe { std::slice::from_raw_parts(si.pSEIMessage, count) };
        let total: usize = headers.iter().map(|h| h.sei_message_size as usize).sum();
        if total > 0 && si.pSEIData.is_null() {
            return Ok(1);
        }
        let data: &[u8] = if total == 0 {
            &[]
        } else {
            // SAFETY: pSEIData holds all payloads concatenated (sum of the sizes), valid during the callback.
            unsafe { std::slice::from_raw_parts(si.pSEIData as *const u8, total) }
        };
        let mut msgs = Vec::with_capacity(count);
        let mut off = 0;
        for h in headers {
            let end = off + h.sei_message_size as usize;
            msgs.push(SeiMessage {
                sei_type: h.sei_message_type,
                payload: data[off..end].to_vec(),
            });
            off = end;
        }
        let idx = si.picIdx as i32;
        if self.latency == LatencyMode::Zero {
            // The picture may already have been queued by the decode callback.
            if let (Some(back), Some(d)) = (self.queue.back_mut(), self.decoder.as_ref()) {
                let gen = d.generations.get(idx.max(0) as usize).copied().unwrap_or(0);
                if back.picture_index == idx && back.epoch == d.epoch && back.generation == gen {
                    back.sei.extend(msgs);
                    return Ok(1);
                }
            }
        }
        self.sei_pending.entry(idx).or_default().extend(msgs);
        Ok(1)
    }
}

fn align2(v: u32) -> u32 {
    (v + 1) & !1
}

/// Runs a callback body on the state behind `state`, converting errors and panics into the sticky error.
fn run_callback(state: *mut State, body: impl FnOnce(&mut State) -> Result<c_int>) -> c_int {
    // SAFETY: `state` is the pointer registered as pUserData; callbacks only run synchronously inside
    // cuvidParseVideoData, which NvdecSession calls while holding `&mut self` and no reference into the state.
    // Each access below creates the only live reference for its duration.
    if unsafe { (*state).error.is_some() } {
        return 0;
    }
    // SAFETY: as above.
    let result = catch_unwind(AssertUnwindSafe(|| body(unsafe { &mut *state })));
    let err = match result {
        Ok(Ok(v)) => return v,
        Ok(Err(e)) => e,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Error::Cuda {
                call: "NVDEC parser callback",
                reason: format!("panicked: {msg}"),
            }
        }
    };
    // SAFETY: as above; the body's reference has ended.
    unsafe { (*state).error = Some(err) };
    0
}

unsafe extern "C" fn sequence_callback(user: *mut c_void, fmt: *mut sys::CUVIDEOFORMAT) -> c_int {
    if user.is_null() || fmt.is_null() {
        return 0;
    }
    // SAFETY: the parser passes a valid CUVIDEOFORMAT for the duration of the callback.
    let f = unsafe { *fmt };
    let av1_max = if f.codec == sys::cudaVideoCodec_AV1 && f.seqhdr_data_length > 0 {
        // SAFETY: for AV1 with seqhdr_data_length > 0 the parser hands a CUVIDEOFORMATEX (NVIDIA's NvDecoder reads
        // it the same way); only the first 8 bytes of the union are read.
        let ex = unsafe { &*(fmt as *const sys::CUVIDEOFORMATEX) };
        Some((ex.av1_max_width(), ex.av1_max_height()))
    } else {
        None
    };
    run_callback(user as *mut State, |s| s.on_sequence(&f, av1_max))
}

unsafe extern "C" fn decode_callback(user: *mut c_void, pic: *mut sys::CUVIDPICPARAMS) -> c_int {
    if user.is_null() || pic.is_null() {
        return 0;
    }
    run_callback(user as *mut State, |s| s.on_decode(pic))
}

unsafe extern "C" fn display_callback(
    user: *mut c_void,
    info: *mut sys::CUVIDPARSERDISPINFO,
) -> c_int {
    if user.is_null() {
        return 0;
    }
    run_callback(user as *mut State, |s| s.on_display(info))
}

unsafe extern "C" fn sei_callback(user: *mut c_void, info: *mut sys::CUVIDSEIMESSAGEINFO) -> c_int {
    if user.is_null() {
        return 0;
    }
    run_callback(user as *mut State, |s| s.on_sei(info))
}

/// A decode session: an NVDEC parser and the decoder it creates (see the module docs).
///
/// Not `Sync`; `Send`, so it can live in a worker thread (every call binds the GPU context to the calling
/// thread).
pub struct NvdecSession {
    parser: sys::CUvideoparser,
    state: *mut State,
    /// The out-of-band sequence header handed to the parser; must outlive it.
    _ext: Option<Box<sys::CUVIDEOFORMATEX>>,
    gpu: Arc<GpuContext>,
    api: &'static NvcuvidApi,
    cfg: SessionConfig,
}

// SAFETY: the parser/decoder handles and the state are only used through `&mut self`/`&self` methods, each of which
// binds the context on the calling thread first; nvcuvid objects are not tied to the creating thread.
unsafe impl Send for NvdecSession {}

impl std::fmt::Debug for NvdecSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvdecSession")
            .field("config", &self.cfg)
            .field("format", &self.format())
            .field("queued", &self.queued_frames())
            .finish()
    }
}

impl NvdecSession {
    /// Creates the parser for `cfg.codec` on `gpu`. The decoder itself is created by the first sequence header
    /// (in the first `decode` call, or here when `cfg.sequence_header` is given).
    ///
    /// Errors: [`Error::GpuUnavailable`] without libnvcuvid; [`Error::Nvdec`] when the parser cannot be created;
    /// [`Error::Unsupported`] when the sequence header describes a stream this GPU cannot decode.
    pub fn new(gpu: Arc<GpuContext>, cfg: SessionConfig) -> Result<Self> {
        let api = api()?;
        if cfg.output_surfaces == 0 || cfg.output_surfaces > 64 {
            return Err(Error::InvalidArgument(format!(
                "output_surfaces {} (1..=64)",
                cfg.output_surfaces
            )));
        }
        gpu.bind()?;
        let state = Box::new(State {
            api,
            gpu: gpu.clone(),
            codec: cfg.codec,
            latency: cfg.latency,
            display_delay: cfg.effective_display_delay(),
            extra_surfaces: cfg.extra_decode_surfaces,
            output_surfaces: cfg.output_surfaces,
            max_size: (cfg.max_width, cfg.max_height),
            deinterlace: cfg.deinterlace,
            recycle: cfg.recycle_decoders,
            decoder: None,
            retired: Vec::new(),
            next_epoch: 1,
            format: None,
            queue: VecDeque::new(),
            sei_pending: HashMap::new(),
            error: None,
            rejected: None,
            discard: false,
            current_pts: None,
            stats: SessionStats::default(),
        });
        let state = Box::into_raw(state);

        let mut ext = cfg
            .sequence_header
            .as_ref()
            .filter(|h| !h.is_empty() && h.len() <= 1024)
            .map(|h| {
                let mut ex = Box::new(sys::CUVIDEOFORMATEX {
                    format: sys::CUVIDEOFORMAT {
                        codec: cfg.codec.to_raw(),
                        seqhdr_data_length: h.len() as u32,
                        ..Default::default()
                    },
                    raw_seqhdr_data: [0; 1024],
                });
                ex.raw_seqhdr_data[..h.len()].copy_from_slice(h);
                ex
            });
        let mut params = sys::CUVIDPARSERPARAMS {
            CodecType: cfg.codec.to_raw(),
            ulMaxNumDecodeSurfaces: 1,
            ulClockRate: cfg.clock_rate,
            ulErrorThreshold: cfg.error_threshold.min(100),
            ulMaxDisplayDelay: cfg.effective_display_delay(),
            bitfields: 0,
            uReserved1: [0; 4],
            pUserData: state as *mut c_void,
            pfnSequenceCallback: Some(sequence_callback),
            pfnDecodePicture: Some(decode_callback),
            pfnDisplayPicture: if cfg.latency == LatencyMode::Zero {
                None
            } else {
                Some(display_callback)
            },
            pfnGetOperatingPoint: None,
            pfnGetSEIMsg: if cfg.extract_sei {
                Some(sei_callback)
            } else {
                None
            },
            pvReserved2: [std::ptr::null_mut(); 5],
            pExtVideoInfo: ext.as_mut().map_or(std::ptr::null_mut(), |b| {
                &mut **b as *mut sys::CUVIDEOFORMATEX
            }),
        };
        let mut parser: sys::CUvideoparser = std::ptr::null_mut();
        // SAFETY: `params` is fully initialised; the callbacks are `extern "C"` functions that never unwind; the
        // user pointer and the ext info stay valid until the parser is destroyed (Drop destroys the parser first).
        let rc = unsafe { (api.create_video_parser)(&mut parser, &mut params) };
        if let Err(e) = check("cuvidCreateVideoParser", rc) {
            // SAFETY: the parser was not created, so nothing else holds `state`.
            drop(unsafe { Box::from_raw(state) });
            return Err(e);
        }
        let mut session = NvdecSession {
            parser,
            state,
            _ext: ext,
            gpu,
            api,
            cfg,
        };
        session.feed_sequence_header()?;
        Ok(session)
    }

    fn feed_sequence_header(&mut self) -> Result<()> {
        if let Some(h) = self.cfg.sequence_header.take() {
            let r = self.parse(0, &h, None);
            self.cfg.sequence_header = Some(h);
            r?;
        }
        Ok(())
    }

    fn st(&self) -> &State {
        // SAFETY: `state` comes from Box::into_raw and lives until Drop; callbacks only run inside `parse`, which
        // holds `&mut self`, so no mutable reference exists while `&self` is borrowed.
        unsafe { &*self.state }
    }

    fn st_mut(&mut self) -> &mut State {
        // SAFETY: as in `st`; `&mut self` makes this the only reference.
        unsafe { &mut *self.state }
    }

    fn parse(
        &mut self,
        flags: sys::CUvideopacketflags,
        data: &[u8],
        pts: Option<i64>,
    ) -> Result<()> {
        self.gpu.bind()?;
        {
            let s = self.st_mut();
            s.current_pts = pts;
            // Drop decoders no queued frame refers to any more.
            let queue = &s.queue;
            s.retired
                .retain(|d| queue.iter().any(|f| f.epoch == d.epoch));
        }
        let mut flags = flags;
        if pts.is_some() {
            flags |= sys::CUVID_PKT_TIMESTAMP;
        }
        let mut pkt = sys::CUVIDSOURCEDATAPACKET {
            flags,
            payload_size: data.len() as c_ulong,
            payload: if data.is_empty() {
                std::ptr::null()
            } else {
                data.as_ptr()
            },
            timestamp: pts.unwrap_or(0),
        };
        // SAFETY: valid parser handle; `pkt` and `data` outlive the call; the context is bound; the callbacks reach
        // the state through the raw pointer while no Rust reference to it is live.
        let rc = unsafe { (self.api.parse_video_data)(self.parser, &mut pkt) };
        let s = self.st_mut();
        s.current_pts = None;
        if let Some(e) = s.error.take() {
            return Err(e);
        }
        check("cuvidParseVideoData", rc)
    }

    /// Feeds one packet of the Annex-B byte stream with presentation timestamp `pts` (in the units of
    /// [`SessionConfig::clock_rate`]). `end_of_picture` says the packet holds exactly one whole picture (it is
    /// always set in Low/Zero latency). Displayed pictures are queued for [`NvdecSession::next_frame`]. Returns the
    /// first error any callback hit (unsupported stream, decode failure).
    pub fn decode(&mut self, data: &[u8], pts: i64, end_of_picture: bool) -> Result<()> {
        self.decode_packet(data, Some(pts), end_of_picture)
    }

    /// Like [`NvdecSession::decode`] for data without a timestamp (e.g. arbitrary chunks of an elementary
    /// stream): the parser synthesises timestamps from the frame rate.
    pub fn decode_untimed(&mut self, data: &[u8], end_of_picture: bool) -> Result<()> {
        self.decode_packet(data, None, end_of_picture)
    }

    fn decode_packet(&mut self, data: &[u8], pts: Option<i64>, end_of_picture: bool) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let eop = end_of_picture || self.cfg.latency != LatencyMode::Native;
        self.parse(if eop { sys::CUVID_PKT_ENDOFPICTURE } else { 0 }, data, pts)
    }

    /// End of stream: every picture still held by the parser is decoded and queued. Decoding may continue
    /// afterwards (from a keyframe with its parameter sets).
    pub fn flush(&mut self) -> Result<()> {
        self.parse(sys::CUVID_PKT_ENDOFSTREAM, &[], None)
    }

    /// Prepares for data from a new position (after a seek): pictures still inside the parser are dropped
    /// without being decoded or queued, the queue and pending SEI are cleared, and the out-of-band sequence header
    /// (if any) is fed again. Continue with a keyframe (IDR, or a recovery point with its parameter sets). The
    /// decoder is kept (no 50 ms re-creation).
    pub fn reset(&mut self) -> Result<()> {
        self.st_mut().discard = true;
        let flushed = self.parse(sys::CUVID_PKT_ENDOFSTREAM, &[], None);
        {
            let s = self.st_mut();
            s.discard = false;
            s.queue.clear();
            s.sei_pending.clear();
            s.error = None;
            s.retired.clear();
        }
        // A failed flush of pictures we throw away does not matter; a broken context shows up on the next call.
        drop(flushed);
        self.feed_sequence_header()
    }

    /// Switches the session to another stream of the same codec (the decoder pool's reuse path): like
    /// [`NvdecSession::reset`], then `sequence_header` (the new stream's Annex-B parameter sets, or `None` when
    /// they are in-band) replaces the configured one and is fed. The next sequence header reconfigures the decoder
    /// when the new coded size fits [`SessionConfig::max_width`] x [`SessionConfig::max_height`] (a few ms), and
    /// recreates it otherwise or when bit depth / chroma format change.
    pub fn start_stream(&mut self, sequence_header: Option<Vec<u8>>) -> Result<()> {
        self.cfg.sequence_header = None;
        self.reset()?;
        self.cfg.sequence_header = sequence_header.filter(|h| !h.is_empty());
        self.feed_sequence_header()
    }

    /// The next decoded picture, if any.
    pub fn next_frame(&mut self) -> Option<DisplayedFrame> {
        self.st_mut().queue.pop_front()
    }

    /// Pictures waiting in the queue.
    pub fn queued_frames(&self) -> usize {
        self.st().queue.len()
    }

    /// Pictures submitted to the hardware so far.
    pub fn frames_decoded(&self) -> u64 {
        self.st().stats.frames_decoded
    }

    /// Counters: decoders created, reconfigurations, frames decoded and queued.
    pub fn stats(&self) -> SessionStats {
        self.st().stats
    }

    /// The stream format from the last sequence header (`None` before the first one).
    pub fn format(&self) -> Option<&VideoFormat> {
        self.st().format.as_ref()
    }

    /// The capabilities NVDEC reported for the current stream (`None` before the first sequence header).
    pub fn caps(&self) -> Option<&DecoderCaps> {
        self.st().decoder.as_ref().map(|d| &d.caps)
    }

    /// Number of decode surfaces of the current decoder.
    pub fn decode_surfaces(&self) -> Option<u32> {
        self.st().decoder.as_ref().map(|d| d.num_surfaces)
    }

    /// The session's settings.
    pub fn config(&self) -> &SessionConfig {
        &self.cfg
    }

    /// The GPU the session decodes on.
    pub fn gpu(&self) -> &Arc<GpuContext> {
        &self.gpu
    }

    /// Maps `frame` for reading: NVDEC post-processes it into an output surface on `stream` (which must belong to
    /// this session's GPU). Convert it on the same stream; dropping the [`MappedSurface`] waits for that stream and
    /// unmaps. Only one frame can be mapped at a time (the surface borrows the session).
    pub fn map<'a>(
        &'a mut self,
        frame: &DisplayedFrame,
        stream: &'a GpuStream,
    ) -> Result<MappedSurface<'a>> {
        if stream.gpu().cu_context() != self.gpu.cu_context() {
            return Err(Error::InvalidArgument(
                "map: the stream belongs to another GPU context".into(),
            ));
        }
        self.gpu.bind()?;
        let api = self.api;
        let gpu = self.gpu.clone();
        let s = self.st();
        let dec = s
            .decoder
            .iter()
            .chain(s.retired.iter())
            .find(|d| d.epoch == frame.epoch)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "picture {} belongs to a decoder that has since been reconfigured or replaced (a new sequence \
                     began); map frames before feeding the next sequence",
                    frame.picture_index
                ))
            })?;
        let idx = frame.picture_index;
        if idx < 0 || dec.generations.get(idx as usize).copied() != Some(frame.generation) {
            return Err(Error::InvalidArgument(format!(
                "picture {idx} was overwritten by a later picture before it was mapped: map queued frames sooner, \
                 or raise SessionConfig::extra_decode_surfaces"
            )));
        }
        let mut proc = sys::CUVIDPROCPARAMS {
            progressive_frame: c_int::from(frame.progressive),
            second_field: 0,
            top_field_first: c_int::from(frame.top_field_first),
            unpaired_field: c_int::from(frame.repeat_first_field < 0),
            reserved_flags: 0,
            reserved_zero: 0,
            raw_input_dptr: 0,
            raw_input_pitch: 0,
            raw_input_format: 0,
            raw_output_dptr: 0,
            raw_output_pitch: 0,
            Reserved1: 0,
            output_stream: stream.raw() as *mut c_void,
            Reserved: [0; 46],
            histogram_dptr: std::ptr::null_mut(),
            pCuvidProcExt: std::ptr::null_mut(),
        };
        let (mut dptr, mut pitch) = (0u64, 0u32);
        // SAFETY: valid decoder handle and picture index; all out-pointers are valid locals; the context is bound.
        check("cuvidMapVideoFrame64", unsafe {
            (api.map_video_frame)(dec.handle, idx, &mut dptr, &mut pitch, &mut proc)
        })?;
        Ok(MappedSurface {
            api,
            gpu,
            handle: dec.handle,
            dptr,
            pitch: pitch as usize,
            surface: dec.target,
            format: dec.surface_format,
            bit_depth: dec.bit_depth,
            display: dec.display,
            picture_index: idx,
            timestamp: frame.timestamp,
            stream,
            mapped: true,
            _session: PhantomData,
        })
    }

    /// `cuvidGetDecodeStatus` for a picture of the current decoder. Not a wait: map the frame to wait for it.
    pub fn decode_status(&self, picture_index: i32) -> Result<DecodeStatus> {
        let Some(f) = self.api.get_decode_status else {
            return Err(Error::Unsupported(
                "this NVIDIA driver has no cuvidGetDecodeStatus".into(),
            ));
        };
        let Some(d) = self.st().decoder.as_ref() else {
            return Err(Error::InvalidArgument(
                "no decoder yet (no sequence header seen)".into(),
            ));
        };
        self.gpu.bind()?;
        let mut out = sys::CUVIDGETDECODESTATUS {
            decodeStatus: 0,
            reserved: [0; 31],
            pReserved: [std::ptr::null_mut(); 8],
        };
        // SAFETY: valid decoder handle, valid out-struct, context bound.
        check("cuvidGetDecodeStatus", unsafe {
            f(d.handle, picture_index, &mut out)
        })?;
        Ok(DecodeStatus::from_raw(out.decodeStatus))
    }

    /// Whether NVDEC reports decode statistics for the current stream (the SDK 13.1 capability byte; needs a
    /// 590+ driver). False before the first sequence header.
    pub fn decode_stats_supported(&self) -> bool {
        self.caps().is_some_and(|c| c.decode_stats)
    }

    /// Per-block decode statistics of `frame`. Always an [`Error::Unsupported`] in this version: on drivers
    /// before 590 (the H100 here runs 580) the capability is absent, and the statistics buffer layout is not fully
    /// documented, so vidloader does not enable the feature yet.
    pub fn decode_stats(&self, frame: &DisplayedFrame) -> Result<DecodeStats> {
        let _ = frame;
        if !self.decode_stats_supported() {
            return Err(Error::Unsupported(
                "decode statistics need driver >= 590 (NVDEC SDK 13.1 'bIsDecodeStatsSupported'); this GPU/driver \
                 does not report them"
                    .into(),
            ));
        }
        Err(Error::Unsupported(
            "decode statistics are reported by this driver but not yet implemented by vidloader"
                .into(),
        ))
    }
}

impl Drop for NvdecSession {
    fn drop(&mut self) {
        let _ = self.gpu.bind();
        if !self.parser.is_null() {
            // SAFETY: the parser came from cuvidCreateVideoParser and is destroyed once, before the state it calls
            // back into.
            let _ = unsafe { (self.api.destroy_video_parser)(self.parser) };
            self.parser = std::ptr::null_mut();
        }
        // SAFETY: `state` came from Box::into_raw; the parser that held it is gone. Dropping it destroys the
        // decoders (each binds the context first).
        drop(unsafe { Box::from_raw(self.state) });
    }
}

/// A mapped NVDEC frame: device pointer, pitch and layout of the post-processed surface. Unmapped on drop, after
/// waiting for the stream it was mapped on (so conversions queued on that stream have read it).
pub struct MappedSurface<'a> {
    api: &'static NvcuvidApi,
    gpu: Arc<GpuContext>,
    handle: sys::CUvideodecoder,
    dptr: u64,
    pitch: usize,
    surface: (u32, u32),
    format: SurfaceFormat,
    bit_depth: u32,
    display: Rect,
    picture_index: i32,
    timestamp: i64,
    stream: &'a GpuStream,
    mapped: bool,
    _session: PhantomData<&'a mut NvdecSession>,
}

impl std::fmt::Debug for MappedSurface<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedSurface")
            .field("dptr", &format_args!("{:#x}", self.dptr))
            .field("pitch", &self.pitch)
            .field("surface", &self.surface)
            .field("format", &self.format)
            .field("bit_depth", &self.bit_depth)
            .field("display", &self.display)
            .field("picture_index", &self.picture_index)
            .finish()
    }
}

impl MappedSurface<'_> {
    /// Device address of the surface (luma plane, row 0).
    pub fn device_ptr(&self) -> u64 {
        self.dptr
    }
    /// Row pitch in bytes (all planes).
    pub fn pitch(&self) -> usize {
        self.pitch
    }
    /// Surface width (the decoder's target width: the coded width rounded up to even).
    pub fn surface_width(&self) -> u32 {
        self.surface.0
    }
    /// Surface height (the decoder's target height).
    pub fn surface_height(&self) -> u32 {
        self.surface.1
    }
    /// Byte offset of the chroma plane: `pitch * align2(surface_height)` (the 4:4:4 V plane is twice that).
    pub fn chroma_offset(&self) -> usize {
        self.pitch * align2(self.surface.1) as usize
    }
    /// Surface format.
    pub fn format(&self) -> SurfaceFormat {
        self.format
    }
    /// Bit depth of the stream.
    pub fn bit_depth(&self) -> u32 {
        self.bit_depth
    }
    /// The visible area inside the surface.
    pub fn display_area(&self) -> Rect {
        self.display
    }
    /// Visible width.
    pub fn width(&self) -> u32 {
        self.display.width
    }
    /// Visible height.
    pub fn height(&self) -> u32 {
        self.display.height
    }
    /// The frame's picture index.
    pub fn picture_index(&self) -> i32 {
        self.picture_index
    }
    /// The frame's timestamp.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The visible picture as conversion input (plane addresses at the visible origin). Conversions must be
    /// issued on the stream the frame was mapped on.
    pub fn source(&self) -> Result<SourceSurface<'_>> {
        let d = self.display;
        // SAFETY: the surface (luma + chroma planes at pitch * align2(target height), nvdec.md 5.9) stays mapped
        // while `self` is borrowed, and the drop waits for the stream the conversions are required to use.
        let s = unsafe {
            SourceSurface::from_raw_nvdec(
                self.dptr,
                self.pitch,
                self.surface.0,
                self.surface.1,
                self.format,
                self.bit_depth,
                (d.left, d.top, d.width, d.height),
            )
        }?;
        Ok(s.with_required_stream(self.stream))
    }

    /// Waits for the stream, then unmaps, reporting errors (dropping does the same and ignores them).
    pub fn unmap(mut self) -> Result<()> {
        self.release()
    }

    fn release(&mut self) -> Result<()> {
        if !self.mapped {
            return Ok(());
        }
        self.mapped = false;
        let synced = self.stream.synchronize();
        self.gpu.bind()?;
        // SAFETY: unmapping the exact pointer cuvidMapVideoFrame64 returned for this decoder, once; the work that
        // read it has finished (stream synchronised above).
        let unmapped = check("cuvidUnmapVideoFrame64", unsafe {
            (self.api.unmap_video_frame)(self.handle, self.dptr)
        });
        synced.and(unmapped)
    }
}

impl Drop for MappedSurface<'_> {
    fn drop(&mut self) {
        let _ = self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_format() -> sys::CUVIDEOFORMAT {
        sys::CUVIDEOFORMAT {
            codec: sys::cudaVideoCodec_H264,
            frame_rate: sys::CUVIDFRAMERATE {
                numerator: 30,
                denominator: 1,
            },
            progressive_sequence: 1,
            min_num_decode_surfaces: 4,
            coded_width: 320,
            coded_height: 192,
            display_area: sys::CUVIDRECT32 {
                left: 0,
                top: 0,
                right: 320,
                bottom: 180,
            },
            chroma_format: sys::cudaVideoChromaFormat_420,
            video_signal_description: sys::CUVIDSIGNALDESC {
                flags: 0x05,
                color_primaries: 2,
                transfer_characteristics: 2,
                matrix_coefficients: 2,
            },
            ..Default::default()
        }
    }

    #[test]
    fn video_format_from_raw() {
        let vf = VideoFormat::from_raw(&raw_format()).unwrap();
        assert_eq!(vf.codec, NvCodec::H264);
        assert_eq!((vf.coded_width, vf.coded_height), (320, 192));
        assert_eq!(
            vf.display,
            Rect {
                left: 0,
                top: 0,
                width: 320,
                height: 180
            }
        );
        assert_eq!(vf.surface_format, SurfaceFormat::Nv12);
        assert_eq!(vf.color.color_matrix(), ColorMatrix::Bt601);
        assert_eq!(vf.color.color_range(), ColorRange::Limited);
        assert_eq!(vf.color.video_format, 5);

        let mut f = raw_format();
        f.bit_depth_luma_minus8 = 2;
        f.bit_depth_chroma_minus8 = 2;
        f.video_signal_description.matrix_coefficients = 9;
        f.video_signal_description.flags = 0x0D;
        let vf = VideoFormat::from_raw(&f).unwrap();
        assert_eq!(vf.surface_format, SurfaceFormat::P016);
        assert_eq!(vf.color.color_matrix(), ColorMatrix::Bt2020);
        assert_eq!(vf.color.color_range(), ColorRange::Full);

        f.chroma_format = sys::cudaVideoChromaFormat_444;
        assert_eq!(
            VideoFormat::from_raw(&f).unwrap().surface_format,
            SurfaceFormat::Yuv444_16Bit
        );
        f.chroma_format = sys::cudaVideoChromaFormat_422;
        assert!(matches!(
            VideoFormat::from_raw(&f),
            Err(Error::Unsupported(_))
        ));

        // A bogus display area falls back to the coded size.
        let mut f = raw_format();
        f.display_area = sys::CUVIDRECT32::default();
        assert_eq!(
            VideoFormat::from_raw(&f).unwrap().display,
            Rect {
                left: 0,
                top: 0,
                width: 320,
                height: 192
            }
        );
    }

    #[test]
    fn config_defaults_and_delays() {
        let mut c = SessionConfig::new(NvCodec::Hevc);
        assert_eq!(c.effective_display_delay(), 1);
        c.display_delay = Some(4);
        assert_eq!(c.effective_display_delay(), 4);
        c.latency = LatencyMode::Low;
        assert_eq!(c.effective_display_delay(), 0);
        c.latency = LatencyMode::Zero;
        assert_eq!(c.effective_display_delay(), 0);
    }

    #[test]
    fn session_without_nvdec_is_a_typed_error() {
        if crate::nvdec::is_available() {
            return;
        }
        // Without libnvcuvid no context can be made either, but the codepath must not panic.
        if let Ok(gpu) = GpuContext::new(0) {
            assert!(matches!(
                NvdecSession::new(gpu, SessionConfig::new(NvCodec::H264)),
                Err(Error::GpuUnavailable(_))
            ));
        }
    }
}
