//! The NVDEC backend: an [`NvdecSession`] fed with the demuxer's Annex-B packets; each wanted frame is mapped and
//! converted by one kernel straight into its slot of a CUDA batch tensor (with crop, resize, normalisation and
//! element type fused in).

use std::sync::LazyLock;

use crate::backend::{FrameDecoder, FrameSink};
use crate::cuda::{DstBytes, DstImage, GpuContext, GpuStream};
use crate::error::{Error, Result};
use crate::frame::color::{ColorMatrix, ColorRange, ColorType, YuvToRgb};
use crate::frame::transform::slot_hw;
use crate::frame::transform::RgbLayout;
use crate::io::demux::{Demuxer, Packet, StreamInfo};
use crate::nvdec::{
    decoder_caps, is_available, unavailable_reason, ChromaFormat, DisplayedFrame, NvCodec,
    NvdecSession, SessionConfig,
};

/// The NVDEC codec and chroma format of a stream, or why NVDEC cannot take it.
fn stream_codec(demuxer: &Demuxer) -> Result<(NvCodec, ChromaFormat)> {
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

/// Whether NVDEC's output equals libavcodec's bit for bit for this codec. MPEG-1/2, MPEG-4 part 2 and VC-1 let
/// decoders differ in their inverse DCT, so the frame-exact decoders keep those on the CPU (`Backend::Auto`
/// picks the CPU, `Backend::Nvdec` is `Unsupported`); [`crate::PacketDecoder`] still decodes them on NVDEC.
pub(crate) fn bit_exact(demuxer: &Demuxer) -> bool {
    !matches!(
        NvCodec::from_ffmpeg(demuxer.parameters().id()),
        Some(NvCodec::Mpeg1 | NvCodec::Mpeg2 | NvCodec::Mpeg4 | NvCodec::Vc1)
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

/// Colour conversion of a stream: the container's matrix and range, as the CPU backend uses them.
fn stream_color(info: &StreamInfo) -> (ColorMatrix, ColorRange) {
    (info.color_matrix, info.color_range)
}

/// Pictures the parser keeps decoded ahead of the one it hands out, so that NVDEC has work queued while a picture
/// is converted; requests that end a keyframe group flush instead of decoding these extra pictures.
/// `VIDLOADER_NVDEC_DISPLAY_DELAY` overrides it (0..=8), for tuning.
fn display_delay() -> u32 {
    static DELAY: LazyLock<u32> = LazyLock::new(|| {
        std::env::var("VIDLOADER_NVDEC_DISPLAY_DELAY")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(4, |d: u32| d.min(8))
    });
    *DELAY
}

/// An NVDEC decode session with its own CUDA stream.
pub(crate) struct NvdecDecoder {
    session: NvdecSession,
    stream: GpuStream,
    codec: NvCodec,
    /// See [`reliable_timestamps`].
    timestamps: bool,
    current: Option<DisplayedFrame>,
    matrix: ColorMatrix,
    range: ColorRange,
    source_name: String,
}

impl NvdecDecoder {
    /// A session on GPU `gpu` for `demuxer`'s stream (which must be in Annex-B mode), accepting streams up to
    /// `max_width x max_height` through reconfiguration.
    pub(crate) fn new(
        gpu: usize,
        demuxer: &Demuxer,
        max_width: u32,
        max_height: u32,
    ) -> Result<Self> {
        let ctx = GpuContext::shared(gpu)?;
        let (codec, _) = stream_codec(demuxer)?;
        let info = demuxer.info();
        let mut cfg = SessionConfig::new(codec);
        cfg.max_width = max_width.max(info.width);
        cfg.max_height = max_height.max(info.height);
        cfg.sequence_header = sequence_header(codec, demuxer);
        cfg.clock_rate = u32::try_from(info.time_base.1).unwrap_or(0);
        cfg.display_delay = Some(display_delay());
        cfg.recycle_decoders = true;
        let stream = GpuStream::new(&ctx)?;
        let session = NvdecSession::new(ctx, cfg)?;
        let (matrix, range) = stream_color(info);
        Ok(NvdecDecoder {
            session,
            stream,
            codec,
            timestamps: reliable_timestamps(codec),
            current: None,
            matrix,
            range,
            source_name: demuxer.source().name(),
        })
    }

    fn corrupt(&self, e: Error) -> Error {
        match e {
            Error::Nvdec { call, code } => Error::Corrupt {
                source_name: self.source_name.clone(),
                reason: format!(
                    "NVDEC {call} failed ({})",
                    crate::nvdec::cu_result_name(code)
                ),
            },
            other => other,
        }
    }
}

impl FrameDecoder for NvdecDecoder {
    fn reconfigure(&mut self, demuxer: &Demuxer) -> Result<()> {
        let (codec, _) = stream_codec(demuxer)?;
        if codec != self.codec {
            return Err(Error::InvalidArgument(format!(
                "an NVDEC session for {} cannot decode {}",
                self.codec.name(),
                codec.name()
            )));
        }
        self.session.start_stream(sequence_header(codec, demuxer))?;
        self.current = None;
        (self.matrix, self.range) = stream_color(demuxer.info());
        self.source_name = demuxer.source().name();
        Ok(())
    }

    fn send_packet(&mut self, packet: &Packet) -> Result<()> {
        let r = match packet.pts().or(packet.dts()) {
            Some(pts) => self.session.decode(packet.data(), pts, true),
            None => self.session.decode_untimed(packet.data(), true),
        };
        r.map_err(|e| self.corrupt(e))
    }

    fn send_eof(&mut self) -> Result<()> {
        self.session.flush().map_err(|e| self.corrupt(e))
    }

    fn receive(&mut self) -> Result<Option<Option<i64>>> {
        self.current = self.session.next_frame();
        let timestamps = self.timestamps;
        Ok(self
            .current
            .as_ref()
            .map(|f| timestamps.then_some(f.timestamp)))
    }

    fn write_current(&mut self, color: ColorType, sink: FrameSink<'_>) -> Result<()> {
        let FrameSink::Device { slot, transform } = sink else {
            return Err(Error::InvalidArgument(
                "the NVDEC decoder writes CUDA tensors; host output goes through a device batch"
                    .into(),
            ));
        };
        let frame = self
            .current
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("no decoded frame to write".into()))?;
        let (matrix, range) = (self.matrix, self.range);
        let mapped = self.session.map(frame, &self.stream)?;
        let mut src = mapped.source()?;
        transform.check(src.width(), src.height())?;
        if let Some(c) = transform.crop {
            src = src.crop(c.left, c.top, c.width, c.height)?;
        }
        let converter = self.stream.gpu().converter()?;
        match color {
            ColorType::Native => {
                if transform.crop.is_some() || transform.normalize.is_some() {
                    return Err(Error::InvalidArgument(
                        "NATIVE output takes no crop or normalisation".into(),
                    ));
                }
                let mut dst = DstBytes::from_tensor(slot)?;
                if dst.len() != src.native_bytes() {
                    return Err(Error::Unsupported(format!(
                        "frame size changed mid-stream to {}x{} ({} bytes for a {}-byte slot)",
                        src.width(),
                        src.height(),
                        src.native_bytes(),
                        dst.len()
                    )));
                }
                converter.to_native(&src, &mut dst, &self.stream)?;
            }
            ColorType::Rgb | ColorType::Rgbp => {
                slot_hw(color, &slot.size())?;
                let layout = if color == ColorType::Rgb {
                    RgbLayout::Interleaved
                } else {
                    RgbLayout::Planar
                };
                let mut dst = DstImage::from_tensor(slot, layout)?;
                let yuv = YuvToRgb::new(matrix, range, src.bit_depth());
                converter.to_rgb(
                    &src,
                    &yuv,
                    &mut dst,
                    transform.normalize.as_ref(),
                    &self.stream,
                )?;
            }
        }
        // Waits for the conversion, then unmaps: the slot is complete when this returns.
        mapped.unmap()
    }

    fn flush(&mut self) {
        self.current = None;
        // A failed reset leaves a broken session; the next decode call reports it.
        let _ = self.session.reset();
    }
}
