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
