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

use cudarc::driver::{result as cu, sys as cusys};

use super::dest::{DstBytes, DstImage};
use super::surface::{KSrc, SourceSurface};
use super::{GpuContext, GpuStream};
use crate::error::{Error, Result};
use crate::frame::color::YuvToRgb;
use crate::frame::transform::{Normalize, OutputDtype};

// ---- kernel argument structs (must match the CUDA source; both sides assert the sizes) ----

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
        unsafe { cu::launch_kernel(f, grid, (BLOCK.0, BLOCK.1, 1), 0, stream.raw(), args) }
            .map_err(|e| Error::cuda("cuLaunchKernel", e))
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

    /// Writes the NATIVE planes of `src` (see [`super::native_frame_bytes`]) to the start of `dst`, on `stream`
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
