//! vidloader: video files to exact, batched tch tensors.
//!
//! See `ARCHITECTURE.md` for the layers and the path of a frame from packet to tensor.
#![warn(missing_docs)]

pub mod backend;
pub mod batch;
pub mod color;
pub mod convert;
pub mod cuda;
pub mod dataset;
pub mod demux;
mod encode;
pub mod error;
mod ffi;
pub mod index;
pub mod loader;
mod nal;
pub mod nvdec;
pub mod packet_decoder;
pub mod pool;
pub mod sampler;
pub mod simple;
pub mod source;
mod sps;
pub mod synth;
pub mod threaded;
pub mod transform;

pub use backend::Backend;
pub use batch::FrameBatch;
pub use color::{ColorMatrix, ColorRange, ColorType};
pub use dataset::{VideoDataset, VideoEntry, VideoMeta};
pub use demux::{Demuxer, Packet, StreamInfo, StreamProbe};
pub use encode::{
    parse_bitrate, parse_fps, read_sei, segment_path, Codec, EncodedPacket, Encoder,
    EncoderBackend, EncoderOptions, FrameSei, InputFormat, PicFlags, Preset, RateControl,
    ReconfigureParams, Reconfigured, Sei, TranscodeOptions, TranscodeStats, Transcoder, Tuning,
    VideoWriter, WriteStats, MAX_SEI_PAYLOAD, SEI_USER_DATA_UNREGISTERED, TEXT_SEI_UUID,
};
pub use error::{Error, Result};
pub use index::FrameIndex;
pub use loader::{Batch, DataLoader, ErrorPolicy, Layout, Resize};
pub use packet_decoder::{DecodedFrame, PacketDecoder, PacketDecoderOptions};
pub use pool::{DecoderPool, PoolStats};
pub use sampler::{ClipSampler, RandomFrameSampler, Sampler, ShortVideoPolicy, UniformSampler};
pub use simple::{DecodeTimes, DecodeWork, DecoderOptions, SimpleDecoder};
pub use source::Source;
pub use threaded::{ThreadedDecoder, ThreadedOptions};
pub use transform::{CropRect, FrameTransform, Normalize};
