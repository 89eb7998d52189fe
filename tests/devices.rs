//! Every CUDA and NVDEC path takes the device it was given (see "Devices" in ARCHITECTURE.md), checked on the
//! sources, so it holds on machines without a GPU:
//!
//! - no library code names a literal GPU 0 (`Cuda(0)`, `Nvdec(0)`, `GpuContext::shared(0)`, `gpu: 0`, ...) outside
//!   unit tests and the documented defaults listed in [`DOCUMENTED_DEFAULTS`];
//! - every process-wide `static` of the GPU layers is either a per-device cache whose lookup compares the device
//!   ordinal ([`PER_DEVICE`]) or holds nothing of a device ([`DEVICE_FREE`], each with the reason); a new static
//!   must be put in one of the two lists;
//! - every function of `src/cuda/` and `src/nvdec/` that makes a driver or NVDEC call which needs a current context
//!   binds its context first (`.bind()`), or its `SAFETY` note says that the caller has bound it, so no call runs
//!   on whatever context (or none) the calling thread happens to have.
//!
//! No dependencies: the sources are read as text.

use std::path::{Path, PathBuf};

#[path = "common/source.rs"]
mod source;

use source::sources;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// `(path relative to src/, text)` of every library file under the given folders of `src/`.
fn library_files(folders: &[&str]) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for f in folders {
        let p = src().join(f);
        if p.is_dir() {
            sources(&p, &mut files);
        } else {
            files.push(p);
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(src())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// The code of a file without comments, string and character literals and without its `#[cfg(test)]` tail (unit
/// tests may name GPU 0); line breaks are kept, so line numbers stay those of the file.
fn code_only(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    };
    source::code_only(text)
}

/// The folders (and files) of the library that hold a CUDA or NVDEC path, or choose a device for one.
const GPU_PATHS: &[&str] = &[
    "cuda", "nvdec", "backend", "cpu", "decode", "data", "encode", "ffi",
];

/// Spellings of GPU 0 as a literal (whitespace removed before matching).
const LITERAL_GPU_0: &[&str] = &[
    "Cuda(0)",
    "Nvdec(0)",
    "AutoOn(0)",
    "Nvenc(0)",
    "shared(0)",
    "GpuContext::new(0)",
    "device::get(0)",
    "gpu:0,",
    "gpu:0}",
    "gpu=0",
    "ordinal:0",
    "ordinal=0",
    "device:0",
    "(0usize,",
    "synchronize(0",
    "_=>0,",
    "_=>0}",
];

/// Where GPU 0 is named on purpose: `(file, code line without whitespace, why)`.
const DOCUMENTED_DEFAULTS: &[(&str, &str, &str)] = &[];

/// The documented default device, which may appear only as the value of `DEFAULT_GPU` itself.
const DEFAULT_CONSTANT: &str = "pubconstDEFAULT_GPU:usize=0;";

#[test]
fn no_gpu_path_names_a_literal_gpu_0_outside_documented_defaults() {
    let mut found = Vec::new();
    let mut defaults = 0;
    for (file, text) in library_files(GPU_PATHS) {
        for (n, line) in code_only(&text).lines().enumerate() {
            let squeezed: String = line.chars().filter(|c| !c.is_whitespace()).collect();
            if squeezed == DEFAULT_CONSTANT {
                defaults += 1;
                continue;
            }
            let documented = DOCUMENTED_DEFAULTS
                .iter()
                .any(|(f, l, _)| *f == file && *l == squeezed);
            if documented {
                continue;
            }
            for pattern in LITERAL_GPU_0 {
                if squeezed.contains(pattern) {
                    found.push(format!(
                        "src/{file}:{}: `{}` ({pattern})",
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "GPU paths naming GPU 0 instead of the device they were given (take the device as a parameter, or use \
         cuda::DEFAULT_GPU / cuda::default_gpu() where no device was named):\n{}",
        found.join("\n")
    );
    assert_eq!(
        defaults, 1,
        "src/cuda/mod.rs defines `pub const DEFAULT_GPU: usize = 0;` once"
    );
}

#[test]
fn the_literal_check_sees_what_it_must_refuse() {
    let bad = "fn f() -> Device {\n    Device::Cuda(0)\n}\nfn g() { let ctx = GpuContext::shared( 0 ); }\n";
    let hits: Vec<usize> = code_only(bad)
        .lines()
        .enumerate()
        .filter(|(_, l)| {
            let s: String = l.chars().filter(|c| !c.is_whitespace()).collect();
            LITERAL_GPU_0.iter().any(|p| s.contains(p))
        })
        .map(|(n, _)| n + 1)
        .collect();
    assert_eq!(hits, [2, 4]);
    // Comments, messages and unit tests are not code.
    let fine = "// Cuda(0)\nlet m = \"Cuda(0)\";\n#[cfg(test)]\nmod tests { fn t() { Device::Cuda(0); } }\n";
    assert!(!code_only(fine).contains("Cuda(0)"));
}

/// Process-wide statics of the GPU layers that are per-device caches: `(file, static, lookup function)`. The
/// lookup function must name the device ordinal (`ordinal` or a `gpu` key) when it searches the cache.
const PER_DEVICE: &[(&str, &str, &str)] = &[
    // One GpuContext (primary context + compiled kernels) per device ordinal.
    ("cuda/mod.rs", "SHARED", "shared"),
    // cuvidGetDecoderCaps answers per (ordinal, codec, chroma, bit depth).
    ("nvdec/caps.rs", "CAPS", "cached_caps"),
    // Idle hardware decoders, taken only by a session of the same ordinal and context.
    ("nvdec/recycle.rs", "IDLE", "take"),
    // Whether NVENC opened, per (GPU, codec).
    ("encode/encoder.rs", "NVENC_PROBES", "auto"),
];

/// Process-wide statics of the GPU layers that hold nothing of a device: `(file, static, why)`.
const DEVICE_FREE: &[(&str, &str, &str)] = &[
    (
        "cuda/mod.rs",
        "PRESENT",
        "whether libcuda loads: one library per process",
    ),
    (
        "cuda/nvrtc.rs",
        "NVRTC",
        "the NVRTC library handle; modules are compiled per GpuContext and loaded into its context",
    ),
    (
        "nvdec/api.rs",
        "API",
        "the libnvcuvid function table: one library per process",
    ),
    (
        "nvdec/recycle.rs",
        "LIMIT",
        "how many idle decoders the process keeps (a setting)",
    ),
    (
        "nvdec/recycle.rs",
        "DESTROYS_PENDING",
        "a counter of decoders handed to the destroy thread",
    ),
    (
        "nvdec/recycle.rs",
        "QUEUE",
        "decoders to destroy; each carries its own GpuContext and binds it",
    ),
    (
        "nvdec/frame_decoder.rs",
        "LOOKAHEAD",
        "an environment setting",
    ),
    (
        "nvdec/frame_decoder.rs",
        "IN_PARSER",
        "an environment setting",
    ),
    (
        "backend/factory.rs",
        "SAID",
        "whether the CPU fallback was reported on stderr",
    ),
];

/// The body of the function `name` in `code` (from its `fn` line to the closing brace at the same indentation).
fn fn_body<'a>(code: &'a str, name: &str) -> Option<&'a str> {
    let at = code
        .match_indices(&format!("fn {name}("))
        .chain(code.match_indices(&format!("fn {name}<")))
        .map(|(i, _)| i)
        .next()?;
    let line_start = code[..at].rfind('\n').map_or(0, |i| i + 1);
    let indent = &code[line_start..at];
    let indent: String = indent.chars().take_while(|c| c.is_whitespace()).collect();
    let close = format!("\n{indent}}}");
    let end = code[at..].find(&close)? + at + close.len();
    Some(&code[at..end])
}

#[test]
fn process_wide_caches_of_gpu_layers_are_keyed_by_device() {
    let mut problems = Vec::new();
    for (file, text) in library_files(&["cuda", "nvdec", "encode", "backend"]) {
        let code = code_only(&text);
        for line in code.lines() {
            let t = line.trim_start();
            let Some(rest) = t
                .strip_prefix("static ")
                .or_else(|| t.strip_prefix("pub static "))
                .or_else(|| t.strip_prefix("pub(crate) static "))
                .or_else(|| t.strip_prefix("pub(super) static "))
            else {
                continue;
            };
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let per_device = PER_DEVICE.iter().find(|(f, s, _)| *f == file && *s == name);
            let free = DEVICE_FREE.iter().any(|(f, s, _)| *f == file && *s == name);
            match (per_device, free) {
                (Some((_, _, lookup)), _) => match fn_body(&code, lookup) {
                    None => problems.push(format!(
                        "src/{file}: {name}: its lookup function `{lookup}` is gone"
                    )),
                    Some(body) => {
                        if !body.contains(name.as_str()) && !body.contains("cached_") {
                            problems.push(format!(
                                "src/{file}: {name}: `{lookup}` does not search it"
                            ));
                        }
                        if !(body.contains("ordinal") || body.contains("(gpu,")) {
                            problems.push(format!(
                                "src/{file}: {name}: `{lookup}` searches it without the device ordinal"
                            ));
                        }
                    }
                },
                (None, true) => {}
                (None, false) => problems.push(format!(
                    "src/{file}: process-wide static {name} is in neither PER_DEVICE nor DEVICE_FREE of \
                     tests/devices.rs: say whether it holds anything of a device (then key it by ordinal)"
                )),
            }
        }
    }
    for (file, name, _) in PER_DEVICE.iter().map(|(f, s, l)| (f, s, l)) {
        let text = std::fs::read_to_string(src().join(file)).unwrap();
        assert!(
            text.contains(&format!("static {name}")),
            "src/{file} no longer has {name}: update PER_DEVICE"
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Driver and NVDEC calls that need no current context (they take a device, or only load the library).
const CONTEXT_FREE_CALLS: &[&str] = &[
    "cu::init",
    "cu::device::",
    "cu::ctx::get_current",
    "cusys::is_culib_present",
    "cusys::cuCtxGetDevice",
    "cusys::cuDevicePrimaryCtxGetState",
];

#[test]
fn every_driver_call_of_cuda_and_nvdec_runs_with_its_context_bound() {
    let mut problems = Vec::new();
    for (file, text) in library_files(&["cuda", "nvdec"]) {
        let code = code_only(&text);
        let full = match text.find("#[cfg(test)]") {
            Some(at) => &text[..at],
            None => &text[..],
        };
        // Functions, by the line they start on; a call is checked against the innermost one above it.
        let mut starts: Vec<(usize, String)> = Vec::new();
        for (n, line) in code.lines().enumerate() {
            let t = line.trim_start();
            if let Some(at) = t.find("fn ") {
                let before = &t[..at];
                if before.is_empty()
                    || before.ends_with("pub ")
                    || before.ends_with(") ")
                    || before.ends_with("unsafe ")
                    || before.ends_with("const ")
                    || before.ends_with("extern \"C\" ")
                {
                    let name: String = t[at + 3..]
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    starts.push((n, name));
                }
            }
        }
        let full_lines: Vec<&str> = full.lines().collect();
        for (n, line) in code.lines().enumerate() {
            let calls_driver = (line.contains("cu::") || line.contains("cusys::cu"))
                && !line.contains("cu::DriverError")
                && !line.trim_start().starts_with("use ");
            let calls_nvdec = line.contains("result::")
                && !line.contains("std::result::")
                && file.starts_with("nvdec/");
            if !(calls_driver || calls_nvdec) || line.contains("fn ") {
                continue;
            }
            if calls_driver && !calls_nvdec && CONTEXT_FREE_CALLS.iter().any(|c| line.contains(c)) {
                continue;
            }
            if calls_nvdec && !line.contains("unsafe") && !line.contains("result::") {
                continue;
            }
            let Some((start, name)) = starts.iter().rev().find(|(s, _)| *s <= n) else {
                continue;
            };
            // The function up to the call, comments included (a SAFETY note may say who bound the context), with
            // comment markers and line breaks folded into single spaces.
            let body = full_lines[*start..=n.min(full_lines.len() - 1)]
                .iter()
                .map(|l| l.trim().trim_start_matches("//").trim())
                .collect::<Vec<_>>()
                .join(" ");
            // Bound here, or the SAFETY note names the caller that bound it (a note that only says "the context
            // is bound" in a function that binds nothing does not count).
            let caller_bound =
                body.contains("caller") && (body.contains("bound") || body.contains("binds"));
            let bound = body.contains(".bind()")
                || body.contains("bind_to_thread()")
                || body.contains("ctx::set_current(")
                || caller_bound;
            if !bound {
                problems.push(format!(
                    "src/{file}:{}: `{}` in fn {name} runs without binding its GpuContext first (call \
                     `gpu.bind()?`, or say in the SAFETY note that the caller has bound it)",
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
