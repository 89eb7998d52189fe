//! Link settings that tch's own build script cannot pass on to this crate's binaries, tests and examples:
//! an rpath to libtorch, and libtorch_cuda kept linked (with `--no-as-needed`) so CUDA works where it exists.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=FFMPEG_DIR");
    // Without FFMPEG_DIR, ffmpeg-sys-next would link the system FFmpeg statically, with all its codec libraries.
    if std::env::var_os("CARGO_FEATURE_STATIC_FFMPEG").is_some()
        && std::env::var_os("FFMPEG_DIR").is_none()
    {
        panic!("feature static-ffmpeg needs FFMPEG_DIR (run scripts/build-static-ffmpeg.sh)");
    }
    if std::env::var_os("CARGO_FEATURE_STATIC_FFMPEG").is_some() {
        static_ffmpeg_link_args();
    }
    let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    let lib = std::path::PathBuf::from(lib);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    // torch_cuda exists only in CUDA builds of libtorch; CPU-only builds link without it.
    let cuda = lib.join("libtorch_cuda.so").exists();
    if cuda {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,-ltorch,--as-needed");
    } else {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch,--as-needed");
    }
}

/// The libraries a static FFmpeg needs beyond its own (libx264, libx265 with libstdc++ and libnuma, libdl for
/// NVENC's dlopen): scripts/build-static-ffmpeg.sh writes them, one linker argument a line, to
/// `$FFMPEG_DIR/vidloader-link-args`. ffmpeg-sys-next links only avcodec, avformat, avutil and swscale, and
/// `rustc-link-lib` would put these ahead of the FFmpeg archives that need them; link arguments come after
/// every library, in every executable of the package.
fn static_ffmpeg_link_args() {
    let Some(dir) = std::env::var_os("FFMPEG_DIR") else {
        return;
    };
    let path = std::path::Path::new(&dir).join("vidloader-link-args");
    println!("cargo:rerun-if-changed={}", path.display());
    let Ok(text) = std::fs::read_to_string(&path) else {
        // A static FFmpeg made some other way, with no external libraries.
        return;
    };
    // As needed: FFmpeg lists libraries (libatomic, librt) that nothing may use, and the executables must not
    // ask for a library the GPU machine may lack.
    println!("cargo:rustc-link-arg=-Wl,--as-needed");
    for arg in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        println!("cargo:rustc-link-arg={arg}");
    }
}
