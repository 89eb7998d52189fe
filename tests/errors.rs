//! Bad input gives a typed error: never a panic, a hang or a silent drop.

mod common;

use std::path::PathBuf;

use common::*;
use vidloader::{Backend, ColorType, DecoderOptions, Demuxer, Error, SimpleDecoder, Source};

fn scratch(name: &str) -> PathBuf {
    let dir = fixture_dir().join("scratch");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn cpu() -> DecoderOptions {
    DecoderOptions::default()
        .backend(Backend::Cpu)
        .threads(1)
        .color(ColorType::Native)
}

#[test]
fn missing_file_is_not_found() {
    let err = SimpleDecoder::open("/no/such/video.mp4", cpu()).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[test]
fn directory_is_an_open_error() {
    let err = Demuxer::open(fixture_dir()).unwrap_err();
    assert!(
        matches!(err, Error::Open { .. } | Error::NotFound { .. }),
        "{err:?}"
    );
}

#[test]
fn text_file_is_not_video() {
    let p = scratch("notes.mp4");
    std::fs::write(
        &p,
        "these are not the frames you are looking for\n".repeat(50),
    )
    .unwrap();
    let err = SimpleDecoder::open(&p, cpu()).unwrap_err();
    assert!(matches!(err, Error::NotVideo { .. }), "{err:?}");
}

#[test]
fn empty_file_and_empty_bytes_are_not_video() {
    let p = scratch("empty.mkv");
    std::fs::write(&p, b"").unwrap();
    assert!(matches!(
        SimpleDecoder::open(&p, cpu()).unwrap_err(),
        Error::NotVideo { .. }
    ));
    let err = Demuxer::open(Source::from_bytes(Vec::<u8>::new(), "empty.mp4")).unwrap_err();
    assert!(matches!(err, Error::NotVideo { .. }), "{err:?}");
}

#[test]
fn audio_only_file_is_not_video() {
    let p = scratch("tone.m4a");
    if !p.exists() {
        run(std::process::Command::new("ffmpeg")
            .args([
                "-y",
                "-loglevel",
                "error",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:duration=1",
                "-c:a",
                "aac",
            ])
            .arg(&p));
    }
    let err = SimpleDecoder::open(&p, cpu()).unwrap_err();
    assert!(matches!(err, Error::NotVideo { .. }), "{err:?}");
}

#[test]
fn truncated_mp4_without_index_is_corrupt() {
    // moov at the end (the default): cutting the file loses the index.
    let src = std::fs::read(fixture("h264_b3_gop30.mp4")).unwrap();
    let p = scratch("cut.mp4");
    std::fs::write(&p, &src[..src.len() / 2]).unwrap();
    let err = SimpleDecoder::open(&p, cpu()).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
}

#[test]
fn a_stream_without_parameter_sets_is_corrupt_not_a_zero_sized_video() {
    // The ffmpeg CLI finds no picture in it; opening it (demuxer, decoder, `info`) says why instead of reporting
    // a 0x0 video whose frames then fail one by one.
    let p = fixture("h264_no_parameter_sets.ts");
    // The cross-check needs the CLI (the GPU machine has none; its fixtures come made).
    if ffmpeg_cli_available() {
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "quiet", "-i"])
            .arg(&p)
            .args(["-f", "framemd5", "-"])
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count();
        assert_eq!(shown, 0, "the ffmpeg CLI decodes pictures from it");
    }
    let err = Demuxer::open(Source::from(p.clone())).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    let err = SimpleDecoder::open(&p, cpu()).unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { reason, .. } if reason.contains("no picture size")),
        "{err:?}"
    );
}

/// With one decoding thread, and with two (whose pictures a writer thread puts into the batch).
#[test]
fn truncated_mkv_decodes_what_is_there_or_reports_corruption() {
    let src = std::fs::read(fixture("h264_opengop.mkv")).unwrap();
    let p = scratch("cut.mkv");
    std::fs::write(&p, &src[..src.len() * 2 / 3]).unwrap();
    for threads in [1, 2] {
        match SimpleDecoder::open(&p, cpu().threads(threads)) {
            Ok(mut d) => {
                assert!(!d.is_empty() && d.len() < 90, "{} frames", d.len());
                let n = d.len();
                // Every frame the index promises can be decoded, or the failure is a typed error.
                match d.get_batch_frames(n) {
                    Ok(b) => assert_eq!(b.len(), n),
                    Err(e) => assert!(matches!(e, Error::Corrupt { .. }), "{e:?}"),
                }
            }
            Err(e) => assert!(matches!(e, Error::Corrupt { .. }), "{e:?}"),
        }
    }
}

#[test]
fn garbled_payload_does_not_panic() {
    let mut bytes = std::fs::read(fixture("h264_nob_gop30.mp4")).unwrap();
    // Overwrite a stretch in the middle of the media data with noise.
    let mid = bytes.len() / 2;
    let mut x: u32 = 7;
    for b in &mut bytes[mid..mid + 4000] {
        x = x.wrapping_mul(1103515245).wrapping_add(12345);
        *b = (x >> 16) as u8;
    }
    // With one decoding thread, and with two (whose pictures a writer thread puts into the batch).
    for threads in [1, 2] {
        let src = Source::from_bytes(bytes.clone(), "garbled.mp4");
        match SimpleDecoder::open(src, cpu().threads(threads)) {
            Ok(mut d) => {
                let n = d.len();
                let r = d.get_batch_frames(n);
                assert!(
                    r.is_ok() || matches!(r, Err(Error::Corrupt { .. })),
                    "{r:?}"
                );
            }
            Err(e) => assert!(
                matches!(e, Error::Corrupt { .. } | Error::NotVideo { .. }),
                "{e:?}"
            ),
        }
    }
}

#[test]
fn unknown_codec_is_unsupported() {
    // Rename the Matroska codec ID of an H.264 track to one no decoder knows (same length, so the file stays valid).
    let mut bytes = std::fs::read(fixture("h264_gop1.mkv")).unwrap();
    let needle = b"V_MPEG4/ISO/AVC";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("codec id in the file");
    bytes[at..at + needle.len()].copy_from_slice(b"V_VIDLOADER/XYZ");
    let p = scratch("unknown_codec.mkv");
    std::fs::write(&p, &bytes).unwrap();
    let err = SimpleDecoder::open(&p, cpu()).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
}

#[test]
fn index_out_of_range_is_an_error_not_a_drop() {
    let mut d = SimpleDecoder::open(fixture("h264_nob_gop30.mp4"), cpu()).unwrap();
    let n = d.len() as i64;
    for bad in [n, n + 100, -1] {
        let err = d.get_batch_frames_by_index(&[0, bad, 1]).unwrap_err();
        assert!(
            matches!(err, Error::OutOfRange { index, len } if index == bad && len == n as usize),
            "{err:?}"
        );
    }
    assert!(matches!(d.get(n).unwrap_err(), Error::OutOfRange { .. }));
    assert!(matches!(
        d.get_range(0, n as usize + 1, 1).unwrap_err(),
        Error::OutOfRange { .. }
    ));
    assert!(matches!(
        d.get_range(0, 4, 0).unwrap_err(),
        Error::InvalidArgument(_)
    ));
    assert!(matches!(
        d.seek_to_index(n as usize + 1).unwrap_err(),
        Error::OutOfRange { .. }
    ));
    assert!(matches!(
        d.index_from_time(1e6).unwrap_err(),
        Error::OutOfRange { .. }
    ));
    // The decoder still works after the errors.
    assert_eq!(d.get_batch_frames_by_index(&[n - 1, 0]).unwrap().len(), 2);
}

#[test]
fn nvdec_without_a_gpu_is_a_typed_error() {
    if std::path::Path::new("/dev/nvidia0").exists() {
        return; // a real GPU is present: covered by the GPU tests
    }
    let err = SimpleDecoder::open(
        fixture("h264_nob_gop30.mp4"),
        cpu().backend(Backend::Nvdec(0)),
    )
    .unwrap_err();
    assert!(matches!(err, Error::GpuUnavailable(_)), "{err:?}");
    // Auto falls back to the CPU and says so.
    let d =
        SimpleDecoder::open(fixture("h264_nob_gop30.mp4"), cpu().backend(Backend::Auto)).unwrap();
    assert_eq!(d.backend(), Backend::Cpu);
}

/// A GPU this machine lacks (GPU 7 on a machine of fewer, or the first one past the last) is `GpuUnavailable` from
/// every entry point that takes a device, on any machine: never a panic, and never a fallback to another GPU.
#[test]
fn a_gpu_that_does_not_exist_is_a_typed_error_everywhere() {
    use vidloader::cuda::{device_count, primary_context_active, GpuContext};
    use vidloader::{DataLoader, PacketDecoder, PacketDecoderOptions, VideoDataset};
    let missing = device_count().max(7);
    let unavailable = |r: Result<(), Error>, what: &str| match r {
        Err(Error::GpuUnavailable(_)) => {}
        other => panic!("{what} on missing GPU {missing}: expected GpuUnavailable, got {other:?}"),
    };
    let path = fixture("h264_nob_gop30.mp4");
    unavailable(GpuContext::new(missing).map(|_| ()), "GpuContext::new");
    unavailable(
        GpuContext::shared(missing).map(|_| ()),
        "GpuContext::shared",
    );
    unavailable(
        primary_context_active(missing).map(|_| ()),
        "primary_context_active",
    );
    unavailable(
        SimpleDecoder::open(&path, cpu().backend(Backend::Nvdec(missing))).map(|_| ()),
        "SimpleDecoder",
    );
    let mut demuxer = Demuxer::open(&path).unwrap();
    let opts = PacketDecoderOptions {
        gpu: missing,
        ..Default::default()
    };
    unavailable(
        PacketDecoder::new(&mut demuxer, opts).map(|_| ()),
        "PacketDecoder",
    );
    let ds = VideoDataset::from_list(vec![(path.clone(), 0)]);
    unavailable(
        DataLoader::builder(ds)
            .device(tch::Device::Cuda(missing))
            .warnings(false)
            .build()
            .map(|_| ()),
        "DataLoader",
    );
    // `AutoOn` a missing GPU decodes on the CPU (it never picks another GPU).
    let d = SimpleDecoder::open(&path, cpu().backend(Backend::AutoOn(missing))).unwrap();
    assert_eq!(d.backend(), Backend::Cpu);
}
