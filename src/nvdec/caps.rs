//! Codec identifiers, decoder capabilities (`cuvidGetDecoderCaps`, asked once per process) and every support
//! check built on them: whether a GPU can decode a demuxer's stream, whether NVDEC's output is bit-exact for a
//! codec, whether its parser's time stamps can be trusted, and the sequence header a session needs.

use super::api::{api, is_available, unavailable_reason};
use super::result;
use super::sys;
use crate::cuda::{GpuContext, SurfaceFormat};
use crate::error::{Error, Result};
use crate::io::demux::Demuxer;

/// A codec NVDEC can be asked to decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NvCodec {
    /// MPEG-1 video.
    Mpeg1,
    /// MPEG-2 video.
    Mpeg2,
    /// MPEG-4 Part 2.
    Mpeg4,
    /// VC-1.
    Vc1,
    /// H.264 / AVC.
    H264,
    /// Motion JPEG.
    Jpeg,
    /// HEVC / H.265.
    Hevc,
    /// VP8.
    Vp8,
    /// VP9.
    Vp9,
    /// AV1.
    Av1,
}

impl NvCodec {
    /// The `cudaVideoCodec` value.
    pub fn to_raw(self) -> sys::cudaVideoCodec {
        match self {
            NvCodec::Mpeg1 => sys::cudaVideoCodec_MPEG1,
            NvCodec::Mpeg2 => sys::cudaVideoCodec_MPEG2,
            NvCodec::Mpeg4 => sys::cudaVideoCodec_MPEG4,
            NvCodec::Vc1 => sys::cudaVideoCodec_VC1,
            NvCodec::H264 => sys::cudaVideoCodec_H264,
            NvCodec::Jpeg => sys::cudaVideoCodec_JPEG,
            NvCodec::Hevc => sys::cudaVideoCodec_HEVC,
            NvCodec::Vp8 => sys::cudaVideoCodec_VP8,
            NvCodec::Vp9 => sys::cudaVideoCodec_VP9,
            NvCodec::Av1 => sys::cudaVideoCodec_AV1,
        }
    }

    /// From a `cudaVideoCodec` value (`None` for SVC/MVC, raw-YUV FourCCs and unknown values).
    pub fn from_raw(v: sys::cudaVideoCodec) -> Option<Self> {
        Some(match v {
            sys::cudaVideoCodec_MPEG1 => NvCodec::Mpeg1,
            sys::cudaVideoCodec_MPEG2 => NvCodec::Mpeg2,
            sys::cudaVideoCodec_MPEG4 => NvCodec::Mpeg4,
            sys::cudaVideoCodec_VC1 => NvCodec::Vc1,
            sys::cudaVideoCodec_H264 => NvCodec::H264,
            sys::cudaVideoCodec_JPEG => NvCodec::Jpeg,
            sys::cudaVideoCodec_HEVC => NvCodec::Hevc,
            sys::cudaVideoCodec_VP8 => NvCodec::Vp8,
            sys::cudaVideoCodec_VP9 => NvCodec::Vp9,
            sys::cudaVideoCodec_AV1 => NvCodec::Av1,
            _ => return None,
        })
    }

    /// The NVDEC codec for an FFmpeg codec id (`None` when NVDEC has no decoder for it).
    pub fn from_ffmpeg(id: ffmpeg_next::codec::Id) -> Option<Self> {
        use ffmpeg_next::codec::Id;
        Some(match id {
            Id::MPEG1VIDEO => NvCodec::Mpeg1,
            Id::MPEG2VIDEO => NvCodec::Mpeg2,
            Id::MPEG4 => NvCodec::Mpeg4,
            Id::VC1 => NvCodec::Vc1,
            Id::H264 => NvCodec::H264,
            Id::MJPEG => NvCodec::Jpeg,
            Id::HEVC => NvCodec::Hevc,
            Id::VP8 => NvCodec::Vp8,
            Id::VP9 => NvCodec::Vp9,
            Id::AV1 => NvCodec::Av1,
            _ => return None,
        })
    }

    /// A short human name ("H.264", "HEVC", ...).
    pub fn name(self) -> &'static str {
        match self {
            NvCodec::Mpeg1 => "MPEG-1",
            NvCodec::Mpeg2 => "MPEG-2",
            NvCodec::Mpeg4 => "MPEG-4 Part 2",
            NvCodec::Vc1 => "VC-1",
            NvCodec::H264 => "H.264",
            NvCodec::Jpeg => "JPEG",
            NvCodec::Hevc => "HEVC",
            NvCodec::Vp8 => "VP8",
            NvCodec::Vp9 => "VP9",
            NvCodec::Av1 => "AV1",
        }
    }
}

/// Chroma subsampling of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChromaFormat {
    /// Luma only.
    Monochrome,
    /// 4:2:0.
    Yuv420,
    /// 4:2:2.
    Yuv422,
    /// 4:4:4.
    Yuv444,
}

impl ChromaFormat {
    /// The `cudaVideoChromaFormat` value.
    pub fn to_raw(self) -> sys::cudaVideoChromaFormat {
        match self {
            ChromaFormat::Monochrome => sys::cudaVideoChromaFormat_Monochrome,
            ChromaFormat::Yuv420 => sys::cudaVideoChromaFormat_420,
            ChromaFormat::Yuv422 => sys::cudaVideoChromaFormat_422,
            ChromaFormat::Yuv444 => sys::cudaVideoChromaFormat_444,
        }
    }

    /// From a `cudaVideoChromaFormat` value.
    pub fn from_raw(v: sys::cudaVideoChromaFormat) -> Option<Self> {
        Some(match v {
            sys::cudaVideoChromaFormat_Monochrome => ChromaFormat::Monochrome,
            sys::cudaVideoChromaFormat_420 => ChromaFormat::Yuv420,
            sys::cudaVideoChromaFormat_422 => ChromaFormat::Yuv422,
            sys::cudaVideoChromaFormat_444 => ChromaFormat::Yuv444,
            _ => return None,
        })
    }

    /// "4:2:0" etc.
    pub fn name(self) -> &'static str {
        match self {
            ChromaFormat::Monochrome => "4:0:0",
            ChromaFormat::Yuv420 => "4:2:0",
            ChromaFormat::Yuv422 => "4:2:2",
            ChromaFormat::Yuv444 => "4:4:4",
        }
    }
}

/// What the GPU's NVDEC can do for one (codec, chroma format, bit depth).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecoderCaps {
    /// The codec asked about.
    pub codec: NvCodec,
    /// The chroma format asked about.
    pub chroma: ChromaFormat,
    /// The bit depth asked about.
    pub bit_depth: u32,
    /// Whether NVDEC decodes this combination at all.
    pub supported: bool,
    /// NVDEC engines usable for it.
    pub num_engines: u32,
    /// Bit n set = `cudaVideoSurfaceFormat` n is an allowed output format.
    pub output_format_mask: u16,
    /// Largest coded width.
    pub max_width: u32,
    /// Largest coded height.
    pub max_height: u32,
    /// Largest number of 16x16 macroblocks per picture.
    pub max_mb_count: u32,
    /// Smallest coded width.
    pub min_width: u32,
    /// Smallest coded height.
    pub min_height: u32,
    /// Whether a luma histogram can be produced.
    pub histogram: bool,
    /// Whether decode statistics (per-block QP, CU type, motion vectors) are available: the SDK 13.1 capability
    /// byte, which needs a 590+ driver. Always false on older drivers.
    pub decode_stats: bool,
}

impl DecoderCaps {
    /// Whether `format` is an allowed output surface format.
    pub fn supports_output(&self, format: SurfaceFormat) -> bool {
        self.output_format_mask & (1 << format.to_raw()) != 0
    }

    /// `Ok` when a `width` x `height` coded picture fits the limits, else [`Error::Unsupported`] saying which.
    pub fn check_size(&self, width: u32, height: u32) -> Result<()> {
        let mbs = u64::from(width.div_ceil(16)) * u64::from(height.div_ceil(16));
        if width > self.max_width
            || height > self.max_height
            || width < self.min_width
            || height < self.min_height
        {
            return Err(Error::Unsupported(format!(
                "NVDEC {} {}-bit {}: coded size {width}x{height} outside {}x{} ..= {}x{}",
                self.codec.name(),
                self.bit_depth,
                self.chroma.name(),
                self.min_width,
                self.min_height,
                self.max_width,
                self.max_height
            )));
        }
        if self.max_mb_count > 0 && mbs > u64::from(self.max_mb_count) {
            return Err(Error::Unsupported(format!(
                "NVDEC {}: {width}x{height} has {mbs} macroblocks, more than the {} this GPU decodes",
                self.codec.name(),
                self.max_mb_count
            )));
        }
        Ok(())
    }

    pub(crate) fn from_raw(
        codec: NvCodec,
        chroma: ChromaFormat,
        bit_depth: u32,
        c: &sys::CUVIDDECODECAPS,
    ) -> Self {
        DecoderCaps {
            codec,
            chroma,
            bit_depth,
            supported: c.bIsSupported != 0,
            num_engines: u32::from(c.nNumNVDECs),
            output_format_mask: c.nOutputFormatMask,
            max_width: c.nMaxWidth,
            max_height: c.nMaxHeight,
            max_mb_count: c.nMaxMBCount,
            min_width: u32::from(c.nMinWidth),
            min_height: u32::from(c.nMinHeight),
            histogram: c.bIsHistogramSupported != 0,
            decode_stats: c.bIsDecodeStatsSupported != 0,
        }
    }
}

/// Asks the driver what NVDEC on `gpu` can do for `codec` / `chroma` / `bit_depth` (8..=16); the answer is kept
/// for the rest of the process.
///
/// Errors: [`Error::GpuUnavailable`] when libnvcuvid is missing, [`Error::Unsupported`] when the driver is too old
/// to answer (no `cuvidGetDecoderCaps`), [`Error::Nvdec`] when the call fails. An unsupported combination is not an
/// error: it comes back with `supported == false`.
pub fn decoder_caps(
    gpu: &GpuContext,
    codec: NvCodec,
    chroma: ChromaFormat,
    bit_depth: u32,
) -> Result<DecoderCaps> {
    if !(8..=16).contains(&bit_depth) {
        return Err(Error::InvalidArgument(format!(
            "bit depth {bit_depth} (8..=16)"
        )));
    }
    if let Some(c) = cached_caps(gpu, codec, chroma, bit_depth) {
        return Ok(c);
    }
    let api = api()?;
    gpu.bind()?;
    query_caps(api, gpu, codec, chroma, bit_depth)
}

/// Answers of `cuvidGetDecoderCaps` by device ordinal (GPUs of one process may differ: an A100 and an L4 decode
/// different codecs), for the life of the process: the query costs milliseconds, which the support check of every
/// opened file and every new session (one per short clip) would otherwise pay.
static CAPS: std::sync::Mutex<Vec<(usize, DecoderCaps)>> = std::sync::Mutex::new(Vec::new());

fn cached_caps(
    gpu: &GpuContext,
    codec: NvCodec,
    chroma: ChromaFormat,
    bit_depth: u32,
) -> Option<DecoderCaps> {
    let ordinal = gpu.ordinal();
    let cache = CAPS.lock().ok()?;
    cache
        .iter()
        .find(|(g, c)| {
            *g == ordinal && c.codec == codec && c.chroma == chroma && c.bit_depth == bit_depth
        })
        .map(|(_, c)| c.clone())
}

/// [`decoder_caps`] for a caller that has bound `gpu`'s context: from the process-wide cache, or asked once.
pub(crate) fn query_caps(
    api: &super::api::NvcuvidApi,
    gpu: &GpuContext,
    codec: NvCodec,
    chroma: ChromaFormat,
    bit_depth: u32,
) -> Result<DecoderCaps> {
    if let Some(c) = cached_caps(gpu, codec, chroma, bit_depth) {
        return Ok(c);
    }
    if api.get_decoder_caps.is_none() {
        return Err(Error::Unsupported(
            "this NVIDIA driver is too old to report NVDEC capabilities".into(),
        ));
    };
    let mut c = sys::CUVIDDECODECAPS {
        eCodecType: codec.to_raw(),
        eChromaFormat: chroma.to_raw(),
        nBitDepthMinus8: bit_depth - 8,
        ..Default::default()
    };
    // The answer is cached under `gpu`'s ordinal, so the query must run in `gpu`'s context, whatever context the
    // calling thread had bound.
    gpu.bind()?;
    // SAFETY: `c` is a correctly laid out, initialised CUVIDDECODECAPS that lives across the call; `gpu`'s context
    // is bound to this thread (just above).
    unsafe { result::get_decoder_caps(api, &mut c) }?;
    let caps = DecoderCaps::from_raw(codec, chroma, bit_depth, &c);
    if let Ok(mut cache) = CAPS.lock() {
        cache.push((gpu.ordinal(), caps.clone()));
    }
    Ok(caps)
}

/// The NVDEC codec and chroma format of a stream, or why NVDEC cannot take it.
pub(crate) fn stream_codec(demuxer: &Demuxer) -> Result<(NvCodec, ChromaFormat)> {
    let info = demuxer.info();
    let codec = NvCodec::from_ffmpeg(demuxer.parameters().id())
        .ok_or_else(|| Error::Unsupported(format!("NVDEC has no decoder for {}", info.codec)))?;
    let chroma = match info.chroma.as_str() {
        "420" => ChromaFormat::Yuv420,
        "422" => ChromaFormat::Yuv422,
        "444" => ChromaFormat::Yuv444,
        "400" => ChromaFormat::Monochrome,
        other => {
            return Err(Error::Unsupported(format!(
                "NVDEC: chroma format {other} of {}",
                info.codec
            )))
        }
    };
    Ok((codec, chroma))
}

/// `Ok` when GPU `gpu` can decode `demuxer`'s stream with NVDEC and torch can allocate CUDA tensors there;
/// otherwise [`Error::GpuUnavailable`] (no GPU, driver, NVDEC library or CUDA-enabled torch) or
/// [`Error::Unsupported`] (NVDEC lacks this codec, chroma format, bit depth or size).
pub(crate) fn check_support(gpu: usize, demuxer: &Demuxer) -> Result<()> {
    if !is_available() {
        return Err(Error::GpuUnavailable(format!(
            "NVDEC is not available: {}",
            unavailable_reason().unwrap_or_else(|| "unknown reason".into())
        )));
    }
    if !tch::Cuda::is_available() || gpu >= tch::Cuda::device_count().max(0) as usize {
        return Err(Error::GpuUnavailable(format!(
            "torch sees no CUDA device {gpu} (a CPU-only libtorch, or no such GPU)"
        )));
    }
    let (codec, chroma) = stream_codec(demuxer)?;
    let info = demuxer.info();
    let ctx = GpuContext::shared(gpu)?;
    ctx.converter()?;
    // Asked once per process (decoder_caps keeps the answers).
    let caps = decoder_caps(&ctx, codec, chroma, info.bit_depth)?;
    if !caps.supported {
        return Err(Error::Unsupported(format!(
            "NVDEC on {} does not decode {} {}-bit {}",
            ctx.name(),
            codec.name(),
            info.bit_depth,
            chroma.name()
        )));
    }
    let (max_w, max_h) = (caps.max_width, caps.max_height);
    if info.width > max_w || info.height > max_h {
        return Err(Error::Unsupported(format!(
            "NVDEC {}: {}x{} is larger than {max_w}x{max_h}",
            codec.name(),
            info.width,
            info.height
        )));
    }
    Ok(())
}

/// Whether NVDEC's output equals libavcodec's bit for bit for this codec. MPEG-1/2, MPEG-4 part 2, VC-1 and JPEG
/// let decoders differ in their inverse DCT (an H200 decoded MJPEG one level off libavcodec), so the frame-exact
/// decoders keep those on the CPU (`Backend::Auto` picks the CPU, `Backend::Nvdec` is `Unsupported`);
/// [`crate::PacketDecoder`] still decodes them on NVDEC.
pub(crate) fn bit_exact(demuxer: &Demuxer) -> bool {
    !matches!(
        NvCodec::from_ffmpeg(demuxer.parameters().id()),
        Some(NvCodec::Mpeg1 | NvCodec::Mpeg2 | NvCodec::Mpeg4 | NvCodec::Vc1 | NvCodec::Jpeg)
    )
}

/// Whether NVDEC's parser returns each picture's own time stamp. For VP8/VP9/AV1 it does not: on the H100
/// (driver 580) a libvpx VP9 stream with hidden alt-ref frames came back with one time stamp repeated and a later
/// one missing, while the pictures themselves were in the right order. Those codecs have no reordering (one shown
/// picture per packet, in packet order), so callers count pictures instead.
pub(crate) fn reliable_timestamps(codec: NvCodec) -> bool {
    !matches!(codec, NvCodec::Vp8 | NvCodec::Vp9 | NvCodec::Av1)
}

/// The out-of-band sequence header NVDEC's parser needs for `demuxer`'s stream: Annex-B parameter sets for
/// H.264/HEVC (the demuxer is in Annex-B mode), the container's extradata for MPEG-1/2/4 and VC-1, nothing for
/// VP8/VP9/AV1/JPEG (their headers are in-band).
pub(crate) fn sequence_header(codec: NvCodec, demuxer: &Demuxer) -> Option<Vec<u8>> {
    match codec {
        NvCodec::H264
        | NvCodec::Hevc
        | NvCodec::Mpeg1
        | NvCodec::Mpeg2
        | NvCodec::Mpeg4
        | NvCodec::Vc1 => Some(demuxer.extradata()).filter(|e| !e.is_empty()),
        NvCodec::Vp8 | NvCodec::Vp9 | NvCodec::Av1 | NvCodec::Jpeg => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_values_round_trip() {
        for c in [
            NvCodec::Mpeg1,
            NvCodec::Mpeg2,
            NvCodec::Mpeg4,
            NvCodec::Vc1,
            NvCodec::H264,
            NvCodec::Jpeg,
            NvCodec::Hevc,
            NvCodec::Vp8,
            NvCodec::Vp9,
            NvCodec::Av1,
        ] {
            assert_eq!(NvCodec::from_raw(c.to_raw()), Some(c));
        }
        assert_eq!(NvCodec::H264.to_raw(), 4);
        assert_eq!(NvCodec::Hevc.to_raw(), 8);
        assert_eq!(NvCodec::Av1.to_raw(), 11);
        assert_eq!(
            NvCodec::from_ffmpeg(ffmpeg_next::codec::Id::HEVC),
            Some(NvCodec::Hevc)
        );
        assert_eq!(NvCodec::from_ffmpeg(ffmpeg_next::codec::Id::PNG), None);
        assert_eq!(ChromaFormat::from_raw(3), Some(ChromaFormat::Yuv444));
    }

    #[test]
    fn caps_size_checks() {
        // The H100's H.264 8-bit answer (nvdec.md section 3).
        let raw = sys::CUVIDDECODECAPS {
            eCodecType: 4,
            eChromaFormat: 1,
            bIsSupported: 1,
            nNumNVDECs: 7,
            nOutputFormatMask: 0x1,
            nMaxWidth: 4096,
            nMaxHeight: 4096,
            nMaxMBCount: 65536,
            nMinWidth: 48,
            nMinHeight: 16,
            ..Default::default()
        };
        let caps = DecoderCaps::from_raw(NvCodec::H264, ChromaFormat::Yuv420, 8, &raw);
        assert!(caps.supported && !caps.decode_stats);
        assert!(caps.supports_output(SurfaceFormat::Nv12));
        assert!(!caps.supports_output(SurfaceFormat::P016));
        assert!(caps.check_size(1920, 1088).is_ok());
        assert!(matches!(
            caps.check_size(8192, 64),
            Err(Error::Unsupported(_))
        ));
        assert!(matches!(
            caps.check_size(32, 32),
            Err(Error::Unsupported(_))
        ));
    }
}
