//! The packet-level NVDEC decoder: every frame of a stream in display order with its pts, `flush` at the end,
//! latency modes, SEI messages, reconfiguration across streams, decode statistics reported as unsupported where
//! the driver has none, and a typed error where there is no GPU (that test runs everywhere).

mod common;

use common::*;
use vidloader::nvdec::LatencyMode;
use vidloader::{Backend, DecoderOptions, Demuxer, Error, SimpleDecoder};
use vidloader::{DecodedFrame, PacketDecoder, PacketDecoderOptions};

/// Decodes all of `name` packet by packet; returns the frames and how many came out of each `decode` call.
fn decode_all(name: &str, opts: PacketDecoderOptions) -> (Vec<DecodedFrame>, Vec<usize>) {
    let mut demuxer = Demuxer::open(fixture(name)).unwrap();
    let mut dec = PacketDecoder::new(&mut demuxer, opts).unwrap();
    let (mut frames, mut per_call) = (Vec::new(), Vec::new());
    while let Some(p) = demuxer.read_packet().unwrap() {
        let out = dec.decode(&p).unwrap();
        per_call.push(out.len());
        frames.extend(out);
    }
    frames.extend(dec.flush().unwrap());
    (frames, per_call)
}

/// Checks frames against the ffmpeg CLI's decode: count, pts in presentation order, native bytes.
fn check_against_ffmpeg(name: &str, frames: &[DecodedFrame]) {
    let path = fixture(name);
    let cpu = SimpleDecoder::open(&path, DecoderOptions::default().backend(Backend::Cpu)).unwrap();
    let info = cpu.stream_metadata();
    let fb = planar_frame_bytes(info.width as usize, info.height as usize, 1, 1, 1);
    let reference = reference_frames(&path, &info.pixel_format, fb);
    assert_eq!(frames.len(), reference.len(), "{name}: frame count");
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(
            f.pts,
            cpu.scanned_stream_metadata().pts(i),
            "{name}: pts of frame {i}"
        );
        assert!(
            tensor_bytes(&f.frame) == reference[i],
            "{name}: frame {i} differs from ffmpeg"
        );
    }
}

#[test]
fn without_a_gpu_it_is_a_typed_error() {
    if vidloader::nvdec::is_available() && tch::Cuda::is_available() {
        eprintln!("skipped: this machine has an NVDEC GPU");
        return;
    }
    let mut demuxer = Demuxer::open(fixture("h264_b3_gop30.mp4")).unwrap();
    match PacketDecoder::new(&mut demuxer, PacketDecoderOptions::default()) {
        Err(Error::GpuUnavailable(_)) => {}
        other => panic!("expected GpuUnavailable, got {other:?}"),
    }
}

#[test]
fn every_frame_in_display_order_then_flush() {
    let Some(_gpu) = gpu() else { return };
    for name in [
        "h264_b3_gop30.mp4",
        "hevc8_b.mp4",
        "h264_ts.ts",
        "vp9_odd_321x241.webm",
    ] {
        let (frames, _) = decode_all(name, PacketDecoderOptions::default());
        check_against_ffmpeg(name, &frames);
        assert!(frames[0].key_frame, "{name}: the first frame is a keyframe");
    }
}

#[test]
fn zero_latency_gives_one_frame_per_packet_without_b_frames() {
    let Some(_gpu) = gpu() else { return };
    let opts = PacketDecoderOptions {
        latency: LatencyMode::Zero,
        ..Default::default()
    };
    let (frames, per_call) = decode_all("h264_nob_gop30.mp4", opts);
    assert!(per_call.iter().all(|&n| n == 1), "{per_call:?}");
    check_against_ffmpeg("h264_nob_gop30.mp4", &frames);
    // Low latency with B-frames: still every frame, in display order, with only the reorder delay.
    let opts = PacketDecoderOptions {
        latency: LatencyMode::Low,
        ..Default::default()
    };
    let (frames, per_call) = decode_all("h264_b3_gop30.mp4", opts);
    let first = per_call.iter().position(|&n| n > 0).unwrap();
    assert!(first <= 4, "first frame after packet {first}");
    check_against_ffmpeg("h264_b3_gop30.mp4", &frames);
}

#[test]
fn sei_user_data_on_the_first_x264_frame() {
    let Some(_gpu) = gpu() else { return };
    let opts = PacketDecoderOptions {
        extract_sei: true,
        ..Default::default()
    };
    let (frames, _) = decode_all("h264_b3_gop30.mp4", opts);
    let sei = &frames[0].sei;
    let m = sei
        .iter()
        .find(|m| m.sei_type == 5)
        .unwrap_or_else(|| panic!("no type-5 SEI on the first frame: {sei:?}"));
    assert!(String::from_utf8_lossy(&m.payload[16..]).contains("x264"));
}

#[test]
fn reconfigure_to_another_size_and_decode_statistics() {
    let Some(_gpu) = gpu() else { return };
    let opts = PacketDecoderOptions {
        max_width: 1920,
        max_height: 1080,
        ..Default::default()
    };
    let mut frames_per_file = Vec::new();
    let mut demuxer = Demuxer::open(fixture("h264_nob_gop30.mp4")).unwrap();
    let mut dec = PacketDecoder::new(&mut demuxer, opts).unwrap();
    for name in [
        "h264_nob_gop30.mp4",
        "h264_odd_642x362.mp4",
        "h264_b3_gop30.mp4",
    ] {
        let mut demuxer = Demuxer::open(fixture(name)).unwrap();
        dec.reconfigure(&mut demuxer).unwrap();
        let mut frames = Vec::new();
        while let Some(p) = demuxer.read_packet().unwrap() {
            frames.extend(dec.decode(&p).unwrap());
        }
        frames.extend(dec.flush().unwrap());
        check_against_ffmpeg(name, &frames);
        frames_per_file.push(frames.len());
    }
    let stats = dec.stats();
    eprintln!("session stats: {stats:?}");
    assert_eq!(stats.decoders_created, 1, "{stats:?}");
    assert!(stats.reconfigurations >= 1, "{stats:?}");
    if !dec.decode_stats_supported() {
        assert!(matches!(
            dec.last_decode_stats(),
            Err(Error::Unsupported(_))
        ));
    }
}
