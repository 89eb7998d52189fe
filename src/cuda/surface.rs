//! Decoded pictures in device memory as the conversion kernels read them: [`SurfaceFormat`], [`SourceSurface`]
//! (plane addresses, pitch, visible size, bit depth), the byte counts of NATIVE frames and NVDEC surfaces, and the
//! kernels' source argument (`KSrc`, which must match `kernels/convert.cu`).

use std::marker::PhantomData;

use super::{DeviceBuffer, GpuStream};
use crate::error::{Error, Result};

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
    pub(super) luma: u64,
    pub(super) chroma: u64,
    pub(super) chroma2: u64,
    pub(super) pitch: usize,
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) format: SurfaceFormat,
    pub(super) bit_depth: u32,
    /// When set, conversions must be issued on this stream (the one the NVDEC frame was mapped on), so they are
    /// ordered before the unmap.
    pub(super) required_stream: Option<usize>,
    pub(super) _memory: PhantomData<&'a ()>,
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

    pub(super) fn kernel_args(&self) -> KSrc {
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

// The kernels' source argument (must match the CUDA source; both sides assert the size).

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(super) struct KSrc {
    pub(super) luma: u64,
    pub(super) chroma: u64,
    pub(super) chroma2: u64,
    pub(super) pitch: i32,
    pub(super) width: i32,
    pub(super) height: i32,
    pub(super) format: i32,
    pub(super) shift: i32,
    pub(super) _pad: i32,
}

const _: () = assert!(std::mem::size_of::<KSrc>() == 48);

#[cfg(test)]
mod tests {
    use super::*;

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
}
