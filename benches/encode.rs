//! Encode, transcode and clip preparation against the ffmpeg CLI doing the same work, in the same run.
//!
//! `cargo bench --bench encode` makes its inputs in `target/bench/` with the ffmpeg CLI if missing (a raw 720p
//! yuv420p clip of testsrc2, a 10 s 720p H.264 MP4, four 10 s 360p H.264 MP4s and a manifest of 24 one-second
//! cuts) and times, best of `REPEATS`, alternating ours and theirs:
//!   - encode: [`Encoder`] fed `Yuv420` tensors (the file read into one tensor, each frame a view of it), writing
//!     a raw stream, against
//!     `ffmpeg -f rawvideo -i SRC.yuv -c:v ENC -preset P -threads N -f FMT OUT` (the CLI reads the same file
//!     from the page cache), for libx264, libx265 and SVT-AV1 at PyNvVideoCodec's default preset P4
//!     (x264 / x265 `faster`, SVT-AV1 preset 8);
//!   - transcode: [`Transcoder`] (CPU decode, libx264 `faster`) against `ffmpeg -i IN -c:v libx264 -preset
//!     faster OUT.mp4`;
//!   - clip preparation: `vidloader clips MANIFEST OUT` against a shell loop of one `ffmpeg -ss S -to E -i IN
//!     -c:v libx264 -preset faster -g 16` per row, run one at a time and two at a time (`xargs -P 2`).
//!
//! Set `VIDLOADER_BENCH_THREADS` to change N (default: all cores).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use vidloader::{
    Backend, Codec, Encoder, EncoderBackend, EncoderOptions, InputFormat, PicFlags, Preset,
    TranscodeOptions, Transcoder,
};

const REPEATS: usize = 3;
const W: u32 = 1280;
const H: u32 = 720;
const FRAMES: usize = 150;

fn dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs the ffmpeg CLI with `args`, panicking with its stderr on failure.
fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-y", "-loglevel", "error"])
        .args(args)
        .output()
        .expect("the ffmpeg CLI is needed for this benchmark");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes `path` with the ffmpeg CLI (`args` before the output name) unless it exists.
fn make(path: &Path, args: &[&str]) {
    if !path.exists() {
        let tmp = path.with_extension(format!(
            "tmp.{}",
            path.extension().unwrap().to_string_lossy()
        ));
        let mut all: Vec<&str> = args.to_vec();
        all.push(tmp.to_str().unwrap());
        ffmpeg(&all);
        std::fs::rename(&tmp, path).unwrap();
    }
}

/// Seconds of the fastest of `REPEATS` runs of each of two jobs, run alternately.
fn pair(mut ours: impl FnMut(), mut theirs: impl FnMut()) -> (f64, f64) {
    let (mut a, mut b) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..REPEATS {
        let t = Instant::now();
        ours();
        a = a.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        theirs();
        b = b.min(t.elapsed().as_secs_f64());
    }
    (a, b)
}

fn threads() -> usize {
    std::env::var("VIDLOADER_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

fn encode_rows(threads: usize) {
    let src = dir().join("src_720p.yuv");
    make(
        &src,
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=30",
            "-frames:v",
            "150",
            "-pix_fmt",
            "yuv420p",
            "-f",
            "rawvideo",
        ],
    );
    let fb = InputFormat::Yuv420.frame_bytes(W, H);
    for (codec, name, preset, fmt, ext) in [
        (Codec::H264, "libx264", "faster", "h264", "h264"),
        (Codec::Hevc, "libx265", "faster", "hevc", "hevc"),
        (Codec::Av1, "libsvtav1", "8", "ivf", "ivf"),
    ] {
        let out_ours = dir().join(format!("enc_ours.{ext}"));
        let out_cli = dir().join(format!("enc_cli.{ext}"));
        let opts = EncoderOptions {
            codec,
            backend: EncoderBackend::Software,
            preset: Preset::P4,
            threads,
            ..Default::default()
        };
        let (ours, theirs) = pair(
            || {
                // The file read into one tensor (as frames from a decoder or a model would be: in memory
                // already), each frame a view of it.
                let all = tch::Tensor::from_slice(&std::fs::read(&src).unwrap());
                let mut enc = Encoder::new(W, H, InputFormat::Yuv420, opts.clone()).unwrap();
                let mut out = Vec::new();
                for i in 0..FRAMES as i64 {
                    let t = all.narrow(0, i * fb as i64, fb as i64);
                    for p in enc.encode(&t, PicFlags::default(), &[]).unwrap() {
                        out.extend_from_slice(&p.data);
                    }
                }
                for p in enc.end_encode().unwrap() {
                    out.extend_from_slice(&p.data);
                }
                std::fs::write(&out_ours, out).unwrap();
            },
            || {
                let t = threads.to_string();
                let mut args = vec![
                    "-f",
                    "rawvideo",
                    "-pix_fmt",
                    "yuv420p",
                    "-s",
                    "1280x720",
                    "-r",
                    "30",
                    "-i",
                    src.to_str().unwrap(),
                    "-c:v",
                    name,
                    "-preset",
                    preset,
                    "-threads",
                    &t,
                ];
                if codec == Codec::Hevc {
                    args.extend(["-x265-params", "log-level=error"]);
                }
                args.extend(["-f", fmt, out_cli.to_str().unwrap()]);
                ffmpeg(&args);
            },
        );
        println!(
            "encode {name} P4 ({preset}), {FRAMES} frames 1280x720, {threads} threads: vidloader {:.1} fps, \
             ffmpeg {:.1} fps, ratio {:.2}x",
            FRAMES as f64 / ours,
            FRAMES as f64 / theirs,
            theirs / ours
        );
    }
}

fn transcode_row() {
    let src = dir().join("h264_720p_10s.mp4");
    make(
        &src,
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=30",
            "-t",
            "10",
            "-c:v",
            "libx264",
            "-preset",
            "medium",
            "-g",
            "60",
            "-bf",
            "2",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let ours_out = dir().join("tc_ours.mp4");
    let cli_out = dir().join("tc_cli.mp4");
    let opts = TranscodeOptions {
        encoder: EncoderOptions {
            backend: EncoderBackend::Software,
            preset: Preset::P4,
            ..Default::default()
        },
        decoder: Backend::Cpu,
        ..Default::default()
    };
    let mut frames = 0;
    let (ours, theirs) = pair(
        || {
            let mut t = Transcoder::new(&src, &ours_out, opts.clone()).unwrap();
            frames = t.transcode_with_mux().unwrap().frames;
        },
        || {
            ffmpeg(&[
                "-i",
                src.to_str().unwrap(),
                "-c:v",
                "libx264",
                "-preset",
                "faster",
                cli_out.to_str().unwrap(),
            ])
        },
    );
    println!(
        "transcode 720p H.264 10 s -> libx264 faster (CPU decode): vidloader {:.1} fps, ffmpeg {:.1} fps, \
         ratio {:.2}x",
        frames as f64 / ours,
        frames as f64 / theirs,
        theirs / ours
    );
}

fn clips_row() {
    let mut rows = String::from("path,label,start,end\n");
    let mut jobs = Vec::new();
    for k in 0..4 {
        let src = dir().join(format!("h264_360p_{k}.mp4"));
        let lavfi = format!("testsrc2=size=640x360:rate=30,hue=h={}", k * 60);
        make(
            &src,
            &[
                "-f", "lavfi", "-i", &lavfi, "-t", "10", "-c:v", "libx264", "-preset", "medium",
                "-g", "60", "-pix_fmt", "yuv420p",
            ],
        );
        for c in 0..6 {
            let (s, e) = (c as f64 * 1.5, c as f64 * 1.5 + 1.0);
            rows.push_str(&format!("{},class{k},{s},{e}\n", src.display()));
            jobs.push((src.clone(), s, e));
        }
    }
    let manifest = dir().join("clips_manifest.csv");
    std::fs::write(&manifest, rows).unwrap();
    let out_ours = dir().join("clips_ours");
    let out_cli = dir().join("clips_cli");
    std::fs::create_dir_all(&out_cli).unwrap();
    let script: String = jobs
        .iter()
        .enumerate()
        .map(|(i, (src, s, e))| {
            format!(
                "ffmpeg -y -loglevel error -ss {s} -to {e} -i {} -c:v libx264 -preset faster -g 16 -an {}/{i}.mp4\n",
                src.display(),
                out_cli.display()
            )
        })
        .collect();
    let script_path = dir().join("clips_cli.sh");
    std::fs::write(&script_path, &script).unwrap();
    let vidloader = env!("CARGO_BIN_EXE_vidloader");
    let run_ours = || {
        let _ = std::fs::remove_dir_all(&out_ours);
        let o = Command::new(vidloader)
            .args([
                "clips",
                manifest.to_str().unwrap(),
                out_ours.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let (ours, serial) = pair(run_ours, || {
        let o = Command::new("sh").arg(&script_path).output().unwrap();
        assert!(o.status.success());
    });
    let (ours2, parallel) = pair(run_ours, || {
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "xargs -P 2 -I CMD sh -c CMD < {}",
                script_path.display()
            ))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    });
    let n = jobs.len() as f64;
    let ours = ours.min(ours2);
    println!(
        "clips: {} one-second 360p cuts -> libx264 faster GOP 16: vidloader clips {:.2} clips/s; ffmpeg shell loop \
         {:.2} clips/s (ratio {:.2}x); two ffmpeg at a time {:.2} clips/s (ratio {:.2}x)",
        jobs.len(),
        n / ours,
        n / serial,
        serial / ours,
        n / parallel,
        parallel / ours
    );
}

fn main() {
    if Command::new("ffmpeg").arg("-version").output().is_err() {
        println!("skipped: the ffmpeg CLI (the peer of every row) is not installed");
        return;
    }
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let threads = threads();
    if want("encode") {
        encode_rows(threads);
    }
    if want("transcode") {
        transcode_row();
    }
    if want("clips") {
        clips_row();
    }
}
