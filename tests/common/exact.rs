//! The exactness check shared by the CPU and NVDEC test suites.

use super::*;
use vidloader::{Backend, ColorType, DecoderOptions, SimpleDecoder};

/// Chroma shift, bit depth, matrix and range of a fixture's decoded format.
pub fn format_of(dec: &SimpleDecoder) -> (u32, u32, u32) {
    let info = dec.stream_metadata();
    let (sx, sy) = match info.chroma.as_str() {
        "444" => (0, 0),
        "422" => (1, 0),
        _ => (1, 1),
    };
    (sx, sy, info.bit_depth)
}

/// Codecs whose standard allows decoders to differ in the inverse DCT.
pub const IDCT_MISMATCH_CODECS: &[&str] = &["mpeg4", "mpeg2video", "mpeg1video", "vc1", "mjpeg"];

/// Peak signal-to-noise ratio of two 8-bit frames in dB (infinite when equal).
pub fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let se: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    if se == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (255.0f64.powi(2) * a.len() as f64 / se).log10()
}

/// Frame `i` as decoded (`got`) against the ffmpeg CLI's frame: equal when `exact`, else at least 40 dB PSNR.
/// On a mismatch the message says how far off it is and which reference frame it resembles most.
pub fn check_frame(
    name: &str,
    what: &str,
    i: usize,
    got: &[u8],
    reference: &[Vec<u8>],
    exact: bool,
) {
    let want = &reference[i];
    if got == &want[..] {
        return;
    }
    let p = psnr(got, want);
    if !exact && p >= 40.0 {
        return;
    }
    let (best, best_p) = reference
        .iter()
        .enumerate()
        .map(|(j, r)| (j, psnr(got, r)))
        .fold((i, p), |a, b| if b.1 > a.1 { b } else { a });
    panic!(
        "{name}: {what} frame {i} differs from ffmpeg: max diff {}, PSNR {p:.1} dB; closest reference frame {best} \
         ({best_p:.1} dB)",
        max_abs_diff(got, want)
    );
}

/// Checks every frame of fixture `name` decoded on `backend` against the ffmpeg CLI: sequential batches, random
/// access with duplicates (fresh and used decoder), slices, and RGB/RGBP against the reference conversion.
/// Returns `false` (after saying so) when `backend` cannot decode this stream at all (`Error::Unsupported`).
pub fn check_fixture(name: &str, backend: Backend) -> bool {
    let path = fixture(name);
    let opts = DecoderOptions::default().backend(backend).threads(2);
    let mut dec = match SimpleDecoder::open(&path, opts.clone().color(ColorType::Native)) {
        Ok(d) => d,
        Err(vidloader::Error::Unsupported(why)) if backend != Backend::Cpu => {
            eprintln!("{name}: {backend:?} does not decode it: {why}");
            return false;
        }
        Err(e) => panic!("{name}: {e}"),
    };
    assert_eq!(dec.backend(), backend, "{name}: backend");
    let info = dec.stream_metadata().clone();
    let (w, h) = (info.width as usize, info.height as usize);
    let (sx, sy, depth) = format_of(&dec);
    let bps = if depth > 8 { 2 } else { 1 };
    let fb = planar_frame_bytes(w, h, sx, sy, bps);
    let reference = reference_frames(&path, &info.pixel_format, fb);
    // MPEG-4 part 2 lets decoders differ in their inverse DCT, so NVDEC matches libavcodec only closely there;
    // every other codec is bit-exact by specification.
    let exact = backend == Backend::Cpu || !IDCT_MISMATCH_CODECS.contains(&info.codec.as_str());
    let same =
        |what: &str, i: usize, got: &[u8]| check_frame(name, what, i, got, &reference, exact);

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
            same("sequential", i, &bytes[k * fb..(k + 1) * fb]);
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
        wanted.push(next_below(&mut x, n as u64) as i64);
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
            same("random", i as usize, &bytes[k * fb..(k + 1) * fb]);
        }
    }

    // Slices with a step.
    let batch = dec.get_range(1, reference.len(), 4).unwrap();
    let bytes = tensor_bytes(&batch.frames);
    for (k, i) in (1..reference.len()).step_by(4).enumerate() {
        same("slice", i, &bytes[k * fb..(k + 1) * fb]);
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
        if !exact {
            continue;
        }
        let want = reference_rgb(&reference[i as usize], w, h, sx, sy, depth, matrix, full);
        let got = &a_bytes[k * w * h * 3..(k + 1) * w * h * 3];
        let d = max_abs_diff(got, &want);
        assert!(
            d <= 1,
            "{name}: RGB frame {i} differs from the reference conversion by {d}"
        );
    }
    true
}

/// Sparse requests on long groups of pictures, on `backend`, against the ffmpeg CLI (bit-exact): evenly spaced
/// frames and random sets on fresh decoders, and one frame a request on a decoder that continues where the last
/// request stopped. Returns how many reference pictures of the x264 `veryfast` fixture (one reference, a
/// referenced B-picture in every pair) went to the decoder as skip pictures.
pub fn check_sparse_requests(backend: Backend) -> u64 {
    let mut substituted_veryfast = 0;
    for name in [
        "h264_veryfast_gop120.mp4",
        "h264_pyramid_strict_ref4.mp4",
        "h264_cavlc_slices.mkv",
        "h264_b2_gop60_10s.mp4",
        "h264_gop250.mp4",
    ] {
        let path = fixture(name);
        let opts = DecoderOptions::default()
            .backend(backend)
            .threads(2)
            .color(ColorType::Native);
        let dec = SimpleDecoder::open(&path, opts.clone()).unwrap();
        let info = dec.stream_metadata().clone();
        let (w, h) = (info.width as usize, info.height as usize);
        let (sx, sy, _) = format_of(&dec);
        let fb = planar_frame_bytes(w, h, sx, sy, 1);
        let reference = reference_frames(&path, &info.pixel_format, fb);
        let n = reference.len();
        let mut requests: Vec<Vec<usize>> = Vec::new();
        for count in [16, 7, 3] {
            requests.push((0..count).map(|k| k * (n - 1) / (count - 1)).collect());
        }
        let mut x: u64 = 99;
        for _ in 0..6 {
            let mut r: Vec<usize> = (0..5)
                .map(|_| next_below(&mut x, n as u64) as usize)
                .collect();
            r.sort_unstable();
            requests.push(r);
        }
        let mut substituted = 0;
        for wanted in &requests {
            let mut d = SimpleDecoder::open(&path, opts.clone()).unwrap();
            let idx: Vec<i64> = wanted.iter().map(|&i| i as i64).collect();
            let batch = d.get_batch_frames_by_index(&idx).unwrap();
            let bytes = tensor_bytes(&batch.frames);
            for (k, &i) in wanted.iter().enumerate() {
                check_frame(
                    name,
                    "sparse",
                    i,
                    &bytes[k * fb..(k + 1) * fb],
                    &reference,
                    true,
                );
            }
            substituted += d.decode_work().packets_substituted;
        }
        // One frame a request, every 11th, on one decoder that continues where the last request stopped.
        let mut d = SimpleDecoder::open(&path, opts.clone()).unwrap();
        for i in (3..n).step_by(11) {
            let batch = d.get_batch_frames_by_index(&[i as i64]).unwrap();
            let got = tensor_bytes(&batch.frames);
            check_frame(name, "stepping", i, &got, &reference, true);
        }
        substituted += d.decode_work().packets_substituted;
        eprintln!(
            "{name} on {backend:?}: {substituted} reference pictures replaced by skip pictures"
        );
        if name == "h264_veryfast_gop120.mp4" {
            substituted_veryfast = substituted;
        }
    }
    substituted_veryfast
}
