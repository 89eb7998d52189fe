//! vidloader: video files to exact, batched tch tensors.
//!
//! See `ARCHITECTURE.md` for the layers and the path of a frame from packet to tensor. The modules are private;
//! every public type has one path, at the crate root, except the GPU layers ([`cuda`], [`nvdec`]) and the
//! synthetic videos ([`synth`]), which keep their own namespaces.
#![warn(missing_docs)]

mod backend;
mod bitstream;
mod cpu;
pub mod cuda;
mod data;
mod decode;
mod encode;
mod error;
mod ffi;
mod frame;
/// Entry points of the fuzz targets and the fuzz smoke test: not a supported API.
#[doc(hidden)]
pub mod fuzzing;
mod io;
pub mod nvdec;

pub use backend::{Backend, DecoderKey};
pub use data::cache::{default_cache_dir, CacheStats};
pub use data::dataset::{
    ManifestMeta, ShardMember, VideoDataset, VideoEntry, VideoMeta, NO_LABEL, VIDEO_EXTENSIONS,
};
pub use data::loader::{
    dist_from_env, Batch, DataLoader, DataLoaderBuilder, DistEnv, Epoch, Epochs, ErrorPolicy,
    Layout, LoaderSummary, Plan, Resize, SampleInfo, SkippedSample,
};
pub use data::sampler::{
    below, linspace, parse_sampler, unit, ClipPositions, ClipSampler, ClipSpacing,
    RandomFrameSampler, SampleRng, Sampled, Sampler, ShortVideoPolicy, TimeRange, Timeline,
    UniformSampler, VideoView, MAX_SPEC_FRAMES,
};
pub use data::synth;
pub use decode::options::DecoderOptions;
pub use decode::pool::{DecoderPool, PoolStats};
pub use decode::simple::SimpleDecoder;
pub use decode::stats::{DecodeTimes, DecodeWork};
pub use decode::threaded::{ThreadedDecoder, ThreadedOptions};
pub use encode::{
    parse_bitrate, parse_fps, read_sei, segment_path, Codec, EncodedPacket, Encoder,
    EncoderBackend, EncoderOptions, FrameSei, InputFormat, PicFlags, Preset, RateControl,
    ReconfigureParams, Reconfigured, Sei, TranscodeOptions, TranscodeStats, Transcoder, Tuning,
    VideoWriter, WriteStats, MAX_SEI_PAYLOAD, SEI_USER_DATA_UNREGISTERED, TEXT_SEI_UUID,
};
pub use error::{Error, Result};
pub use frame::batch::FrameBatch;
pub use frame::color::{ColorMatrix, ColorRange, ColorType, YuvToRgb};
pub use frame::transform::{CropRect, FrameTransform, Normalize, OutputDtype, RgbLayout};
pub use io::demux::{Demuxer, Packet, ProbeMode, StreamInfo};
pub use io::index::{FrameIndex, PacketEntry};
pub use io::source::Source;
pub use nvdec::packet::{DecodedFrame, PacketDecoder, PacketDecoderOptions};

/// The former name of [`ProbeMode`], kept so that code written against it still builds.
#[doc(hidden)]
pub type StreamProbe = ProbeMode;

/// Initialises FFmpeg once for the whole process (quiet logging); every entry point that touches FFmpeg calls it.
pub(crate) use io::demux::init_ffmpeg;
