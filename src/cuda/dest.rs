//! Destinations in device memory the conversion kernels write: [`DstImage`] (RGB of any element type, size and
//! strides, e.g. a CUDA tensor slot) and [`DstBytes`] (NATIVE frames).

use std::marker::PhantomData;

use super::DeviceBuffer;
use crate::error::{Error, Result};
use crate::frame::transform::{OutputDtype, RgbLayout};

/// An RGB destination image in device memory: address, element type, size and element strides.
#[derive(Debug)]
pub struct DstImage<'a> {
    pub(super) ptr: u64,
    pub(super) dtype: OutputDtype,
    pub(super) width: u32,
    pub(super) height: u32,
    /// Element strides (channel, row, column).
    pub(super) strides: [i64; 3],
    pub(super) device: Option<usize>,
    pub(super) _memory: PhantomData<&'a mut ()>,
}

impl<'a> DstImage<'a> {
    /// A CUDA tensor slot: shape `[H, W, 3]` for [`RgbLayout::Interleaved`] or `[3, H, W]` for
    /// [`RgbLayout::Planar`] (any strides, e.g. `batch.get(i)`), kind u8 / f16 / bf16 / f32. The kernel writes
    /// asynchronously on the conversion stream: order torch's use of the tensor after it (synchronise the stream or
    /// make torch's stream wait for it).
    pub fn from_tensor(t: &'a mut tch::Tensor, layout: RgbLayout) -> Result<Self> {
        let device = match t.device() {
            tch::Device::Cuda(i) => i,
            d => {
                return Err(Error::InvalidArgument(format!(
                    "destination tensor is on {d:?}, not a CUDA device"
                )))
            }
        };
        let kind = t.kind();
        let dtype = OutputDtype::from_kind(kind).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "destination kind {kind:?} (use u8, f16, bf16 or f32)"
            ))
        })?;
        let size = t.size();
        let st = t.stride();
        if size.len() != 3 {
            return Err(Error::InvalidArgument(format!(
                "destination shape {size:?} is not 3-dimensional"
            )));
        }
        let (h, w, strides) = match layout {
            RgbLayout::Interleaved if size[2] == 3 => (size[0], size[1], [st[2], st[0], st[1]]),
            RgbLayout::Planar if size[0] == 3 => (size[1], size[2], [st[0], st[1], st[2]]),
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "destination shape {size:?} does not fit {layout:?}"
                )))
            }
        };
        if h <= 0 || w <= 0 || h > u32::MAX as i64 || w > u32::MAX as i64 {
            return Err(Error::InvalidArgument(format!(
                "destination shape {size:?}"
            )));
        }
        let dims = [3, h, w];
        if strides
            .iter()
            .zip(dims)
            .any(|(&s, d)| s < 0 || (s == 0 && d > 1))
        {
            return Err(Error::InvalidArgument(format!(
                "destination strides {st:?} overlap or are negative"
            )));
        }
        let ptr = t.data_ptr() as u64;
        if ptr % dtype.size() as u64 != 0 {
            return Err(Error::InvalidArgument(
                "destination tensor is not aligned to its element size".into(),
            ));
        }
        Ok(DstImage {
            ptr,
            dtype,
            width: w as u32,
            height: h as u32,
            strides,
            device: Some(device),
            _memory: PhantomData,
        })
    }

    /// A contiguous image at byte `offset` of `buf`.
    pub fn from_buffer(
        buf: &'a mut DeviceBuffer,
        offset: usize,
        layout: RgbLayout,
        width: u32,
        height: u32,
        dtype: OutputDtype,
    ) -> Result<Self> {
        let n = 3 * width as usize * height as usize * dtype.size();
        if width == 0 || height == 0 || offset.checked_add(n).is_none_or(|end| end > buf.len()) {
            return Err(Error::InvalidArgument(format!(
                "{width}x{height} {dtype:?} image at offset {offset} does not fit a {}-byte buffer",
                buf.len()
            )));
        }
        let ptr = buf.device_ptr() + offset as u64;
        if ptr % dtype.size() as u64 != 0 {
            return Err(Error::InvalidArgument(
                "destination offset is not aligned to the element size".into(),
            ));
        }
        Ok(DstImage {
            ptr,
            dtype,
            width,
            height,
            strides: contiguous_strides(layout, width, height),
            device: None,
            _memory: PhantomData,
        })
    }

    /// A destination at a raw device address with element strides `(channel, row, column)`.
    ///
    /// # Safety
    /// Every element `ptr + (c*strides[0] + y*strides[1] + x*strides[2]) * dtype.size()` for `c < 3`,
    /// `y < height`, `x < width` must be writable device memory of the conversion's context, aligned to the element
    /// size, not read or written by anyone else until the conversion's stream has finished; distinct `(c, y, x)`
    /// must not alias.
    pub unsafe fn from_raw(
        ptr: u64,
        dtype: OutputDtype,
        width: u32,
        height: u32,
        strides: [i64; 3],
    ) -> Self {
        DstImage {
            ptr,
            dtype,
            width,
            height,
            strides,
            device: None,
            _memory: PhantomData,
        }
    }

    /// Contiguous strides for `layout`, for [`DstImage::from_raw`].
    pub fn contiguous_strides(layout: RgbLayout, width: u32, height: u32) -> [i64; 3] {
        contiguous_strides(layout, width, height)
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }
    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }
    /// Element type.
    pub fn dtype(&self) -> OutputDtype {
        self.dtype
    }
}

fn contiguous_strides(layout: RgbLayout, width: u32, height: u32) -> [i64; 3] {
    let (w, h) = (width as i64, height as i64);
    match layout {
        RgbLayout::Interleaved => [1, 3 * w, 3],
        RgbLayout::Planar => [h * w, w, 1],
    }
}

/// A byte destination in device memory for NATIVE frames.
#[derive(Debug)]
pub struct DstBytes<'a> {
    pub(super) ptr: u64,
    pub(super) len: usize,
    pub(super) device: Option<usize>,
    pub(super) _memory: PhantomData<&'a mut ()>,
}

impl<'a> DstBytes<'a> {
    /// A contiguous CUDA tensor (any kind; its bytes are written), e.g. row `i` of a `[N, bytes]` u8 batch.
    pub fn from_tensor(t: &'a mut tch::Tensor) -> Result<Self> {
        let device = match t.device() {
            tch::Device::Cuda(i) => i,
            d => {
                return Err(Error::InvalidArgument(format!(
                    "destination tensor is on {d:?}, not a CUDA device"
                )))
            }
        };
        if !t.is_contiguous() {
            return Err(Error::InvalidArgument(
                "NATIVE destination tensor must be contiguous".into(),
            ));
        }
        let len = t.numel() * t.kind().elt_size_in_bytes();
        Ok(DstBytes {
            ptr: t.data_ptr() as u64,
            len,
            device: Some(device),
            _memory: PhantomData,
        })
    }

    /// `len` bytes at byte `offset` of `buf`.
    pub fn from_buffer(buf: &'a mut DeviceBuffer, offset: usize, len: usize) -> Result<Self> {
        if offset.checked_add(len).is_none_or(|end| end > buf.len()) {
            return Err(Error::InvalidArgument(format!(
                "{len} bytes at offset {offset} do not fit a {}-byte buffer",
                buf.len()
            )));
        }
        Ok(DstBytes {
            ptr: buf.device_ptr() + offset as u64,
            len,
            device: None,
            _memory: PhantomData,
        })
    }

    /// `len` bytes at a raw device address.
    ///
    /// # Safety
    /// The range must be writable device memory of the conversion's context, not used by anyone else until the
    /// conversion's stream has finished.
    pub unsafe fn from_raw(ptr: u64, len: usize) -> Self {
        DstBytes {
            ptr,
            len,
            device: None,
            _memory: PhantomData,
        }
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the destination holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
