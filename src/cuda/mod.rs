//! CUDA context, streams, device buffers and the NVRTC colour-conversion kernels.
//!
//! Everything here goes through cudarc's driver API with dynamic loading, but only after checking that
//! `libcuda` is present and a device exists: cudarc panics when the library is missing, vidloader returns
//! [`Error::GpuUnavailable`] instead.
//!
//! [`GpuContext`] wraps the device's **primary** context (the one PyTorch/tch also use), so device pointers from
//! torch tensors (`tensor.data_ptr()`) are valid in it and work can be ordered against torch's streams.
//!
//! Files: this one (context, streams, buffers), `surface.rs` (the decoded pictures the kernels read), `dest.rs`
//! (the destinations they write), `convert.rs` (the launcher of the kernels in `kernels/convert.cu`, compiled by
//! NVRTC through `nvrtc.rs`), `upload.rs` (pictures decoded on the CPU, staged in pinned memory and converted by
//! the same kernels, and the one function that writes a picture into a tensor slot).

mod convert;
mod dest;
mod nvrtc;
mod surface;
mod upload;

use std::ffi::c_void;
use std::sync::{Arc, OnceLock};

use cudarc::driver::{result as cu, sys as cusys, CudaContext};

use crate::error::{Error, Result};

pub use convert::{reference_rgb, Converter, KERNEL_SOURCE};
pub use dest::{DstBytes, DstImage};
pub use nvrtc::{nvrtc_library, NvrtcInfo};
pub use surface::{native_frame_bytes, nvdec_surface_bytes, SourceSurface, SurfaceFormat};
pub(crate) use upload::write_surface;
pub use upload::{HostUpload, StagedLayout};

/// Whether the CUDA driver library (`libcuda.so.1`) can be loaded. Never panics; checked once per process.
pub fn driver_present() -> bool {
    static PRESENT: OnceLock<bool> = OnceLock::new();
    *PRESENT.get_or_init(|| {
        std::panic::catch_unwind(|| {
            // SAFETY: this only tries to dlopen the CUDA driver under its usual names and closes it again.
            unsafe { cusys::is_culib_present() }
        })
        .unwrap_or(false)
    })
}

/// The number of CUDA devices, 0 when there is no driver or no device. Never panics.
pub fn device_count() -> usize {
    if !driver_present() {
        return 0;
    }
    std::panic::catch_unwind(|| {
        if cu::init().is_err() {
            return 0;
        }
        cu::device::get_count()
            .map(|n| n.max(0) as usize)
            .unwrap_or(0)
    })
    .unwrap_or(0)
}

/// The device of the CUDA context current on the calling thread (the one `torch.cuda.set_device(n)` or a bound
/// [`GpuContext`] leaves there), or `None` when no context is current, the driver was never initialised or is
/// missing. Asks the driver only (`cuCtxGetCurrent`, `cuCtxGetDevice`): it never creates or binds a context, so it
/// is safe to call on any GPU of a multi-GPU machine. Never panics.
pub fn current_device() -> Option<usize> {
    if !driver_present() {
        return None;
    }
    std::panic::catch_unwind(|| {
        // Before cuInit no context can be current; cuCtxGetCurrent then reports CUDA_ERROR_NOT_INITIALIZED.
        let ctx = cu::ctx::get_current().ok()??;
        let mut dev: cusys::CUdevice = 0;
        // SAFETY: `ctx` is the context current on this thread (just returned by the driver) and `dev` a valid
        // out-pointer; cuCtxGetDevice reads the current context only.
        unsafe { cusys::cuCtxGetDevice(&mut dev) }.result().ok()?;
        (!ctx.is_null() && dev >= 0).then_some(dev as usize)
    })
    .ok()
    .flatten()
}

/// The GPU that the `Auto` choices (`Backend::Auto`, `EncoderBackend::Auto`) try: the device of the calling
/// thread's current CUDA context ([`current_device`]: what `torch.cuda.set_device(LOCAL_RANK)` selects), else
/// GPU 0, the documented default of a process that picked no device.
pub fn default_gpu() -> usize {
    current_device().unwrap_or(DEFAULT_GPU)
}

/// The documented default device: GPU 0, used only where the caller named no device and no CUDA context is current
/// ([`default_gpu`], `PacketDecoderOptions::default()`).
pub const DEFAULT_GPU: usize = 0;

/// [`Error::GpuUnavailable`] unless the CUDA driver library can be loaded.
fn require_driver() -> Result<()> {
    if driver_present() {
        Ok(())
    } else {
        Err(Error::GpuUnavailable(
            "the CUDA driver library (libcuda.so.1) is not installed or cannot be loaded".into(),
        ))
    }
}

/// Initialises the driver and checks that device `ordinal` exists ([`Error::GpuUnavailable`] otherwise). Call
/// it inside `catch_unwind`: cudarc panics where the driver library lacks a function it needs.
fn init_device(ordinal: usize) -> Result<()> {
    cu::init().map_err(|e| Error::GpuUnavailable(format!("cuInit failed: {e:?}")))?;
    let count = cu::device::get_count()
        .map_err(|e| Error::GpuUnavailable(format!("cuDeviceGetCount: {e:?}")))?;
    if ordinal >= count.max(0) as usize {
        return Err(Error::GpuUnavailable(format!(
            "no CUDA device {ordinal}: this machine has {count}"
        )));
    }
    Ok(())
}

/// Whether device `ordinal`'s primary context is active (retained by someone in this process: vidloader, torch or
/// another library), from `cuDevicePrimaryCtxGetState`. It neither creates nor retains a context, so it is the
/// check that a process working on GPU `n` left every other GPU alone. [`Error::GpuUnavailable`] without a driver or
/// for a device that does not exist.
pub fn primary_context_active(ordinal: usize) -> Result<bool> {
    require_driver()?;
    std::panic::catch_unwind(|| -> Result<bool> {
        init_device(ordinal)?;
        let dev = cu::device::get(ordinal as i32).map_err(|e| cuda_err("cuDeviceGet", e))?;
        let (mut flags, mut active) = (0u32, 0i32);
        // SAFETY: `dev` came from cuDeviceGet; both out-pointers are valid for the call. The call only reads state.
        unsafe { cusys::cuDevicePrimaryCtxGetState(dev, &mut flags, &mut active) }
            .result()
            .map_err(|e| cuda_err("cuDevicePrimaryCtxGetState", e))?;
        Ok(active != 0)
    })
    .unwrap_or_else(|_| {
        Err(Error::GpuUnavailable(
            "the CUDA driver panicked while reading a primary context's state".into(),
        ))
    })
}

fn cuda_err(call: &'static str, e: cu::DriverError) -> Error {
    Error::cuda(call, e)
}

/// One GPU: its primary CUDA context, its properties, and the lazily compiled conversion kernels.
///
/// Create it once per device and share it (`Arc`); it is `Send + Sync`. Every method binds the context to the
/// calling thread before touching CUDA, so it can be used from any thread.
pub struct GpuContext {
    // Field order matters: the kernels (a CUmodule) must be unloaded while the context is still retained.
    converter: OnceLock<std::result::Result<Converter, String>>,
    ctx: Arc<CudaContext>,
    ordinal: usize,
    name: String,
    compute_capability: (i32, i32),
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("ordinal", &self.ordinal)
            .field("name", &self.name)
            .field("compute_capability", &self.compute_capability)
            .finish()
    }
}

impl GpuContext {
    /// Retains the primary context of device `ordinal`.
    ///
    /// Returns [`Error::GpuUnavailable`] when the CUDA driver library is missing, `cuInit` fails (no device, driver
    /// mismatch) or `ordinal` is not a device; [`Error::Cuda`] when retaining the context fails. Never panics.
    pub fn new(ordinal: usize) -> Result<Arc<Self>> {
        require_driver()?;
        let made = std::panic::catch_unwind(|| -> Result<Arc<Self>> {
            init_device(ordinal)?;
            let ctx =
                CudaContext::new(ordinal).map_err(|e| cuda_err("cuDevicePrimaryCtxRetain", e))?;
            let name = ctx
                .name()
                .unwrap_or_else(|_| format!("CUDA device {ordinal}"));
            let compute_capability = ctx
                .compute_capability()
                .map_err(|e| cuda_err("cuDeviceGetAttribute", e))?;
            Ok(Arc::new(GpuContext {
                converter: OnceLock::new(),
                ctx,
                ordinal,
                name,
                compute_capability,
            }))
        });
        made.unwrap_or_else(|_| {
            Err(Error::GpuUnavailable(
                "the CUDA driver panicked while opening the device".into(),
            ))
        })
    }

    /// The process-wide context of device `ordinal`, created by the first call and kept for the life of the
    /// process (so the conversion kernels are compiled once per device, however many decoders and workers use
    /// it). Failures are not cached: a later call tries again.
    pub fn shared(ordinal: usize) -> Result<Arc<Self>> {
        static SHARED: std::sync::Mutex<Vec<(usize, Arc<GpuContext>)>> =
            std::sync::Mutex::new(Vec::new());
        let mut all = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, g)) = all.iter().find(|(o, _)| *o == ordinal) {
            return Ok(g.clone());
        }
        let g = Self::new(ordinal)?;
        all.push((ordinal, g.clone()));
        Ok(g)
    }

    /// The device ordinal.
    pub fn ordinal(&self) -> usize {
        self.ordinal
    }

    /// The device name, e.g. "NVIDIA H100 80GB HBM3".
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Compute capability (major, minor), e.g. (9, 0) for Hopper.
    pub fn compute_capability(&self) -> (i32, i32) {
        self.compute_capability
    }

    /// The underlying cudarc context (the device's primary context).
    pub fn cuda(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    /// The raw `CUcontext`.
    pub fn cu_context(&self) -> cusys::CUcontext {
        self.ctx.cu_ctx()
    }

    /// Makes this context current on the calling thread.
    pub fn bind(&self) -> Result<()> {
        self.ctx
            .bind_to_thread()
            .map_err(|e| cuda_err("cuCtxSetCurrent", e))
    }

    /// Waits for all work on the device (this context) to finish.
    pub fn synchronize(&self) -> Result<()> {
        self.bind()?;
        cu::ctx::synchronize().map_err(|e| cuda_err("cuCtxSynchronize", e))
    }

    /// The conversion kernels, compiled with NVRTC for this device on first use and cached for the life of the
    /// context. Fails with [`Error::Cuda`] (call `"nvrtc"`) when NVRTC cannot be found or the compile fails; the
    /// failure is cached too.
    pub fn converter(&self) -> Result<&Converter> {
        let r = self.converter.get_or_init(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Converter::build(self)))
                .unwrap_or_else(|_| Err("kernel build panicked".into()))
        });
        match r {
            Ok(c) => Ok(c),
            Err(why) => Err(Error::Cuda {
                call: "nvrtc",
                reason: why.clone(),
                source: None,
            }),
        }
    }

    /// Free and total device memory in bytes (`cuMemGetInfo`), for watching memory use.
    pub fn memory_info(&self) -> Result<(usize, usize)> {
        self.bind()?;
        cu::mem_get_info().map_err(|e| cuda_err("cuMemGetInfo", e))
    }

    /// Allocates `bytes` of device memory (uninitialised).
    pub fn alloc(self: &Arc<Self>, bytes: usize) -> Result<DeviceBuffer> {
        self.bind()?;
        // SAFETY: plain cuMemAlloc with the context bound; the pointer is owned by the returned buffer.
        let ptr =
            unsafe { cu::malloc_sync(bytes.max(1)) }.map_err(|e| cuda_err("cuMemAlloc", e))?;
        Ok(DeviceBuffer {
            ptr,
            len: bytes,
            gpu: self.clone(),
        })
    }

    /// Allocates device memory holding a copy of `data` (synchronous copy).
    pub fn upload(self: &Arc<Self>, data: &[u8]) -> Result<DeviceBuffer> {
        let buf = self.alloc(data.len())?;
        self.bind()?;
        // SAFETY: `buf` holds `data.len()` bytes; the copy is synchronous; this context is bound (just above).
        unsafe { cu::memcpy_htod_sync(buf.ptr, data) }.map_err(|e| cuda_err("cuMemcpyHtoD", e))?;
        Ok(buf)
    }
}

impl Drop for GpuContext {
    fn drop(&mut self) {
        // The converter's module is unloaded when the field drops; make sure our context is current for it.
        let _ = self.ctx.bind_to_thread();
    }
}

/// A CUDA stream of a [`GpuContext`]: one vidloader created (and destroys), the legacy default stream, or a
/// borrowed stream of another library (e.g. torch's current stream).
pub struct GpuStream {
    raw: cusys::CUstream,
    owned: bool,
    gpu: Arc<GpuContext>,
}

// SAFETY: a CUstream handle may be used from any thread once its context is bound (every method binds it), and
// the driver's stream calls are thread-safe.
unsafe impl Send for GpuStream {}
// SAFETY: as above; `&GpuStream` only exposes the handle and thread-safe driver calls.
unsafe impl Sync for GpuStream {}

impl std::fmt::Debug for GpuStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuStream")
            .field("raw", &self.raw)
            .field("owned", &self.owned)
            .finish()
    }
}

impl GpuStream {
    /// Creates a new non-blocking stream (it does not synchronise with the legacy default stream).
    pub fn new(gpu: &Arc<GpuContext>) -> Result<Self> {
        gpu.bind()?;
        let raw = cu::stream::create(cu::stream::StreamKind::NonBlocking)
            .map_err(|e| cuda_err("cuStreamCreate", e))?;
        Ok(GpuStream {
            raw,
            owned: true,
            gpu: gpu.clone(),
        })
    }

    /// The legacy default (NULL) stream of the context.
    pub fn legacy_default(gpu: &Arc<GpuContext>) -> Self {
        GpuStream {
            raw: std::ptr::null_mut(),
            owned: false,
            gpu: gpu.clone(),
        }
    }

    /// Wraps a stream owned by someone else (for example torch's current stream from
    /// `aoti_torch_get_current_cuda_stream`). It is not destroyed on drop.
    ///
    /// # Safety
    /// `raw` must be a valid stream of `gpu`'s context (or NULL) and must stay alive while the returned value (and
    /// any work vidloader queued on it) is in use.
    pub unsafe fn from_raw(gpu: &Arc<GpuContext>, raw: *mut c_void) -> Self {
        GpuStream {
            raw: raw as cusys::CUstream,
            owned: false,
            gpu: gpu.clone(),
        }
    }

    /// The raw handle.
    pub fn raw(&self) -> cusys::CUstream {
        self.raw
    }

    /// The context the stream belongs to.
    pub fn gpu(&self) -> &Arc<GpuContext> {
        &self.gpu
    }

    /// Waits until all work queued on the stream has finished.
    pub fn synchronize(&self) -> Result<()> {
        self.gpu.bind()?;
        // SAFETY: `raw` is a valid stream of the bound context (constructor contracts).
        unsafe { cu::stream::synchronize(self.raw) }.map_err(|e| cuda_err("cuStreamSynchronize", e))
    }
}

impl Drop for GpuStream {
    fn drop(&mut self) {
        if self.owned && self.gpu.bind().is_ok() {
            // SAFETY: we created this stream and nothing else destroys it; queued work still completes.
            let _ = unsafe { cu::stream::destroy(self.raw) };
        }
    }
}

/// Device memory owned by vidloader (freed on drop). Mostly for tests and scratch space; batches normally live in
/// torch tensors.
pub struct DeviceBuffer {
    ptr: cusys::CUdeviceptr,
    len: usize,
    gpu: Arc<GpuContext>,
}

impl std::fmt::Debug for DeviceBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceBuffer")
            .field("ptr", &format_args!("{:#x}", self.ptr))
            .field("len", &self.len)
            .finish()
    }
}

impl DeviceBuffer {
    /// The device address.
    pub fn device_ptr(&self) -> u64 {
        self.ptr
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Fills the buffer with `value`, ordered on `stream`.
    pub fn fill(&mut self, value: u8, stream: &GpuStream) -> Result<()> {
        self.gpu.bind()?;
        // SAFETY: the range is exactly this allocation; `stream` belongs to the bound context.
        unsafe { cu::memset_d8_async(self.ptr, value, self.len, stream.raw) }
            .map_err(|e| cuda_err("cuMemsetD8Async", e))
    }

    /// Copies the buffer to the host after the work queued on `stream` (waits for it).
    pub fn copy_to_host(&self, stream: &GpuStream) -> Result<Vec<u8>> {
        self.gpu.bind()?;
        let mut out = vec![0u8; self.len];
        // SAFETY: `out` has `len` bytes, the source allocation too; the stream is synchronised before `out` is read.
        unsafe {
            cu::memcpy_dtoh_async(&mut out, self.ptr, stream.raw)
                .map_err(|e| cuda_err("cuMemcpyDtoHAsync", e))?;
            cu::stream::synchronize(stream.raw).map_err(|e| cuda_err("cuStreamSynchronize", e))?;
        }
        Ok(out)
    }
}

impl Drop for DeviceBuffer {
    fn drop(&mut self) {
        if self.gpu.bind().is_ok() {
            // SAFETY: we allocated `ptr` with cuMemAlloc and free it once.
            let _ = unsafe { cu::free_sync(self.ptr) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_panic_without_driver() {
        // On a machine without libcuda this must be a typed error; with a GPU it must succeed.
        let present = driver_present();
        match GpuContext::new(0) {
            Ok(gpu) => {
                assert!(present);
                assert!(gpu.compute_capability().0 >= 3);
            }
            Err(Error::GpuUnavailable(why)) => assert!(!why.is_empty()),
            Err(e) => panic!("unexpected error kind: {e}"),
        }
        if !present {
            assert_eq!(device_count(), 0);
        }
    }

    #[test]
    fn device_queries_create_no_context_and_refuse_a_missing_device() {
        let count = device_count();
        // A device this machine lacks is a typed error from every entry point, never a panic.
        let missing = count + 7;
        assert!(matches!(
            GpuContext::new(missing),
            Err(Error::GpuUnavailable(_))
        ));
        assert!(matches!(
            GpuContext::shared(missing),
            Err(Error::GpuUnavailable(_))
        ));
        assert!(matches!(
            primary_context_active(missing),
            Err(Error::GpuUnavailable(_))
        ));
        if count == 0 {
            assert_eq!(current_device(), None);
            assert_eq!(default_gpu(), DEFAULT_GPU);
        }
    }
}
