//! PacketDecoder: the packet-level NVDEC decoder (the counterpart of PyNvVideoCodec's low-level decoder). Packets
//! from a [`Demuxer`] go in, zero or more frames come out of each `decode` call, in display order, each as its own
//! CUDA tensor with its presentation time stamp, picture type and SEI messages; `flush` returns the rest at the end
//! of the stream.
//!
//! It exposes what [`crate::SimpleDecoder`] hides: latency modes (frames out as soon as possible, with the
//! end-of-picture flag on every packet), SEI extraction, decode statistics (where the driver has them), the
//! session's counters, and reconfiguration to another stream within the size limit set at creation.

use tch::{Device, Kind, Tensor};

use std::collections::VecDeque;

use super::caps::{check_support, reliable_timestamps, sequence_header};
use super::{
    DecodeStats, DisplayedFrame, LatencyMode, NvCodec, NvdecSession, SeiMessage, SessionOptions,
    SessionStats,
};
use crate::cuda::{DstBytes, DstImage, GpuContext, GpuStream};
use crate::error::{Error, Result};
use crate::frame::color::{ColorMatrix, ColorRange, ColorType, YuvToRgb};
use crate::frame::transform::RgbLayout;
use crate::io::demux::{Demuxer, Packet};

/// Options of a [`PacketDecoder`].
#[derive(Clone, Debug)]
pub struct PacketDecoderOptions {
    /// The GPU (its ordinal): the context, the stream, the decoder and every frame tensor are on this device.
    /// Default [`crate::cuda::DEFAULT_GPU`] (GPU 0); set it per rank on a machine of several (`LOCAL_RANK`).
    pub gpu: usize,
    /// When frames come out: [`LatencyMode::Native`] (display order, a small queue), [`LatencyMode::Low`]
    /// (display order, no queue; each packet must hold one whole picture) or [`LatencyMode::Zero`] (decode
    /// order, for streams without B-frames).
    pub latency: LatencyMode,
    /// Attach each picture's SEI messages to its frame.
    pub extract_sei: bool,
    /// What frames are turned into ([`ColorType::Native`] planes as FFmpeg lays them out, or RGB / RGBP).
    pub color: ColorType,
    /// Largest width later streams may have without a new decoder (0 = the first stream's).
    pub max_width: u32,
    /// Largest height, as [`PacketDecoderOptions::max_width`].
    pub max_height: u32,
}

impl Default for PacketDecoderOptions {
    fn default() -> Self {
        PacketDecoderOptions {
            gpu: crate::cuda::DEFAULT_GPU,
            latency: LatencyMode::Native,
            extract_sei: false,
            color: ColorType::Native,
            max_width: 0,
            max_height: 0,
        }
    }
}

/// One decoded picture.
#[derive(Debug)]
pub struct DecodedFrame {
    /// The picture on the GPU: `[bytes]` for [`ColorType::Native`], `[3, H, W]` for RGBP, `[H, W, 3]` for RGB;
    /// uint8 (native 10/12-bit pictures are 16-bit little-endian samples, as FFmpeg's `yuv420p10le`).
    pub frame: Tensor,
    /// Presentation time stamp in the stream's time base.
    pub pts: i64,
    /// Whether NVDEC decoded it as an intra picture.
    pub key_frame: bool,
    /// Width of the picture.
    pub width: u32,
    /// Height of the picture.
    pub height: u32,
    /// SEI messages of the picture (empty unless [`PacketDecoderOptions::extract_sei`]).
    pub sei: Vec<SeiMessage>,
}

/// Packet-level NVDEC decoder of one stream at a time.
pub struct PacketDecoder {
    session: NvdecSession,
    stream: GpuStream,
    opts: PacketDecoderOptions,
    codec: NvCodec,
    matrix: ColorMatrix,
    range: ColorRange,
    /// Packet time stamps in packet order, for codecs whose parser does not return them (VP8/VP9/AV1: no
    /// reordering, so the n-th shown picture has the n-th packet's time stamp).
    pending_pts: Option<VecDeque<i64>>,
}

impl std::fmt::Debug for PacketDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketDecoder")
            .field("codec", &self.codec)
            .field("opts", &self.opts)
            .finish()
    }
}

/// Session settings for `demuxer`'s stream.
fn session_config(
    demuxer: &Demuxer,
    opts: &PacketDecoderOptions,
) -> Result<(SessionOptions, NvCodec)> {
    let info = demuxer.info();
    let codec = NvCodec::from_ffmpeg(demuxer.parameters().id())
        .ok_or_else(|| Error::Unsupported(format!("NVDEC has no decoder for {}", info.codec)))?;
    let mut cfg = SessionOptions::new(codec);
    cfg.latency = opts.latency;
    cfg.extract_sei = opts.extract_sei;
    cfg.max_width = opts.max_width.max(info.width);
    cfg.max_height = opts.max_height.max(info.height);
    cfg.sequence_header = sequence_header(codec, demuxer);
    cfg.clock_rate = u32::try_from(info.time_base.1).unwrap_or(0);
    Ok((cfg, codec))
}

impl PacketDecoder {
    /// A decoder for `demuxer`'s stream, which is switched to Annex-B packets (what NVDEC's parser reads).
    ///
    /// Errors: [`Error::GpuUnavailable`] without an NVDEC GPU, [`Error::Unsupported`] for a stream NVDEC cannot
    /// decode.
    pub fn new(demuxer: &mut Demuxer, opts: PacketDecoderOptions) -> Result<Self> {
        check_support(opts.gpu, demuxer)?;
        demuxer.set_annexb(true)?;
        let (cfg, codec) = session_config(demuxer, &opts)?;
        let gpu = GpuContext::shared(opts.gpu)?;
        let stream = GpuStream::new(&gpu)?;
        let session = NvdecSession::new(gpu, cfg)?;
        let info = demuxer.info();
        Ok(PacketDecoder {
            session,
            stream,
            codec,
            matrix: info.color_matrix,
            range: info.color_range,
            pending_pts: (!reliable_timestamps(codec)).then(VecDeque::new),
            opts,
        })
    }

    /// The GPU this decoder runs on: its session, its stream and every frame tensor belong to this context
    /// ([`PacketDecoderOptions::gpu`]).
    pub fn gpu(&self) -> &std::sync::Arc<GpuContext> {
        self.stream.gpu()
    }

    /// Feeds one packet and returns the frames that became ready (zero or more).
    pub fn decode(&mut self, packet: &Packet) -> Result<Vec<DecodedFrame>> {
        if let (Some(q), Some(pts)) = (self.pending_pts.as_mut(), packet.pts().or(packet.dts())) {
            q.push_back(pts);
        }
        match packet.pts().or(packet.dts()) {
            Some(pts) => self.session.decode(packet.data(), pts, true)?,
            None => self.session.decode_untimed(packet.data(), true)?,
        }
        self.drain()
    }

    /// Ends the stream: returns every frame still inside the decoder. Decoding can go on afterwards from a
    /// keyframe (after a seek, or with [`PacketDecoder::reconfigure`]).
    pub fn flush(&mut self) -> Result<Vec<DecodedFrame>> {
        self.session.flush()?;
        self.drain()
    }

    /// Drops everything inside the decoder without output (after a seek); continue with a keyframe.
    pub fn reset(&mut self) -> Result<()> {
        if let Some(q) = self.pending_pts.as_mut() {
            q.clear();
        }
        self.session.reset()
    }

    /// Switches to another stream of the same codec (its demuxer is switched to Annex-B). The decoder is
    /// reconfigured in place when the new size fits the maximum set at creation, and recreated otherwise.
    pub fn reconfigure(&mut self, demuxer: &mut Demuxer) -> Result<()> {
        demuxer.set_annexb(true)?;
        let (cfg, codec) = session_config(demuxer, &self.opts)?;
        if codec != self.codec {
            return Err(Error::InvalidArgument(format!(
                "a PacketDecoder for {} cannot decode {}",
                self.codec.name(),
                codec.name()
            )));
        }
        self.session.start_stream(cfg.sequence_header)?;
        if let Some(q) = self.pending_pts.as_mut() {
            q.clear();
        }
        let info = demuxer.info();
        self.matrix = info.color_matrix;
        self.range = info.color_range;
        Ok(())
    }

    /// Whether this GPU and driver report per-block decode statistics (QP, CU type, motion vectors) for the
    /// current stream.
    pub fn decode_stats_supported(&self) -> bool {
        self.session.decode_stats_supported()
    }

    /// Per-block decode statistics of the last picture handed out; [`Error::Unsupported`] where the driver has
    /// none (drivers before 590, such as the H100's 580, report none).
    pub fn last_decode_stats(&self) -> Result<DecodeStats> {
        Err(Error::Unsupported(if self.decode_stats_supported() {
            "this driver reports decode statistics, but vidloader does not read them yet".into()
        } else {
            "decode statistics need an NVIDIA driver 590 or newer (NVDEC SDK 13.1); this GPU and driver do \
             not report them"
                .into()
        }))
    }

    /// The session's counters: decoders created, reconfigurations, pictures decoded.
    pub fn stats(&self) -> SessionStats {
        self.session.stats()
    }

    /// Maps and converts every queued picture.
    fn drain(&mut self) -> Result<Vec<DecodedFrame>> {
        let mut out = Vec::new();
        while let Some(f) = self.session.next_frame() {
            out.push(self.convert(f)?);
        }
        Ok(out)
    }

    fn convert(&mut self, f: DisplayedFrame) -> Result<DecodedFrame> {
        let gpu = self.opts.gpu;
        let color = self.opts.color;
        let (matrix, range) = (self.matrix, self.range);
        let mapped = self.session.map(&f, &self.stream)?;
        let src = mapped.source()?;
        let (w, h) = (src.width(), src.height());
        let converter = self.stream.gpu().converter()?;
        let mut frame = match color {
            ColorType::Native => Tensor::f_empty(
                [src.native_bytes() as i64],
                (Kind::Uint8, Device::Cuda(gpu)),
            )?,
            ColorType::Rgbp => Tensor::f_empty(
                [3, i64::from(h), i64::from(w)],
                (Kind::Uint8, Device::Cuda(gpu)),
            )?,
            ColorType::Rgb => Tensor::f_empty(
                [i64::from(h), i64::from(w), 3],
                (Kind::Uint8, Device::Cuda(gpu)),
            )?,
        };
        match color {
            ColorType::Native => {
                let mut dst = DstBytes::from_tensor(&mut frame)?;
                converter.to_native(&src, &mut dst, &self.stream)?;
            }
            ColorType::Rgb | ColorType::Rgbp => {
                let layout = if color == ColorType::Rgb {
                    RgbLayout::Interleaved
                } else {
                    RgbLayout::Planar
                };
                let mut dst = DstImage::from_tensor(&mut frame, layout)?;
                let yuv = YuvToRgb::new(matrix, range, src.bit_depth());
                converter.to_rgb(&src, &yuv, &mut dst, None, &self.stream)?;
            }
        }
        mapped.unmap()?;
        let pts = match self.pending_pts.as_mut() {
            Some(q) => q.pop_front().unwrap_or(f.timestamp),
            None => f.timestamp,
        };
        Ok(DecodedFrame {
            frame,
            pts,
            key_frame: f.key_frame,
            width: w,
            height: h,
            sei: f.sei,
        })
    }
}
