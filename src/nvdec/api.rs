//! Run-time loading of `libnvcuvid.so.1` (never linked); the calls through the table go through `result.rs`,
//! which turns `CUresult` codes into [`Error::Nvdec`].
//!
//! The library ships with the NVIDIA display driver, not with the CUDA toolkit; in containers it is only mounted
//! when the runtime exposes the "video" capability. Every symbol is resolved once, on first use, into a
//! [`NvcuvidApi`] table kept for the life of the process.

use std::sync::OnceLock;

use super::sys;
use crate::error::{Error, Result};

/// Names tried, in order, when opening the library.
const LIBRARY_NAMES: &[&str] = &["libnvcuvid.so.1", "libnvcuvid.so"];

/// The resolved nvcuvid entry points.
pub(crate) struct NvcuvidApi {
    /// Where the library was found (the name passed to dlopen).
    pub(crate) library: &'static str,
    /// Optional: drivers older than 378 lack it (FFmpeg treats it as optional too).
    pub(crate) get_decoder_caps: Option<sys::PfnGetDecoderCaps>,
    pub(crate) create_decoder: sys::PfnCreateDecoder,
    pub(crate) destroy_decoder: sys::PfnDestroyDecoder,
    pub(crate) decode_picture: sys::PfnDecodePicture,
    pub(crate) get_decode_status: Option<sys::PfnGetDecodeStatus>,
    pub(crate) reconfigure_decoder: Option<sys::PfnReconfigureDecoder>,
    pub(crate) map_video_frame: sys::PfnMapVideoFrame64,
    pub(crate) unmap_video_frame: sys::PfnUnmapVideoFrame64,
    pub(crate) create_video_parser: sys::PfnCreateVideoParser,
    pub(crate) parse_video_data: sys::PfnParseVideoData,
    pub(crate) destroy_video_parser: sys::PfnDestroyVideoParser,
    /// Keeps the library mapped for as long as the function pointers above are used (the whole process).
    _lib: libloading::Library,
}

static API: OnceLock<std::result::Result<NvcuvidApi, String>> = OnceLock::new();

fn load() -> std::result::Result<NvcuvidApi, String> {
    let mut errors = Vec::new();
    for &name in LIBRARY_NAMES {
        // SAFETY: opening the NVIDIA driver's own video library runs its initialisers, which are trusted system
        // code; no Rust invariants depend on them.
        let lib = match unsafe { libloading::Library::new(name) } {
            Ok(lib) => lib,
            Err(e) => {
                errors.push(format!("{name}: {e}"));
                continue;
            }
        };
        return resolve(lib, name);
    }
    Err(format!(
        "cannot load the NVDEC library (it comes with the NVIDIA driver; in containers enable the 'video' driver \
         capability): {}",
        errors.join("; ")
    ))
}

fn resolve(
    lib: libloading::Library,
    name: &'static str,
) -> std::result::Result<NvcuvidApi, String> {
    /// Looks up one symbol and copies the function pointer out of the `Symbol` guard.
    ///
    /// # Safety
    /// `T` must be the exact C signature of the symbol.
    unsafe fn sym<T: Copy>(
        lib: &libloading::Library,
        name: &str,
    ) -> std::result::Result<T, String> {
        let cname = format!("{name}\0");
        // SAFETY: the caller guarantees `T` matches the C declaration (types mirrored in `sys`).
        unsafe { lib.get::<T>(cname.as_bytes()) }
            .map(|s| *s)
            .map_err(|e| format!("{name}: {e}"))
    }
    // SAFETY: every type below is the signature documented in nvdec.md section 1 and mirrored in `sys`; the
    // pointers stay valid because `lib` is stored in the returned table and never unloaded.
    unsafe {
        Ok(NvcuvidApi {
            library: name,
            get_decoder_caps: sym::<sys::PfnGetDecoderCaps>(&lib, "cuvidGetDecoderCaps").ok(),
            create_decoder: sym(&lib, "cuvidCreateDecoder")?,
            destroy_decoder: sym(&lib, "cuvidDestroyDecoder")?,
            decode_picture: sym(&lib, "cuvidDecodePicture")?,
            get_decode_status: sym::<sys::PfnGetDecodeStatus>(&lib, "cuvidGetDecodeStatus").ok(),
            reconfigure_decoder: sym::<sys::PfnReconfigureDecoder>(&lib, "cuvidReconfigureDecoder")
                .ok(),
            map_video_frame: sym(&lib, "cuvidMapVideoFrame64")?,
            unmap_video_frame: sym(&lib, "cuvidUnmapVideoFrame64")?,
            create_video_parser: sym(&lib, "cuvidCreateVideoParser")?,
            parse_video_data: sym(&lib, "cuvidParseVideoData")?,
            destroy_video_parser: sym(&lib, "cuvidDestroyVideoParser")?,
            _lib: lib,
        })
    }
}

/// The loaded API table, or [`Error::GpuUnavailable`] saying why it could not be loaded. Loads on first call.
pub(crate) fn api() -> Result<&'static NvcuvidApi> {
    match API.get_or_init(|| {
        std::panic::catch_unwind(load).unwrap_or_else(|_| Err("loader panicked".into()))
    }) {
        Ok(api) => Ok(api),
        Err(why) => Err(Error::GpuUnavailable(why.clone())),
    }
}

/// Whether the NVDEC library can be loaded and has every entry point vidloader needs. Never panics; the result is
/// cached for the life of the process. It says nothing about whether a GPU is present: use
/// [`crate::cuda::GpuContext::new`] and [`super::decoder_caps`] for that.
pub fn is_available() -> bool {
    api().is_ok()
}

/// Why [`is_available`] is false (`None` when it is true).
pub fn unavailable_reason() -> Option<String> {
    api().err().map(|e| e.to_string())
}

/// The library name that was loaded, if any.
pub fn library_name() -> Option<&'static str> {
    api().ok().map(|a| a.library)
}

/// A short name for the CUresult codes nvcuvid returns (for messages).
pub fn cu_result_name(code: i32) -> &'static str {
    match code {
        0 => "CUDA_SUCCESS",
        1 => "CUDA_ERROR_INVALID_VALUE",
        2 => "CUDA_ERROR_OUT_OF_MEMORY",
        3 => "CUDA_ERROR_NOT_INITIALIZED",
        100 => "CUDA_ERROR_NO_DEVICE",
        201 => "CUDA_ERROR_INVALID_CONTEXT",
        205 => "CUDA_ERROR_MAP_FAILED",
        400 => "CUDA_ERROR_INVALID_HANDLE",
        709 => "CUDA_ERROR_CONTEXT_IS_DESTROYED",
        801 => "CUDA_ERROR_NOT_SUPPORTED",
        999 => "CUDA_ERROR_UNKNOWN",
        _ => "CUDA_ERROR_(other)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_never_panics_and_is_consistent() {
        let a = is_available();
        assert_eq!(a, unavailable_reason().is_none());
        assert_eq!(a, library_name().is_some());
    }
}
