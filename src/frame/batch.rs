//! Batches of frames as tch tensors, allocated by torch and written in place.

use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::frame::color::ColorType;

/// Decoded frames of one video as a single tensor, with where each frame came from.
#[derive(Debug)]
pub struct FrameBatch {
    /// `[N, 3, H, W]` for [`ColorType::Rgbp`], `[N, H, W, 3]` for [`ColorType::Rgb`], `[N, bytes]` for
    /// [`ColorType::Native`]; uint8; on the GPU for NVDEC with device memory, else on the CPU.
    pub frames: Tensor,
    /// Frame index (presentation order) of each entry.
    pub indices: Vec<usize>,
    /// Presentation time stamp of each entry in the stream's time base.
    pub pts: Vec<i64>,
    /// Presentation time of each entry in seconds.
    pub times: Vec<f64>,
    /// The layout of `frames`.
    pub color: ColorType,
}

impl FrameBatch {
    /// Number of frames.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether the batch holds no frame (the end of a video).
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Frame `i` of the batch as a view (no copy).
    pub fn frame(&self, i: usize) -> Result<Tensor> {
        if i >= self.len() {
            return Err(Error::OutOfRange {
                index: i as i64,
                len: self.len(),
            });
        }
        Ok(self.frames.get(i as i64))
    }

    /// Frame `i` as a DLPack tensor (a view sharing the batch's storage, kept alive by the export).
    pub fn frame_dlpack(&self, i: usize) -> Result<dlpark::versioned::Dlpack> {
        crate::ffi::dlpack::tensor_to_dlpack(self.frame(i)?)
    }

    /// The whole batch as a DLPack tensor (no copy).
    pub fn to_dlpack(&self) -> Result<dlpark::versioned::Dlpack> {
        crate::ffi::dlpack::tensor_to_dlpack(self.frames.shallow_clone())
    }
}

/// The geometry of one frame in a batch tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameShape {
    pub color: ColorType,
    pub width: u32,
    pub height: u32,
    /// Bytes per frame.
    pub bytes: usize,
}

impl FrameShape {
    /// Tensor dimensions of a batch of `n` frames.
    pub fn dims(&self, n: usize) -> Vec<i64> {
        let (n, w, h) = (n as i64, i64::from(self.width), i64::from(self.height));
        match self.color {
            ColorType::Rgbp => vec![n, 3, h, w],
            ColorType::Rgb => vec![n, h, w, 3],
            ColorType::Native => vec![n, self.bytes as i64],
        }
    }

    /// A new, uninitialised batch of `n` frames on `device`.
    pub fn alloc(&self, n: usize, device: Device) -> Result<Tensor> {
        crate::ffi::tensor::empty(&self.dims(n), Kind::Uint8, device)
    }
}
