//! Bytes to packets to an exact frame index: where the bytes come from (`source.rs`), the demuxer over FFmpeg
//! (`demux.rs`) and the frame index built from one packet scan (`index.rs`).

pub(crate) mod demux;
pub(crate) mod index;
pub(crate) mod source;
