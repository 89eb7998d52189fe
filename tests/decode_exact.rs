//! Every frame the CPU decoders return equals what the ffmpeg CLI decodes: bit-exact for native planes, within
//! one level for RGB against an independent reference conversion. Random access equals sequential decoding.

mod common;

use common::*;
use vidloader::{Backend, ColorType, DecoderOptions, SimpleDecoder};

/// Chroma shift, bit depth, matrix and range of a fixture's decoded format.
fn format_of(dec: &SimpleDecoder) -> (u32, u32, u32) {
    let info = dec.stream_metadata();
    let (sx, sy) = match info.chroma.as_str() {
        "444" => (0, 0),
        "422" => (1, 0),
        _ => (1, 1),
    };
    (sx, sy, info.bit_depth)
}

fn check_fixture(name: &str) {
    let path = fixture(name);
    let opts = DecoderOptions::default().backend(Backend::Cpu).threads(2);
    let mut dec = SimpleDecoder::open(&path, opts.clone().color(ColorType::Native)).unwrap();
    let info = dec.stream_metadata().clone();
    let (w, h) = (info.width as usize, info.height as usize);
    let (sx, sy, depth) = format_of(&dec);
    let bps = if depth > 8 { 2 } else { 1 };
    let fb = planar_frame_bytes(w, h, sx, sy, bps);
    let reference = reference_frames(&path, &info.pixel_format, fb);

    // Exact frame count from the index.
    assert_eq!(dec.len(), reference.len(), "{name}: frame count");

    // Sequential batches of 7.
    let mut seen = 0;
    loop {
        let batch = dec.get_batch_frames(7).unwrap();
        if batch.is_empty() {
            break;
        }
        assert_eq!(batch.frames.size(), vec![batch.len() as i64, fb as i64]);
        let bytes = tensor_bytes(&batch.frames);
        for (k, &i) in batch.indices.iter().enumerate() {
            assert_eq!(i, seen + k);
            assert!(
                bytes[k * fb..(k + 1) * fb] == reference[i][..],
                "{name}: sequential frame {i} differs"
            );
        }
        seen += batch.len();
    }
    assert_eq!(
        seen,
        reference.len(),
        "{name}: sequential read stopped early"
    );
    assert!(
        dec.get_batch_frames(3).unwrap().is_empty(),
        "{name}: past the end must be empty"
    );

    // Random access in the caller's order, with duplicates, on a fresh decoder and on the used one.
    let n = reference.len() as i64;
    let mut wanted: Vec<i64> = vec![n - 1, 0, n / 2, 1, n / 2, n - 2, n / 3, 2 * n / 3, 0];
    let mut x: u64 = 12345;
    for _ in 0..10 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        wanted.push(((x >> 33) % n as u64) as i64);
    }
    for fresh in [true, false] {
        let mut d = if fresh {
            SimpleDecoder::open(&path, opts.clone().color(ColorType::Native)).unwrap()
        } else {
            dec.get(0).map(|_| ()).unwrap();
            std::mem::replace(
                &mut dec,
                SimpleDecoder::open(&path, opts.clone().color(ColorType::Native)).unwrap(),
            )
        };
        let batch = d.get_batch_frames_by_index(&wanted).unwrap();
        let bytes = tensor_bytes(&batch.frames);
        for (k, &i) in wanted.iter().enumerate() {
            assert_eq!(batch.indices[k], i as usize);
            assert!(
                bytes[k * fb..(k + 1) * fb] == reference[i as usize][..],
                "{name}: random frame {i} (slot {k}) differs"
            );
        }
    }

    // Slices with a step.
    let batch = dec.get_range(1, reference.len(), 4).unwrap();
    let bytes = tensor_bytes(&batch.frames);
    for (k, i) in (1..reference.len()).step_by(4).enumerate() {
        assert!(
            bytes[k * fb..(k + 1) * fb] == reference[i][..],
            "{name}: slice frame {i} differs"
        );
    }

    // RGB and RGB planar against the reference conversion of the reference planes.
    let matrix = match info.color_matrix {
        vidloader::ColorMatrix::Bt709 => "bt709",
        vidloader::ColorMatrix::Bt2020 => "bt2020",
        vidloader::ColorMatrix::Bt601 => "bt601",
    };
    let full = info.color_range == vidloader::ColorRange::Full;
    let picks: Vec<i64> = vec![0, n / 2, n - 1];
    let mut rgb = SimpleDecoder::open(&path, opts.clone().color(ColorType::Rgb)).unwrap();
    let mut rgbp = SimpleDecoder::open(&path, opts.clone().color(ColorType::Rgbp)).unwrap();
    let a = rgb.get_batch_frames_by_index(&picks).unwrap();
    let b = rgbp.get_batch_frames_by_index(&picks).unwrap();
    assert_eq!(a.frames.size(), vec![3, h as i64, w as i64, 3]);
    assert_eq!(b.frames.size(), vec![3, 3, h as i64, w as i64]);
    let a_bytes = tensor_bytes(&a.frames);
    let b_as_hwc = tensor_bytes(&b.frames.permute([0, 2, 3, 1]));
    assert!(a_bytes == b_as_hwc, "{name}: RGB and RGBP disagree");
    for (k, &i) in picks.iter().enumerate() {
        let want = reference_rgb(&reference[i as usize], w, h, sx, sy, depth, matrix, full);
        let got = &a_bytes[k * w * h * 3..(k + 1) * w * h * 3];
        let d = max_abs_diff(got, &want);
        assert!(
            d <= 1,
            "{name}: RGB frame {i} differs from the reference conversion by {d}"
        );
    }
}

macro_rules! fixture_tests {
    ($($test:ident => $name:expr),* $(,)?) => { $( #[test] fn $test() { check_fixture($name); } )* };
}

fixture_tests! {
    h264_without_b_frames_gop30 => "h264_nob_gop30.mp4",
    h264_with_b_frames_gop30 => "h264_b3_gop30.mp4",
    h264_gop1_mkv => "h264_gop1.mkv",
    h264_gop250 => "h264_gop250.mp4",
    h264_open_gop => "h264_opengop.mkv",
    h264_odd_size_ntsc_rate => "h264_odd_642x362.mp4",
    h264_in_avi => "h264_b_in.avi",
    h264_full_range_bt709 => "h264_full_bt709.mp4",
    h264_yuv444 => "h264_444.mkv",
    h264_mpegts => "h264_ts.ts",
    h264_variable_frame_rate => "h264_vfr.mp4",
    hevc_8bit_b_frames => "hevc8_b.mp4",
    hevc_10bit_bt2020 => "hevc10.mkv",
    vp9_odd_size_webm => "vp9_odd_321x241.webm",
    mpeg4_part2_avi => "mpeg4.avi",
    mpeg4_part2_b_frames_mp4 => "mpeg4_b.mp4",
}
