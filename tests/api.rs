//! The library surface: sources, demuxer, index, pool reuse, threaded decoding, tensors and DLPack.

mod common;

use common::*;
use vidloader::{
    Backend, ColorType, DecoderOptions, DecoderPool, Demuxer, FrameIndex, SimpleDecoder, Source,
    ThreadedDecoder, ThreadedOptions,
};

fn native() -> DecoderOptions {
    DecoderOptions::default()
        .backend(Backend::Cpu)
        .threads(2)
        .color(ColorType::Native)
}

fn all_frames(src: impl Into<Source>) -> Vec<u8> {
    let mut d = SimpleDecoder::open(src, native()).unwrap();
    let n = d.len();
    tensor_bytes(&d.get_batch_frames(n).unwrap().frames)
}

#[test]
fn bytes_and_read_callback_sources_decode_like_the_file() {
    let path = fixture("h264_b3_gop30.mp4");
    let from_path = all_frames(&path);
    let bytes = std::fs::read(&path).unwrap();
    assert!(all_frames(Source::from_bytes(bytes.clone(), "clip.mp4")) == from_path);
    let mut at = 0;
    let cb = Source::from_read_callback(
        |buf: &mut [u8]| {
            let n = buf.len().min(bytes.len() - at).min(1000);
            buf[..n].copy_from_slice(&bytes[at..at + n]);
            at += n;
            Ok(n)
        },
        "clip.mp4",
    )
    .unwrap();
    assert!(all_frames(cb) == from_path);
    let reader = Source::from_reader(std::fs::File::open(&path).unwrap(), "clip.mp4").unwrap();
    assert!(all_frames(reader) == from_path);
}

#[test]
fn demuxer_packets_metadata_and_annexb() {
    let path = fixture("h264_b3_gop30.mp4");
    let mut dmx = Demuxer::open(&path).unwrap();
    let info = dmx.info().clone();
    assert_eq!(
        (info.codec.as_str(), info.width, info.height, info.bit_depth),
        ("h264", 320, 240, 8)
    );
    assert_eq!(info.chroma, "420");
    assert!((info.fps - 30.0).abs() < 1e-9);
    assert!((info.duration_s - 2.5).abs() < 0.05, "{}", info.duration_s);
    assert!(info.bit_rate > 0);
    let packets: Vec<_> = dmx.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(packets.len(), 75);
    assert!(packets[0].is_key());
    assert_eq!(packets.iter().filter(|p| p.is_key()).count(), 3);
    // B-frames: decode order differs from presentation order.
    assert!(packets.windows(2).any(|w| w[1].pts() < w[0].pts()));
    assert!(packets
        .iter()
        .all(|p| p.dts_seconds().is_some() && p.pts_seconds().is_some()));
    // MP4 packets are length-prefixed; Annex-B packets start with a start code.
    assert!(!packets[0].data().starts_with(&[0, 0, 0, 1]));
    let mut annexb = Demuxer::open(&path).unwrap();
    annexb.set_annexb(true).unwrap();
    assert!(annexb.extradata().starts_with(&[0, 0, 0, 1]));
    let first = annexb.read_packet().unwrap().unwrap();
    assert!(first.data().starts_with(&[0, 0, 0, 1]) || first.data().starts_with(&[0, 0, 1]));
    // Seeking by time lands on the keyframe at or before it.
    annexb.seek(1.5).unwrap();
    let p = annexb.read_packet().unwrap().unwrap();
    assert!(p.is_key());
    assert!(
        (p.pts_seconds().unwrap() - 1.0).abs() < 1e-6,
        "{:?}",
        p.pts_seconds()
    );
}

#[test]
fn metadata_of_hevc10_and_rotation() {
    let info = Demuxer::open(fixture("hevc10.mkv")).unwrap().info().clone();
    assert_eq!(
        (
            info.codec.as_str(),
            info.bit_depth,
            info.pixel_format.as_str()
        ),
        ("hevc", 10, "yuv420p10le")
    );
    assert_eq!(info.color_matrix, vidloader::ColorMatrix::Bt2020);
    assert_eq!(info.color_primaries, "bt2020");
    let rotated = fixture_dir().join("scratch/rotated.mp4");
    std::fs::create_dir_all(rotated.parent().unwrap()).unwrap();
    if !rotated.exists() {
        run(std::process::Command::new("ffmpeg")
            .args(["-y", "-loglevel", "error", "-i"])
            .arg(fixture("h264_nob_gop30.mp4"))
            .args(["-c", "copy", "-metadata:s:v:0", "rotate=90"])
            .arg(&rotated));
    }
    assert_eq!(Demuxer::open(&rotated).unwrap().info().rotation.abs(), 90.0);
}

#[test]
fn index_matches_ffprobe_keyframes_and_time() {
    let path = fixture("h264_vfr.mp4");
    let index = FrameIndex::scan(&Source::from(&path)).unwrap();
    assert_eq!(index.len(), 60);
    assert!(index.is_vfr());
    assert_eq!(index.keyframes(), &[0, 20, 40]);
    // 30 fps up to frame 30 (at 1 s), 15 fps after it (what ffprobe reports for this file).
    assert!((index.time_of(29) - 29.0 / 30.0).abs() < 1e-4);
    assert!((index.time_of(30) - 1.0).abs() < 1e-6);
    assert!((index.time_of(31) - 16.0 / 15.0).abs() < 1e-6);
    assert_eq!(index.index_from_time(1.0).unwrap(), 30);
    assert_eq!(index.index_from_time(1.06).unwrap(), 30);
    assert_eq!(index.index_from_time(1.07).unwrap(), 31);
    let mut d = SimpleDecoder::open(&path, native()).unwrap();
    assert_eq!(d.index_from_time(0.5).unwrap(), 15);
    let b = d.get_batch_frames_by_index(&[31]).unwrap();
    assert!((b.times[0] - 16.0 / 15.0).abs() < 1e-6);
}

#[test]
fn sequential_position_and_seek_to_index() {
    let path = fixture("h264_b3_gop30.mp4");
    let reference = all_frames(&path);
    let fb = reference.len() / 75;
    let mut d = SimpleDecoder::open(&path, native()).unwrap();
    d.seek_to_index(70).unwrap();
    let b = d.get_batch_frames(10).unwrap();
    assert_eq!(b.indices, vec![70, 71, 72, 73, 74]);
    assert!(tensor_bytes(&b.frames) == reference[70 * fb..]);
    assert!(d.get_batch_frames(10).unwrap().is_empty());
    assert_eq!(d.position(), 75);
}

#[test]
fn pool_reuses_decoders_across_files() {
    let pool = DecoderPool::new(2);
    let a = fixture("h264_nob_gop30.mp4");
    let b = fixture("h264_b3_gop30.mp4");
    let c = fixture("hevc8_b.mp4");
    let mut d = SimpleDecoder::open_with_pool(&a, native(), pool.clone()).unwrap();
    assert_eq!(pool.stats().misses, 1);
    d.reconfigure(&b).unwrap(); // same codec, depth, chroma, size: reused in place
    assert_eq!(pool.stats().hits, 1);
    assert!(tensor_bytes(&d.get_batch_frames(75).unwrap().frames) == all_frames(&b));
    d.reconfigure(&c).unwrap(); // HEVC: a new decoder; the H.264 one goes to the pool
    assert_eq!(pool.stats().misses, 2);
    assert!(tensor_bytes(&d.get_batch_frames(60).unwrap().frames) == all_frames(&c));
    d.reconfigure(&a).unwrap(); // the pooled H.264 decoder comes back
    assert_eq!(pool.stats().hits, 2);
    assert!(tensor_bytes(&d.get_batch_frames(75).unwrap().frames) == all_frames(&a));
    drop(d);
    assert_eq!(pool.stats().idle, 2);
    assert!(pool.stats().hit_rate() > 0.49);
}

#[test]
fn threaded_decoder_end_to_end_start_frame_and_reconfigure() {
    let a = fixture("h264_b3_gop30.mp4");
    let b = fixture("mpeg4.avi");
    let ref_a = all_frames(&a);
    let ref_b = all_frames(&b);
    let opts = ThreadedOptions {
        buffer_size: 16,
        batch_size: 4,
        decoder: native(),
    };
    let mut t = ThreadedDecoder::open(&a, opts, 0).unwrap();
    let mut got = Vec::new();
    let mut indices = Vec::new();
    for n in [4, 3, 5, 4, 100] {
        let batch = t.get_batch_frames(n).unwrap();
        assert!(batch.len() <= n);
        indices.extend(batch.indices.iter().copied());
        got.extend(tensor_bytes(&batch.frames));
    }
    assert_eq!(indices, (0..75).collect::<Vec<_>>());
    assert!(got == ref_a);
    let end = t.get_batch_frames(4).unwrap();
    assert!(end.is_empty());
    assert_eq!(end.frames.size()[0], 0);
    t.reconfigure(&b, 40).unwrap();
    let rest = t.get_batch_frames(1000).unwrap();
    assert_eq!(rest.indices, (40..50).collect::<Vec<_>>());
    let fb = ref_b.len() / 50;
    assert!(tensor_bytes(&rest.frames) == ref_b[40 * fb..]);
}

#[test]
fn threaded_decoder_drop_mid_stream_stops_the_thread() {
    let opts = ThreadedOptions {
        buffer_size: 8,
        batch_size: 2,
        decoder: native(),
    };
    for _ in 0..5 {
        let mut t = ThreadedDecoder::open(fixture("h264_gop250.mp4"), opts.clone(), 10).unwrap();
        assert_eq!(t.get_batch_frames(2).unwrap().indices, vec![10, 11]);
        drop(t); // must not hang with the worker blocked on a full queue
    }
}

#[test]
fn a_recycled_batch_is_written_over_by_the_next_of_its_size() {
    let path = fixture("h264_odd_642x362.mp4");
    let opts = native().color(ColorType::Rgbp);
    let mut dec = SimpleDecoder::open(&path, opts.clone()).unwrap();
    let mut fresh = SimpleDecoder::open(&path, opts).unwrap();
    let first = dec.get_batch_frames(4).unwrap();
    let ptr = first.frames.data_ptr() as usize;
    // Held here so that the allocator cannot hand the same memory out again: only recycling can reuse it.
    let _held = first.frames.shallow_clone();
    dec.recycle(first);
    // The next batch of the same size goes into the same memory and holds exactly the next frames.
    let second = dec.get_batch_frames(4).unwrap();
    assert_eq!(second.frames.data_ptr() as usize, ptr);
    assert_eq!(second.indices, vec![4, 5, 6, 7]);
    let want = fresh.get_batch_frames_by_index(&[4, 5, 6, 7]).unwrap();
    assert!(tensor_bytes(&second.frames) == tensor_bytes(&want.frames));
    // A batch of another size does not take it.
    dec.recycle(second);
    let three = dec.get_batch_frames(3).unwrap();
    assert_ne!(three.frames.data_ptr() as usize, ptr);
    assert_eq!(three.indices, vec![8, 9, 10]);
    let want = fresh.get_batch_frames_by_index(&[8, 9, 10]).unwrap();
    assert!(tensor_bytes(&three.frames) == tensor_bytes(&want.frames));
}

#[test]
fn threaded_decoder_writes_later_batches_into_recycled_ones() {
    let path = fixture("h264_gop250.mp4");
    let opts = ThreadedOptions {
        buffer_size: 8,
        batch_size: 4,
        decoder: native().color(ColorType::Rgbp),
    };
    let mut t = ThreadedDecoder::open(&path, opts, 0).unwrap();
    let mut fresh = SimpleDecoder::open(&path, native().color(ColorType::Rgbp)).unwrap();
    let mut seen = std::collections::HashSet::new();
    let mut reused = 0;
    // Every batch's memory stays held here, so that only recycling (never the allocator) can hand it out again.
    let mut held = Vec::new();
    for k in 0..12 {
        let b = t.get_batch_frames(4).unwrap();
        let want: Vec<usize> = (4 * k..4 * k + 4).collect();
        assert_eq!(b.indices, want);
        let idx: Vec<i64> = want.iter().map(|&i| i as i64).collect();
        let expect = fresh.get_batch_frames_by_index(&idx).unwrap();
        assert!(
            tensor_bytes(&b.frames) == tensor_bytes(&expect.frames),
            "batch {k}"
        );
        reused += usize::from(!seen.insert(b.frames.data_ptr() as usize));
        held.push(b.frames.shallow_clone());
        t.recycle(b);
    }
    // The thread drains what came back before each batch it decodes: later batches reuse that memory.
    assert!(reused > 0, "no batch went into a recycled one");
}

#[test]
fn batches_are_tensors_in_the_requested_layout_and_export_to_dlpack() {
    let path = fixture("h264_odd_642x362.mp4");
    let mut rgbp = SimpleDecoder::open(&path, native().color(ColorType::Rgbp)).unwrap();
    let b = rgbp.get_batch_frames_by_index(&[3, 1]).unwrap();
    assert_eq!(b.frames.size(), vec![2, 3, 362, 642]);
    assert_eq!(b.frames.kind(), tch::Kind::Uint8);
    assert!(b.frames.is_contiguous());
    let frame = b.frame(1).unwrap();
    assert_eq!(frame.size(), vec![3, 362, 642]);
    let dl = b.frame_dlpack(1).unwrap();
    let view = dl.validate().unwrap();
    assert_eq!(view.shape(), &[3, 362, 642]);
    assert_eq!(view.data_ptr() as usize, frame.data_ptr() as usize);
    drop(b); // the export keeps the storage alive
             // SAFETY (test): the DLPack export owns a reference to the storage of `3 * 362 * 642` bytes.
    let bytes = unsafe { std::slice::from_raw_parts(view.data_ptr() as *const u8, 3 * 362 * 642) };
    assert!(bytes == tensor_bytes(&frame));
    let whole = rgbp
        .get_batch_frames_by_index(&[0])
        .unwrap()
        .to_dlpack()
        .unwrap();
    assert_eq!(whole.validate().unwrap().shape(), &[1, 3, 362, 642]);
}

/// Sparse requests decode less: packets of non-reference B-pictures nobody asked for never reach the decoder,
/// and the frames still equal a full decode.
#[test]
fn unneeded_non_reference_pictures_are_not_decoded() {
    let path = fixture("h264_b3_gop30.mp4");
    let opts = DecoderOptions::default()
        .backend(Backend::Cpu)
        .color(ColorType::Native);
    let mut sparse = SimpleDecoder::open(&path, opts.clone()).unwrap();
    let wanted: Vec<i64> = (0..8).map(|i| i * 74 / 7).collect();
    let a = sparse.get_batch_frames_by_index(&wanted).unwrap();
    let work = sparse.decode_work();
    assert_eq!(work.frames_written, 8);
    assert!(work.packets_dropped > 0, "{work:?}");
    assert!(
        work.packets_decoded + work.packets_dropped <= 75 + 8,
        "{work:?}"
    );
    let mut full = SimpleDecoder::open(&path, opts).unwrap();
    let all = full.get_batch_frames(75).unwrap();
    assert_eq!(full.decode_work().packets_dropped, 0);
    for (k, &i) in wanted.iter().enumerate() {
        assert!(tensor_bytes(&a.frames.get(k as i64)) == tensor_bytes(&all.frames.get(i)));
    }
}

/// Frame-by-frame reading decodes every picture once, up to the last frame: after the end of the stream the
/// decoder's remaining pictures serve the last requests (no restart from the keyframe for each of them).
#[test]
fn frame_by_frame_reading_decodes_each_picture_once() {
    let path = fixture("h264_b3_gop30.mp4");
    let opts = DecoderOptions::default()
        .backend(Backend::Cpu)
        .color(ColorType::Native);
    let mut one_by_one = SimpleDecoder::open(&path, opts.clone()).unwrap();
    let len = one_by_one.len();
    let mut frames = Vec::new();
    for i in 0..len {
        frames.push(tensor_bytes(&one_by_one.get(i as i64).unwrap().frames));
    }
    let work = one_by_one.decode_work();
    assert_eq!(work.restarts, 1, "{work:?}");
    assert_eq!(work.packets_decoded as usize, len, "{work:?}");
    let mut whole = SimpleDecoder::open(&path, opts).unwrap();
    let all = whole.get_batch_frames(len).unwrap();
    for (i, f) in frames.iter().enumerate() {
        assert!(*f == tensor_bytes(&all.frames.get(i as i64)), "frame {i}");
    }
}

/// On the CPU, slots of another size than the picture are filled from the YUV planes in one pass (crop, bilinear
/// resize, normalisation): the result equals the reference path (full-size RGB frames, then torch's bilinear
/// `upsample_bilinear2d` and the normalisation) within one level before normalisation (the reference converts
/// with the 16.16 fixed-point formula, the fused path with the float one of the GPU kernel), plus half a level
/// of rounding for u8.
#[test]
fn cpu_resize_in_one_pass_matches_torch_resize_of_full_frames() {
    use tch::{Device, Kind, Tensor};
    use vidloader::{CropRect, FrameTransform, Normalize};
    let path = fixture("h264_odd_642x362.mp4");
    let indices = [0usize, 9, 3, 9];
    for color in [ColorType::Rgbp, ColorType::Rgb] {
        let opts = DecoderOptions::default().backend(Backend::Cpu).color(color);
        let mut dec = SimpleDecoder::open(&path, opts).unwrap();
        let full = dec
            .get_batch_frames_by_index(&indices.map(|i| i as i64))
            .unwrap()
            .frames;
        let nchw = |t: &Tensor| {
            if color == ColorType::Rgb {
                t.permute([0, 3, 1, 2])
            } else {
                t.shallow_clone()
            }
        };
        let crop = CropRect::centered(642, 362, 1, 1);
        for (crop, normalize, kind, (h, w), tol) in [
            (None, None, Kind::Uint8, (90i64, 160i64), 1.5),
            (
                None,
                Some(Normalize::imagenet()),
                Kind::Float,
                (224, 224),
                1.0 / 255.0 / 0.224 + 1e-4,
            ),
            (
                Some(crop),
                Some(Normalize::imagenet()),
                Kind::Half,
                (112, 112),
                0.03,
            ),
            (Some(crop), None, Kind::Float, (400, 400), 1.0),
        ] {
            let dims: Vec<i64> = if color == ColorType::Rgb {
                vec![4, h, w, 3]
            } else {
                vec![4, 3, h, w]
            };
            let mut out = Tensor::zeros(dims.as_slice(), (kind, Device::Cpu));
            let t = FrameTransform { crop, normalize };
            dec.decode_frames_into(&indices, &mut out, &t).unwrap();
            // Reference: torch on the full-size frames.
            let mut x = nchw(&full).to_kind(Kind::Float);
            if let Some(c) = crop {
                x = x.narrow(2, i64::from(c.top), i64::from(c.height)).narrow(
                    3,
                    i64::from(c.left),
                    i64::from(c.width),
                );
            }
            x = x.upsample_bilinear2d([h, w], false, None, None);
            if let Some(n) = normalize {
                let mean = Tensor::from_slice(&n.mean).view([1, 3, 1, 1]);
                let std = Tensor::from_slice(&n.std).view([1, 3, 1, 1]);
                x = (x * f64::from(n.scale) - mean) / std;
            }
            let got = nchw(&out).to_kind(Kind::Float);
            let diff = (&got - &x).abs().max().double_value(&[]);
            assert!(
                diff <= tol,
                "{color:?} {kind:?} {h}x{w} crop {crop:?}: differs by {diff} (tolerance {tol})"
            );
            // The duplicate slot is a copy of the first.
            assert!(got.get(1).equal(&got.get(3)));
        }
    }
}

/// A CPU decoder with frame threads hands its pictures to a writer thread that fills the batch while decoding goes
/// on; a decoder of one thread writes them itself. Both give the same bytes, for every colour type, for full-size
/// and resized slots, for random and duplicate indices, and for a request of one frame (written in place).
#[test]
fn frames_written_on_a_writer_thread_equal_frames_written_by_the_decoder() {
    use tch::{Device, Kind, Tensor};
    use vidloader::{FrameTransform, Normalize};
    let path = fixture("h264_b3_gop30.mp4");
    let requests: [&[usize]; 3] = [&[0, 1, 2, 3, 4, 5, 6, 7], &[40, 3, 17, 3, 59], &[12]];
    for color in [ColorType::Native, ColorType::Rgb, ColorType::Rgbp] {
        let decode = |threads: usize, indices: &[usize], resized: bool| {
            let opts = DecoderOptions::default()
                .backend(Backend::Cpu)
                .threads(threads)
                .color(color);
            let mut dec = SimpleDecoder::open(&path, opts).unwrap();
            if !resized {
                let dims = dec.batch_dims(indices.len());
                let mut out = Tensor::zeros(dims.as_slice(), (Kind::Uint8, Device::Cpu));
                dec.decode_frames_into(indices, &mut out, &FrameTransform::identity())
                    .unwrap();
                return out;
            }
            let n = indices.len() as i64;
            let dims: Vec<i64> = if color == ColorType::Rgb {
                vec![n, 40, 56, 3]
            } else {
                vec![n, 3, 40, 56]
            };
            let mut out = Tensor::zeros(dims.as_slice(), (Kind::Float, Device::Cpu));
            let t = FrameTransform {
                crop: None,
                normalize: Some(Normalize::imagenet()),
            };
            dec.decode_frames_into(indices, &mut out, &t).unwrap();
            out
        };
        for indices in requests {
            for resized in [false, true] {
                if resized && color == ColorType::Native {
                    continue;
                }
                let own = decode(1, indices, resized);
                let handed_over = decode(2, indices, resized);
                assert!(
                    own.equal(&handed_over),
                    "{color:?} {indices:?} resized {resized}: the writer thread wrote other values"
                );
                assert!(own.abs().sum(Kind::Double).double_value(&[]) > 0.0);
            }
        }
    }
}
