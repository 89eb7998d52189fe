//! GPU conversion of decoded YUV surfaces (NV12, P016, YUV444, YUV444_16Bit, pitch-linear device memory as NVDEC
//! maps them) into a destination in device memory: interleaved RGB (HWC), planar RGB (CHW), optionally resized
//! (bilinear) and normalised into u8 / f16 / bf16 / f32, or the NATIVE planes (the bytes of
//! `ffmpeg -f rawvideo -pix_fmt yuv420p | yuv420p10le | yuv444p | yuv444p10le ...`).
//!
//! # The maths (identical to the CPU converter in `crate::frame::color`)
//! Samples in 16-bit containers are first shifted right by `16 - bit_depth`. With the caller's
//! [`YuvToRgb`] parameters, in float32 and in exactly this order (the kernels use `_rn` intrinsics and
//! `--fmad=false`, so no fused multiply-add changes the rounding):
//! ```text
//! y  = (Y  - y_off) * y_scale
//! cb = (Cb - c_off) * c_scale
//! cr = (Cr - c_off) * c_scale
//! R = y + cr_r*cr;   G = (y - cb_g*cb) - cr_g*cr;   B = y + cb_b*cb
//! each channel: clamp(floor(v + 0.5), 0, 255)
//! ```
//! Chroma is sampled nearest-neighbour: pixel (x, y) of a 4:2:0 surface uses chroma sample (x/2, y/2).
//!
//! # Resize and normalise
//! When the destination is larger or smaller than the source, each output pixel is the bilinear interpolation
//! (half-pixel centres, `align_corners = false`, no antialiasing: the formula of torch's
//! `interpolate(mode="bilinear")`) of the four neighbouring RGB pixels, each computed exactly as above. Then, with
//! [`Normalize`], `out = (v * scale - mean[c]) / std[c]`; for u8 output the value is rounded half up and clamped.
//! Without resize, float outputs hold the integer RGB values (optionally normalised).

use std::ffi::c_void;
use std::marker::PhantomData;

use cudarc::driver::{result as cu, sys as cusys};

use super::{DeviceBuffer, GpuContext, GpuStream};
use crate::error::{Error, Result};
use crate::frame::color::YuvToRgb;
use crate::frame::transform::{Normalize, OutputDtype, RgbLayout};

/// Layout of a decoded surface (NVDEC `cudaVideoSurfaceFormat`, the four that vidloader converts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SurfaceFormat {
    /// 8-bit Y plane + interleaved CbCr plane, 4:2:0.
    Nv12,
    /// 16-bit samples (MSB-aligned), NV12 geometry: used for 10/12-bit 4:2:0.
    P016,
    /// 8-bit planar Y, U, V, 4:4:4.
    Yuv444,
    /// 16-bit (MSB-aligned) planar Y, U, V, 4:4:4.
    Yuv444_16Bit,
}

impl SurfaceFormat {
    /// Bytes per sample (1 or 2).
    pub fn bytes_per_sample(self) -> usize {
        match self {
            SurfaceFormat::Nv12 | SurfaceFormat::Yuv444 => 1,
            SurfaceFormat::P016 | SurfaceFormat::Yuv444_16Bit => 2,
        }
    }

    /// Whether chroma is subsampled 2x2 (4:2:0).
    pub fn is_420(self) -> bool {
        matches!(self, SurfaceFormat::Nv12 | SurfaceFormat::P016)
    }

    /// The NVDEC `cudaVideoSurfaceFormat` value.
    pub fn to_raw(self) -> u32 {
        match self {
            SurfaceFormat::Nv12 => 0,
            SurfaceFormat::P016 => 1,
            SurfaceFormat::Yuv444 => 2,
            SurfaceFormat::Yuv444_16Bit => 3,
        }
    }

    /// From a `cudaVideoSurfaceFormat` value (`None` for NV16/P216 and unknown values).
    pub fn from_raw(v: u32) -> Option<Self> {
        Some(match v {
            0 => SurfaceFormat::Nv12,
            1 => SurfaceFormat::P016,
            2 => SurfaceFormat::Yuv444,
            3 => SurfaceFormat::Yuv444_16Bit,
            _ => return None,
        })
    }

    /// The FFmpeg pixel format name whose rawvideo bytes the NATIVE conversion writes for `bit_depth`.
    pub fn native_pix_fmt(self, bit_depth: u32) -> String {
        let base = if self.is_420() { "yuv420p" } else { "yuv444p" };
        if self.bytes_per_sample() == 1 {
            base.to_string()
        } else {
            format!("{base}{bit_depth}le")
        }
    }
}

/// Bytes of one NATIVE frame (`Y` then `U` then `V`, packed, no padding) for a `width` x `height` picture.
/// 4:2:0 chroma planes are `ceil(w/2) x ceil(h/2)`, as FFmpeg writes them.
pub fn native_frame_bytes(format: SurfaceFormat, width: u32, height: u32) -> usize {
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = if format.is_420() {
        (w.div_ceil(2), h.div_ceil(2))
    } else {
        (w, h)
    };
    (w * h + 2 * cw * ch) * format.bytes_per_sample()
}

/// Total bytes of an NVDEC-layout surface: luma rows, then the chroma plane(s) at `pitch * align2(height)`.
pub fn nvdec_surface_bytes(format: SurfaceFormat, pitch: usize, surface_height: u32) -> usize {
    let hr = (surface_height as usize + 1) & !1;
    if format.is_420() {
        pitch * hr + pitch * (hr / 2)
    } else {
        3 * pitch * hr
    }
}

/// A decoded picture in device memory, ready to convert: plane addresses at the visible origin, pitch, visible
/// size, format and bit depth. Borrowed from a mapped NVDEC frame ([`crate::nvdec::MappedSurface::source`]), a
/// [`DeviceBuffer`], or raw memory.
#[derive(Clone, Copy, Debug)]
pub struct SourceSurface<'a> {
    luma: u64,
    chroma: u64,
    chroma2: u64,
    pitch: usize,
    width: u32,
    height: u32,
    format: SurfaceFormat,
    bit_depth: u32,
    /// When set, conversions must be issued on this stream (the one the NVDEC frame was mapped on), so they are
    /// ordered before the unmap.
    required_stream: Option<usize>,
    _memory: PhantomData<&'a ()>,
}

impl<'a> SourceSurface<'a> {
    /// Describes an NVDEC-layout surface at `base`: luma rows of `pitch` bytes, chroma at
    /// `base + pitch * align2(surface_height)` (and, for 4:4:4, V one plane further), visible rectangle
    /// `(left, top, width, height)`.
    ///
    /// # Safety
    /// The whole surface (`nvdec_surface_bytes(format, pitch, surface_height)` bytes at `base`) must be readable
    /// device memory of the context the conversion runs in, for the lifetime `'a` and until the conversion's stream
    /// has finished.
    pub unsafe fn from_raw_nvdec(
        base: u64,
        pitch: usize,
        surface_width: u32,
        surface_height: u32,
        format: SurfaceFormat,
        bit_depth: u32,
        visible: (u32, u32, u32, u32),
    ) -> Result<Self> {
        let (left, top, width, height) = visible;
        let bps = format.bytes_per_sample();
        if pitch < surface_width as usize * bps {
            return Err(Error::InvalidArgument(format!(
                "pitch {pitch} is smaller than a {surface_width}-sample row"
            )));
        }
        if width == 0
            || height == 0
            || left + width > surface_width
            || top + height > surface_height
        {
            return Err(Error::InvalidArgument(format!(
                "visible area {width}x{height}+{left}+{top} outside the {surface_width}x{surface_height} surface"
            )));
        }
        if format.is_420() && (left % 2 != 0 || top % 2 != 0) {
            return Err(Error::InvalidArgument(format!(
                "4:2:0 crop origin {left},{top} must be even"
            )));
        }
        let valid_depth = if bps == 1 {
            bit_depth == 8
        } else {
            (9..=16).contains(&bit_depth)
        };
        if !valid_depth {
            return Err(Error::InvalidArgument(format!(
                "bit depth {bit_depth} does not fit {format:?}"
            )));
        }
        let plane = pitch as u64 * ((surface_height as u64 + 1) & !1);
        let (l, t, p, b) = (left as u64, top as u64, pitch as u64, bps as u64);
        let luma = base + t * p + l * b;
        let (chroma, chroma2) = if format.is_420() {
            (base + plane + (t / 2) * p + (l / 2) * 2 * b, 0)
        } else {
            (
                base + plane + t * p + l * b,
                base + 2 * plane + t * p + l * b,
            )
        };
        Ok(SourceSurface {
            luma,
            chroma,
            chroma2,
            pitch,
            width,
            height,
            format,
            bit_depth,
            required_stream: None,
            _memory: PhantomData,
        })
    }

    /// Describes an NVDEC-layout surface stored in `buf` (for tests and for frames uploaded from the host). The
    /// whole `surface_width x surface_height` surface is the visible area.
    pub fn from_buffer(
        buf: &'a DeviceBuffer,
        pitch: usize,
        surface_width: u32,
        surface_height: u32,
        format: SurfaceFormat,
        bit_depth: u32,
    ) -> Result<Self> {
        let need = nvdec_surface_bytes(format, pitch, surface_height);
        if need > buf.len() {
            return Err(Error::InvalidArgument(format!(
                "surface needs {need} bytes, buffer has {}",
                buf.len()
            )));
        }
        // SAFETY: the buffer holds the whole surface (checked above) and is borrowed for 'a.
        unsafe {
            Self::from_raw_nvdec(
                buf.device_ptr(),
                pitch,
                surface_width,
                surface_height,
                format,
                bit_depth,
                (0, 0, surface_width, surface_height),
            )
        }
    }

    pub(crate) fn with_required_stream(mut self, stream: &GpuStream) -> Self {
        self.required_stream = Some(stream.raw() as usize);
        self
    }

    /// A sub-rectangle of this picture (origin even for 4:2:0).
    pub fn crop(&self, left: u32, top: u32, width: u32, height: u32) -> Result<SourceSurface<'a>> {
        if width == 0 || height == 0 || left + width > self.width || top + height > self.height {
            return Err(Error::InvalidArgument(format!(
                "crop {width}x{height}+{left}+{top} outside the {}x{} picture",
                self.width, self.height
            )));
        }
        if self.format.is_420() && (left % 2 != 0 || top % 2 != 0) {
            return Err(Error::InvalidArgument(format!(
                "4:2:0 crop origin {left},{top} must be even"
            )));
        }
        let (l, t, p, b) = (
            left as u64,
            top as u64,
            self.pitch as u64,
            self.format.bytes_per_sample() as u64,
        );
        let mut s = *self;
        s.luma += t * p + l * b;
        if self.format.is_420() {
            s.chroma += (t / 2) * p + (l / 2) * 2 * b;
        } else {
            s.chroma += t * p + l * b;
            s.chroma2 += t * p + l * b;
        }
        s.width = width;
        s.height = height;
        Ok(s)
    }

    /// Visible width.
    pub fn width(&self) -> u32 {
        self.width
    }
    /// Visible height.
    pub fn height(&self) -> u32 {
        self.height
    }
    /// Surface format.
    pub fn format(&self) -> SurfaceFormat {
        self.format
    }
    /// Bits per sample of the stream (8..=16).
    pub fn bit_depth(&self) -> u32 {
        self.bit_depth
    }
    /// Row pitch in bytes.
    pub fn pitch(&self) -> usize {
        self.pitch
    }
    /// Device address of the first visible luma sample.
    pub fn luma_ptr(&self) -> u64 {
        self.luma
    }
    /// Device address of the first visible chroma sample (CbCr pair for 4:2:0, U for 4:4:4).
    pub fn chroma_ptr(&self) -> u64 {
        self.chroma
    }
    /// Bytes of one NATIVE frame of this picture.
    pub fn native_bytes(&self) -> usize {
        native_frame_bytes(self.format, self.width, self.height)
    }

    fn kernel_args(&self) -> KSrc {
        let shift = if self.format.bytes_per_sample() == 2 {
            16 - self.bit_depth as i32
        } else {
            0
        };
        KSrc {
            luma: self.luma,
            chroma: self.chroma,
            chroma2: self.chroma2,
            pitch: self.pitch as i32,
            width: self.width as i32,
            height: self.height as i32,
            format: self.format.to_raw() as i32,
            shift,
            _pad: 0,
        }
    }
}

/// An RGB destination image in device memory: address, element type, size and element strides.
#[derive(Debug)]
pub struct DstImage<'a> {
    ptr: u64,
    dtype: OutputDtype,
    width: u32,
    height: u32,
    /// Element strides (channel, row, column).
    strides: [i64; 3],
    device: Option<usize>,
    _memory: PhantomData<&'a mut ()>,
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
    ptr: u64,
    len: usize,
    device: Option<usize>,
    _memory: PhantomData<&'a mut ()>,
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

// ---- kernel argument structs (must match the CUDA source; both sides assert the sizes) ----

#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct KSrc {
    luma: u64,
    chroma: u64,
    chroma2: u64,
    pitch: i32,
    width: i32,
    height: i32,
    format: i32,
    shift: i32,
    _pad: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct KColor {
    y_off: f32,
    y_scale: f32,
    c_off: f32,
    c_scale: f32,
    cr_r: f32,
    cb_g: f32,
    cr_g: f32,
    cb_b: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct KDst {
    ptr: u64,
    sc: i64,
    sy: i64,
    sx: i64,
    width: i32,
    height: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct KNorm {
    enabled: i32,
    scale: f32,
    mean: [f32; 3],
    std: [f32; 3],
}

const _: () = assert!(std::mem::size_of::<KSrc>() == 48);
const _: () = assert!(std::mem::size_of::<KColor>() == 32);
const _: () = assert!(std::mem::size_of::<KDst>() == 40);
const _: () = assert!(std::mem::size_of::<KNorm>() == 32);

impl From<&YuvToRgb> for KColor {
    fn from(c: &YuvToRgb) -> Self {
        KColor {
            y_off: c.y_off,
            y_scale: c.y_scale,
            c_off: c.c_off,
            c_scale: c.c_scale,
            cr_r: c.cr_r,
            cb_g: c.cb_g,
            cr_g: c.cr_g,
            cb_b: c.cb_b,
        }
    }
}

/// The CUDA C++ source of every conversion kernel (compiled by NVRTC with `--fmad=false`).
pub const KERNEL_SOURCE: &str = include_str!("kernels/convert.cu");

/// NVRTC options used for [`KERNEL_SOURCE`].
const NVRTC_OPTIONS: &[&str] = &["--fmad=false"];

const BLOCK: (u32, u32) = (32, 8);

/// The compiled conversion kernels of one [`GpuContext`] (see [`GpuContext::converter`]).
pub struct Converter {
    module: cusys::CUmodule,
    rgb: [cusys::CUfunction; 4],
    native: cusys::CUfunction,
    ctx: cusys::CUcontext,
    ordinal: usize,
    target: String,
}

// SAFETY: CUmodule/CUfunction handles are plain context-scoped handles; launching is thread-safe in the driver
// and every launch binds the owning context first.
unsafe impl Send for Converter {}
// SAFETY: as above; `&Converter` only launches kernels.
unsafe impl Sync for Converter {}

impl std::fmt::Debug for Converter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Converter")
            .field("target", &self.target)
            .finish()
    }
}

impl Converter {
    pub(crate) fn build(gpu: &GpuContext) -> std::result::Result<Self, String> {
        let image = super::nvrtc::compile(
            KERNEL_SOURCE,
            "vidloader_convert.cu",
            gpu.compute_capability(),
            NVRTC_OPTIONS,
        )?;
        gpu.bind().map_err(|e| e.to_string())?;
        // SAFETY: the image is a complete CUBIN or NUL-terminated PTX produced by NVRTC; the context is bound.
        let module = unsafe { cu::module::load_data(image.bytes.as_ptr() as *const c_void) }
            .map_err(|e| format!("cuModuleLoadData ({}): {e:?}", image.target))?;
        let get = |name: &str| -> std::result::Result<cusys::CUfunction, String> {
            let c = std::ffi::CString::new(name).expect("no NUL");
            // SAFETY: `module` was just loaded in the bound context.
            unsafe { cu::module::get_function(module, c) }
                .map_err(|e| format!("cuModuleGetFunction {name}: {e:?}"))
        };
        let funcs = (|| {
            Ok::<_, String>((
                [
                    get("vl_rgb_u8")?,
                    get("vl_rgb_f16")?,
                    get("vl_rgb_bf16")?,
                    get("vl_rgb_f32")?,
                ],
                get("vl_native")?,
            ))
        })();
        match funcs {
            Ok((rgb, native)) => Ok(Converter {
                module,
                rgb,
                native,
                ctx: gpu.cu_context(),
                ordinal: gpu.ordinal(),
                target: image.target,
            }),
            Err(e) => {
                // SAFETY: the module was loaded above and is not used afterwards.
                let _ = unsafe { cu::module::unload(module) };
                Err(e)
            }
        }
    }

    /// What the kernels were compiled for, e.g. "sm_90 cubin (NVRTC 13.0)".
    pub fn target(&self) -> &str {
        &self.target
    }

    fn check_stream(
        &self,
        src: &SourceSurface<'_>,
        stream: &GpuStream,
        device: Option<usize>,
    ) -> Result<()> {
        if stream.gpu().cu_context() != self.ctx {
            return Err(Error::InvalidArgument(
                "the stream belongs to another GPU context than the kernels".into(),
            ));
        }
        if let Some(required) = src.required_stream {
            if required != stream.raw() as usize {
                return Err(Error::InvalidArgument(
                    "convert a mapped NVDEC frame on the stream it was mapped on (so the unmap waits for it)".into(),
                ));
            }
        }
        if let Some(d) = device {
            if d != self.ordinal {
                return Err(Error::InvalidArgument(format!(
                    "destination tensor is on cuda:{d}, the kernels on cuda:{}",
                    self.ordinal
                )));
            }
        }
        stream.gpu().bind()
    }

    fn launch(
        &self,
        f: cusys::CUfunction,
        w: u32,
        h: u32,
        stream: &GpuStream,
        args: &mut [*mut c_void],
    ) -> Result<()> {
        let grid = (w.div_ceil(BLOCK.0), h.div_ceil(BLOCK.1), 1);
        if grid.1 > 65535 {
            return Err(Error::InvalidArgument(format!(
                "image height {h} too large"
            )));
        }
        // SAFETY: `f` belongs to this module, loaded in the bound context; `args` points at values whose types and
        // sizes match the kernel's parameters (asserted on both sides); the addresses inside them were validated by
        // the safe constructors or promised by the callers of the unsafe ones.
        unsafe { cu::launch_kernel(f, grid, (BLOCK.0, BLOCK.1, 1), 0, stream.raw(), args) }.map_err(
            |e| Error::Cuda {
                call: "cuLaunchKernel",
                reason: format!("{e:?}"),
            },
        )
    }

    /// Converts `src` to RGB into `dst`, on `stream` (asynchronously). The destination's size selects plain
    /// conversion (same size as `src`) or bilinear resize; `normalize` is only allowed for float destinations.
    pub fn to_rgb(
        &self,
        src: &SourceSurface<'_>,
        color: &YuvToRgb,
        dst: &mut DstImage<'_>,
        normalize: Option<&Normalize>,
        stream: &GpuStream,
    ) -> Result<()> {
        self.check_stream(src, stream, dst.device)?;
        if normalize.is_some() && dst.dtype == OutputDtype::U8 {
            return Err(Error::InvalidArgument(
                "normalisation needs a float destination (f16, bf16, f32)".into(),
            ));
        }
        if let Some(n) = normalize {
            if n.std.iter().any(|&s| s == 0.0 || !s.is_finite()) {
                return Err(Error::InvalidArgument(format!(
                    "normalisation std {:?} must be finite and non-zero",
                    n.std
                )));
            }
        }
        let mut ksrc = src.kernel_args();
        let mut kcol = KColor::from(color);
        let mut kdst = KDst {
            ptr: dst.ptr,
            sc: dst.strides[0],
            sy: dst.strides[1],
            sx: dst.strides[2],
            width: dst.width as i32,
            height: dst.height as i32,
        };
        let mut knorm = match normalize {
            Some(n) => KNorm {
                enabled: 1,
                scale: n.scale,
                mean: n.mean,
                std: n.std,
            },
            None => KNorm {
                enabled: 0,
                scale: 1.0,
                mean: [0.0; 3],
                std: [1.0; 3],
            },
        };
        let f = self.rgb[match dst.dtype {
            OutputDtype::U8 => 0,
            OutputDtype::F16 => 1,
            OutputDtype::Bf16 => 2,
            OutputDtype::F32 => 3,
        }];
        let mut args = [
            &mut ksrc as *mut KSrc as *mut c_void,
            &mut kcol as *mut KColor as *mut c_void,
            &mut kdst as *mut KDst as *mut c_void,
            &mut knorm as *mut KNorm as *mut c_void,
        ];
        self.launch(f, dst.width, dst.height, stream, &mut args)
    }

    /// Writes the NATIVE planes of `src` (see [`native_frame_bytes`]) to the start of `dst`, on `stream`
    /// (asynchronously).
    pub fn to_native(
        &self,
        src: &SourceSurface<'_>,
        dst: &mut DstBytes<'_>,
        stream: &GpuStream,
    ) -> Result<()> {
        self.check_stream(src, stream, dst.device)?;
        let need = src.native_bytes();
        if dst.len < need {
            return Err(Error::InvalidArgument(format!(
                "NATIVE frame needs {need} bytes, destination has {}",
                dst.len
            )));
        }
        if src.format.bytes_per_sample() == 2 && dst.ptr % 2 != 0 {
            return Err(Error::InvalidArgument(
                "16-bit NATIVE destination must be 2-byte aligned".into(),
            ));
        }
        let mut ksrc = src.kernel_args();
        let mut ptr = dst.ptr;
        let mut args = [
            &mut ksrc as *mut KSrc as *mut c_void,
            &mut ptr as *mut u64 as *mut c_void,
        ];
        self.launch(self.native, src.width, src.height, stream, &mut args)
    }
}

impl Drop for Converter {
    fn drop(&mut self) {
        // SAFETY: binding our own (still retained) context, then unloading the module we loaded; no kernels of it
        // are used afterwards (the converter is being dropped with its GpuContext).
        unsafe {
            let _ = cu::ctx::set_current(self.ctx);
            let _ = cu::module::unload(self.module);
        }
    }
}

/// A CPU model of the kernel's RGB maths (same float operations in the same order), for tests and for callers
/// that want to check GPU output.
pub fn reference_rgb(color: &YuvToRgb, y: f32, cb: f32, cr: f32) -> [u8; 3] {
    let q8 = |v: f32| (v + 0.5).floor().clamp(0.0, 255.0) as u8;
    let yv = (y - color.y_off) * color.y_scale;
    let b = (cb - color.c_off) * color.c_scale;
    let r = (cr - color.c_off) * color.c_scale;
    [
        q8(yv + color.cr_r * r),
        q8(yv - color.cb_g * b - color.cr_g * r),
        q8(yv + color.cb_b * b),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::color::{ColorMatrix, ColorRange};

    #[test]
    fn extremes_limited_range() {
        for m in [ColorMatrix::Bt601, ColorMatrix::Bt709, ColorMatrix::Bt2020] {
            let c = YuvToRgb::new(m, ColorRange::Limited, 8);
            assert_eq!(reference_rgb(&c, 235.0, 128.0, 128.0), [255, 255, 255]);
            assert_eq!(reference_rgb(&c, 16.0, 128.0, 128.0), [0, 0, 0]);
            let c = YuvToRgb::new(m, ColorRange::Limited, 10);
            assert_eq!(reference_rgb(&c, 940.0, 512.0, 512.0), [255, 255, 255]);
            assert_eq!(reference_rgb(&c, 64.0, 512.0, 512.0), [0, 0, 0]);
        }
    }

    #[test]
    fn bt709_coefficients_are_the_standard_ones() {
        let c = YuvToRgb::new(ColorMatrix::Bt709, ColorRange::Full, 8);
        assert!((c.cr_r - 1.5748).abs() < 1e-4);
        assert!((c.cb_g - 0.187324).abs() < 1e-4);
        assert!((c.cr_g - 0.468124).abs() < 1e-4);
        assert!((c.cb_b - 1.8556).abs() < 1e-4);
        // Limited range folds 255/219 and 255/224 into the offsets/scales: Cr->R = 1.792741 per code value.
        let l = YuvToRgb::new(ColorMatrix::Bt709, ColorRange::Limited, 8);
        assert!((l.cr_r * l.c_scale - 1.792741).abs() < 1e-4);
        assert!((l.y_scale - 1.164384).abs() < 1e-5);
    }

    #[test]
    fn kernel_model_matches_cpu_converter_exactly() {
        // The kernel model and crate::frame::color's CPU converter must agree bit for bit on every 8-bit triple we try.
        for m in [ColorMatrix::Bt601, ColorMatrix::Bt709, ColorMatrix::Bt2020] {
            for r in [ColorRange::Limited, ColorRange::Full] {
                let c = YuvToRgb::new(m, r, 8);
                for y in (0..=255).step_by(3) {
                    for u in (0..=255).step_by(5) {
                        for v in (0..=255).step_by(7) {
                            let (y, u, v) = (y as f32, u as f32, v as f32);
                            assert_eq!(
                                reference_rgb(&c, y, u, v),
                                c.apply(y, u, v),
                                "{m:?} {r:?} {y} {u} {v}"
                            );
                        }
                    }
                }
                let c10 = YuvToRgb::new(m, r, 10);
                for y in (0..1024).step_by(11) {
                    for u in (0..1024).step_by(13) {
                        let (y, u) = (y as f32, u as f32);
                        assert_eq!(
                            reference_rgb(&c10, y, u, 1023.0 - u),
                            c10.apply(y, u, 1023.0 - u)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn native_sizes_follow_ffmpeg() {
        assert_eq!(
            native_frame_bytes(SurfaceFormat::Nv12, 320, 240),
            320 * 240 * 3 / 2
        );
        assert_eq!(
            native_frame_bytes(SurfaceFormat::Nv12, 321, 241),
            321 * 241 + 2 * 161 * 121
        );
        assert_eq!(
            native_frame_bytes(SurfaceFormat::P016, 320, 180),
            320 * 180 * 3
        );
        assert_eq!(native_frame_bytes(SurfaceFormat::Yuv444, 4, 2), 24);
        assert_eq!(native_frame_bytes(SurfaceFormat::Yuv444_16Bit, 4, 2), 48);
        assert_eq!(SurfaceFormat::P016.native_pix_fmt(10), "yuv420p10le");
        assert_eq!(SurfaceFormat::Nv12.native_pix_fmt(8), "yuv420p");
        assert_eq!(
            SurfaceFormat::Yuv444_16Bit.native_pix_fmt(12),
            "yuv444p12le"
        );
    }

    #[test]
    fn raw_surface_plane_addresses() {
        // 320x180 picture in a 320x192 coded surface, pitch 512: chroma at 512 * 192 (nvdec.md 5.9).
        // SAFETY: only addresses are computed; nothing is dereferenced.
        let s = unsafe {
            SourceSurface::from_raw_nvdec(
                0x1000,
                512,
                320,
                192,
                SurfaceFormat::Nv12,
                8,
                (0, 0, 320, 180),
            )
            .unwrap()
        };
        assert_eq!(s.chroma_ptr(), 0x1000 + 512 * 192);
        let c = s.crop(2, 4, 100, 50).unwrap();
        assert_eq!(c.luma_ptr(), 0x1000 + 4 * 512 + 2);
        assert_eq!(c.chroma_ptr(), 0x1000 + 512 * 192 + 2 * 512 + 2);
        assert!(s.crop(1, 0, 10, 10).is_err());
        // P016: 2 bytes per sample, odd surface height rounds up.
        // SAFETY: as above.
        let p = unsafe {
            SourceSurface::from_raw_nvdec(
                0,
                1024,
                320,
                181,
                SurfaceFormat::P016,
                10,
                (0, 0, 320, 181),
            )
            .unwrap()
        };
        assert_eq!(p.chroma_ptr(), 1024 * 182);
        assert_eq!(p.kernel_args().shift, 6);
        // SAFETY: as above.
        let bad = unsafe {
            SourceSurface::from_raw_nvdec(
                0,
                100,
                320,
                180,
                SurfaceFormat::Nv12,
                8,
                (0, 0, 320, 180),
            )
        };
        assert!(bad.is_err());
        assert_eq!(
            nvdec_surface_bytes(SurfaceFormat::Yuv444, 512, 181),
            3 * 512 * 182
        );
    }

    /// Runs the kernel source on the host (as C++ with CUDA's built-ins emulated, see `emulate.cpp`) over a
    /// simulated grid and checks it against independent CPU implementations: all four surface formats, odd sizes,
    /// crop offsets, padded strides, NATIVE packing, resize + normalise, bf16 rounding. Skipped without a C++
    /// compiler.
    #[test]
    fn kernels_emulated_on_the_host() {
        use std::process::Command;
        let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
        if Command::new(&cxx).arg("--version").output().is_err() {
            eprintln!("skipped: no C++ compiler ({cxx})");
            return;
        }
        let asm = r#"asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v));"#;
        assert!(
            KERNEL_SOURCE.contains(asm),
            "update the host shim for the f16 conversion"
        );
        let dir = std::env::temp_dir().join(format!("vidloader-kernel-emu-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("kernels.inc"),
            KERNEL_SOURCE.replace(asm, "h = host_f16(v);"),
        )
        .unwrap();
        std::fs::write(dir.join("emulate.cpp"), include_str!("kernels/emulate.cpp")).unwrap();
        let exe = dir.join("emulate");
        let out = Command::new(&cxx)
            .args(["-std=c++17", "-O1", "-ffp-contract=off", "-o"])
            .arg(&exe)
            .arg(dir.join("emulate.cpp"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "host build failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let run = Command::new(&exe).output().unwrap();
        let text = String::from_utf8_lossy(&run.stdout).into_owned();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(run.status.success() && text.contains("ALL OK"), "{text}");
    }

    #[test]
    fn kernels_compile_with_nvrtc_when_present() {
        if super::super::nvrtc_library().is_err() {
            eprintln!("skipped: no NVRTC library on this machine");
            return;
        }
        for cc in [(9, 0), (8, 0), (7, 5)] {
            let img = super::super::nvrtc::compile(
                KERNEL_SOURCE,
                "vidloader_convert.cu",
                cc,
                NVRTC_OPTIONS,
            )
            .unwrap_or_else(|e| panic!("compile for {cc:?}: {e}"));
            assert!(img.bytes.len() > 1000, "{}", img.target);
        }
    }
}
