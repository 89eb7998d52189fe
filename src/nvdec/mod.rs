//! NVDEC (nvcuvid) bindings, decode sessions and the NVDEC decoders built on them.
//!
//! Layers, as in cudarc, bottom up: [`sys`] has the raw `#[repr(C)]` mirrors (layouts pinned by compile-time
//! assertions); `api` loads `libnvcuvid.so.1` at run time (never linked) and turns `CUresult` codes into
//! [`Error::Nvdec`]; `caps` asks the decoder capabilities once per process and holds every support check built on
//! them; `config` has the session's settings and data types; `callbacks` the hardware decoder handle and the parser
//! callbacks' state; `session` the safe [`NvdecSession`] (parser + decoder, sticky callback errors, display queue,
//! mapping); `surface` the [`MappedSurface`]; `recycle` the process-wide cache of idle hardware decoders. On top:
//! `frame_decoder` (the frame-exact decoders' NVDEC backend) and `packet` ([`crate::PacketDecoder`]).
//! [`crate::cuda`] has the GPU context, streams and the kernels that convert a [`MappedSurface`] into a tensor slot.
//!
//! Everything returns typed errors on machines without a GPU, driver or NVDEC library; nothing panics.
//!
//! [`Error::Nvdec`]: crate::Error::Nvdec

mod api;
mod callbacks;
mod caps;
mod config;
pub(crate) mod frame_decoder;
pub(crate) mod packet;
mod recycle;
mod result;
mod session;
mod surface;
pub mod sys;

pub use api::{cu_result_name, is_available, library_name, unavailable_reason};
pub(crate) use caps::{bit_exact, check_support};
pub use caps::{decoder_caps, ChromaFormat, DecoderCaps, NvCodec};
pub use config::{
    ColorDescription, DecodeStats, DecodeStatus, Deinterlace, DisplayedFrame, LatencyMode, Rect,
    SeiMessage, SessionOptions, SessionStats, VideoFormat,
};
pub use recycle::{idle_decoder_limit, idle_decoders, set_idle_decoder_limit};
pub use session::NvdecSession;
pub use surface::MappedSurface;

/// The former name of [`SessionOptions`], kept so that code written against it still builds.
#[doc(hidden)]
pub type SessionConfig = SessionOptions;
