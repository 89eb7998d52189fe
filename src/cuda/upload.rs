//! Pictures decoded on the CPU, staged in pinned host memory in NVDEC's surface layout and copied to the GPU
//! asynchronously, so that the conversion kernel NVDEC pictures go through converts them too: a sample's values
//! then do not depend on which engine decoded it (H.264 and HEVC decode bit-exactly on both).

use std::ffi::c_void;
use std::sync::Arc;

use cudarc::driver::result as cu;

use super::{cuda_err, nvdec_surface_bytes, DeviceBuffer, GpuContext, GpuStream, SourceSurface};
use super::{DstBytes, DstImage, SurfaceFormat};
use crate::error::{Error, Result};
use crate::frame::color::{ColorType, YuvToRgb};
use crate::frame::transform::{slot_hw, FrameTransform, RgbLayout};

/// Page-locked host memory (`cuMemHostAlloc`), freed on drop.
struct PinnedBuffer {
    ptr: *mut c_void,
    len: usize,
    gpu: Arc<GpuContext>,
}

// SAFETY: the buffer is plain host memory owned by this value; nothing else holds the pointer.
unsafe impl Send for PinnedBuffer {}

impl PinnedBuffer {
    fn new(gpu: &Arc<GpuContext>, len: usize) -> Result<Self> {
        gpu.bind()?;
        // SAFETY: plain cuMemHostAlloc with the context bound (flags 0: portable to this context only); the pointer
        // is owned by the returned value and freed once in Drop.
        let ptr =
            unsafe { cu::malloc_host(len.max(1), 0) }.map_err(|e| cuda_err("cuMemHostAlloc", e))?;
        Ok(PinnedBuffer {
            ptr,
            len,
            gpu: gpu.clone(),
        })
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` is a live allocation of at least `len` bytes owned by `self`, borrowed mutably here.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for PinnedBuffer {
    fn drop(&mut self) {
        if self.gpu.bind().is_ok() {
            // SAFETY: `ptr` came from cuMemHostAlloc and is freed once; no copy from it is in flight (every upload
            // waits for its stream before returning).
            let _ = unsafe { cu::free_host(self.ptr) };
        }
    }
}

/// The layout a staged picture has: its surface format, size and bit depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StagedLayout {
    /// NVDEC surface format the picture is stored in.
    pub format: SurfaceFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bits per sample (8, 10, 12).
    pub bit_depth: u32,
}

impl StagedLayout {
    /// Row pitch in bytes: the width rounded up to even (a 4:2:0 chroma row of an odd-width picture holds
    /// `width + 1` samples), times the sample size.
    pub fn pitch(&self) -> usize {
        (self.width as usize).div_ceil(2) * 2 * self.format.bytes_per_sample()
    }

    /// Bytes of the whole surface.
    pub fn bytes(&self) -> usize {
        nvdec_surface_bytes(self.format, self.pitch(), self.height)
    }

    /// Byte offset of the chroma plane (the second plane for 4:4:4).
    pub fn chroma_offset(&self) -> usize {
        self.pitch() * ((self.height as usize + 1) & !1)
    }
}

/// A staging area for one picture at a time: pinned host memory, a device buffer and a stream of the GPU.
pub struct HostUpload {
    host: Option<PinnedBuffer>,
    device: Option<DeviceBuffer>,
    stream: GpuStream,
}

impl std::fmt::Debug for HostUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostUpload")
            .field("bytes", &self.host.as_ref().map_or(0, |h| h.len))
            .finish()
    }
}

impl HostUpload {
    /// A staging area on `gpu` (memory is allocated at the first picture, and again when a larger one comes).
    pub fn new(gpu: &Arc<GpuContext>) -> Result<Self> {
        Ok(HostUpload {
            host: None,
            device: None,
            stream: GpuStream::new(gpu)?,
        })
    }

    /// The GPU this stages for.
    pub fn gpu(&self) -> &Arc<GpuContext> {
        self.stream.gpu()
    }

    /// Lets `fill` write a picture of `layout` into pinned memory (NVDEC's layout: see [`StagedLayout`]), copies it
    /// to the device asynchronously on this area's stream, and converts it into `slot` (a CUDA tensor: NATIVE
    /// bytes, or an RGB slot of any size and float or u8 kind) with the kernel NVDEC pictures use, with `transform`
    /// fused in. Returns when the slot is written.
    pub fn convert_into(
        &mut self,
        layout: StagedLayout,
        fill: impl FnOnce(&mut [u8]),
        color: ColorType,
        yuv: &YuvToRgb,
        slot: &mut tch::Tensor,
        transform: &FrameTransform,
    ) -> Result<()> {
        let bytes = layout.bytes();
        let gpu = self.stream.gpu().clone();
        if self.host.as_ref().is_none_or(|h| h.len < bytes) {
            self.host = Some(PinnedBuffer::new(&gpu, bytes)?);
            self.device = Some(gpu.alloc(bytes)?);
        }
        let (Some(host), Some(device)) = (self.host.as_mut(), self.device.as_ref()) else {
            return Err(Error::Worker("staging buffers missing".into()));
        };
        let staged = &mut host.bytes_mut()[..bytes];
        fill(staged);
        gpu.bind()?;
        // SAFETY: `device` holds at least `bytes` bytes (allocated with the host buffer above); the host memory is
        // pinned and is not touched again before the stream is synchronised below.
        unsafe { cu::memcpy_htod_async(device.device_ptr(), &*staged, self.stream.raw()) }
            .map_err(|e| cuda_err("cuMemcpyHtoDAsync", e))?;
        let surface = SourceSurface::from_buffer(
            device,
            layout.pitch(),
            layout.width,
            layout.height,
            layout.format,
            layout.bit_depth,
        )?;
        let result = write_surface(surface, color, yuv, slot, transform, &self.stream);
        // The pinned buffer is reused by the next picture: wait for the copy (and the conversion) first.
        let synced = self.stream.synchronize();
        result.and(synced)
    }
}

/// Converts `src` into `slot` on `stream` (NATIVE bytes, or RGB / RGBP with `transform`'s crop and
/// normalisation and the slot's size and kind), as NVDEC pictures are.
pub(crate) fn write_surface(
    mut src: SourceSurface<'_>,
    color: ColorType,
    yuv: &YuvToRgb,
    slot: &mut tch::Tensor,
    transform: &FrameTransform,
    stream: &GpuStream,
) -> Result<()> {
    transform.check(src.width(), src.height())?;
    if let Some(c) = transform.crop {
        src = src.crop(c.left, c.top, c.width, c.height)?;
    }
    let converter = stream.gpu().converter()?;
    match color {
        ColorType::Native => {
            if transform.crop.is_some() || transform.normalize.is_some() {
                return Err(Error::InvalidArgument(
                    "NATIVE output takes no crop or normalisation".into(),
                ));
            }
            let mut dst = DstBytes::from_tensor(slot)?;
            if dst.len() != src.native_bytes() {
                return Err(Error::Unsupported(format!(
                    "frame size changed mid-stream to {}x{} ({} bytes for a {}-byte slot)",
                    src.width(),
                    src.height(),
                    src.native_bytes(),
                    dst.len()
                )));
            }
            converter.to_native(&src, &mut dst, stream)
        }
        ColorType::Rgb | ColorType::Rgbp => {
            slot_hw(color, &slot.size())?;
            let layout = if color == ColorType::Rgb {
                RgbLayout::Interleaved
            } else {
                RgbLayout::Planar
            };
            let mut dst = DstImage::from_tensor(slot, layout)?;
            converter.to_rgb(&src, yuv, &mut dst, transform.normalize.as_ref(), stream)
        }
    }
}
