//! What an [`super::NvdecSession`] is asked for and reports: its settings ([`SessionOptions`], [`LatencyMode`],
//! [`Deinterlace`]), the stream format from the last sequence header ([`VideoFormat`], [`ColorDescription`],
//! [`Rect`]), the pictures it hands out ([`DisplayedFrame`], [`SeiMessage`], [`DecodeStatus`]) and its counters
//! ([`SessionStats`], [`DecodeStats`]).

use std::ffi::c_int;

use super::caps::{ChromaFormat, NvCodec};
use super::sys;
use crate::cuda::SurfaceFormat;
use crate::error::{Error, Result};
use crate::frame::color::{ColorMatrix, ColorRange};

/// How early decoded pictures are handed out (PyNvVideoCodec's latency modes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum LatencyMode {
    /// Display order with the parser's display queue (`ulMaxDisplayDelay` = [`SessionOptions::display_delay`],
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

/// Settings of an [`super::NvdecSession`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionOptions {
    /// The codec of the stream.
    pub codec: NvCodec,
    /// Largest coded width the session should handle without recreating its decoder (0 = the first stream's).
    /// Later sequences up to this size reuse the decoder through `cuvidReconfigureDecoder`.
    pub max_width: u32,
    /// Largest coded height, as [`SessionOptions::max_width`].
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
    /// `h264_mp4toannexb`). Given to the parser at creation and again after every [`super::NvdecSession::reset`].
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

impl SessionOptions {
    /// Defaults for `codec`: native latency, no SEI, sizes from the first sequence.
    pub fn new(codec: NvCodec) -> Self {
        SessionOptions {
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

    pub(crate) fn effective_display_delay(&self) -> u32 {
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
/// 8-byte `SEICONTENTLIGHTLEVELINFO`, 147 one byte (layouts as in the SDK's `nvcuvid.h`).
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

    pub(crate) fn from_raw(f: &sys::CUVIDEOFORMAT) -> Result<Self> {
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
    /// Presentation timestamp: the packets' pts, which the parser hands out again in display order, or
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
    /// SEI messages of this picture (empty unless [`SessionOptions::extract_sei`]).
    pub sei: Vec<SeiMessage>,
    pub(crate) epoch: u64,
    pub(crate) generation: u64,
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
    pub(crate) fn from_raw(v: u32) -> Self {
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
    /// ([`SessionOptions::recycle_decoders`]).
    pub decoders_recycled: u64,
    /// Successful `cuvidReconfigureDecoder` calls (a few ms each).
    pub reconfigurations: u64,
    /// Pictures submitted to the hardware.
    pub frames_decoded: u64,
    /// Pictures queued for output.
    pub frames_queued: u64,
}

/// Per-16x16-block decode statistics (SDK 13.1 / driver 590+). Not produced by this version; see
/// [`super::NvdecSession::decode_stats`].
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
        let mut c = SessionOptions::new(NvCodec::Hevc);
        assert_eq!(c.effective_display_delay(), 1);
        c.display_delay = Some(4);
        assert_eq!(c.effective_display_delay(), 4);
        c.latency = LatencyMode::Low;
        assert_eq!(c.effective_display_delay(), 0);
        c.latency = LatencyMode::Zero;
        assert_eq!(c.effective_display_delay(), 0);
    }
}
