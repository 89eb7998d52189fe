//! Decode backends behind one trait: the CPU (libavcodec) backend here, NVDEC alongside. A backend turns packets
//! into frames and writes the current frame into a batch slot; everything above it (planning, seeking, batching,
//! pooling) is backend-independent.

mod factory;

pub(crate) use self::factory::{open, prepare, resolve};

use serde::Serialize;

use crate::error::Result;
use crate::frame::color::ColorType;
use crate::frame::transform::FrameTransform;
use crate::io::demux::{Demuxer, Packet};

/// Which decoder to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize)]
pub enum Backend {
    /// NVDEC on the calling thread's current CUDA device (the one `torch.cuda.set_device` selects; GPU 0 when no
    /// CUDA context is current, see [`crate::cuda::default_gpu`]) when the GPU, its driver and support for the
    /// stream are there and its frames are exactly libavcodec's, otherwise the CPU (saying once per process why,
    /// when there is no GPU). The same as `AutoOn(cuda::default_gpu())`, resolved when the decoder opens; name
    /// the GPU with `AutoOn(n)` or `Nvdec(n)` on a machine of several.
    #[default]
    Auto,
    /// [`Backend::Auto`] on the GPU with this index: its NVDEC where it decodes the stream exactly, the CPU
    /// otherwise. What the command line's `--gpu N` means.
    AutoOn(usize),
    /// libavcodec on the CPU.
    Cpu,
    /// NVDEC on the GPU with this index.
    Nvdec(usize),
}

/// What a pooled decoder can be reused for: streams with the same key can be decoded by the same session after
/// a reconfigure.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DecoderKey {
    /// The backend that made it (never `Auto`).
    pub backend: Backend,
    /// FFmpeg codec name.
    pub codec: String,
    /// Bits per sample.
    pub bit_depth: u32,
    /// Chroma subsampling (`420`, ...).
    pub chroma: String,
    /// Largest width the session accepts.
    pub max_width: u32,
    /// Largest height the session accepts.
    pub max_height: u32,
}

/// Where [`FrameDecoder::write_current`] puts the current frame.
pub(crate) enum FrameSink<'a> {
    /// Host bytes of one frame at the stream's own size, uint8, laid out as the colour type says (the CPU
    /// backend's destination).
    Host(&'a mut [u8]),
    /// Host f32 values of one RGB slot, cropped, resized and normalised on the way (the CPU backend's fused
    /// path, for slots of another size than the picture).
    HostResized {
        /// `3 x H x W` values.
        values: &'a mut [f32],
        /// Crop, size, layout and normalisation.
        target: &'a crate::frame::transform::ResizeTarget,
    },
    /// One slot of a CUDA tensor: `[3, H, W]` (RGBP), `[H, W, 3]` (RGB) of any size and kind u8/f16/bf16/f32, or
    /// `[bytes]` (NATIVE); cropped, resized and normalised on the way (the NVDEC backend's destination).
    Device {
        /// The slot, a view into the batch tensor.
        slot: &'a mut tch::Tensor,
        /// Crop and normalisation.
        transform: &'a FrameTransform,
    },
}

/// A decoded picture taken out of its decoder ([`FrameDecoder::detach_current`]): it owns its planes and writes
/// them into a host sink ([`FrameSink::Host`] or [`FrameSink::HostResized`]) on whatever thread holds it.
pub(crate) trait HostPicture: Send {
    /// Writes the picture into `sink` as `color`, as [`FrameDecoder::write_current`] would have.
    fn write(self: Box<Self>, color: ColorType, sink: FrameSink<'_>) -> Result<()>;
}

/// A frame decoder: packets in, frames out, the current frame written into a slot on request.
pub(crate) trait FrameDecoder: Send {
    /// Points the decoder at a new stream with the same [`DecoderKey`] (the pool's reuse path).
    fn reconfigure(&mut self, demuxer: &Demuxer) -> Result<()>;
    /// Feeds one packet.
    fn send_packet(&mut self, packet: &Packet) -> Result<()>;
    /// Signals the end of the stream so that buffered frames come out.
    fn send_eof(&mut self) -> Result<()>;
    /// Makes the next decoded frame current and returns its presentation time stamp (`Some(None)` when the frame
    /// carries none); `None` when the decoder needs more input or is drained.
    fn receive(&mut self) -> Result<Option<Option<i64>>>;
    /// Writes the current frame into `sink` as `color`. A backend accepts the sink kind it produces
    /// ([`FrameSink::Host`] for the CPU, [`FrameSink::Device`] for NVDEC); the other is an
    /// [`crate::Error::InvalidArgument`].
    fn write_current(&mut self, color: ColorType, sink: FrameSink<'_>) -> Result<()>;
    /// Width and height of the current frame (`None` without one).
    fn current_size(&self) -> Option<(u32, u32)>;
    /// Drops all buffered state so that decoding can restart at a keyframe.
    fn flush(&mut self);
    /// Returns to the state of a new decoder, for decoding a stream again from its first packet where that is not
    /// a keyframe: the pictures a decoder makes there against missing references depend on what it decoded
    /// before (after a flush, libavcodec's HEVC decoder made them unlike a new decoder does: 63 dB against the
    /// ffmpeg CLI in a test). By default a flush.
    fn reset(&mut self) -> Result<()> {
        self.flush();
        Ok(())
    }
    /// Says whether every packet the current request needs has been sent and, where frames are identified by
    /// their time stamps, the presentation time stamp of its last wanted frame (`last_pts`). A decoder that holds
    /// decoded pictures back to keep its hardware busy (NVDEC's look-ahead) hands them out at once while
    /// `complete` is true, and a decoder whose parser holds decoded pictures back for display order hands out
    /// those stamped up to `last_pts`, instead of decoding pictures the request does not need. Without effect on
    /// decoders that hold nothing back.
    fn set_input_complete(&mut self, _complete: bool, _last_pts: Option<i64>) {}

    /// Whether the lane should hand this decoder's pictures to a writer thread ([`FrameDecoder::detach_current`])
    /// instead of writing them on the decoding thread. True for a CPU decoder with frame threads: its calling
    /// thread otherwise writes each picture while one decoding thread waits for the next packet.
    fn writes_off_thread(&self) -> bool {
        false
    }

    /// Takes the current frame out of the decoder, to be written into a host sink on another thread while
    /// decoding goes on (`None` for a decoder that writes only where it decodes, or without a current frame).
    fn detach_current(&mut self) -> Option<Box<dyn HostPicture>> {
        None
    }

    /// Waits until every slot written so far is complete. A decoder may return from `write_current` with the
    /// write still in flight (NVDEC, so that packets sent meanwhile do not delay it); the lane calls this before
    /// it hands the slots back. Without effect on decoders that write synchronously.
    fn finish_writes(&mut self) -> Result<()> {
        Ok(())
    }
}
