//! [`DecoderOptions`]: how a [`crate::SimpleDecoder`] decodes (colour type, backend, threads, pool size, size
//! limit, device memory, parallel NVDEC sessions).

use crate::backend::Backend;
use crate::frame::color::ColorType;

/// Options of a [`crate::SimpleDecoder`]. The names in brackets are the matching constructor arguments of
/// PyNvVideoCodec's `SimpleDecoder`, whose API this one follows.
#[derive(Clone, Debug)]
pub struct DecoderOptions {
    /// What frames are turned into (`output_color_type`).
    pub color: ColorType,
    /// Which decoder to use.
    pub backend: Backend,
    /// CPU decoding threads; 0 means one per core.
    pub threads: usize,
    /// Idle decoders kept for reuse by [`crate::SimpleDecoder::reconfigure`] (`decoder_cache_size`).
    pub decoder_cache_size: usize,
    /// Largest width a pooled decoder must accept (`max_width`); 0 means the stream's own.
    pub max_width: u32,
    /// Largest height a pooled decoder must accept (`max_height`); 0 means the stream's own.
    pub max_height: u32,
    /// With NVDEC, whether batches stay in GPU memory (`use_device_memory`, the default) or are copied to host
    /// memory once complete. CPU decoding always returns host tensors.
    pub use_device_memory: bool,
    /// With NVDEC, how many decode sessions one request may use at once (its keyframe groups are spread over
    /// them); 0 = automatic (16), 1 = one session. Ignored on the CPU, where libavcodec's threads already run in
    /// parallel.
    pub sessions: usize,
}

impl Default for DecoderOptions {
    fn default() -> Self {
        DecoderOptions {
            color: ColorType::Rgbp,
            backend: Backend::Auto,
            threads: 0,
            decoder_cache_size: 4,
            max_width: 0,
            max_height: 0,
            use_device_memory: true,
            sessions: 0,
        }
    }
}

impl DecoderOptions {
    /// Sets the output colour type.
    pub fn color(mut self, color: ColorType) -> Self {
        self.color = color;
        self
    }
    /// Sets the backend.
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }
    /// Sets the number of CPU decoding threads (0 = one per core). With more than one, libavcodec decodes
    /// several pictures at once on threads of its own, and a request for several frames also starts a writer
    /// thread that copies or converts each picture into the batch while the next ones decode; with one, decoding
    /// and writing run on the calling thread (what a loader worker wants, when the workers fill the cores).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }
    /// Sets the number of idle decoders kept for reuse.
    pub fn decoder_cache_size(mut self, n: usize) -> Self {
        self.decoder_cache_size = n;
        self
    }
    /// Sets the size limit of pooled decoders.
    pub fn max_size(mut self, width: u32, height: u32) -> Self {
        self.max_width = width;
        self.max_height = height;
        self
    }
    /// Sets whether NVDEC batches stay on the GPU.
    pub fn use_device_memory(mut self, on: bool) -> Self {
        self.use_device_memory = on;
        self
    }
    /// Sets how many NVDEC sessions one request may use at once (0 = automatic).
    pub fn sessions(mut self, n: usize) -> Self {
        self.sessions = n;
        self
    }
}
