//! NVDEC (nvcuvid) bindings and decode sessions.
//!
//! Layers, as in cudarc: [`sys`] has the raw `#[repr(C)]` mirrors (layouts pinned by compile-time assertions),
//! `api` loads `libnvcuvid.so.1` at run time (never linked) and turns `CUresult` codes into [`Error::Nvdec`], and
//! [`NvdecSession`] is the safe decode session (parser + decoder, sticky callback errors, display queue, mapping).
//! [`crate::cuda`] has the GPU context, streams and the kernels that convert a [`MappedSurface`] into a tensor slot.
//!
//! Everything returns typed errors on machines without a GPU, driver or NVDEC library; nothing panics.
//!
//! [`Error::Nvdec`]: crate::Error::Nvdec

mod api;
mod caps;
mod session;
pub mod sys;

mod recycle;

pub use api::{cu_result_name, is_available, library_name, unavailable_reason};
pub use caps::{decoder_caps, ChromaFormat, DecoderCaps, NvCodec};
pub use recycle::{idle_decoder_limit, idle_decoders, set_idle_decoder_limit};
pub use session::{
    ColorDescription, DecodeStats, DecodeStatus, Deinterlace, DisplayedFrame, LatencyMode,
    MappedSurface, NvdecSession, Rect, SeiMessage, SessionConfig, SessionStats, VideoFormat,
};
