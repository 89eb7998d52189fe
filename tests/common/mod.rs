//! Test fixtures: small videos made with the ffmpeg CLI at test time, and what the ffmpeg CLI decodes from them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};

pub mod containers;
pub mod encode;
pub mod exact;
pub mod h264_gaps;
pub mod matroska;

/// A fixture: a video file and how to make it.
pub struct Fixture {
    /// File name inside the fixture directory.
    pub name: &'static str,
    /// ffmpeg arguments after the input options (codec, GOP, ...).
    pub args: &'static str,
    /// lavfi source.
    pub input: &'static str,
    /// Frames to encode.
    pub frames: u32,
}

/// The next number of a fixed pseudo-random sequence (a 64-bit LCG with Knuth's MMIX constants), below `n`;
/// `state` carries the sequence, so a test asks for the same numbers on every run.
pub fn next_below(state: &mut u64, n: u64) -> u64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*state >> 33) % n
}

/// Every fixture: codecs, containers, GOPs, B-frames, 10-bit, odd sizes, frame rates, VFR, colour settings.
pub const FIXTURES: &[Fixture] = &[
    Fixture { name: "h264_nob_gop30.mp4", input: "testsrc2=size=320x240:rate=30", frames: 75, args: "-c:v libx264 -bf 0 -g 30 -pix_fmt yuv420p" },
    Fixture { name: "h264_b3_gop30.mp4", input: "testsrc2=size=320x240:rate=30", frames: 75, args: "-c:v libx264 -bf 3 -g 30 -pix_fmt yuv420p" },
    Fixture { name: "h264_gop1.mkv", input: "testsrc2=size=320x240:rate=25", frames: 30, args: "-c:v libx264 -g 1 -pix_fmt yuv420p" },
    Fixture { name: "h264_gop250.mp4", input: "testsrc2=size=160x120:rate=30", frames: 300, args: "-c:v libx264 -bf 2 -g 250 -keyint_min 250 -sc_threshold 0 -pix_fmt yuv420p" },
    Fixture { name: "h264_opengop.mkv", input: "testsrc2=size=320x240:rate=30", frames: 90, args: "-c:v libx264 -bf 3 -g 24 -x264-params open-gop=1:scenecut=0 -pix_fmt yuv420p" },
    Fixture { name: "h264_odd_642x362.mp4", input: "testsrc2=size=642x362:rate=30000/1001", frames: 40, args: "-c:v libx264 -bf 2 -g 15 -pix_fmt yuv420p" },
    Fixture { name: "h264_b_in.avi", input: "testsrc2=size=320x240:rate=25", frames: 50, args: "-c:v libx264 -bf 0 -g 20 -pix_fmt yuv420p" },
    Fixture { name: "h264_full_bt709.mp4", input: "testsrc2=size=320x240:rate=30", frames: 30, args: "-c:v libx264 -bf 2 -g 15 -pix_fmt yuvj420p -colorspace bt709 -color_primaries bt709 -color_trc bt709 -color_range pc" },
    Fixture { name: "h264_444.mkv", input: "testsrc2=size=320x240:rate=30", frames: 30, args: "-c:v libx264 -bf 2 -g 15 -pix_fmt yuv444p" },
    Fixture { name: "h264_ts.ts", input: "testsrc2=size=320x240:rate=30", frames: 60, args: "-c:v libx264 -bf 2 -g 20 -pix_fmt yuv420p" },
    Fixture { name: "h264_vfr.mp4", input: "testsrc2=size=320x240:rate=30", frames: 60, args: "-vf settb=1/1000,setpts=if(lt(N\\,30)\\,N*33\\,990+(N-30)*67) -fps_mode passthrough -c:v libx264 -bf 2 -g 20 -pix_fmt yuv420p" },
    Fixture { name: "hevc8_b.mp4", input: "testsrc2=size=320x240:rate=30", frames: 60, args: "-c:v libx265 -x265-params log-level=error:keyint=30:min-keyint=30:bframes=3 -pix_fmt yuv420p -tag:v hvc1" },
    Fixture { name: "hevc10.mkv", input: "testsrc2=size=320x240:rate=24", frames: 48, args: "-c:v libx265 -x265-params log-level=error:keyint=24:bframes=2 -pix_fmt yuv420p10le -colorspace bt2020nc -color_primaries bt2020 -color_trc smpte2084" },
    Fixture { name: "vp9_odd_321x241.webm", input: "testsrc2=size=321x241:rate=30", frames: 45, args: "-c:v libvpx-vp9 -g 15 -deadline realtime -cpu-used 8 -b:v 300k -pix_fmt yuv420p" },
    Fixture { name: "mpeg4.avi", input: "testsrc2=size=320x240:rate=25", frames: 50, args: "-c:v mpeg4 -g 12 -q:v 4 -pix_fmt yuv420p" },
    Fixture { name: "mpeg4_b.avi", input: "testsrc2=size=320x240:rate=25", frames: 50, args: "-c:v mpeg4 -bf 2 -g 12 -q:v 4 -pix_fmt yuv420p" },
    Fixture { name: "h264_high10_422.mkv", input: "testsrc2=size=320x240:rate=30", frames: 20, args: "-c:v libx264 -bf 2 -g 10 -pix_fmt yuv422p10le" },
    Fixture { name: "h264_interlaced.mp4", input: "testsrc2=size=320x240:rate=30", frames: 30, args: "-c:v libx264 -flags +ilme+ildct -x264-params tff=1 -bf 2 -g 15 -pix_fmt yuv420p" },
    Fixture { name: "h264_baseline_sar.mp4", input: "testsrc2=size=320x240:rate=25", frames: 30, args: "-c:v libx264 -profile:v baseline -g 15 -vf setsar=16/11 -pix_fmt yuv420p" },
    Fixture { name: "hevc444_full_scaling.mkv", input: "testsrc2=size=320x240:rate=30", frames: 30, args: "-c:v libx265 -x265-params log-level=error:keyint=15:bframes=2:scaling-list=default -pix_fmt yuv444p -color_range pc -colorspace bt709 -color_primaries bt709 -color_trc bt709" },
    Fixture { name: "hevc_temporal_sar.mp4", input: "testsrc2=size=320x240:rate=25", frames: 40, args: "-vf setsar=4/3 -c:v libx265 -x265-params log-level=error:keyint=20:bframes=3:b-pyramid=1:temporal-layers=1 -pix_fmt yuv420p -tag:v hvc1" },
    Fixture { name: "h264_b2_gop60_10s.mp4", input: "testsrc2=size=192x108:rate=30", frames: 300, args: "-c:v libx264 -bf 2 -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p" },
    // x264's fast presets: one reference, a referenced B-picture in every pair that marks others unused itself
    // (memory management operations), weighted P prediction.
    Fixture { name: "h264_veryfast_gop120.mp4", input: "testsrc2=size=256x144:rate=30", frames: 240, args: "-c:v libx264 -preset veryfast -bf 2 -g 120 -keyint_min 120 -sc_threshold 0 -pix_fmt yuv420p" },
    // Strict B-pyramid over 3 B-frames, 4 references, weighted P prediction with duplicated references.
    Fixture { name: "h264_pyramid_strict_ref4.mp4", input: "testsrc2=size=256x144:rate=30", frames: 200, args: "-c:v libx264 -g 100 -x264-params ref=4:bframes=3:b-pyramid=strict:weightp=2:scenecut=0 -pix_fmt yuv420p" },
    // CAVLC, four slices a picture, 2 references, in Matroska.
    Fixture { name: "h264_cavlc_slices.mkv", input: "testsrc2=size=256x144:rate=25", frames: 150, args: "-c:v libx264 -preset superfast -coder 0 -slices 4 -refs 2 -bf 2 -g 75 -sc_threshold 0 -pix_fmt yuv420p" },
    Fixture { name: "hevc_opengop.mp4", input: "testsrc2=size=320x240:rate=30", frames: 120, args: "-c:v libx265 -x265-params log-level=error:keyint=30:min-keyint=30:open-gop=1:bframes=3:scenecut=0 -pix_fmt yuv420p -tag:v hvc1" },
    Fixture { name: "vp8.webm", input: "testsrc2=size=320x240:rate=30", frames: 30, args: "-c:v libvpx -g 10 -deadline realtime -cpu-used 8 -b:v 300k -pix_fmt yuv420p" },
    Fixture { name: "mpeg2_b.ts", input: "testsrc2=size=320x240:rate=25", frames: 40, args: "-c:v mpeg2video -bf 2 -g 12 -q:v 4 -pix_fmt yuv420p" },
    Fixture { name: "mpeg1_b.mpg", input: "testsrc2=size=320x240:rate=25", frames: 40, args: "-c:v mpeg1video -bf 2 -g 12 -q:v 4 -pix_fmt yuv420p" },
    // At the encoder's default bit rate the pictures are small enough that a PES packet of the program stream holds
    // two picture starts, and the second has no presentation time stamp (a few of every 100 in MPEG-1, more in a VOB).
    Fixture { name: "mpeg1_b_untimed.mpg", input: "testsrc2=size=320x240:rate=25", frames: 100, args: "-c:v mpeg1video -bf 2 -g 12 -pix_fmt yuv420p" },
    Fixture { name: "mpeg2_b.vob", input: "testsrc2=size=320x240:rate=25", frames: 100, args: "-c:v mpeg2video -bf 2 -g 12 -pix_fmt yuv420p" },
    Fixture { name: "mjpeg.avi", input: "testsrc2=size=320x240:rate=25", frames: 20, args: "-c:v mjpeg -q:v 3 -pix_fmt yuvj420p" },
    Fixture { name: "av1.mkv", input: "testsrc2=size=192x108:rate=30", frames: 40, args: "-c:v libsvtav1 -g 15 -preset 12 -pix_fmt yuv420p" },
    Fixture { name: "mpeg4_b.mp4", input: "testsrc2=size=320x240:rate=60", frames: 60, args: "-c:v mpeg4 -bf 2 -g 12 -q:v 4 -pix_fmt yuv420p" },
    // Intra refresh (low-latency encoders): one IDR picture, then P-pictures with recovery point SEI messages as
    // keyframes; libavcodec shows a picture decoded from such a keyframe only once its refresh period has passed.
    Fixture { name: "h264_intra_refresh.ts", input: "testsrc2=size=320x240:rate=25", frames: 100, args: "-c:v libx264 -bf 0 -x264-params intra-refresh=1:keyint=25 -pix_fmt yuv420p" },
    Fixture { name: "h264_intra_refresh_b.mkv", input: "testsrc2=size=320x240:rate=25", frames: 100, args: "-c:v libx264 -bf 2 -x264-params intra-refresh=1:keyint=30 -pix_fmt yuv420p" },
];

static LOCK: Mutex<()> = Mutex::new(());

/// Where fixtures live: `$VIDLOADER_FIXTURES`, or `target/fixtures` of this crate.
pub fn fixture_dir() -> PathBuf {
    std::env::var_os("VIDLOADER_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fixtures"))
}

/// Whether the ffmpeg CLI runs on this machine (the GPU machine has none: its fixtures come made).
pub fn ffmpeg_cli_available() -> bool {
    Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `cmd` (an ffmpeg CLI call, or [`cli`]), fails the test with its stderr if it does not succeed, and returns
/// its stdout.
pub fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (is it installed?)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The vidloader command line: `$VIDLOADER_BIN` where it is set (the GPU machine runs a bundled binary, see
/// `scripts/gpu-remote.sh`), otherwise the binary cargo built for these tests.
pub fn cli() -> Command {
    Command::new(
        std::env::var_os("VIDLOADER_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_vidloader").into()),
    )
}

/// Whether `VIDLOADER_REQUIRE_GPU=1` is set: then a GPU test that finds no usable GPU fails instead of skipping
/// (for runs on the GPU machine, where a skip would hide a broken GPU path).
pub fn require_gpu() -> bool {
    std::env::var("VIDLOADER_REQUIRE_GPU").is_ok_and(|v| v == "1")
}

/// Says "skipped: <reason>" on stderr (the test then returns early and passes), or fails the test under
/// `VIDLOADER_REQUIRE_GPU=1`.
pub fn skip_without_gpu(reason: &str) {
    assert!(!require_gpu(), "VIDLOADER_REQUIRE_GPU=1 but {reason}");
    eprintln!("skipped: {reason}");
}

/// Whether NVDEC and a CUDA build of torch are both here; when not, says why on stderr (the test is then skipped,
/// or fails under `VIDLOADER_REQUIRE_GPU=1`).
pub fn nvdec_gpu() -> bool {
    if !vidloader::nvdec::is_available() {
        skip_without_gpu(&format!(
            "no NVDEC ({})",
            vidloader::nvdec::unavailable_reason().unwrap_or_default()
        ));
        return false;
    }
    if !tch::Cuda::is_available() {
        skip_without_gpu("torch sees no CUDA device");
        return false;
    }
    true
}

/// One GPU test of a test binary at a time (they share the GPU's NVDEC engines, its memory and the process-wide
/// NVENC probe, and the memory tests measure only themselves).
static GPU_LOCK: Mutex<()> = Mutex::new(());

/// The gate of every GPU test that goes through torch: the GPU lock when NVDEC and a CUDA build of torch are both
/// here; otherwise `None`, after saying `skipped: <reason>` on stderr, or failing the test under
/// `VIDLOADER_REQUIRE_GPU=1`. Use it as `let Some(_gpu) = gpu() else { return };`.
pub fn gpu() -> Option<MutexGuard<'static, ()>> {
    nvdec_gpu().then(|| GPU_LOCK.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The gate of the GPU tests below torch (NVDEC sessions and CUDA kernels driven directly): GPU 0's shared
/// context when libnvcuvid loads and the device opens; otherwise `None` after [`skip_without_gpu`]. Holds no lock:
/// those tests use their own sessions and streams.
pub fn nvdec_context() -> Option<Arc<vidloader::cuda::GpuContext>> {
    if !vidloader::nvdec::is_available() {
        skip_without_gpu(&format!(
            "no GPU (NVDEC library unavailable: {:?})",
            vidloader::nvdec::unavailable_reason()
        ));
        return None;
    }
    match vidloader::cuda::GpuContext::shared(0) {
        Ok(g) => Some(g),
        Err(e) => {
            skip_without_gpu(&format!("no GPU ({e})"));
            None
        }
    }
}

/// The path of fixture `name` (of [`FIXTURES`] or [`containers::DERIVED`]), making it on first use.
pub fn fixture(name: &str) -> PathBuf {
    if let Some(d) = containers::DERIVED.iter().find(|d| d.name == name) {
        let path = fixture_dir().join(d.name);
        if path.exists() {
            return path;
        }
        let src = fixture(d.from);
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        if !path.exists() {
            let tmp = fixture_dir().join(format!("tmp-{}", d.name));
            (d.make)(&src, &tmp);
            std::fs::rename(&tmp, &path).unwrap();
        }
        return path;
    }
    let f = FIXTURES
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no fixture {name}"));
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fixture_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(f.name);
    if !path.exists() {
        let tmp = dir.join(format!("tmp-{}", f.name));
        let mut cmd = Command::new("ffmpeg");
        cmd.args([
            "-y",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            f.input,
            "-frames:v",
            &f.frames.to_string(),
        ]);
        cmd.args(f.args.split(' '));
        cmd.arg(&tmp);
        run(&mut cmd);
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

/// What `ffmpeg -f rawvideo -pix_fmt <pix_fmt>` decodes from `path`: one byte vector per displayed frame.
pub fn reference_frames(path: &Path, pix_fmt: &str, frame_bytes: usize) -> Vec<Vec<u8>> {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let raw = path.with_extension(format!(
        "{}.{pix_fmt}.raw",
        path.extension().unwrap().to_string_lossy()
    ));
    if !raw.exists() {
        let tmp = raw.with_extension("tmp");
        run(Command::new("ffmpeg")
            .args(["-y", "-loglevel", "error", "-i"])
            .arg(path)
            .args([
                "-fps_mode",
                "passthrough",
                "-f",
                "rawvideo",
                "-pix_fmt",
                pix_fmt,
            ])
            .arg(&tmp));
        std::fs::rename(&tmp, &raw).unwrap();
    }
    let bytes = std::fs::read(&raw).unwrap();
    assert_eq!(
        bytes.len() % frame_bytes,
        0,
        "{} is not a whole number of {frame_bytes}-byte frames",
        raw.display()
    );
    bytes.chunks(frame_bytes).map(|c| c.to_vec()).collect()
}

/// Copies a uint8 tensor's bytes out (from any device).
pub fn tensor_bytes(t: &tch::Tensor) -> Vec<u8> {
    let t = t.to_device(tch::Device::Cpu).contiguous();
    let mut v = vec![0u8; t.numel()];
    t.copy_data_u8(&mut v, t.numel());
    v
}

/// Bytes of one packed planar frame (Y + two chroma planes) with 8- or 16-bit samples.
pub fn planar_frame_bytes(w: usize, h: usize, sx: u32, sy: u32, bytes_per_sample: usize) -> usize {
    let cw = (w + (1 << sx) - 1) >> sx;
    let ch = (h + (1 << sy) - 1) >> sy;
    (w * h + 2 * cw * ch) * bytes_per_sample
}

#[allow(clippy::too_many_arguments)]
/// Reference YUV -> RGB (interleaved) of a packed planar frame, in f64, nearest chroma, from the standard
/// matrices. Independent of the library's own code.
pub fn reference_rgb(
    frame: &[u8],
    w: usize,
    h: usize,
    sx: u32,
    sy: u32,
    depth: u32,
    matrix: &str,
    full: bool,
) -> Vec<u8> {
    let bps = if depth > 8 { 2 } else { 1 };
    let cw = (w + (1 << sx) - 1) >> sx;
    let ch = (h + (1 << sy) - 1) >> sy;
    let get = |plane_off: usize, stride: usize, x: usize, y: usize| -> f64 {
        let i = plane_off + (y * stride + x) * bps;
        if bps == 2 {
            f64::from(u16::from_le_bytes([frame[i], frame[i + 1]]))
        } else {
            f64::from(frame[i])
        }
    };
    let (kr, kb) = match matrix {
        "bt709" => (0.2126, 0.0722),
        "bt2020" => (0.2627, 0.0593),
        _ => (0.299, 0.114),
    };
    let kg = 1.0 - kr - kb;
    let s = f64::from(1u32 << (depth - 8));
    let max = f64::from((1u32 << depth) - 1);
    let mut out = vec![0u8; w * h * 3];
    let u_off = w * h * bps;
    let v_off = u_off + cw * ch * bps;
    for y in 0..h {
        for x in 0..w {
            let (yy, cb, cr) = (
                get(0, w, x, y),
                get(u_off, cw, x >> sx, y >> sy),
                get(v_off, cw, x >> sx, y >> sy),
            );
            let (l, b, r) = if full {
                (
                    yy * 255.0 / max,
                    (cb - 128.0 * s) * 255.0 / max,
                    (cr - 128.0 * s) * 255.0 / max,
                )
            } else {
                (
                    (yy - 16.0 * s) * 255.0 / (219.0 * s),
                    (cb - 128.0 * s) * 255.0 / (224.0 * s),
                    (cr - 128.0 * s) * 255.0 / (224.0 * s),
                )
            };
            let rgb = [
                l + 2.0 * (1.0 - kr) * r,
                l - 2.0 * kb * (1.0 - kb) / kg * b - 2.0 * kr * (1.0 - kr) / kg * r,
                l + 2.0 * (1.0 - kb) * b,
            ];
            for c in 0..3 {
                out[(y * w + x) * 3 + c] = (rgb[c] + 0.5).floor().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// Largest absolute difference between two byte vectors of equal length.
pub fn max_abs_diff(a: &[u8], b: &[u8]) -> u8 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}
