//! Encoding and transcoding: [`Encoder`] (tensors in, packets out, with per-picture flags, SEI insertion and
//! mid-stream reconfiguration), [`VideoWriter`] (an encoder writing a container or a raw stream),
//! [`Transcoder`] (whole files and time segments, decoded by vidloader's decoders, audio copied) and
//! [`read_sei`] (SEI read back on the CPU).
//!
//! # Backends
//! One FFmpeg encoder runs per [`Encoder`]: NVENC (`h264_nvenc`, `hevc_nvenc`, `av1_nvenc`) where a session
//! opens, else the codec's software encoder (`libx264`, `libx265`, `libsvtav1`). [`EncoderBackend::Auto`] tries
//! NVENC on the calling thread's current CUDA device (GPU 0 when none, [`crate::cuda::default_gpu`]) once per
//! process, GPU and codec and says what it chose and why ([`Encoder::backend_note`]);
//! [`EncoderBackend::Nvenc`] where none opens is [`crate::Error::GpuUnavailable`]. Frames on a CUDA device are
//! copied to host memory once, then converted (if their layout is not the encoder's) by swscale.
//!
//! # Parameters
//! PyNvVideoCodec's names, mapped explicitly onto every backend: the table is in the docs of [`EncoderOptions`].

mod backend;
mod encoder;
mod input;
mod mux;
mod options;
mod sei;
mod transcode;

pub use encoder::{EncodedPacket, Encoder, Reconfigured};
pub use mux::{VideoWriter, WriteStats};
pub use options::{
    parse_bitrate, parse_fps, Codec, EncoderBackend, EncoderOptions, InputFormat, PicFlags, Preset,
    RateControl, ReconfigureParams, Tuning,
};
pub use sei::{read_sei, FrameSei, Sei, MAX_SEI_PAYLOAD, SEI_USER_DATA_UNREGISTERED};
pub use transcode::{segment_path, TranscodeOptions, TranscodeStats, Transcoder, TEXT_SEI_UUID};
