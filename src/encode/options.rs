//! Encoder settings with PyNvVideoCodec's parameter names, the pixel layouts an encoder accepts, and the
//! per-frame flags. Plain values: nothing here touches FFmpeg.

use crate::{ColorMatrix, ColorRange, Error, Result};

/// The compression standard to encode to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Codec {
    /// H.264 / AVC (`h264_nvenc`, else `libx264`).
    #[default]
    H264,
    /// H.265 / HEVC (`hevc_nvenc`, else `libx265`).
    Hevc,
    /// AV1 (`av1_nvenc`, else `libsvtav1`, else `libaom-av1`).
    Av1,
}

impl Codec {
    /// The name used on the command line and in file names (`h264`, `hevc`, `av1`).
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::Hevc => "hevc",
            Codec::Av1 => "av1",
        }
    }
}

impl std::str::FromStr for Codec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "h264" | "avc" => Ok(Codec::H264),
            "hevc" | "h265" => Ok(Codec::Hevc),
            "av1" => Ok(Codec::Av1),
            _ => Err(Error::InvalidArgument(format!(
                "unknown codec {s:?} (h264, hevc, av1)"
            ))),
        }
    }
}

/// NVENC's presets, P1 (fastest) to P7 (best quality); each backend maps them onto its own scale (see the table
/// in the docs of [`EncoderOptions`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Preset {
    /// Fastest.
    P1,
    /// Faster.
    P2,
    /// Fast.
    P3,
    /// Between fast and slow: PyNvVideoCodec's default.
    #[default]
    P4,
    /// Slow.
    P5,
    /// Slower.
    P6,
    /// Slowest, best quality.
    P7,
}

impl Preset {
    /// 1 for P1 ... 7 for P7.
    pub fn number(self) -> u8 {
        self as u8 + 1
    }
}

impl std::str::FromStr for Preset {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "p1" => Ok(Preset::P1),
            "p2" => Ok(Preset::P2),
            "p3" => Ok(Preset::P3),
            "p4" => Ok(Preset::P4),
            "p5" => Ok(Preset::P5),
            "p6" => Ok(Preset::P6),
            "p7" => Ok(Preset::P7),
            _ => Err(Error::InvalidArgument(format!(
                "unknown preset {s:?} (p1 .. p7)"
            ))),
        }
    }
}

/// NVENC's tuning information.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Tuning {
    /// Quality first (the default).
    #[default]
    HighQuality,
    /// No frame is held back for look-ahead or B-frames beyond what the settings ask for.
    LowLatency,
    /// As low latency, with every frame sent out as soon as it is encoded.
    UltraLowLatency,
    /// Mathematically lossless.
    Lossless,
}

impl std::str::FromStr for Tuning {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "high_quality" | "hq" => Ok(Tuning::HighQuality),
            "low_latency" | "ll" => Ok(Tuning::LowLatency),
            "ultra_low_latency" | "ull" => Ok(Tuning::UltraLowLatency),
            "lossless" => Ok(Tuning::Lossless),
            _ => Err(Error::InvalidArgument(format!(
                "unknown tuning {s:?} (high_quality, low_latency, ultra_low_latency, lossless)"
            ))),
        }
    }
}

/// Rate control.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum RateControl {
    /// Constant bit rate: `bitrate` is required; the VBV buffer (`vbvbufsize`, default one second) is kept full.
    Cbr,
    /// Variable bit rate: averages `bitrate`, peaks bounded by `maxbitrate`; without a `bitrate`, the backend's
    /// constant-quality mode at its default quality (x264 / x265 CRF 23 / 28, SVT-AV1 CRF 35).
    #[default]
    Vbr,
    /// Constant quantiser: every picture at `constqp`.
    ConstQp,
}

impl std::str::FromStr for RateControl {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "cbr" => Ok(RateControl::Cbr),
            "vbr" => Ok(RateControl::Vbr),
            "constqp" | "cqp" => Ok(RateControl::ConstQp),
            _ => Err(Error::InvalidArgument(format!(
                "unknown rate control {s:?} (cbr, vbr, constqp)"
            ))),
        }
    }
}

/// Which encoder implementation runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum EncoderBackend {
    /// NVENC on the calling thread's current CUDA device ([`crate::cuda::default_gpu`]: the one
    /// `torch.cuda.set_device` selects, GPU 0 when no CUDA context is current) when a session opens there,
    /// otherwise the software encoder; the encoder reports which it chose and why
    /// ([`crate::Encoder::backend_note`]).
    #[default]
    Auto,
    /// The software encoder of the codec (libx264, libx265, SVT-AV1 / libaom).
    Software,
    /// NVENC on this GPU; an error when there is none.
    Nvenc(usize),
}

/// How the pixels of a frame handed to [`crate::Encoder::encode`] are laid out. The names are PyNvVideoCodec's;
/// `Rgb` and `Rgbp` are the decoders' own [`crate::ColorType::Rgb`] / [`crate::ColorType::Rgbp`] layouts, so a
/// decoded (and processed) batch can be encoded without glue.
///
/// The YUV layouts are checked by size only (any shape with the right number of bytes, e.g. PyNvVideoCodec's
/// `[H * 3 / 2, W]` for NV12, or `[bytes]` as the decoders' `Native` output); the RGB layouts by shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum InputFormat {
    /// 8-bit 4:2:0: the Y plane, then interleaved U/V at half size. `uint8`.
    #[default]
    Nv12,
    /// 8-bit 4:2:0 planar: Y, U, V (I420, `ffmpeg -pix_fmt yuv420p`). `uint8`.
    Yuv420,
    /// 8-bit 4:4:4 planar: Y, U, V, each full size. `uint8`.
    Yuv444,
    /// 10-bit 4:2:0 in 16-bit words, samples in the high bits: Y, then interleaved U/V. `int16`, or
    /// `uint8` holding the little-endian bytes.
    P010,
    /// 10-bit 4:4:4 planar in 16-bit words, samples in the high bits (NVENC's `YUV444_10BIT`).
    Yuv444_16bit,
    /// Packed 8-bit B, G, R, A bytes in memory (NVENC's word-ordered `ARGB`): `[H, W, 4]` `uint8`.
    Argb,
    /// Packed 8-bit R, G, B, A bytes in memory (NVENC's word-ordered `ABGR`): `[H, W, 4]` `uint8`.
    Abgr,
    /// Interleaved RGB, `[H, W, 3]` `uint8` (the decoders' `Rgb`).
    Rgb,
    /// Planar RGB, `[3, H, W]` `uint8` (the decoders' `Rgbp`).
    Rgbp,
}

impl InputFormat {
    /// The size in bytes of one `width x height` frame.
    pub fn frame_bytes(self, width: u32, height: u32) -> usize {
        let (w, h) = (width as usize, height as usize);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        match self {
            InputFormat::Nv12 => w * h + 2 * cw * ch,
            InputFormat::Yuv420 => w * h + 2 * cw * ch,
            InputFormat::Yuv444 | InputFormat::Rgb | InputFormat::Rgbp => 3 * w * h,
            InputFormat::P010 => 2 * (w * h + 2 * cw * ch),
            InputFormat::Yuv444_16bit => 6 * w * h,
            InputFormat::Argb | InputFormat::Abgr => 4 * w * h,
        }
    }

    /// Whether the samples are deeper than 8 bits.
    pub fn high_bit_depth(self) -> bool {
        matches!(self, InputFormat::P010 | InputFormat::Yuv444_16bit)
    }

    /// Whether the layout keeps full-resolution chroma (4:4:4), which the encoder then keeps too.
    pub fn full_chroma(self) -> bool {
        matches!(self, InputFormat::Yuv444 | InputFormat::Yuv444_16bit)
    }

    /// Whether the pixels are RGB (converted to YUV with [`EncoderOptions::colorspace`] before encoding).
    pub fn is_rgb(self) -> bool {
        matches!(
            self,
            InputFormat::Argb | InputFormat::Abgr | InputFormat::Rgb | InputFormat::Rgbp
        )
    }
}

impl std::str::FromStr for InputFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "nv12" => Ok(InputFormat::Nv12),
            "yuv420" | "i420" | "iyuv" | "yuv420p" => Ok(InputFormat::Yuv420),
            "yuv444" | "yuv444p" => Ok(InputFormat::Yuv444),
            "p010" => Ok(InputFormat::P010),
            "yuv444_16bit" | "yuv444_10bit" => Ok(InputFormat::Yuv444_16bit),
            "argb" => Ok(InputFormat::Argb),
            "abgr" => Ok(InputFormat::Abgr),
            "rgb" => Ok(InputFormat::Rgb),
            "rgbp" => Ok(InputFormat::Rgbp),
            _ => Err(Error::InvalidArgument(format!(
                "unknown input format {s:?} (nv12, yuv420, yuv444, p010, yuv444_16bit, argb, abgr, rgb, rgbp)"
            ))),
        }
    }
}

/// Encoder settings. Field names are PyNvVideoCodec's; `None` leaves a setting at the backend's default. A
/// setting the chosen backend cannot honour makes [`crate::Encoder::new`] fail with [`Error::Unsupported`]
/// naming it: nothing is dropped silently.
///
/// # Mapping onto the backends
/// PyNvVideoCodec's names, mapped explicitly onto every backend. "error" means [`crate::Error::Unsupported`]
/// naming the parameter when it is set; an FFmpeg option the encoder leaves unused is an error too.
///
/// | parameter | libx264 | libx265 | SVT-AV1 (`libsvtav1`) | NVENC |
/// | --- | --- | --- | --- | --- |
/// | `preset` P1..P7 | ultrafast, superfast, veryfast, faster, fast, medium, slow | as libx264 | preset 12, 11, 10, 8, 6, 5, 4 | p1..p7 |
/// | `tuning_info` | high_quality: none; low_latency, ultra_low_latency: `tune=zerolatency`; lossless: `qp=0` | as libx264; lossless: `lossless=1` | low latency: `pred-struct=1`; lossless: error | hq, ll, ull, lossless |
/// | `rc` cbr | `b` = `maxrate` = bitrate, `bufsize` (default 1 s), `nal-hrd=cbr` (filler) | as libx264 with `strict-cbr=1` | error (CBR needs SVT's low-delay mode) | `rc=cbr` |
/// | `rc` vbr | `b`, `maxrate`, `bufsize`; no bitrate: CRF 23 | as libx264; no bitrate: CRF 28 | `b`; no bitrate: CRF 35 | `rc=vbr` |
/// | `rc` constqp + `constqp` | `qp` | `qp` | `qp`, `enable-tpl-la=0` | `rc=constqp`, `qp` |
/// | `bitrate`, `maxbitrate`, `vbvbufsize` | `b`, `maxrate`, `bufsize` | same | `b`; maxbitrate, vbvbufsize: error | same |
/// | `vbvinit` | `rc_init_occupancy` | `vbv-init` (fraction of the buffer) | error | `rc_init_occupancy` |
/// | `qmin`, `qmax` | `qmin`, `qmax` | `qpmin`, `qpmax` | `min-qp`, `max-qp` | `qmin`, `qmax` |
/// | `initqp` | error | error | error | `init_qpI/P/B` |
/// | `fps` | time base 1/fps | same | same | same |
/// | `gop` | `g` = `keyint_min`, `sc_threshold=0` (a fixed GOP) | `keyint` = `min-keyint`, `scenecut=0`, `open-gop=0` | `g` | `g` |
/// | `idrperiod` | must equal `gop` (every intra picture is an IDR) | same | same | same |
/// | `bf` | `bf` | `bframes` | error (no B-frames in AV1) | `bf` |
/// | `lookahead` | `rc-lookahead` | `rc-lookahead` | `lookahead` | `rc-lookahead` |
/// | `aq` | `aq-mode` 1 / 0 | `aq-mode` 1 / 0 | `aq-mode` 2 / 0 | `spatial-aq` |
/// | `repeatspspps` | `repeat-headers=1` | `repeat-headers=1` | error | raw output only |
/// | `colorspace`, `color_range` | stream tags; RGB input converted with that matrix and range | same | same | same |
/// | `max_res` | bound checked at creation | same | same | same |
/// | SEI (user data unregistered) | `udu_sei=1` + frame side data | same | error (no T.35 input in this FFmpeg) | `udu_sei` (H.264 / HEVC) |
/// | `reconfigure` bitrate / maxrate / VBV | in place, no IDR (x264's reconfig), when the stream started with a bit rate (and VBV for maxrate / VBV) | restart: drain, reopen, IDR | restart | restart |
/// | `reconfigure` fps | restart | restart | restart | restart |
#[derive(Clone, Debug, PartialEq)]
pub struct EncoderOptions {
    /// The compression standard.
    pub codec: Codec,
    /// Which implementation runs.
    pub backend: EncoderBackend,
    /// Speed / quality trade-off.
    pub preset: Preset,
    /// Latency / quality tuning.
    pub tuning_info: Tuning,
    /// Rate-control mode.
    pub rc: RateControl,
    /// Target bit rate in bits per second (CBR, VBR).
    pub bitrate: Option<u64>,
    /// Peak bit rate in bits per second (VBR).
    pub maxbitrate: Option<u64>,
    /// VBV (HRD) buffer size in bits.
    pub vbvbufsize: Option<u64>,
    /// Initial VBV buffer fullness in bits.
    pub vbvinit: Option<u64>,
    /// Smallest quantiser rate control may use.
    pub qmin: Option<u32>,
    /// Largest quantiser rate control may use.
    pub qmax: Option<u32>,
    /// Quantiser of the first picture (NVENC only).
    pub initqp: Option<u32>,
    /// The quantiser of [`RateControl::ConstQp`].
    pub constqp: Option<u32>,
    /// Frame rate as numerator / denominator (e.g. 30000/1001): the time base of the output.
    pub fps: (u32, u32),
    /// Distance between intra pictures.
    pub gop: Option<u32>,
    /// Distance between IDR pictures (the software encoders make every intra picture of a closed GOP an IDR, so
    /// there it must equal `gop`).
    pub idrperiod: Option<u32>,
    /// B-frames between reference pictures.
    pub bf: Option<u32>,
    /// Look-ahead depth in frames.
    pub lookahead: Option<u32>,
    /// Adaptive (spatial) quantisation on or off.
    pub aq: Option<bool>,
    /// Repeat the parameter sets (SPS/PPS, VPS) before every IDR picture. Raw elementary-stream output always
    /// carries them on every IDR with the software encoders.
    pub repeatspspps: bool,
    /// The YUV matrix RGB input is converted with, and the one the stream is tagged with (unset: BT.601 for
    /// RGB input, untagged otherwise).
    pub colorspace: Option<ColorMatrix>,
    /// The range RGB input is converted to, and the one the stream is tagged with (default limited).
    pub color_range: Option<ColorRange>,
    /// The largest width and height a [`crate::Encoder::reconfigure`] may ask for (NVENC); `None`: the first size.
    pub max_res: Option<(u32, u32)>,
    /// Encoder threads (0: the backend's choice, as the ffmpeg CLI's default).
    pub threads: usize,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        EncoderOptions {
            codec: Codec::H264,
            backend: EncoderBackend::Auto,
            preset: Preset::P4,
            tuning_info: Tuning::HighQuality,
            rc: RateControl::Vbr,
            bitrate: None,
            maxbitrate: None,
            vbvbufsize: None,
            vbvinit: None,
            qmin: None,
            qmax: None,
            initqp: None,
            constqp: None,
            fps: (30, 1),
            gop: None,
            idrperiod: None,
            bf: None,
            lookahead: None,
            aq: None,
            repeatspspps: false,
            colorspace: None,
            color_range: None,
            max_res: None,
            threads: 0,
        }
    }
}

impl EncoderOptions {
    /// Default settings for `codec`.
    pub fn new(codec: Codec) -> Self {
        EncoderOptions {
            codec,
            ..Default::default()
        }
    }

    /// Checks the settings that make no sense whatever the backend.
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if self.fps.0 == 0 || self.fps.1 == 0 || self.fps.0 > i32::MAX as u32 {
            return bad(format!("fps {}/{}", self.fps.0, self.fps.1));
        }
        match self.rc {
            RateControl::Cbr if self.bitrate.is_none() => {
                return bad("rc cbr needs a bitrate".into())
            }
            RateControl::ConstQp if self.constqp.is_none() => {
                return bad("rc constqp needs constqp".into())
            }
            RateControl::Cbr | RateControl::Vbr if self.constqp.is_some() => {
                return bad("constqp is only for rc constqp".into())
            }
            RateControl::ConstQp if self.bitrate.is_some() || self.maxbitrate.is_some() => {
                return bad("rc constqp takes no bitrate or maxbitrate".into())
            }
            _ => {}
        }
        if let (Some(b), Some(m)) = (self.bitrate, self.maxbitrate) {
            if m < b {
                return bad(format!("maxbitrate {m} is below bitrate {b}"));
            }
        }
        if self.bitrate == Some(0) {
            return bad("bitrate 0".into());
        }
        if let (Some(lo), Some(hi)) = (self.qmin, self.qmax) {
            if lo > hi {
                return bad(format!("qmin {lo} is above qmax {hi}"));
            }
        }
        if self.gop == Some(0) || self.idrperiod == Some(0) {
            return bad("gop and idrperiod must be at least 1".into());
        }
        if let (Some(v), Some(b)) = (self.vbvinit, self.vbvbufsize) {
            if v > b {
                return bad(format!("vbvinit {v} is above vbvbufsize {b}"));
            }
        }
        Ok(())
    }
}

/// Per-picture requests to [`crate::Encoder::encode`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PicFlags {
    /// Make this picture an IDR picture.
    pub force_idr: bool,
    /// Put the parameter sets in front of this picture's packet (raw output).
    pub output_spspps: bool,
    /// This is the last picture: flush the encoder after it and return every remaining packet.
    pub eos: bool,
}

/// Settings that [`crate::Encoder::reconfigure`] changes during a session.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ReconfigureParams {
    /// New target bit rate.
    pub bitrate: Option<u64>,
    /// New peak bit rate.
    pub maxbitrate: Option<u64>,
    /// New VBV buffer size.
    pub vbvbufsize: Option<u64>,
    /// New frame rate.
    pub fps: Option<(u32, u32)>,
}

/// Parses a bit rate such as `4M`, `800k`, `1.5M` or `2000000`.
pub fn parse_bitrate(s: &str) -> Result<u64> {
    let t = s.trim();
    let (num, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
        Some('m' | 'M') => (&t[..t.len() - 1], 1e6),
        Some('g' | 'G') => (&t[..t.len() - 1], 1e9),
        _ => (t, 1.0),
    };
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v * mult < 1e12 => Ok((v * mult).round() as u64),
        _ => Err(Error::InvalidArgument(format!(
            "bit rate {s:?} (e.g. 4M, 800k, 2000000)"
        ))),
    }
}

/// Parses a frame rate such as `30`, `29.97` or `30000/1001`.
pub fn parse_fps(s: &str) -> Result<(u32, u32)> {
    let err = || Error::InvalidArgument(format!("frame rate {s:?} (e.g. 30, 30000/1001)"));
    if let Some((n, d)) = s.split_once('/') {
        let n: u32 = n.trim().parse().map_err(|_| err())?;
        let d: u32 = d.trim().parse().map_err(|_| err())?;
        if n == 0 || d == 0 {
            return Err(err());
        }
        return Ok((n, d));
    }
    let v: f64 = s.trim().parse().map_err(|_| err())?;
    if !(v.is_finite() && v > 0.0 && v < 1e6) {
        return Err(err());
    }
    if (v - v.round()).abs() < 1e-9 {
        return Ok((v.round() as u32, 1));
    }
    // NTSC rates: 23.976, 29.97, 59.94 ...
    let ntsc = (v * 1.001).round();
    if (ntsc / 1.001 - v).abs() < 0.005 {
        return Ok((ntsc as u32 * 1000, 1001));
    }
    Ok(((v * 1000.0).round() as u32, 1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates() {
        assert_eq!(parse_bitrate("4M").unwrap(), 4_000_000);
        assert_eq!(parse_bitrate("800k").unwrap(), 800_000);
        assert_eq!(parse_bitrate("1.5M").unwrap(), 1_500_000);
        assert!(parse_bitrate("fast").is_err());
        assert!(parse_bitrate("-3M").is_err());
        assert_eq!(parse_fps("30").unwrap(), (30, 1));
        assert_eq!(parse_fps("29.97").unwrap(), (30000, 1001));
        assert_eq!(parse_fps("30000/1001").unwrap(), (30000, 1001));
        assert!(parse_fps("0").is_err());
        assert!(parse_fps("1/0").is_err());
    }

    #[test]
    fn rejects_contradictions() {
        let o = EncoderOptions {
            rc: RateControl::Cbr,
            ..Default::default()
        };
        assert!(o.validate().is_err());
        let o = EncoderOptions {
            bitrate: Some(2_000_000),
            maxbitrate: Some(1_000_000),
            ..Default::default()
        };
        assert!(o.validate().is_err());
        assert!(EncoderOptions::default().validate().is_ok());
    }

    #[test]
    fn frame_sizes() {
        assert_eq!(InputFormat::Nv12.frame_bytes(4, 2), 8 + 4);
        assert_eq!(InputFormat::Nv12.frame_bytes(5, 3), 15 + 2 * 3 * 2);
        assert_eq!(InputFormat::P010.frame_bytes(4, 2), 24);
        assert_eq!(InputFormat::Argb.frame_bytes(4, 2), 32);
    }
}
