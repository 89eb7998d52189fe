//! NVDEC + CUDA conversion tests.
//!
//! - Without a GPU (CI, dev machines) the first tests check that everything answers with typed errors and never
//!   panics; the GPU tests print "skipped: no GPU" and return.
//! - With a GPU and NVDEC they decode Annex-B elementary streams made by the ffmpeg CLI and compare every frame bit
//!   for bit with the CLI's own software decode (`-f rawvideo -pix_fmt yuv420p[10le]`).
//!
//! Fixtures live in `$VIDLOADER_FIXTURES` when set (the GPU machine has no ffmpeg: carry the directory there), else
//! in `target/fixtures`, generated on first use when the ffmpeg CLI exists. `cargo test --test gpu_nvdec
//! fixtures_can_be_generated` makes them all.
#![allow(clippy::needless_range_loop)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::{ffmpeg_cli_available, fixture_dir, nvdec_context as gpu, skip_without_gpu};
use vidloader::cuda::{
    self, native_frame_bytes, DstBytes, DstImage, GpuContext, GpuStream, SurfaceFormat,
};
use vidloader::nvdec::{
    self, ChromaFormat, LatencyMode, NvCodec, NvdecSession, SeiMessage, SessionOptions,
};
use vidloader::YuvToRgb;
use vidloader::{ColorMatrix, ColorRange, Error, Normalize, OutputDtype, RgbLayout};

// ---------------------------------------------------------------------------------------------------------------
// Fixtures

struct Fixture {
    name: &'static str,
    lavfi: &'static str,
    frames: u32,
    args: &'static [&'static str],
    /// rawvideo pixel format of the reference decode.
    pix_fmt: &'static str,
    codec: NvCodec,
    width: u32,
    height: u32,
    bit_depth: u32,
}

const H264: Fixture = Fixture {
    name: "nvdec_h264_320x240_bf2.h264",
    lavfi: "testsrc2=size=320x240:rate=30",
    frames: 60,
    args: &[
        "-c:v", "libx264", "-g", "30", "-bf", "2", "-pix_fmt", "yuv420p", "-f", "h264",
    ],
    pix_fmt: "yuv420p",
    codec: NvCodec::H264,
    width: 320,
    height: 240,
    bit_depth: 8,
};

const H264_CROP: Fixture = Fixture {
    name: "nvdec_h264_320x180_bf2.h264",
    lavfi: "testsrc2=size=320x180:rate=30",
    frames: 30,
    args: &[
        "-c:v", "libx264", "-g", "15", "-bf", "2", "-pix_fmt", "yuv420p", "-f", "h264",
    ],
    pix_fmt: "yuv420p",
    codec: NvCodec::H264,
    width: 320,
    height: 180,
    bit_depth: 8,
};

const H264_IPPP: Fixture = Fixture {
    name: "nvdec_h264_320x240_ippp.h264",
    lavfi: "testsrc2=size=320x240:rate=25",
    frames: 30,
    args: &[
        "-c:v", "libx264", "-g", "30", "-bf", "0", "-pix_fmt", "yuv420p", "-f", "h264",
    ],
    pix_fmt: "yuv420p",
    codec: NvCodec::H264,
    width: 320,
    height: 240,
    bit_depth: 8,
};

const HEVC10: Fixture = Fixture {
    name: "nvdec_hevc10_320x180_bf2.h265",
    lavfi: "testsrc2=size=320x180:rate=30",
    frames: 30,
    args: &[
        "-c:v",
        "libx265",
        "-x265-params",
        "log-level=error:keyint=30:min-keyint=30:bframes=2",
        "-pix_fmt",
        "yuv420p10le",
        "-f",
        "hevc",
    ],
    pix_fmt: "yuv420p10le",
    codec: NvCodec::Hevc,
    width: 320,
    height: 180,
    bit_depth: 10,
};

const ALL: &[&Fixture] = &[&H264, &H264_CROP, &H264_IPPP, &HEVC10];

static FIXTURE_LOCK: Mutex<()> = Mutex::new(());

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output();
    let out = out.unwrap_or_else(|e| panic!("cannot run ffmpeg: {e}"));
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The stream and its reference `.yuv`, generated with the ffmpeg CLI when missing. `None` when neither the files
/// nor ffmpeg are there.
fn fixture(f: &Fixture) -> Option<(PathBuf, PathBuf)> {
    let _guard = FIXTURE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fixture_dir();
    let stream = dir.join(f.name);
    let yuv = dir.join(format!("{}.yuv", f.name));
    if stream.exists() && yuv.exists() {
        return Some((stream, yuv));
    }
    if !ffmpeg_cli_available() {
        skip_without_gpu(&format!(
            "fixture {} missing in {} and no ffmpeg CLI to make it",
            f.name,
            dir.display()
        ));
        return None;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let frames = f.frames.to_string();
    let tmp = dir.join(format!("{}.tmp", f.name));
    let mut args: Vec<&str> = vec!["-f", "lavfi", "-i", f.lavfi, "-frames:v", &frames];
    args.extend_from_slice(f.args);
    let tmp_s = tmp.to_str().unwrap();
    args.push(tmp_s);
    ffmpeg(&args);
    let yuv_tmp = dir.join(format!("{}.yuv.tmp", f.name));
    ffmpeg(&[
        "-i",
        tmp_s,
        "-f",
        "rawvideo",
        "-pix_fmt",
        f.pix_fmt,
        yuv_tmp.to_str().unwrap(),
    ]);
    std::fs::rename(&tmp, &stream).unwrap();
    std::fs::rename(&yuv_tmp, &yuv).unwrap();
    Some((stream, yuv))
}

struct Loaded {
    stream: Vec<u8>,
    /// Reference frames, each `native_frame_bytes` long.
    frames: Vec<Vec<u8>>,
}

fn load(f: &Fixture) -> Option<Loaded> {
    let (s, y) = fixture(f)?;
    let stream = std::fs::read(s).unwrap();
    let yuv = std::fs::read(y).unwrap();
    let format = if f.bit_depth > 8 {
        SurfaceFormat::P016
    } else {
        SurfaceFormat::Nv12
    };
    let n = native_frame_bytes(format, f.width, f.height);
    assert_eq!(yuv.len() % n, 0, "{}: reference size", f.name);
    let frames: Vec<Vec<u8>> = yuv.chunks(n).map(<[u8]>::to_vec).collect();
    assert_eq!(
        frames.len(),
        f.frames as usize,
        "{}: reference frame count",
        f.name
    );
    Some(Loaded { stream, frames })
}

// ---------------------------------------------------------------------------------------------------------------
// Annex-B access-unit splitting (H.264), for the per-picture latency modes and seeking.

/// (start-code offset, NAL payload offset) of every NAL unit.
fn nal_units(data: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            let start = if i > 0 && data[i - 1] == 0 { i - 1 } else { i };
            out.push((start, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    out
}

/// Splits an H.264 Annex-B stream into access units (one picture each).
fn h264_access_units(data: &[u8]) -> Vec<&[u8]> {
    let nals = nal_units(data);
    let mut starts = Vec::new();
    let mut au_has_vcl = false;
    for (k, &(start, p)) in nals.iter().enumerate() {
        let ty = data[p] & 0x1f;
        let vcl = (1..=5).contains(&ty);
        let first_mb_zero = vcl && p + 1 < data.len() && data[p + 1] & 0x80 != 0;
        let begins =
            k == 0 || (au_has_vcl && (matches!(ty, 6..=9 | 14 | 15 | 18) || first_mb_zero));
        if begins {
            starts.push(start);
            au_has_vcl = false;
        }
        au_has_vcl |= vcl;
    }
    let mut aus = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let e = starts.get(k + 1).copied().unwrap_or(data.len());
        aus.push(&data[s..e]);
    }
    aus
}

fn is_idr_au(au: &[u8]) -> bool {
    nal_units(au).iter().any(|&(_, p)| au[p] & 0x1f == 5)
}

// ---------------------------------------------------------------------------------------------------------------
// GPU harness

#[derive(Debug)]
struct Decoded {
    timestamp: i64,
    width: u32,
    height: u32,
    native: Vec<u8>,
    sei: Vec<SeiMessage>,
}

struct Harness {
    gpu: Arc<GpuContext>,
    stream: GpuStream,
    session: NvdecSession,
    out: Vec<Decoded>,
}

impl Harness {
    fn new(gpu: &Arc<GpuContext>, cfg: SessionOptions) -> Harness {
        let stream = GpuStream::new(gpu).expect("stream");
        let session = NvdecSession::new(gpu.clone(), cfg).expect("session");
        Harness {
            gpu: gpu.clone(),
            stream,
            session,
            out: Vec::new(),
        }
    }

    /// Maps every queued frame and copies its NATIVE planes to the host.
    fn drain(&mut self) {
        let conv = self.gpu.converter().expect("kernels");
        while let Some(f) = self.session.next_frame() {
            let m = self.session.map(&f, &self.stream).expect("map");
            let src = m.source().expect("source");
            let n = src.native_bytes();
            let mut buf = self.gpu.alloc(n).expect("alloc");
            conv.to_native(
                &src,
                &mut DstBytes::from_buffer(&mut buf, 0, n).unwrap(),
                &self.stream,
            )
            .expect("convert");
            let native = buf.copy_to_host(&self.stream).expect("copy");
            let (width, height) = (m.width(), m.height());
            m.unmap().expect("unmap");
            self.out.push(Decoded {
                timestamp: f.timestamp,
                width,
                height,
                native,
                sei: f.sei,
            });
        }
    }

    fn feed_chunks(&mut self, data: &[u8], chunk: usize) {
        for c in data.chunks(chunk) {
            self.session.decode_untimed(c, false).expect("decode");
            self.drain();
        }
        self.session.flush().expect("flush");
        self.drain();
    }
}

fn assert_frames_equal(name: &str, got: &[Decoded], want: &[Vec<u8>], w: u32, h: u32) {
    assert_eq!(got.len(), want.len(), "{name}: frame count");
    for (i, (g, r)) in got.iter().zip(want).enumerate() {
        assert_eq!((g.width, g.height), (w, h), "{name}: frame {i} size");
        if g.native != *r {
            let diff = g.native.iter().zip(r).filter(|(a, b)| a != b).count();
            panic!(
                "{name}: frame {i} differs from the ffmpeg decode in {diff} of {} bytes",
                r.len()
            );
        }
    }
}

/// CPU RGB of a reference frame (planar yuv420p / yuv420p10le), nearest chroma, with the crate's CPU formula.
fn cpu_rgb(frame: &[u8], w: u32, h: u32, bit_depth: u32, c: &YuvToRgb) -> Vec<[u8; 3]> {
    let (w, h) = (w as usize, h as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let sample = |i: usize| -> f32 {
        if bit_depth > 8 {
            f32::from(u16::from_le_bytes([frame[2 * i], frame[2 * i + 1]]))
        } else {
            f32::from(frame[i])
        }
    };
    let mut out = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            let ci = (y / 2) * cw + x / 2;
            out.push(c.apply(
                sample(y * w + x),
                sample(w * h + ci),
                sample(w * h + cw * ch + ci),
            ));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// Tests that run everywhere

#[test]
fn no_gpu_gives_typed_errors() {
    // Must not panic, whatever the machine.
    let available = nvdec::is_available();
    assert_eq!(available, nvdec::unavailable_reason().is_none());
    let present = cuda::driver_present();
    let ctx = GpuContext::new(0);
    if !present {
        assert_eq!(cuda::device_count(), 0);
        match ctx {
            Err(Error::GpuUnavailable(why)) => assert!(why.contains("libcuda"), "{why}"),
            other => panic!("expected GpuUnavailable without a driver, got {other:?}"),
        }
        assert!(!available, "libnvcuvid cannot load without libcuda");
    } else if let Err(e) = ctx {
        assert!(
            matches!(e, Error::GpuUnavailable(_) | Error::Cuda { .. }),
            "{e}"
        );
    }
    // NVRTC discovery must not panic either.
    let _ = cuda::nvrtc_library();
}

#[test]
fn fixtures_can_be_generated() {
    if std::env::var_os("VIDLOADER_FIXTURES").is_none() && !ffmpeg_cli_available() {
        eprintln!("skipped: no ffmpeg CLI");
        return;
    }
    for f in ALL {
        let Some(l) = load(f) else {
            if std::env::var_os("VIDLOADER_FIXTURES").is_some() {
                // `load` has already said "skipped: ..." (or failed under VIDLOADER_REQUIRE_GPU=1).
                continue;
            }
            panic!("cannot make {}", f.name);
        };
        assert!(!l.stream.is_empty());
        if f.codec == NvCodec::H264 {
            let aus = h264_access_units(&l.stream);
            assert_eq!(aus.len(), f.frames as usize, "{}: access units", f.name);
            assert!(is_idr_au(aus[0]));
        }
    }
    eprintln!("fixtures in {}", fixture_dir().display());
}

// ---------------------------------------------------------------------------------------------------------------
// GPU tests

#[test]
fn caps_and_stats_capability() {
    let Some(gpu) = gpu() else { return };
    let caps = nvdec::decoder_caps(&gpu, NvCodec::H264, ChromaFormat::Yuv420, 8).expect("caps");
    eprintln!("{} H.264 8-bit: {caps:?}", gpu.name());
    assert!(caps.supported && caps.supports_output(SurfaceFormat::Nv12));
    for (codec, bd) in [
        (NvCodec::Hevc, 10),
        (NvCodec::Av1, 8),
        (NvCodec::H264, 10),
        (NvCodec::Vp9, 10),
    ] {
        let c = nvdec::decoder_caps(&gpu, codec, ChromaFormat::Yuv420, bd).expect("caps");
        eprintln!(
            "{codec:?} {bd}-bit: supported {} max {}x{}",
            c.supported, c.max_width, c.max_height
        );
    }
    assert!(matches!(
        nvdec::decoder_caps(&gpu, NvCodec::H264, ChromaFormat::Yuv420, 7),
        Err(Error::InvalidArgument(_))
    ));
    eprintln!("kernels: {}", gpu.converter().expect("kernels").target());
}

#[test]
fn h264_chunks_native_bit_exact_and_rgb_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let Some(fx) = load(&H264) else { return };
    let mut h = Harness::new(&gpu, SessionOptions::new(NvCodec::H264));
    h.feed_chunks(&fx.stream, 4096);
    let fmt = h.session.format().expect("format").clone();
    assert_eq!((fmt.width(), fmt.height()), (320, 240));
    assert_eq!(fmt.surface_format, SurfaceFormat::Nv12);
    assert_eq!(fmt.bit_depth, 8);
    assert_frames_equal("h264", &h.out, &fx.frames, 320, 240);
    // Synthesised timestamps must come out increasing.
    assert!(h.out.windows(2).all(|w| w[0].timestamp < w[1].timestamp));

    // RGB (HWC and CHW, u8) of a few frames against the CPU formula, through a second decode.
    let conv = gpu.converter().unwrap();
    let mut h2 = Harness::new(&gpu, SessionOptions::new(NvCodec::H264));
    let mut checked = 0;
    let mut worst = 0i32;
    for c in fx
        .stream
        .chunks(4096)
        .map(Some)
        .chain(std::iter::once(None))
    {
        match c {
            Some(c) => h2.session.decode_untimed(c, false).unwrap(),
            None => h2.session.flush().unwrap(),
        }
        while let Some(f) = h2.session.next_frame() {
            let idx = checked;
            checked += 1;
            if idx % 7 != 0 {
                continue;
            }
            let m = h2.session.map(&f, &h2.stream).unwrap();
            let src = m.source().unwrap();
            let color = YuvToRgb::new(ColorMatrix::Bt601, ColorRange::Limited, 8);
            let want = cpu_rgb(&fx.frames[idx], 320, 240, 8, &color);
            for layout in [RgbLayout::Interleaved, RgbLayout::Planar] {
                let mut buf = gpu.alloc(320 * 240 * 3).unwrap();
                let mut dst =
                    DstImage::from_buffer(&mut buf, 0, layout, 320, 240, OutputDtype::U8).unwrap();
                conv.to_rgb(&src, &color, &mut dst, None, &h2.stream)
                    .unwrap();
                let got = buf.copy_to_host(&h2.stream).unwrap();
                for (p, w) in want.iter().enumerate() {
                    for ch in 0..3 {
                        let g = match layout {
                            RgbLayout::Interleaved => got[p * 3 + ch],
                            RgbLayout::Planar => got[ch * 320 * 240 + p],
                        };
                        worst = worst.max((i32::from(g) - i32::from(w[ch])).abs());
                    }
                }
            }
            drop(m);
            let status = h2.session.decode_status(f.picture_index);
            eprintln!("decode status of picture {}: {status:?}", f.picture_index);
        }
    }
    assert_eq!(checked, 60);
    assert!(
        worst <= 1,
        "GPU RGB differs from the CPU formula by {worst}"
    );
    eprintln!("h264 RGB: max difference to the CPU formula {worst}");
}

#[test]
fn h264_cropped_320x180_bit_exact() {
    let Some(gpu) = gpu() else { return };
    let Some(fx) = load(&H264_CROP) else { return };
    let mut h = Harness::new(&gpu, SessionOptions::new(NvCodec::H264));
    h.feed_chunks(&fx.stream, 4096);
    let fmt = h.session.format().unwrap();
    assert_eq!((fmt.coded_width, fmt.coded_height), (320, 192), "{fmt:?}");
    assert_frames_equal("h264 320x180", &h.out, &fx.frames, 320, 180);
}

#[test]
fn hevc10_native_bit_exact_and_rgb_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let Some(fx) = load(&HEVC10) else { return };
    let caps = nvdec::decoder_caps(&gpu, NvCodec::Hevc, ChromaFormat::Yuv420, 10).unwrap();
    if !caps.supported {
        eprintln!("skipped: this GPU has no HEVC 10-bit decode");
        return;
    }
    let mut h = Harness::new(&gpu, SessionOptions::new(NvCodec::Hevc));
    h.feed_chunks(&fx.stream, 4096);
    let fmt = h.session.format().unwrap().clone();
    assert_eq!(fmt.surface_format, SurfaceFormat::P016);
    assert_eq!(fmt.bit_depth, 10);
    assert_frames_equal("hevc10", &h.out, &fx.frames, 320, 180);

    // 10-bit RGB planar against the CPU formula, first frame.
    let mut h2 = Harness::new(&gpu, SessionOptions::new(NvCodec::Hevc));
    let conv = gpu.converter().unwrap();
    let color = YuvToRgb::new(ColorMatrix::Bt709, ColorRange::Limited, 10);
    let want = cpu_rgb(&fx.frames[0], 320, 180, 10, &color);
    let mut done = false;
    for c in fx.stream.chunks(4096) {
        h2.session.decode_untimed(c, false).unwrap();
        if let Some(f) = h2.session.next_frame() {
            let m = h2.session.map(&f, &h2.stream).unwrap();
            let src = m.source().unwrap();
            let mut buf = gpu.alloc(320 * 180 * 3).unwrap();
            let mut dst =
                DstImage::from_buffer(&mut buf, 0, RgbLayout::Planar, 320, 180, OutputDtype::U8)
                    .unwrap();
            conv.to_rgb(&src, &color, &mut dst, None, &h2.stream)
                .unwrap();
            let got = buf.copy_to_host(&h2.stream).unwrap();
            let plane = 320 * 180;
            let worst = (0..plane)
                .flat_map(|p| (0..3).map(move |c| (p, c)))
                .map(|(p, c)| (i32::from(got[c * plane + p]) - i32::from(want[p][c])).abs())
                .max()
                .unwrap();
            assert!(worst <= 1, "10-bit RGB differs by {worst}");
            done = true;
            break;
        }
    }
    assert!(done, "no frame came out");
}

/// The first SPS and PPS of an H.264 stream, with their start codes (an Annex-B "extradata").
fn h264_parameter_sets(data: &[u8]) -> Vec<u8> {
    let nals = nal_units(data);
    let mut out = Vec::new();
    let mut seen = [false; 2];
    for (k, &(start, p)) in nals.iter().enumerate() {
        let ty = data[p] & 0x1f;
        if (ty == 7 || ty == 8) && !seen[usize::from(ty - 7)] {
            seen[usize::from(ty - 7)] = true;
            let end = nals.get(k + 1).map_or(data.len(), |n| n.0);
            out.extend_from_slice(&data[start..end]);
        }
    }
    out
}

#[test]
fn start_stream_switches_mid_stream() {
    let Some(gpu) = gpu() else { return };
    let (Some(a), Some(b)) = (load(&H264_IPPP), load(&H264_CROP)) else {
        return;
    };
    let mut cfg = SessionOptions::new(NvCodec::H264);
    (cfg.max_width, cfg.max_height) = (320, 240);
    let mut h = Harness::new(&gpu, cfg);
    for au in h264_access_units(&a.stream).iter().take(10) {
        h.session.decode_untimed(au, true).unwrap();
        h.drain();
    }
    assert!(!h.out.is_empty());
    h.out.clear();
    // Abandon stream A mid-GOP; B comes with its parameter sets out of band (as from h264_mp4toannexb).
    h.session
        .start_stream(Some(h264_parameter_sets(&b.stream)))
        .unwrap();
    assert_eq!(h.session.queued_frames(), 0);
    h.feed_chunks(&b.stream, 4096);
    assert_frames_equal("after start_stream", &h.out, &b.frames, 320, 180);
    let stats = h.session.stats();
    eprintln!("start_stream: {stats:?}");
    assert_eq!(
        stats.decoders_created, 1,
        "a smaller stream must reuse the decoder"
    );
}

#[test]
fn sei_type5_on_first_frame() {
    let Some(gpu) = gpu() else { return };
    let Some(fx) = load(&H264) else { return };
    let mut cfg = SessionOptions::new(NvCodec::H264);
    cfg.extract_sei = true;
    let mut h = Harness::new(&gpu, cfg);
    h.feed_chunks(&fx.stream, 4096);
    assert_eq!(h.out.len(), 60);
    let first = &h.out[0].sei;
    let n5 = first.iter().filter(|m| m.sei_type == 5).count();
    eprintln!(
        "first frame SEI: {:?}",
        first
            .iter()
            .map(|m| (m.sei_type, m.payload.len()))
            .collect::<Vec<_>>()
    );
    assert!(
        n5 >= 1,
        "no user-data-unregistered SEI on the first x264 frame"
    );
    // x264's SEI carries its version string after the 16-byte UUID.
    let m = first.iter().find(|m| m.sei_type == 5).unwrap();
    assert!(String::from_utf8_lossy(&m.payload[16..]).contains("x264"));
}

#[test]
fn low_latency_access_units_with_pts() {
    let Some(gpu) = gpu() else { return };
    let Some(fx) = load(&H264) else { return };
    let aus = h264_access_units(&fx.stream);
    let mut cfg = SessionOptions::new(NvCodec::H264);
    cfg.latency = LatencyMode::Low;
    cfg.clock_rate = 30;
    let mut h = Harness::new(&gpu, cfg);
    let mut first_out = None;
    for (i, au) in aus.iter().enumerate() {
        // Increasing "pts" in decode order: the parser hands them back in display order (nvdec.md 5.4).
        h.session.decode(au, i as i64, true).unwrap();
        h.drain();
        if first_out.is_none() && !h.out.is_empty() {
            first_out = Some(i);
        }
    }
    h.session.flush().unwrap();
    h.drain();
    eprintln!("low latency: first frame out after packet {first_out:?}");
    assert!(first_out.unwrap() <= 2, "{first_out:?}");
    assert_frames_equal("h264 low", &h.out, &fx.frames, 320, 240);
    let ts: Vec<i64> = h.out.iter().map(|d| d.timestamp).collect();
    assert_eq!(ts, (0..60).collect::<Vec<i64>>());
}

#[test]
fn zero_latency_ippp_one_frame_per_packet() {
    let Some(gpu) = gpu() else { return };
    let Some(fx) = load(&H264_IPPP) else { return };
    let aus = h264_access_units(&fx.stream);
    let mut cfg = SessionOptions::new(NvCodec::H264);
    cfg.latency = LatencyMode::Zero;
    let mut h = Harness::new(&gpu, cfg);
    for (i, au) in aus.iter().enumerate() {
        h.session.decode(au, 1000 + i as i64, true).unwrap();
        assert_eq!(h.session.queued_frames(), 1, "packet {i}");
        h.drain();
    }
    h.session.flush().unwrap();
    h.drain();
    assert_frames_equal("h264 zero", &h.out, &fx.frames, 320, 240);
    assert_eq!(h.out[5].timestamp, 1005);
}

#[test]
fn reset_then_continue_at_second_idr() {
    let Some(gpu) = gpu() else { return };
    let Some(fx) = load(&H264) else { return };
    let aus = h264_access_units(&fx.stream);
    let k = (1..aus.len())
        .find(|&i| is_idr_au(aus[i]))
        .expect("second IDR");
    let mut h = Harness::new(&gpu, SessionOptions::new(NvCodec::H264));
    // Decode into the second GOP, then "seek" back to its IDR.
    for au in &aus[..(k + 10).min(aus.len())] {
        h.session.decode_untimed(au, true).unwrap();
        h.drain();
    }
    h.session.reset().unwrap();
    assert_eq!(h.session.queued_frames(), 0);
    h.out.clear();
    for au in &aus[k..] {
        h.session.decode_untimed(au, true).unwrap();
        h.drain();
    }
    h.session.flush().unwrap();
    h.drain();
    assert_frames_equal("h264 after reset", &h.out, &fx.frames[k..], 320, 240);
}

/// Decodes `parts` one after the other in one session (flushing between them when `flush_between`), checking
/// every frame; returns the session's counters.
fn splice(
    parts: &[&Fixture],
    max: (u32, u32),
    flush_between: bool,
) -> Option<vidloader::nvdec::SessionStats> {
    let gpu = gpu()?;
    let mut loaded = Vec::new();
    for p in parts {
        loaded.push(load(p)?);
    }
    let mut cfg = SessionOptions::new(NvCodec::H264);
    (cfg.max_width, cfg.max_height) = max;
    let mut h = Harness::new(&gpu, cfg);
    if flush_between {
        for l in &loaded {
            h.feed_chunks(&l.stream, 4096);
        }
    } else {
        let data: Vec<u8> = loaded
            .iter()
            .flat_map(|l| l.stream.iter().copied())
            .collect();
        h.feed_chunks(&data, 4096);
    }
    let mut rest: &[Decoded] = &h.out;
    for (p, l) in parts.iter().zip(&loaded) {
        assert!(rest.len() >= l.frames.len(), "{}: too few frames", p.name);
        let (now, later) = rest.split_at(l.frames.len());
        assert_frames_equal(p.name, now, &l.frames, p.width, p.height);
        rest = later;
    }
    assert!(rest.is_empty(), "{} extra frames", rest.len());
    let stats = h.session.stats();
    eprintln!("splice {max:?} flush {flush_between}: {stats:?}");
    Some(stats)
}

#[test]
fn splice_with_reconfigure() {
    // 320x240, then 320x180 (coded 320x192), then 320x240 again: within the creation size, so reconfigured.
    let Some(s) = splice(&[&H264_IPPP, &H264_CROP, &H264_IPPP], (320, 240), true) else {
        return;
    };
    assert_eq!(s.decoders_created, 1);
    assert_eq!(s.reconfigurations, 2);
}

/// Sessions that recycle decoders: the second takes the decoder the first parked (no `cuvidCreateDecoder`),
/// reconfigures it for a smaller stream and decodes that exactly.
#[test]
fn recycled_decoder_serves_the_next_session() {
    let Some(gpu) = gpu() else { return };
    let (Some(a), Some(b)) = (load(&H264_IPPP), load(&H264_CROP)) else {
        return;
    };
    let mut cfg = SessionOptions::new(NvCodec::H264);
    cfg.recycle_decoders = true;
    (cfg.max_width, cfg.max_height) = (320, 240);
    // Only this test's sessions recycle, so the count is this test's alone.
    let before = vidloader::nvdec::idle_decoders();
    {
        let mut h = Harness::new(&gpu, cfg.clone());
        h.feed_chunks(&a.stream, 4096);
        assert_frames_equal("first session", &h.out, &a.frames, 320, 240);
        assert_eq!(h.session.stats().decoders_created, 1);
    }
    assert_eq!(vidloader::nvdec::idle_decoders(), before + 1);
    let mut h = Harness::new(&gpu, cfg);
    h.feed_chunks(&b.stream, 4096);
    assert_frames_equal("recycled decoder", &h.out, &b.frames, 320, 180);
    let s = h.session.stats();
    assert_eq!((s.decoders_created, s.decoders_recycled), (0, 1), "{s:?}");
    assert_eq!(vidloader::nvdec::idle_decoders(), before);
}

#[test]
fn splice_with_recreate() {
    // Small first, then larger than the first stream's size with no max given: a new decoder.
    let Some(s) = splice(&[&H264_CROP, &H264_IPPP], (0, 0), true) else {
        return;
    };
    assert_eq!(s.decoders_created, 2);
}

#[test]
fn splice_without_flush() {
    // Sequence changes in the middle of the byte stream; frames of the old sequence may still be queued.
    splice(&[&H264_IPPP, &H264_CROP, &H264_IPPP], (320, 240), false);
}

/// torch's bilinear (align_corners = false) on the CPU, on u8 RGB planes.
fn cpu_resize(rgb: &[[u8; 3]], w: usize, h: usize, ow: usize, oh: usize) -> Vec<[f32; 3]> {
    let idx = |dst: usize, in_size: usize, out_size: usize| {
        let scale = in_size as f32 / out_size as f32;
        let src = (scale * (dst as f32 + 0.5) - 0.5).max(0.0);
        let i0 = (src as usize).min(in_size - 1);
        let i1 = i0 + usize::from(i0 < in_size - 1);
        let l1 = src - i0 as f32;
        (i0, i1, 1.0 - l1, l1)
    };
    let mut out = Vec::with_capacity(ow * oh);
    for y in 0..oh {
        let (y0, y1, wy0, wy1) = idx(y, h, oh);
        for x in 0..ow {
            let (x0, x1, wx0, wx1) = idx(x, w, ow);
            let mut px = [0f32; 3];
            for (c, v) in px.iter_mut().enumerate() {
                let p = |yy: usize, xx: usize| f32::from(rgb[yy * w + xx][c]);
                let top = wx0 * p(y0, x0) + wx1 * p(y0, x1);
                let bot = wx0 * p(y1, x0) + wx1 * p(y1, x1);
                *v = wy0 * top + wy1 * bot;
            }
            out.push(px);
        }
    }
    out
}

#[test]
fn resize_normalize_dtypes_match_cpu_model() {
    let Some(gpu) = gpu() else { return };
    let Some(fx) = load(&H264) else { return };
    let conv = gpu.converter().unwrap();
    let mut h = Harness::new(&gpu, SessionOptions::new(NvCodec::H264));
    let color = YuvToRgb::new(ColorMatrix::Bt709, ColorRange::Limited, 8);
    let rgb = cpu_rgb(&fx.frames[0], 320, 240, 8, &color);
    let (ow, oh) = (224usize, 168usize);
    let want = cpu_resize(&rgb, 320, 240, ow, oh);
    let norm = Normalize::imagenet();
    for c in fx.stream.chunks(4096) {
        h.session.decode_untimed(c, false).unwrap();
        let Some(f) = h.session.next_frame() else {
            continue;
        };
        let m = h.session.map(&f, &h.stream).unwrap();
        let src = m.source().unwrap();
        for dtype in [
            OutputDtype::U8,
            OutputDtype::F32,
            OutputDtype::F16,
            OutputDtype::Bf16,
        ] {
            let plane = ow * oh;
            let mut buf = gpu.alloc(3 * plane * dtype.size()).unwrap();
            let mut dst =
                DstImage::from_buffer(&mut buf, 0, RgbLayout::Planar, ow as u32, oh as u32, dtype)
                    .unwrap();
            let n = if dtype == OutputDtype::U8 {
                None
            } else {
                Some(&norm)
            };
            conv.to_rgb(&src, &color, &mut dst, n, &h.stream).unwrap();
            let got = buf.copy_to_host(&h.stream).unwrap();
            let mut worst = 0f32;
            for p in 0..plane {
                for ch in 0..3 {
                    let i = ch * plane + p;
                    let (g, w) = match dtype {
                        OutputDtype::U8 => (
                            f32::from(got[i]),
                            (want[p][ch] + 0.5).floor().clamp(0.0, 255.0),
                        ),
                        _ => {
                            let g = match dtype {
                                OutputDtype::F32 => {
                                    f32::from_le_bytes(got[4 * i..4 * i + 4].try_into().unwrap())
                                }
                                OutputDtype::F16 => {
                                    f16_to_f32(u16::from_le_bytes([got[2 * i], got[2 * i + 1]]))
                                }
                                _ => f32::from_bits(
                                    u32::from(u16::from_le_bytes([got[2 * i], got[2 * i + 1]]))
                                        << 16,
                                ),
                            };
                            (g, (want[p][ch] * norm.scale - norm.mean[ch]) / norm.std[ch])
                        }
                    };
                    worst = worst.max((g - w).abs());
                }
            }
            let tol = match dtype {
                OutputDtype::U8 => 1.0,
                OutputDtype::F32 => 1e-4,
                OutputDtype::F16 => 4e-3,
                OutputDtype::Bf16 => 3e-2,
            };
            eprintln!("resize {dtype:?}: max error {worst}");
            assert!(worst <= tol, "{dtype:?}: max error {worst}");
        }
        // Same-size float conversion without normalisation holds the integer RGB values.
        let mut buf = gpu.alloc(320 * 240 * 3 * 4).unwrap();
        let mut dst = DstImage::from_buffer(
            &mut buf,
            0,
            RgbLayout::Interleaved,
            320,
            240,
            OutputDtype::F32,
        )
        .unwrap();
        conv.to_rgb(&src, &color, &mut dst, None, &h.stream)
            .unwrap();
        let got = buf.copy_to_host(&h.stream).unwrap();
        for (p, w) in rgb.iter().enumerate() {
            for ch in 0..3 {
                let i = p * 3 + ch;
                let g = f32::from_le_bytes(got[4 * i..4 * i + 4].try_into().unwrap());
                assert!(
                    (g - f32::from(w[ch])).abs() <= 1.0,
                    "pixel {p} channel {ch}: {g} vs {}",
                    w[ch]
                );
            }
        }
        // Normalising into u8 is refused.
        let mut small = gpu.alloc(3 * 16 * 16).unwrap();
        let mut d8 =
            DstImage::from_buffer(&mut small, 0, RgbLayout::Planar, 16, 16, OutputDtype::U8)
                .unwrap();
        assert!(matches!(
            conv.to_rgb(&src, &color, &mut d8, Some(&norm), &h.stream),
            Err(Error::InvalidArgument(_))
        ));
        // Converting a mapped frame on another stream is refused.
        let other = GpuStream::new(&gpu).unwrap();
        let mut d8 =
            DstImage::from_buffer(&mut small, 0, RgbLayout::Planar, 16, 16, OutputDtype::U8)
                .unwrap();
        assert!(matches!(
            conv.to_rgb(&src, &color, &mut d8, None, &other),
            Err(Error::InvalidArgument(_))
        ));
        return;
    }
    panic!("no frame decoded");
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let man = f32::from(h & 0x3ff);
    match exp {
        0 => sign * man * 2f32.powi(-24),
        31 => f32::NAN,
        _ => sign * (1.0 + man / 1024.0) * 2f32.powi(exp - 15),
    }
}

#[test]
fn writes_into_a_torch_batch_slot() {
    let Some(gpu) = gpu() else { return };
    if !tch::Cuda::is_available() {
        skip_without_gpu("tch sees no CUDA");
        return;
    }
    let Some(fx) = load(&H264) else { return };
    let conv = gpu.converter().unwrap();
    let mut h = Harness::new(&gpu, SessionOptions::new(NvCodec::H264));
    let color = YuvToRgb::new(ColorMatrix::Bt601, ColorRange::Limited, 8);
    let batch = tch::Tensor::zeros([4, 3, 240, 320], (tch::Kind::Uint8, tch::Device::Cuda(0)));
    let native = tch::Tensor::zeros(
        [4, 320 * 240 * 3 / 2],
        (tch::Kind::Uint8, tch::Device::Cuda(0)),
    );
    tch::Cuda::synchronize(0);
    let mut slot = 0;
    for c in fx.stream.chunks(4096) {
        h.session.decode_untimed(c, false).unwrap();
        while let Some(f) = h.session.next_frame() {
            if slot < 4 {
                let m = h.session.map(&f, &h.stream).unwrap();
                let src = m.source().unwrap();
                let mut t = batch.get(slot);
                conv.to_rgb(
                    &src,
                    &color,
                    &mut DstImage::from_tensor(&mut t, RgbLayout::Planar).unwrap(),
                    None,
                    &h.stream,
                )
                .unwrap();
                let mut n = native.get(slot);
                conv.to_native(&src, &mut DstBytes::from_tensor(&mut n).unwrap(), &h.stream)
                    .unwrap();
                drop(m); // waits for the stream
            }
            slot += 1;
        }
    }
    let host: Vec<u8> = Vec::try_from(native.to_device(tch::Device::Cpu).flatten(0, -1)).unwrap();
    for i in 0..4 {
        assert_eq!(
            &host[i * 115200..(i + 1) * 115200],
            &fx.frames[i][..],
            "native slot {i}"
        );
    }
    let rgb: Vec<u8> =
        Vec::try_from(batch.get(3).to_device(tch::Device::Cpu).flatten(0, -1)).unwrap();
    let want = cpu_rgb(&fx.frames[3], 320, 240, 8, &color);
    let plane = 320 * 240;
    let worst = (0..plane)
        .flat_map(|p| (0..3).map(move |c| (p, c)))
        .map(|(p, c)| (i32::from(rgb[c * plane + p]) - i32::from(want[p][c])).abs())
        .max()
        .unwrap();
    assert!(worst <= 1, "tensor slot RGB differs by {worst}");
}

#[test]
fn decode_stats_are_capability_gated() {
    let Some(gpu) = gpu() else { return };
    let Some(fx) = load(&H264_IPPP) else { return };
    let mut h = Harness::new(&gpu, SessionOptions::new(NvCodec::H264));
    assert!(!h.session.decode_stats_supported(), "no sequence yet");
    h.session.decode_untimed(&fx.stream, false).unwrap();
    let f = h.session.next_frame().expect("a frame");
    eprintln!(
        "decode stats supported: {}",
        h.session.decode_stats_supported()
    );
    assert!(matches!(
        h.session.decode_stats(&f),
        Err(Error::Unsupported(_))
    ));
}

#[test]
fn wrong_codec_is_unsupported_not_a_panic() {
    let Some(gpu) = gpu() else { return };
    let Some(fx) = load(&H264) else { return };
    // H.264 data into an HEVC parser: no sequence is ever found; nothing must panic and no frame comes out.
    let mut h = Harness::new(&gpu, SessionOptions::new(NvCodec::Hevc));
    for c in fx.stream.chunks(4096) {
        let _ = h.session.decode_untimed(c, false);
    }
    let _ = h.session.flush();
    assert_eq!(h.session.queued_frames(), 0);
}
