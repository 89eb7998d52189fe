//! The crate's raw FFI outside NVDEC/CUDA: the few FFmpeg calls ffmpeg-next does not wrap, and writing into
//! memory that torch owns. Every `unsafe` block of these modules carries a `// SAFETY:` note.

pub(crate) mod dlpack;
pub(crate) mod encode;
pub(crate) mod ffmpeg;
pub(crate) mod tensor;
