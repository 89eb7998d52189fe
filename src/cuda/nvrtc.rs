//! Our own run-time loader for NVRTC.
//!
//! cudarc's `nvrtc` module (with feature `cuda-12080`) only tries `libnvrtc.so`, `libnvrtc.so.12` (and older)
//! and panics when none loads; the H100 machine has CUDA 13 (`libnvrtc.so.13`), and torch's pip wheels keep
//! NVRTC in `site-packages/nvidia/cu13/lib`, which is on no loader path. So vidloader resolves the handful of NVRTC
//! functions it needs itself, searching (in order):
//! 1. `$VIDLOADER_NVRTC` (a full path to the library);
//! 2. the sonames `libnvrtc.so.13`, `libnvrtc.so.12`, `libnvrtc.so` (system paths, `LD_LIBRARY_PATH`);
//! 3. `$CUDA_HOME/lib64`, `$CUDA_PATH/lib64`, `/usr/local/cuda/lib64`;
//! 4. the NVIDIA wheels next to a loaded libtorch (`…/site-packages/nvidia/*/lib`, found through
//!    `/proc/self/maps`).
//!
//! The kernels are compiled to a CUBIN for the exact device architecture (so a newer NVRTC than the driver is
//! fine as long as it knows the architecture); if NVRTC does not know the architecture, to PTX for the newest one
//! it knows, which the driver JIT-compiles.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

type NvrtcResult = c_int;
type Program = *mut c_void;

struct Nvrtc {
    path: String,
    version: (i32, i32),
    get_error_string: unsafe extern "C" fn(NvrtcResult) -> *const c_char,
    create_program: unsafe extern "C" fn(
        *mut Program,
        *const c_char,
        *const c_char,
        c_int,
        *const *const c_char,
        *const *const c_char,
    ) -> NvrtcResult,
    compile_program: unsafe extern "C" fn(Program, c_int, *const *const c_char) -> NvrtcResult,
    get_log_size: unsafe extern "C" fn(Program, *mut usize) -> NvrtcResult,
    get_log: unsafe extern "C" fn(Program, *mut c_char) -> NvrtcResult,
    get_cubin_size: Option<unsafe extern "C" fn(Program, *mut usize) -> NvrtcResult>,
    get_cubin: Option<unsafe extern "C" fn(Program, *mut c_char) -> NvrtcResult>,
    get_ptx_size: unsafe extern "C" fn(Program, *mut usize) -> NvrtcResult,
    get_ptx: unsafe extern "C" fn(Program, *mut c_char) -> NvrtcResult,
    destroy_program: unsafe extern "C" fn(*mut Program) -> NvrtcResult,
    supported_archs: Vec<i32>,
    _lib: libloading::Library,
    /// `libnvrtc-builtins` loaded from the same directory as NVRTC, so NVRTC's own dlopen of it (by soname) finds
    /// it even when that directory is on no loader path (torch's pip wheels).
    _builtins: Vec<libloading::Library>,
}

/// Which NVRTC library vidloader uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NvrtcInfo {
    /// The file or soname that was loaded.
    pub path: String,
    /// NVRTC version (major, minor).
    pub version: (i32, i32),
}

static NVRTC: OnceLock<Result<Nvrtc, String>> = OnceLock::new();

fn nvrtc() -> Result<&'static Nvrtc, String> {
    NVRTC
        .get_or_init(|| {
            std::panic::catch_unwind(load).unwrap_or_else(|_| Err("NVRTC loader panicked".into()))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Finds and loads NVRTC (see the module docs for the search order). Never panics.
pub fn nvrtc_library() -> crate::Result<NvrtcInfo> {
    nvrtc()
        .map(|n| NvrtcInfo {
            path: n.path.clone(),
            version: n.version,
        })
        .map_err(|reason| crate::Error::Cuda {
            call: "nvrtc",
            reason,
            source: None,
        })
}

const SONAMES: &[&str] = &["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"];

fn candidates() -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(p) = std::env::var_os("VIDLOADER_NVRTC") {
        out.push(p.to_string_lossy().into_owned());
    }
    out.extend(SONAMES.iter().map(|s| s.to_string()));
    let mut dirs: Vec<PathBuf> = Vec::new();
    for var in ["CUDA_HOME", "CUDA_PATH"] {
        if let Some(d) = std::env::var_os(var) {
            dirs.push(Path::new(&d).join("lib64"));
            dirs.push(Path::new(&d).join("lib"));
        }
    }
    dirs.push("/usr/local/cuda/lib64".into());
    dirs.push("/usr/local/cuda/targets/x86_64-linux/lib".into());
    dirs.extend(torch_wheel_dirs());
    for d in dirs {
        for s in SONAMES {
            let p = d.join(s);
            if p.exists() {
                out.push(p.to_string_lossy().into_owned());
            }
        }
    }
    out.dedup();
    out
}

/// `…/site-packages/nvidia/*/lib` next to every libtorch mapped into this process.
fn torch_wheel_dirs() -> Vec<PathBuf> {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return Vec::new();
    };
    let mut sites: Vec<PathBuf> = Vec::new();
    for line in maps.lines() {
        let Some(path) = line.split_whitespace().nth(5) else {
            continue;
        };
        if !path.contains("/torch/lib/") {
            continue;
        }
        // .../site-packages/torch/lib/libX.so -> .../site-packages
        if let Some(site) = Path::new(path)
            .parent()
            .and_then(Path::parent)
            .and_then(Path::parent)
        {
            if !sites.iter().any(|s| s == site) {
                sites.push(site.to_path_buf());
            }
        }
    }
    let mut dirs = Vec::new();
    for site in sites {
        let Ok(rd) = std::fs::read_dir(site.join("nvidia")) else {
            continue;
        };
        let mut found: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path().join("lib"))
            .filter(|p| p.is_dir())
            .collect();
        found.sort();
        // cu13 before cu12 before cuda_nvrtc: newest first.
        found.reverse();
        dirs.extend(found);
    }
    dirs
}

/// Loads the `libnvrtc-builtins.so.*` files next to an NVRTC library given by path.
fn preload_builtins(nvrtc_path: &str) -> Vec<libloading::Library> {
    let Some(dir) = Path::new(nvrtc_path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    else {
        return Vec::new();
    };
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libnvrtc-builtins.so.") && !n.contains(".alt."))
        })
        .collect();
    names.sort();
    // SAFETY: loading NVIDIA's NVRTC builtins library (trusted vendor code, no initialisers we depend on).
    names
        .into_iter()
        .filter_map(|p| unsafe { libloading::Library::new(&p) }.ok())
        .collect()
}

fn load() -> Result<Nvrtc, String> {
    let mut tried = Vec::new();
    for c in candidates() {
        let builtins = if c.contains('/') {
            preload_builtins(&c)
        } else {
            Vec::new()
        };
        // SAFETY: loading NVRTC runs its initialisers, which are trusted vendor code.
        match unsafe { libloading::Library::new(&c) } {
            Ok(lib) => match resolve(lib, c.clone(), builtins) {
                Ok(n) => return Ok(n),
                Err(e) => tried.push(format!("{c}: {e}")),
            },
            Err(e) => tried.push(format!("{c}: {e}")),
        }
    }
    Err(format!(
        "NVRTC (libnvrtc.so.13 or .12) not found; install the CUDA runtime compiler, add its directory to \
         LD_LIBRARY_PATH or set VIDLOADER_NVRTC to the library file. Tried: {}",
        tried.join("; ")
    ))
}

fn resolve(
    lib: libloading::Library,
    path: String,
    builtins: Vec<libloading::Library>,
) -> Result<Nvrtc, String> {
    /// # Safety
    /// `T` must be the exact C signature of `name`.
    unsafe fn sym<T: Copy>(lib: &libloading::Library, name: &str) -> Result<T, String> {
        let c = format!("{name}\0");
        // SAFETY: the caller guarantees the signature.
        unsafe { lib.get::<T>(c.as_bytes()) }
            .map(|s| *s)
            .map_err(|e| format!("{name}: {e}"))
    }
    type VersionFn = unsafe extern "C" fn(*mut c_int, *mut c_int) -> NvrtcResult;
    type NumArchsFn = unsafe extern "C" fn(*mut c_int) -> NvrtcResult;
    type ArchsFn = unsafe extern "C" fn(*mut c_int) -> NvrtcResult;
    // SAFETY: the signatures are those of nvrtc.h (CUDA 11.2+); `lib` is stored in the table and never unloaded,
    // so the function pointers stay valid.
    unsafe {
        let version_fn: VersionFn = sym(&lib, "nvrtcVersion")?;
        let (mut major, mut minor) = (0, 0);
        if version_fn(&mut major, &mut minor) != 0 {
            return Err("nvrtcVersion failed".into());
        }
        let mut supported_archs = Vec::new();
        if let (Ok(num), Ok(get)) = (
            sym::<NumArchsFn>(&lib, "nvrtcGetNumSupportedArchs"),
            sym::<ArchsFn>(&lib, "nvrtcGetSupportedArchs"),
        ) {
            let mut n = 0;
            if num(&mut n) == 0 && n > 0 {
                supported_archs = vec![0; n as usize];
                if get(supported_archs.as_mut_ptr()) != 0 {
                    supported_archs.clear();
                }
            }
        }
        Ok(Nvrtc {
            path,
            version: (major, minor),
            get_error_string: sym(&lib, "nvrtcGetErrorString")?,
            create_program: sym(&lib, "nvrtcCreateProgram")?,
            compile_program: sym(&lib, "nvrtcCompileProgram")?,
            get_log_size: sym(&lib, "nvrtcGetProgramLogSize")?,
            get_log: sym(&lib, "nvrtcGetProgramLog")?,
            get_cubin_size: sym(&lib, "nvrtcGetCUBINSize").ok(),
            get_cubin: sym(&lib, "nvrtcGetCUBIN").ok(),
            get_ptx_size: sym(&lib, "nvrtcGetPTXSize")?,
            get_ptx: sym(&lib, "nvrtcGetPTX")?,
            destroy_program: sym(&lib, "nvrtcDestroyProgram")?,
            supported_archs,
            _lib: lib,
            _builtins: builtins,
        })
    }
}

/// A compiled module image ready for `cuModuleLoadData`.
pub(crate) struct Image {
    /// CUBIN bytes, or PTX text with its terminating NUL.
    pub(crate) bytes: Vec<u8>,
    /// Human-readable target, e.g. "sm_90 cubin" or "compute_90 ptx".
    pub(crate) target: String,
}

impl Nvrtc {
    fn err(&self, call: &str, code: NvrtcResult) -> String {
        // SAFETY: nvrtcGetErrorString returns a static NUL-terminated string for any code.
        let msg = unsafe { CStr::from_ptr((self.get_error_string)(code)) }
            .to_string_lossy()
            .into_owned();
        format!("{call}: {msg} ({code})")
    }
}

/// Compiles `src` for compute capability `cc` with the extra `options`.
pub(crate) fn compile(
    src: &str,
    name: &str,
    cc: (i32, i32),
    options: &[&str],
) -> Result<Image, String> {
    let n = nvrtc()?;
    let want = cc.0 * 10 + cc.1;
    // Pick the target: the device's own SASS when NVRTC knows the architecture, else PTX of the newest it knows.
    let (arch_opt, cubin) = if n.supported_archs.is_empty() || n.supported_archs.contains(&want) {
        (
            format!("--gpu-architecture=sm_{want}"),
            n.get_cubin.is_some() && n.get_cubin_size.is_some(),
        )
    } else {
        let best = n
            .supported_archs
            .iter()
            .copied()
            .filter(|&a| a <= want)
            .max();
        match best {
            Some(a) => (format!("--gpu-architecture=compute_{a}"), false),
            None => {
                return Err(format!(
                    "NVRTC {}.{} ({}) cannot compile for compute capability {}.{} (supports {:?})",
                    n.version.0, n.version.1, n.path, cc.0, cc.1, n.supported_archs
                ))
            }
        }
    };
    let csrc = CString::new(src).map_err(|_| "kernel source contains NUL".to_string())?;
    let cname = CString::new(name).map_err(|_| "kernel name contains NUL".to_string())?;
    let mut opts: Vec<CString> = vec![CString::new(arch_opt.clone()).expect("no NUL")];
    for o in options {
        opts.push(CString::new(*o).map_err(|_| "option contains NUL".to_string())?);
    }
    let opt_ptrs: Vec<*const c_char> = opts.iter().map(|o| o.as_ptr()).collect();

    let mut prog: Program = std::ptr::null_mut();
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the calls; `prog` is destroyed below on
    // every path after a successful create.
    unsafe {
        let rc = (n.create_program)(
            &mut prog,
            csrc.as_ptr(),
            cname.as_ptr(),
            0,
            std::ptr::null(),
            std::ptr::null(),
        );
        if rc != 0 {
            return Err(n.err("nvrtcCreateProgram", rc));
        }
        let result = (|| {
            let rc = (n.compile_program)(prog, opt_ptrs.len() as c_int, opt_ptrs.as_ptr());
            if rc != 0 {
                let mut size = 0usize;
                let mut log = String::new();
                if (n.get_log_size)(prog, &mut size) == 0 && size > 1 {
                    let mut buf = vec![0u8; size];
                    if (n.get_log)(prog, buf.as_mut_ptr() as *mut c_char) == 0 {
                        log = String::from_utf8_lossy(&buf[..size - 1]).into_owned();
                    }
                }
                return Err(format!(
                    "{} with {arch_opt}:\n{log}",
                    n.err("nvrtcCompileProgram", rc)
                ));
            }
            let mut size = 0usize;
            if cubin {
                let (get_size, get) = (
                    n.get_cubin_size.expect("checked"),
                    n.get_cubin.expect("checked"),
                );
                let rc = get_size(prog, &mut size);
                if rc != 0 {
                    return Err(n.err("nvrtcGetCUBINSize", rc));
                }
                let mut bytes = vec![0u8; size];
                let rc = get(prog, bytes.as_mut_ptr() as *mut c_char);
                if rc != 0 {
                    return Err(n.err("nvrtcGetCUBIN", rc));
                }
                Ok(Image {
                    bytes,
                    target: format!("sm_{want} cubin (NVRTC {}.{})", n.version.0, n.version.1),
                })
            } else {
                let rc = (n.get_ptx_size)(prog, &mut size);
                if rc != 0 {
                    return Err(n.err("nvrtcGetPTXSize", rc));
                }
                let mut bytes = vec![0u8; size];
                let rc = (n.get_ptx)(prog, bytes.as_mut_ptr() as *mut c_char);
                if rc != 0 {
                    return Err(n.err("nvrtcGetPTX", rc));
                }
                if bytes.last() != Some(&0) {
                    bytes.push(0);
                }
                Ok(Image {
                    bytes,
                    target: format!("{arch_opt} ptx (NVRTC {}.{})", n.version.0, n.version.1),
                })
            }
        })();
        (n.destroy_program)(&mut prog);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loader_never_panics() {
        // Either finds NVRTC (dev machines with torch's CUDA wheels, GPU machines) or explains why not.
        match nvrtc_library() {
            Ok(info) => {
                eprintln!("NVRTC: {info:?}");
                assert!(info.version.0 >= 11, "{info:?}")
            }
            Err(e) => assert!(e.to_string().contains("NVRTC"), "{e}"),
        }
    }

    #[test]
    fn compiles_a_trivial_kernel_when_nvrtc_is_present() {
        if nvrtc_library().is_err() {
            eprintln!("skipped: no NVRTC");
            return;
        }
        let img = compile(
            "extern \"C\" __global__ void k(int* p) { p[threadIdx.x] = 1; }",
            "t.cu",
            (9, 0),
            &[],
        )
        .expect("compile");
        assert!(!img.bytes.is_empty());
        let err = compile("this is not C++", "bad.cu", (9, 0), &[])
            .err()
            .expect("must fail");
        assert!(err.contains("nvrtcCompileProgram"), "{err}");
    }
}
