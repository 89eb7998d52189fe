//! The fuzz targets (`fuzz/`, see RELIABILITY.md) on the stable toolchain, CI-sized: first every input that once
//! crashed, hung or exhausted memory (`tests/data/fuzz/<target>/`), then a deterministic mutation loop (fixed seed;
//! bit flips, interesting values, truncations, splices, block copies) over small videos made here with the ffmpeg
//! CLI, for a few seconds per target (`VIDLOADER_FUZZ_SMOKE_SECS`, default 30 s for `decode` and 8 s for the others).
//!
//! A panic in a target fails the test; the input is written to `target/fixtures/fuzz-smoke/crash-<target>-<n>`
//! first, so that `cargo fuzz run <target> <that file>` reproduces it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use vidloader::fuzzing;

/// splitmix64: a fixed, dependency-free generator, so every run mutates the same way.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// One mutation of `input` (another corpus entry `other` serves splices).
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    if v.is_empty() {
        return other.to_vec();
    }
    const INTERESTING: [u32; 8] = [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fff_ffff, 0xffff_ffff];
    for _ in 0..=rng.below(3) {
        let len = v.len();
        match rng.below(7) {
            // Flip a few bits.
            0 => {
                for _ in 0..=rng.below(8) {
                    let at = rng.below(len);
                    v[at] ^= 1 << rng.below(8);
                }
            }
            // A byte to an interesting value.
            1 => {
                let at = rng.below(len);
                v[at] = INTERESTING[rng.below(5)] as u8;
            }
            // A big-endian 32-bit field (box sizes, lengths) to an interesting value.
            2 if len >= 4 => {
                let at = rng.below(len - 3);
                let x = INTERESTING[rng.below(INTERESTING.len())];
                v[at..at + 4].copy_from_slice(&x.to_be_bytes());
            }
            // Truncate.
            3 => v.truncate(rng.below(len)),
            // Splice: our head, the other's tail.
            4 if !other.is_empty() => {
                let cut = rng.below(len);
                let from = rng.below(other.len());
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            // Copy a block within the input.
            5 if len >= 2 => {
                let n = 1 + rng.below(len.min(256));
                let from = rng.below(len - n + 1);
                let to = rng.below(len - n + 1);
                let block = v[from..from + n].to_vec();
                v[to..to + n].copy_from_slice(&block);
            }
            // Remove a block.
            _ => {
                let n = 1 + rng.below(len.min(64));
                let at = rng.below(len - n + 1);
                v.drain(at..at + n);
            }
        }
        if v.is_empty() {
            break;
        }
    }
    v
}

fn budget(default_secs: u64) -> Duration {
    let secs = std::env::var("VIDLOADER_FUZZ_SMOKE_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(default_secs as f64);
    Duration::from_secs_f64(secs)
}

fn out_dir() -> PathBuf {
    let d = fixture_dir().join("fuzz-smoke");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `target` on `input`; on a panic writes the input out and fails with its path.
fn run_one(name: &str, n: u64, input: &[u8], target: fn(&[u8])) {
    if let Err(panic) = std::panic::catch_unwind(|| target(input)) {
        let file = out_dir().join(format!("crash-{name}-{n}"));
        std::fs::write(&file, input).unwrap();
        eprintln!("{name}: input {n} panicked; saved as {}", file.display());
        std::panic::resume_unwind(panic);
    }
}

/// The minimised inputs of past findings for `target`.
fn regressions(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz")
        .join(target);
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .map(|p| {
                    let bytes = std::fs::read(&p).unwrap();
                    (p, bytes)
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Regressions first, then mutations of `corpus` until `time` is spent. Returns the number of executions.
fn smoke(name: &str, corpus: &[Vec<u8>], time: Duration, target: fn(&[u8])) -> u64 {
    let mut n = 0;
    for (path, bytes) in regressions(name) {
        eprintln!("{name}: regression {}", path.display());
        run_one(name, n, &bytes, target);
        n += 1;
    }
    for input in corpus {
        run_one(name, n, input, target);
        n += 1;
    }
    let mut rng = Rng(0x5eed_0000 ^ name.len() as u64);
    let started = Instant::now();
    while started.elapsed() < time {
        let a = &corpus[rng.below(corpus.len())];
        let b = &corpus[rng.below(corpus.len())];
        let input = mutate(&mut rng, a, b);
        run_one(name, n, &input, target);
        n += 1;
    }
    eprintln!(
        "{name}: {n} executions in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    n
}

/// Small videos, several codecs and containers (64x64, a few frames), made with the ffmpeg CLI once: names and
/// bytes.
fn named_videos() -> Vec<(&'static str, Vec<u8>)> {
    const MAKE: &[(&str, &str)] = &[
        (
            "h264_b.mp4",
            "-frames:v 6 -c:v libx264 -bf 2 -g 4 -pix_fmt yuv420p",
        ),
        (
            "h264_gop1.mkv",
            "-frames:v 3 -c:v libx264 -g 1 -pix_fmt yuv420p",
        ),
        (
            "h264.ts",
            "-frames:v 4 -c:v libx264 -bf 1 -g 2 -pix_fmt yuv420p",
        ),
        (
            "hevc.mp4",
            "-frames:v 4 -c:v libx265 -x265-params log-level=error:keyint=2:bframes=1 -tag:v hvc1",
        ),
        (
            "vp9.webm",
            "-frames:v 4 -c:v libvpx-vp9 -g 2 -deadline realtime -cpu-used 8 -b:v 50k",
        ),
        ("mpeg4_b.avi", "-frames:v 6 -c:v mpeg4 -bf 2 -g 4 -q:v 10"),
        ("mjpeg.mov", "-frames:v 2 -c:v mjpeg -q:v 20"),
        ("h264.264", "-frames:v 3 -c:v libx264 -bf 0 -g 2 -f h264"),
    ];
    static ONCE: Mutex<()> = Mutex::new(());
    let _one_at_a_time = ONCE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = out_dir();
    MAKE.iter()
        .map(|(name, args)| {
            let path = dir.join(name);
            if !path.exists() {
                let tmp = dir.join(format!("tmp-{name}"));
                run(Command::new("ffmpeg")
                    .args([
                        "-y",
                        "-v",
                        "error",
                        "-f",
                        "lavfi",
                        "-i",
                        "testsrc2=size=64x64:rate=25",
                    ])
                    .args(args.split(' '))
                    .arg(&tmp));
                std::fs::rename(&tmp, &path).unwrap();
            }
            (*name, std::fs::read(&path).unwrap())
        })
        .collect()
}

fn videos() -> Vec<Vec<u8>> {
    named_videos().into_iter().map(|(_, v)| v).collect()
}

#[test]
fn decode_target() {
    if !ffmpeg_cli_available() {
        eprintln!(
            "skipped: the seed videos are made with the ffmpeg CLI, which is not installed here"
        );
        return;
    }
    let named = named_videos();
    // The corpus itself decodes (the target is not refusing everything); a raw elementary stream held in memory
    // cannot be rewound after its scan, so that one only indexes.
    for (name, v) in &named {
        match fuzzing::decode(v) {
            Ok(got) => assert!(got.decoded > 0 && got.frames > 0, "{name}: {got:?}"),
            Err(e) => assert!(name.ends_with(".264"), "{name}: {e}"),
        }
    }
    let corpus: Vec<Vec<u8>> = named.into_iter().map(|(_, v)| v).collect();
    let n = smoke("decode", &corpus, budget(30), |d| {
        let _ = fuzzing::decode(d);
    });
    assert!(n > corpus.len() as u64);
}

#[test]
fn bitstream_target() {
    if !ffmpeg_cli_available() {
        eprintln!(
            "skipped: the seed videos are made with the ffmpeg CLI, which is not installed here"
        );
        return;
    }
    let mut corpus = videos();
    // The elementary H.264 stream, and its NAL units one by one (the SPS among them).
    let stream = corpus.last().unwrap().clone();
    let mut units: Vec<Vec<u8>> = Vec::new();
    let mut start = None;
    for i in 0..stream.len().saturating_sub(2) {
        if stream[i..i + 3] == [0, 0, 1] {
            if let Some(a) = start {
                units.push(stream[a..i].to_vec());
            }
            start = Some(i + 3);
        }
    }
    assert!(
        units
            .iter()
            .any(|u| fuzzing::bitstream(u) == Some((64, 64))),
        "the SPS parses"
    );
    corpus.extend(units);
    smoke("bitstream", &corpus, budget(8), |d| {
        let _ = fuzzing::bitstream(d);
    });
}

#[test]
fn manifest_target() {
    let mut corpus: Vec<Vec<u8>> = [
        "path,label,start,end\na.mp4,cat,0.5,2\n\"b, c.mkv\",dog,,\n",
        "# comment\nclips/a.mp4,0\nclips/b.mp4,1,1.0,3.5\n",
        "{\"path\": \"a.mp4\", \"label\": 3, \"start\": 1.5, \"end\": 4.0}\n{\"path\": \"b.mp4\"}\n",
        "{\"path\": \"a.mp4\", \"label\": \"cat\"}\n{\"path\": \"b.mp4\", \"label\": \"dog\", \"end\": 2}\n",
        "uniform:16\nclips:2:8:3\nrandom-clips:1:4:0.5s\nrandom:5\nclips:3:2\n",
        // Metadata columns (planned as constant-rate timelines, extreme ones included) and samplers by time.
        "path,num_frames,fps,width,height,duration_s\na.mp4,60,30,64,48,2\nb.mp4,4294967295,0.001,1,1,\n\
         uniform:16\nclips:2:3:0.5s\nrandom-clips:1:4:0.25s\n",
        "{\"version\":1,\"path\":\"/a.mp4\",\"size\":1,\"mtime_ns\":1,\"codec\":\"h264\",\"width\":64,\"height\":64,\
         \"fps\":25.0,\"duration_s\":0.12,\"index\":{\"packets\":[{\"pts\":0,\"dts\":0,\"key\":true,\"frame\":0},\
         {\"pts\":512,\"dts\":512,\"key\":false,\"frame\":1}],\"frame_packet\":[0,1],\"frame_start\":[0,0],\
         \"keyframes\":[0],\"time_base\":[1,12800],\"frame_duration\":512}}",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    // The last one again as a whole cache entry, as the cache database's rows hold it: header line, then JSON.
    let json = corpus.last().unwrap().clone();
    let fnv1a = json.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let header = format!("vidloader-index 1 len={} fnv1a={fnv1a:016x}\n", json.len());
    corpus.push([header.as_bytes(), &json].concat());
    assert_eq!(fuzzing::manifest(&corpus[4]), 5, "every sampler parses");
    assert_eq!(fuzzing::manifest(&corpus[5]), 3, "every sampler parses");
    smoke("manifest", &corpus, budget(8), |d| {
        let _ = fuzzing::manifest(d);
    });
}
