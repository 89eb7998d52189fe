//! The data layer end to end on real files: VideoDataset (manifests, directories, disk cache), the DataLoader's
//! output (shapes, dtypes, values against SimpleDecoder and the ffmpeg CLI), determinism, shuffling, sharding,
//! short videos, the error policy, shutdown, and the `plan` / `bench` commands.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use common::*;
use tch::{Device, Kind, Tensor};
use vidloader::synth::{write_dataset, write_moving_square, SynthSpec};
use vidloader::{
    Backend, ClipSampler, ColorType, DataLoader, DecoderOptions, ErrorPolicy, Layout,
    RandomFrameSampler, Resize, Sampler, ShortVideoPolicy, SimpleDecoder, UniformSampler,
    VideoDataset, VideoEntry,
};
use vidloader::{DataLoaderBuilder, SampleInfo};
use vidloader::{SampleRng, Sampled, VideoView};

static MAKE: Mutex<()> = Mutex::new(());

fn scratch(name: &str) -> PathBuf {
    let d = fixture_dir().join("scratch/loader").join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn small_spec(frames: u32) -> SynthSpec {
    SynthSpec {
        width: 64,
        height: 48,
        frames,
        fps: 24,
        gop: 8,
        b_frames: 2,
    }
}

/// A labelled synthetic data set (`per_class` videos of each of the 4 classes), made once.
fn synth(name: &str, per_class: usize, frames: u32) -> PathBuf {
    let _g = MAKE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch(name);
    write_dataset(&dir, &small_spec(frames), per_class).unwrap();
    dir
}

/// A loader over `dir`'s manifest with a private cache directory and CPU decoding.
fn builder(dir: &Path) -> DataLoaderBuilder {
    let ds = VideoDataset::from_manifest(dir.join("labels.csv"))
        .unwrap()
        .with_cache_dir(Some(dir.join("cache")));
    DataLoader::builder(ds).device(Device::Cpu).workers(2)
}

fn collect(loader: &DataLoader, epoch: u64) -> Vec<vidloader::Batch> {
    loader.epoch(epoch).map(|b| b.unwrap()).collect()
}

fn cpu_rgbp() -> DecoderOptions {
    DecoderOptions::default()
        .backend(Backend::Cpu)
        .threads(1)
        .color(ColorType::Rgbp)
}

/// What SimpleDecoder gives for a sample's frames: uint8 `[T, 3, H, W]`.
fn direct(s: &SampleInfo) -> Tensor {
    let mut d = SimpleDecoder::open(&s.path, cpu_rgbp()).unwrap();
    let idx: Vec<i64> = s.frames.iter().map(|&f| f as i64).collect();
    d.get_batch_frames_by_index(&idx).unwrap().frames
}

fn samples(batches: &[vidloader::Batch]) -> Vec<SampleInfo> {
    batches.iter().flat_map(|b| b.samples.clone()).collect()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}

/// `got` (the loader's fused resize, which converts YUV with the exact formula in `f32`) against `want` (the same
/// resize by torch of a full-frame 8-bit RGB batch, whose converter is within one level of that formula): at most
/// `level` (one level in the output's units) apart anywhere, and on average far less (few pixels are a level off).
fn assert_within_a_level(got: &Tensor, want: &Tensor, level: f64, what: &str) {
    let d = (got.to_kind(Kind::Double) - want.to_kind(Kind::Double)).abs();
    let (max, mean) = (
        d.max().double_value(&[]),
        d.mean(Kind::Double).double_value(&[]),
    );
    assert!(
        max <= level + 1e-4,
        "{what}: {max} apart (one level: {level})"
    );
    assert!(
        mean <= level / 50.0,
        "{what}: {mean} apart on average (one level: {level})"
    );
}

#[test]
fn loader_frames_equal_simple_decoder_and_the_ffmpeg_cli() {
    let dir = synth("exact", 2, 24);
    let loader = builder(&dir)
        .sampler(ClipSampler::random(2, 3).stride(2))
        .batch_size(3)
        .workers(3)
        .shuffle(true)
        .seed(11)
        .build()
        .unwrap();
    let batches = collect(&loader, 0);
    assert_eq!(batches.len(), 3);
    assert_eq!(batches[0].frames.size(), vec![3, 6, 3, 48, 64]);
    assert_eq!(
        batches[2].frames.size(),
        vec![2, 6, 3, 48, 64],
        "last batch holds what is left"
    );
    for b in &batches {
        assert_eq!(b.frames.kind(), Kind::Uint8);
        assert_eq!(
            Vec::<i64>::try_from(&b.labels).unwrap(),
            b.samples.iter().map(|s| s.label).collect::<Vec<_>>()
        );
        for (i, s) in b.samples.iter().enumerate() {
            assert!(tensor_bytes(&b.frames.get(i as i64)) == tensor_bytes(&direct(s)));
            let d = SimpleDecoder::open(&s.path, cpu_rgbp()).unwrap();
            let want: Vec<f64> = s
                .frames
                .iter()
                .map(|&f| d.scanned_stream_metadata().time_of(f))
                .collect();
            assert_eq!(s.times, want);
            assert_eq!(
                b.clips(3).unwrap().size(),
                vec![b.len() as i64, 2, 3, 3, 48, 64]
            );
        }
    }
    // Against the ffmpeg CLI (where it is installed; the data set is made here, so there is no bundled reference):
    // its yuv420p planes, converted by the reference formula (BT.601 limited range).
    if ffmpeg_cli_available() {
        let s = &batches[0].samples[0];
        let fb = planar_frame_bytes(64, 48, 1, 1, 1);
        let reference = reference_frames(&s.path, "yuv420p", fb);
        let got = batches[0].frames.get(0);
        for (t, &f) in s.frames.iter().enumerate() {
            let want = reference_rgb(&reference[f], 64, 48, 1, 1, 8, "bt601", false);
            let hwc = tensor_bytes(&got.get(t as i64).permute([1, 2, 0]));
            assert!(max_abs_diff(&hwc, &want) <= 1, "frame {f}");
        }
    } else {
        eprintln!("no ffmpeg CLI here: compared with SimpleDecoder only");
    }
    let summary = loader.summary();
    assert_eq!(
        (summary.batches, summary.samples, summary.frames),
        (3, 8, 48)
    );
    let distinct: usize = samples(&batches)
        .iter()
        .map(|s| s.frames.iter().collect::<BTreeSet<_>>().len())
        .sum();
    assert!(summary.frames_decoded >= distinct as u64 && summary.frames_decoded <= 8 * 24);
    assert!(summary.pool.hit_rate() > 0.5, "{:?}", summary.pool);
}

#[test]
fn resize_crop_normalize_and_dtypes() {
    let dir = synth("transform", 1, 24);
    let mean = [0.4f32, 0.5, 0.6];
    let std = [0.2f32, 0.25, 0.3];
    let base = || {
        builder(&dir)
            .sampler(UniformSampler::new(4))
            .batch_size(4)
            .resize(32, 20)
    };
    let f32b = &collect(
        &base()
            .dtype(Kind::Float)
            .normalize(mean, std)
            .build()
            .unwrap(),
        0,
    )[0];
    assert_eq!(f32b.frames.size(), vec![4, 4, 3, 20, 32]);
    assert_eq!(f32b.frames.kind(), Kind::Float);
    let m = Tensor::from_slice(&mean).view([1, 3, 1, 1]);
    let sd = Tensor::from_slice(&std).view([1, 3, 1, 1]);
    for (i, s) in f32b.samples.iter().enumerate() {
        let want =
            (direct(s)
                .to_kind(Kind::Float)
                .upsample_bilinear2d([20, 32], false, None, None)
                / 255.0
                - &m)
                / &sd;
        let level = 1.0 / 255.0 / 0.2;
        assert_within_a_level(&f32b.frames.get(i as i64), &want, level, "normalised");
    }
    for kind in [Kind::Half, Kind::BFloat16] {
        let b = &collect(&base().dtype(kind).normalize(mean, std).build().unwrap(), 0)[0];
        assert_eq!(b.frames.kind(), kind);
        // Values up to about 4 in size: a few ulps of bf16 (8 bits of mantissa).
        assert!(max_diff(&b.frames, &f32b.frames) < 0.05, "{kind:?}");
        // And exactly the f32 batch rounded to nearest even, as torch rounds.
        assert!(
            b.frames.equal(&f32b.frames.to_kind(kind)),
            "{kind:?} is not the f32 batch rounded by torch"
        );
    }
    let u8b = &collect(&base().build().unwrap(), 0)[0];
    let unnorm = &collect(&base().dtype(Kind::Float).build().unwrap(), 0)[0];
    assert!(
        max_diff(&u8b.frames, &unnorm.frames) <= 0.5 + 1e-3,
        "u8 is the rounded float"
    );
    let rounded = (&unnorm.frames + 0.5)
        .floor()
        .clamp(0.0, 255.0)
        .to_kind(Kind::Uint8);
    assert!(
        u8b.frames.equal(&rounded),
        "u8 is the float rounded half up"
    );

    // Shorter side to 24 (64x48 -> 32x24), then a 16x16 centre crop: source rectangle 32x32 at (16, 8).
    let cc = &collect(
        &builder(&dir)
            .sampler(UniformSampler::new(2))
            .batch_size(2)
            .resize_mode(Resize::ShorterSideCrop {
                shorter: 24,
                width: 16,
                height: 16,
                random: false,
            })
            .dtype(Kind::Float)
            .build()
            .unwrap(),
        0,
    )[0];
    let c = cc.samples[0].crop.unwrap();
    assert_eq!((c.left, c.top, c.width, c.height), (16, 8, 32, 32));
    let want = direct(&cc.samples[0])
        .narrow(2, 8, 32)
        .narrow(3, 16, 32)
        .to_kind(Kind::Float)
        .upsample_bilinear2d([16, 16], false, None, None);
    assert_within_a_level(&cc.frames.get(0), &want, 1.0, "shorter side and crop");

    // Random crops: inside the picture, even origin, per sample, reproducible from the seed.
    let random = |seed| {
        builder(&dir)
            .sampler(UniformSampler::new(2))
            .batch_size(4)
            .seed(seed)
            .resize_mode(Resize::ShorterSideCrop {
                shorter: 48,
                width: 20,
                height: 20,
                random: true,
            })
            .build()
            .unwrap()
            .plan(0)
            .unwrap()
            .batches[0]
            .iter()
            .map(|s| s.crop.unwrap())
            .collect::<Vec<_>>()
    };
    let a = random(1);
    assert_eq!(a, random(1));
    assert_ne!(a, random(2));
    assert!(
        a.iter().collect::<std::collections::HashSet<_>>().len() > 1,
        "{a:?}"
    );
    for c in &a {
        assert_eq!((c.width, c.height), (20, 20));
        assert!(c.left % 2 == 0 && c.top % 2 == 0 && c.left + 20 <= 64 && c.top + 20 <= 48);
    }
}

#[test]
fn layouts_channels_last_and_single_frames() {
    let dir = synth("layout", 1, 24);
    let b = |layout, n| {
        collect(
            &builder(&dir)
                .sampler(UniformSampler::new(n))
                .batch_size(2)
                .layout(layout)
                .build()
                .unwrap(),
            0,
        )
        .remove(0)
    };
    let btchw = b(Layout::Btchw, 3);
    let bthwc = b(Layout::Bthwc, 3);
    assert_eq!(bthwc.frames.size(), vec![2, 3, 48, 64, 3]);
    assert!(tensor_bytes(&bthwc.frames) == tensor_bytes(&btchw.frames.permute([0, 1, 3, 4, 2])));
    let bchw = b(Layout::Bchw, 1);
    assert_eq!(bchw.frames.size(), vec![2, 3, 48, 64]);
    assert_eq!(b(Layout::Bhwc, 1).frames.size(), vec![2, 48, 64, 3]);
    assert!(builder(&dir)
        .sampler(UniformSampler::new(2))
        .layout(Layout::Bchw)
        .build()
        .is_err());
}

#[test]
fn output_is_deterministic_and_independent_of_workers_and_matches_the_plan() {
    let dir = synth("determinism", 3, 24);
    let run = |workers, prefetch| {
        let loader = builder(&dir)
            .sampler(ClipSampler::random(2, 4).stride(2))
            .batch_size(5)
            .shuffle(true)
            .seed(42)
            .workers(workers)
            .prefetch(prefetch)
            .build()
            .unwrap();
        let batches = collect(&loader, 3);
        (loader.plan(3).unwrap(), batches)
    };
    let (plan1, one) = run(1, 1);
    let (plan4, four) = run(4, 3);
    assert_eq!(plan1.batches, plan4.batches);
    assert_eq!(one.len(), four.len());
    for (a, b) in one.iter().zip(&four) {
        assert_eq!(a.samples, b.samples);
        assert!(tensor_bytes(&a.frames) == tensor_bytes(&b.frames));
    }
    let delivered: Vec<Vec<SampleInfo>> = four.iter().map(|b| b.samples.clone()).collect();
    assert_eq!(delivered, plan4.batches, "the loader delivers its plan");
}

#[test]
fn recycled_batch_tensors_are_written_over_with_the_same_batches() {
    let dir = synth("recycle", 3, 24);
    let loader = || {
        builder(&dir)
            .sampler(ClipSampler::random(2, 4).stride(2))
            .batch_size(2)
            .shuffle(true)
            .seed(7)
            .workers(2)
            .prefetch(1)
            .build()
            .unwrap()
    };
    let fresh = collect(&loader(), 1);
    let recycling = loader();
    let (mut handed_back, mut reused) = (Vec::new(), 0);
    let mut n = 0;
    for (k, batch) in recycling.epoch(1).enumerate() {
        let batch = batch.unwrap();
        assert_eq!(batch.samples, fresh[k].samples);
        assert!(tensor_bytes(&batch.frames) == tensor_bytes(&fresh[k].frames));
        let ptr = batch.frames.data_ptr() as usize;
        reused += usize::from(handed_back.contains(&ptr));
        handed_back.push(ptr);
        recycling.recycle(batch);
        n += 1;
    }
    assert_eq!(n, fresh.len());
    assert!(
        reused > 0,
        "no batch was written into a recycled tensor ({n} batches)"
    );
}

#[test]
fn shuffle_is_a_seeded_permutation_per_epoch() {
    let dir = synth("shuffle", 4, 24);
    let order = |shuffle, seed, epoch| -> Vec<usize> {
        builder(&dir)
            .sampler(UniformSampler::new(2))
            .batch_size(4)
            .shuffle(shuffle)
            .seed(seed)
            .build()
            .unwrap()
            .plan(epoch)
            .unwrap()
            .batches
            .iter()
            .flatten()
            .map(|s| s.dataset_index)
            .collect()
    };
    let a = order(true, 5, 0);
    assert_eq!(a, order(true, 5, 0));
    assert_ne!(a, order(true, 5, 1));
    assert_ne!(a, order(true, 6, 0));
    let mut sorted = a.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..16).collect::<Vec<_>>());
    assert_eq!(order(false, 5, 0), (0..16).collect::<Vec<_>>());
    assert_eq!(order(false, 5, 0), order(false, 9, 7));
}

#[test]
fn shards_are_disjoint_and_together_complete() {
    let dir = synth("shard", 3, 24); // 12 videos
    let shard = |rank, drop_last| {
        let loader = builder(&dir)
            .sampler(UniformSampler::new(2))
            .batch_size(2)
            .shuffle(true)
            .seed(9)
            .shard(rank, 5)
            .drop_last(drop_last)
            .build()
            .unwrap();
        let plan = loader.plan(1).unwrap();
        let got = collect(&loader, 1);
        let delivered: Vec<Vec<SampleInfo>> = got.iter().map(|b| b.samples.clone()).collect();
        assert_eq!(delivered, plan.batches);
        assert!(got.len() <= loader.num_batches());
        (
            got.len(),
            samples(&got)
                .iter()
                .map(|s| s.dataset_index)
                .collect::<Vec<_>>(),
        )
    };
    let full_order: Vec<usize> = builder(&dir)
        .sampler(UniformSampler::new(2))
        .batch_size(12)
        .shuffle(true)
        .seed(9)
        .build()
        .unwrap()
        .plan(1)
        .unwrap()
        .batches
        .concat()
        .iter()
        .map(|s| s.dataset_index)
        .collect();
    // Without drop_last: 12 videos over 5 ranks = 3, 3, 2, 2, 2; disjoint; together all of them.
    let parts: Vec<(usize, Vec<usize>)> = (0..5).map(|r| shard(r, false)).collect();
    assert_eq!(
        parts.iter().map(|p| p.1.len()).collect::<Vec<_>>(),
        vec![3, 3, 2, 2, 2]
    );
    let mut all: Vec<usize> = parts.iter().flat_map(|p| p.1.clone()).collect();
    all.sort_unstable();
    assert_eq!(all, (0..12).collect::<Vec<_>>());
    // With drop_last: every rank the same number of full batches (12 / (5 * 2) = 1), disjoint, together the
    // first 10 videos of the epoch order.
    let parts: Vec<(usize, Vec<usize>)> = (0..5).map(|r| shard(r, true)).collect();
    assert!(parts.iter().all(|p| p.0 == 1 && p.1.len() == 2));
    let all: BTreeSet<usize> = parts.iter().flat_map(|p| p.1.clone()).collect();
    assert_eq!(all.len(), 10);
    assert_eq!(all, full_order[..10].iter().copied().collect());
}

/// A data set of three 24-frame videos with a 6-frame one second.
fn with_short_video(name: &str) -> (PathBuf, VideoDataset) {
    let dir = synth(name, 1, 24);
    let short = dir.join("short.mp4");
    {
        let _g = MAKE.lock().unwrap_or_else(|e| e.into_inner());
        if !short.exists() {
            write_moving_square(&short, &small_spec(6), 1, 99).unwrap();
        }
    }
    let files = ["right_000.mp4", "short.mp4", "left_000.mp4", "down_000.mp4"];
    let ds = VideoDataset::from_list(
        files
            .iter()
            .enumerate()
            .map(|(i, f)| (dir.join(f), i as i64)),
    )
    .with_cache_dir(Some(dir.join("cache")));
    (dir, ds)
}

#[test]
fn short_videos_repeat_the_last_frame_wrap_or_are_skipped_with_a_report() {
    for (policy, want) in [
        (ShortVideoPolicy::RepeatLast, vec![0, 1, 2, 3, 4, 5, 5, 5]),
        (ShortVideoPolicy::Wrap, vec![0, 1, 2, 3, 4, 5, 0, 1]),
    ] {
        let (_, ds) = with_short_video("short");
        let loader = DataLoader::builder(ds)
            .sampler(ClipSampler::regular(1, 8).policy(policy))
            .batch_size(4)
            .workers(2)
            .build()
            .unwrap();
        let b = collect(&loader, 0).remove(0);
        assert_eq!(b.samples[1].frames, want, "{policy:?}");
        assert!(tensor_bytes(&b.frames.get(1)) == tensor_bytes(&direct(&b.samples[1])));
    }
    let (_, ds) = with_short_video("short");
    let loader = DataLoader::builder(ds)
        .sampler(ClipSampler::regular(1, 8).policy(ShortVideoPolicy::Skip))
        .batch_size(2)
        .workers(3)
        .warnings(false)
        .build()
        .unwrap();
    let got = collect(&loader, 0);
    let labels: Vec<i64> = samples(&got).iter().map(|s| s.label).collect();
    assert_eq!(
        labels,
        vec![0, 2, 3],
        "the short video is skipped and the batch filled from the next"
    );
    for b in &got {
        for (i, s) in b.samples.iter().enumerate() {
            assert!(tensor_bytes(&b.frames.get(i as i64)) == tensor_bytes(&direct(s)));
        }
    }
    let summary = loader.summary();
    assert_eq!(summary.skipped.len(), 1);
    assert!(summary.skipped[0].path.ends_with("short.mp4"));
    assert!(
        summary.skipped[0].reason.contains("6 frames"),
        "{}",
        summary.skipped[0].reason
    );
    assert_eq!(loader.plan(0).unwrap().skipped, summary.skipped);
}

/// What README's "Skips and batch composition" says: a skipped video's place goes to the next video of the rank's
/// order, skips are per rank, so with `drop_last` a rank can end with fewer batches than the others, and
/// `plan(epoch)` tells each rank its count up front.
#[test]
fn skips_shift_a_ranks_batches_and_can_leave_it_fewer_than_the_others() {
    let mut per_rank = Vec::new();
    for rank in 0..2 {
        let (_, ds) = with_short_video("short-ranks");
        let loader = DataLoader::builder(ds)
            .sampler(ClipSampler::regular(1, 8).policy(ShortVideoPolicy::Skip))
            .shuffle(false)
            .batch_size(1)
            .drop_last(true)
            .shard(rank, 2)
            .workers(2)
            .warnings(false)
            .build()
            .unwrap();
        let got = collect(&loader, 0);
        let labels: Vec<i64> = samples(&got).iter().map(|s| s.label).collect();
        assert_eq!(
            loader.plan(0).unwrap().batches.len(),
            got.len(),
            "rank {rank}"
        );
        per_rank.push(labels);
    }
    // Rank 0 takes videos 0 and 2, rank 1 videos 1 (short, skipped) and 3: 4 / (2 * 1) = 2 batches a rank at
    // most, one for rank 1.
    assert_eq!(per_rank, vec![vec![0, 2], vec![3]]);
}

#[test]
fn error_policy_fails_or_skips_and_reports_missing_and_corrupt_files() {
    let dir = synth("errors", 2, 24);
    let corrupt = dir.join("corrupt.mp4");
    std::fs::write(
        &corrupt,
        b"this is not a video, just bytes with an mp4 name".repeat(50),
    )
    .unwrap();
    let good: Vec<PathBuf> = [
        "right_000.mp4",
        "left_000.mp4",
        "down_000.mp4",
        "up_000.mp4",
        "right_001.mp4",
    ]
    .iter()
    .map(|f| dir.join(f))
    .collect();
    let entries = vec![
        VideoEntry::new(&good[0], 0),
        VideoEntry::new(dir.join("missing.mp4"), 1),
        VideoEntry::new(&good[1], 2),
        VideoEntry::new(&corrupt, 3),
        VideoEntry::new(&good[2], 4),
        VideoEntry::new(&good[3], 5),
        VideoEntry::new(&good[4], 6),
    ];
    let ds = || VideoDataset::from_entries(entries.clone(), Vec::new()).with_cache_dir(None);
    // Fail: the first batch holds a missing file; the iterator returns its error and ends.
    let loader = DataLoader::builder(ds())
        .sampler(UniformSampler::new(3))
        .batch_size(3)
        .workers(3)
        .build()
        .unwrap();
    let mut it = loader.epoch(0);
    let err = it.next().unwrap().unwrap_err();
    assert!(matches!(err, vidloader::Error::NotFound { .. }), "{err}");
    assert!(it.next().is_none());
    assert!(loader.plan(0).is_err());
    // Skip: both bad videos are reported, the others fill the batches in order, each in the right slot.
    for workers in [1, 4] {
        let loader = DataLoader::builder(ds())
            .sampler(UniformSampler::new(3))
            .batch_size(3)
            .workers(workers)
            .on_error(ErrorPolicy::Skip)
            .warnings(false)
            .build()
            .unwrap();
        let got = collect(&loader, 0);
        assert_eq!(got.iter().map(|b| b.len()).collect::<Vec<_>>(), vec![3, 2]);
        assert_eq!(
            samples(&got).iter().map(|s| s.label).collect::<Vec<_>>(),
            vec![0, 2, 4, 5, 6]
        );
        for b in &got {
            for (i, s) in b.samples.iter().enumerate() {
                assert!(
                    tensor_bytes(&b.frames.get(i as i64)) == tensor_bytes(&direct(s)),
                    "slot {i} of batch {}",
                    b.index
                );
            }
        }
        let skipped = loader.summary().skipped;
        assert_eq!(
            skipped.iter().map(|s| s.dataset_index).collect::<Vec<_>>(),
            vec![1, 3]
        );
        assert!(
            skipped[0].reason.contains("no such file"),
            "{}",
            skipped[0].reason
        );
        let plan = loader.plan(0).unwrap();
        assert_eq!(plan.skipped.len(), 2);
        assert_eq!(
            plan.batches,
            got.iter().map(|b| b.samples.clone()).collect::<Vec<_>>()
        );
    }
}

#[test]
fn dropping_the_loader_mid_epoch_stops_the_workers() {
    let dir = synth("drop", 4, 24);
    let loader = builder(&dir)
        .sampler(UniformSampler::new(8))
        .batch_size(2)
        .workers(4)
        .prefetch(4)
        .build()
        .unwrap();
    let mut e = loader.epoch(0);
    assert_eq!(e.next().unwrap().unwrap().len(), 2);
    drop(e); // joins the workers: they return their decoders to the pool
    let idle = loader.pool().stats().idle;
    assert!(idle >= 1, "decoders back in the pool: {idle}");
    drop(loader.epoch(1)); // never started
    let mut e = loader.epoch(2);
    e.next();
    drop(loader);
    drop(e);
}

#[test]
fn epochs_run_in_a_row_and_a_custom_sampler_plugs_in() {
    /// The first and the last frame of every video.
    #[derive(Debug)]
    struct Ends;
    impl Sampler for Ends {
        fn frames_per_sample(&self) -> usize {
            2
        }
        fn sample(&self, v: &VideoView<'_>, _rng: &mut SampleRng) -> vidloader::Result<Sampled> {
            Ok(Sampled::Frames(vec![0, v.timeline.len() - 1]))
        }
    }
    let dir = synth("epochs", 1, 24);
    let loader = builder(&dir)
        .sampler(Ends)
        .batch_size(3)
        .epochs(2)
        .shuffle(true)
        .build()
        .unwrap();
    let got: Vec<vidloader::Batch> = loader.iter().map(|b| b.unwrap()).collect();
    assert_eq!(
        got.iter()
            .map(|b| (b.epoch, b.index, b.len()))
            .collect::<Vec<_>>(),
        vec![(0, 0, 3), (0, 1, 1), (1, 0, 3), (1, 1, 1)]
    );
    assert!(samples(&got).iter().all(|s| s.frames == vec![0, 23]));
    let s = loader.summary();
    assert_eq!((s.epochs, s.batches, s.samples, s.frames), (2, 4, 8, 16));
}

#[test]
fn manifest_time_ranges_limit_the_frames() {
    let dir = synth("ranges", 1, 24); // 24 frames at 24 fps: frame i at i/24 s
    let manifest = dir.join("ranges.jsonl");
    std::fs::write(
        &manifest,
        "{\"path\": \"right_000.mp4\", \"label\": 0, \"start\": 0.5}\n{\"path\": \"left_000.mp4\", \"label\": 1, \"end\": 0.25}\n",
    )
    .unwrap();
    let ds = VideoDataset::from_manifest(&manifest)
        .unwrap()
        .with_cache_dir(None);
    let loader = DataLoader::builder(ds)
        .sampler(RandomFrameSampler::new(6))
        .batch_size(2)
        .build()
        .unwrap();
    let b = collect(&loader, 0).remove(0);
    assert_eq!(b.samples[0].frames.len(), 6);
    assert!(b.samples[0].frames.iter().all(|&f| (12..24).contains(&f)));
    assert_eq!(b.samples[1].frames, vec![0, 1, 2, 3, 4, 5]);
}

#[test]
fn manifests_csv_and_jsonl_class_names_and_paths() {
    let dir = scratch("manifests");
    std::fs::write(
        dir.join("a.csv"),
        "# a comment\nlabel,end,path,start\ncat,2.5,clips/one.mp4,1\ndog,,\"/abs/with, comma.mp4\",\n\ncat,,two.mkv,\n",
    )
    .unwrap();
    let ds = VideoDataset::from_manifest(dir.join("a.csv")).unwrap();
    assert_eq!(ds.classes(), ["cat", "dog"]);
    let e = ds.entries();
    assert_eq!(e.len(), 3);
    assert_eq!(e[0].path, dir.join("clips/one.mp4"));
    assert_eq!(
        (e[0].label, e[0].start, e[0].end),
        (0, Some(1.0), Some(2.5))
    );
    assert_eq!(e[0].class.as_deref(), Some("cat"));
    assert_eq!(e[1].path, PathBuf::from("/abs/with, comma.mp4"));
    assert_eq!((e[1].label, e[1].start, e[1].end), (1, None, None));
    let ds = ds.with_classes(&["dog", "cat"]).unwrap();
    assert_eq!(
        ds.entries().iter().map(|e| e.label).collect::<Vec<_>>(),
        vec![1, 0, 1]
    );
    assert!(VideoDataset::from_manifest(dir.join("a.csv"))
        .unwrap()
        .with_classes(&["cat"])
        .is_err());

    std::fs::write(dir.join("b.csv"), "x.mp4,3\ny.mp4,7,0.5,1\n").unwrap();
    let ds = VideoDataset::from_manifest(dir.join("b.csv")).unwrap();
    assert!(ds.classes().is_empty());
    assert_eq!(
        ds.entries().iter().map(|e| e.label).collect::<Vec<_>>(),
        vec![3, 7]
    );

    std::fs::write(
        dir.join("c.jsonl"),
        "{\"path\": \"a.mp4\", \"label\": 2, \"start\": 0.5, \"end\": 1.5}\n\n{\"path\": \"b.mp4\"}\n",
    )
    .unwrap();
    let ds = VideoDataset::from_manifest(dir.join("c.jsonl")).unwrap();
    assert_eq!(ds.entries()[0].label, 2);
    assert_eq!(
        (ds.entries()[0].start, ds.entries()[0].end),
        (Some(0.5), Some(1.5))
    );
    assert_eq!(ds.entries()[1].label, vidloader::NO_LABEL);

    for (name, text, needle) in [
        ("d.csv", "a.mp4,1,2,1\n", "line 1"),
        ("e.csv", "a.mp4,1\nb.mp4,1,x\n", "line 2"),
        (
            "f.jsonl",
            "{\"path\": \"a.mp4\", \"label\": 1}\n{\"path\": \"b.mp4\", \"label\": \"dog\"}\n",
            "mix",
        ),
        ("g.jsonl", "{\"label\": 1}\n", "line 1"),
        ("h.txt", "a.mp4,1\n", "manifest"),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
        let err = VideoDataset::from_manifest(dir.join(name))
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{name}: {err}");
    }
    assert!(matches!(
        VideoDataset::from_manifest(dir.join("nope.csv")),
        Err(vidloader::Error::NotFound { .. })
    ));
}

#[test]
fn directories_are_searched_recursively_with_classes_from_sub_directories() {
    let dir = scratch("tree");
    for f in [
        "walk/a.mp4",
        "walk/deep/b.MKV",
        "run/c.webm",
        "loose.mp4",
        "run/notes.txt",
    ] {
        let p = dir.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"").unwrap();
    }
    let ds = VideoDataset::from_dir(&dir).unwrap();
    let got: Vec<(String, i64)> = ds
        .entries()
        .iter()
        .map(|e| {
            (
                e.path.strip_prefix(&dir).unwrap().display().to_string(),
                e.label,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("loose.mp4".to_string(), -1),
            ("run/c.webm".to_string(), 0),
            ("walk/a.mp4".to_string(), 1),
            ("walk/deep/b.MKV".to_string(), 1),
        ]
    );
    assert_eq!(ds.classes(), ["run", "walk"]);
    // `open` prefers a manifest in the directory.
    std::fs::write(dir.join("labels.csv"), "walk/a.mp4,5\n").unwrap();
    assert_eq!(VideoDataset::open(&dir).unwrap().len(), 1);
    std::fs::remove_file(dir.join("labels.csv")).unwrap();
    assert_eq!(VideoDataset::open(&dir).unwrap().len(), 4);
}

#[test]
fn disk_cache_is_reused_and_invalidated_when_the_file_changes() {
    let dir = scratch("cache");
    let cache = dir.join("cache");
    let _ = std::fs::remove_dir_all(&cache);
    let video = dir.join("v.mp4");
    write_moving_square(&video, &small_spec(10), 0, 1).unwrap();
    let open = || VideoDataset::from_list([(video.clone(), 0)]).with_cache_dir(Some(cache.clone()));
    let a = open();
    assert_eq!(a.meta(0).unwrap().num_frames(), 10);
    // H.264 where the FFmpeg build has libx264, MPEG-4 part 2 where it has only FFmpeg's own encoders.
    let codec = a.meta(0).unwrap().codec.clone();
    assert_eq!((a.cache_stats().scans, a.cache_stats().disk_hits), (1, 0));
    a.meta(0).unwrap();
    assert_eq!(a.cache_stats().scans, 1, "kept in memory");
    let b = open();
    let m = b.meta(0).unwrap();
    assert_eq!((b.cache_stats().scans, b.cache_stats().disk_hits), (0, 1));
    assert_eq!(
        (m.num_frames(), m.width, m.height, m.codec.as_str()),
        (10, 64, 48, codec.as_str())
    );
    // The file changes: scanned again, and the new metadata is cached.
    write_moving_square(&video, &small_spec(14), 0, 1).unwrap();
    let c = open();
    assert_eq!(c.meta(0).unwrap().num_frames(), 14);
    assert_eq!(c.cache_stats().scans, 1);
    let d = open();
    assert_eq!(d.meta(0).unwrap().num_frames(), 14);
    assert_eq!(d.cache_stats().disk_hits, 1);
    // One database for the directory, whatever the number of files; no file per video.
    let names: Vec<String> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| n.starts_with("metadata.sqlite")),
        "{names:?}"
    );
    // The changed file's entry replaced the old one: one row.
    let db = rusqlite::Connection::open(cache.join("metadata.sqlite")).unwrap();
    let rows: i64 = db
        .query_row("SELECT count(*) FROM index_v5", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1);
    // A damaged row costs a scan, not an error, and is rewritten.
    db.execute("UPDATE index_v5 SET entry = CAST('{not json' AS BLOB)", [])
        .unwrap();
    let e = open();
    assert_eq!(e.meta(0).unwrap().num_frames(), 14);
    assert_eq!((e.cache_stats().scans, e.cache_stats().rejected), (1, 1));
    let f = open();
    assert_eq!(f.meta(0).unwrap().num_frames(), 14);
    assert_eq!(
        (f.cache_stats().disk_hits, f.cache_stats().rejected),
        (1, 0)
    );
}

/// The `plan` command's counters of the metadata cache.
fn plan_cache_stats(data: &Path, cache: &Path) -> (u64, u64, u64) {
    let v: serde_json::Value = serde_json::from_slice(&run(cli()
        .arg("plan")
        .arg(data)
        .args(["--json", "--cache-dir"])
        .arg(cache)))
    .unwrap();
    let c = &v["cache"];
    let n = |k: &str| {
        c[k].as_u64()
            .unwrap_or_else(|| panic!("no cache.{k} in {c}"))
    };
    (n("disk_hits"), n("scans"), n("rejected"))
}

/// Two processes one after the other on one cache directory: the first scans every file, the second reads every
/// entry the first wrote; the directory holds one file.
#[test]
fn disk_cache_is_shared_between_processes() {
    let dir = synth("cache-processes", 2, 12);
    let cache = dir.join("cache-processes");
    let _ = std::fs::remove_dir_all(&cache);
    assert_eq!(plan_cache_stats(&dir, &cache), (0, 8, 0));
    assert_eq!(plan_cache_stats(&dir, &cache), (8, 0, 0));
    let names: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|f| f.unwrap().file_name())
        .collect();
    assert_eq!(names, ["metadata.sqlite"], "one file, closed cleanly");
}

#[test]
fn plan_command_prints_the_loader_plan_as_json() {
    let dir = synth("plan-cli", 2, 24);
    let stdout = run(cli()
        .arg("plan")
        .arg(&dir)
        .args([
            "--sampler",
            "random-clips:2:3:2",
            "--batch",
            "2",
            "--seed",
            "5",
        ])
        .args([
            "--epoch",
            "2",
            "--rank",
            "1",
            "--world",
            "2",
            "--json",
            "--cache-dir",
        ])
        .arg(dir.join("cache")));
    let stdout = String::from_utf8(stdout).unwrap();
    assert_eq!(stdout.trim().lines().count(), 1);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (
            v["epoch"].as_u64(),
            v["rank"].as_u64(),
            v["world_size"].as_u64()
        ),
        (Some(2), Some(1), Some(2))
    );
    let loader = builder(&dir)
        .sampler(ClipSampler::random(2, 3).stride(2))
        .batch_size(2)
        .seed(5)
        .shuffle(true)
        .shard(1, 2)
        .build()
        .unwrap();
    let plan = loader.plan(2).unwrap();
    assert_eq!(v["batches"], serde_json::to_value(&plan.batches).unwrap());
    assert_eq!(v["batches"].as_array().unwrap().len(), 2);
    let first = &v["batches"][0][0];
    assert!(first["path"].as_str().unwrap().ends_with(".mp4"));
    assert_eq!(first["frames"].as_array().unwrap().len(), 6);
    // Rank and world size from the environment, as torchrun sets them.
    let out = cli()
        .arg("plan")
        .arg(&dir)
        .args([
            "--sampler",
            "random-clips:2:3:2",
            "--batch",
            "2",
            "--seed",
            "5",
            "--epoch",
            "2",
            "--json",
        ])
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .env("RANK", "1")
        .env("WORLD_SIZE", "2")
        .output()
        .unwrap();
    let w: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(w["batches"], v["batches"]);
}

#[test]
fn bench_command_reports_rates_and_hit_rate() {
    let dir = synth("bench-cli", 1, 24);
    let stdout = run(cli()
        .arg("bench")
        .arg(&dir)
        .args([
            "--sampler",
            "clips:1:4",
            "--batch",
            "2",
            "--workers",
            "2",
            "--resize",
            "32x32",
        ])
        .args([
            "--dtype",
            "f16",
            "--normalize",
            "imagenet",
            "--json",
            "--cache-dir",
        ])
        .arg(dir.join("cache")));
    let v: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    assert_eq!(v["batch_shape"], serde_json::json!([2, 4, 3, 32, 32]));
    assert_eq!(v["frames"], 16);
    assert!(v["fps"].as_f64().unwrap() > 0.0);
    assert!(v["pool_hit_rate"].as_f64().unwrap() > 0.0);
    let stdout = run(cli()
        .arg("bench")
        .arg(&dir)
        .args(["--sampler", "uniform:2", "--cache-dir"])
        .arg(dir.join("cache")));
    let s = String::from_utf8(stdout).unwrap();
    assert!(
        s.contains("frames/s") && s.contains("batches/s") && s.contains("hit rate"),
        "{s}"
    );
    let out = cli()
        .arg("bench")
        .arg(&dir)
        .args(["--sampler", "clips:0:4"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("vidloader: error: "));
}

#[test]
fn bench_repeats_short_epochs_until_enough_time_is_measured() {
    let dir = synth("bench-epochs", 1, 24);
    let bench = |extra: &[&str]| -> serde_json::Value {
        let stdout = run(cli()
            .arg("bench")
            .arg(&dir)
            .args(["--sampler", "clips:1:4", "--batch", "2", "--workers", "1"])
            .args(["--warmup-epochs", "1", "--json", "--cache-dir"])
            .arg(dir.join("cache"))
            .args(extra));
        serde_json::from_slice(&stdout).unwrap()
    };
    // Without --min-seconds: exactly --epochs timed epochs, the warm-up left out.
    let v = bench(&["--epochs", "2"]);
    let rates: Vec<f64> = serde_json::from_value(v["epoch_fps"].clone()).unwrap();
    assert_eq!(rates.len(), 2, "{v}");
    assert_eq!(v["epochs"], 2);
    assert_eq!(v["frames"], 2 * 16);
    let (lo, hi) = (rates[0].min(rates[1]), rates[0].max(rates[1]));
    let median = v["median_epoch_fps"].as_f64().unwrap();
    assert!(lo > 0.0 && (median - (lo + hi) / 2.0).abs() < 1e-6, "{v}");
    // An epoch of 16 small frames takes milliseconds: a minute cannot be reached, so --max-epochs ends it.
    let v = bench(&["--epochs", "1", "--min-seconds", "60", "--max-epochs", "5"]);
    assert_eq!(v["epoch_fps"].as_array().unwrap().len(), 5, "{v}");
    assert_eq!(v["frames"], 5 * 16);
    // --max-epochs below --epochs does not cut --epochs short.
    let v = bench(&["--epochs", "3", "--min-seconds", "60", "--max-epochs", "1"]);
    assert_eq!(v["epoch_fps"].as_array().unwrap().len(), 3, "{v}");
}

#[test]
fn videos_the_gpu_decoder_cannot_take_are_decoded_on_the_cpu() {
    // MPEG-4 part 2: NVDEC is not used for it where there is a GPU, and there is no NVDEC where there is none;
    // either way the samples go to the CPU decoder, which writes the same frames.
    let files = [fixture("mpeg4.avi"), fixture("mpeg4_b.mp4")];
    let ds = || VideoDataset::from_list(files.iter().map(|f| (f.clone(), 0))).with_cache_dir(None);
    let loader = DataLoader::builder(ds())
        .backend(Backend::Nvdec(0))
        .sampler(UniformSampler::new(3))
        .batch_size(2)
        .warnings(false)
        .build()
        .unwrap();
    let b = collect(&loader, 0).remove(0);
    for (i, s) in b.samples.iter().enumerate() {
        assert!(tensor_bytes(&b.frames.get(i as i64)) == tensor_bytes(&direct(s)));
    }
    assert_eq!(loader.summary().cpu_fallbacks, 2);
    let strict = DataLoader::builder(ds())
        .backend(Backend::Nvdec(0))
        .cpu_fallback(false)
        .sampler(UniformSampler::new(3))
        .build()
        .unwrap();
    let err = strict.epoch(0).next().unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            vidloader::Error::Unsupported(_) | vidloader::Error::GpuUnavailable(_)
        ),
        "{err}"
    );
}

#[test]
fn edit_lists_give_the_frames_ffmpeg_shows() {
    // MP4/MOV edit lists: hidden leading pictures, an empty edit, three edits, negative composition offsets.
    // Uniform samples over each video, against the ffmpeg CLI's frames (`-fps_mode passthrough`).
    if !ffmpeg_cli_available() {
        eprintln!("skipped: needs the ffmpeg CLI for the reference frames");
        return;
    }
    let names = [
        "edit_hidden_lead.mov",
        "edit_three_edits.mp4",
        "edit_empty_delay.mp4",
        "ctts_v1.mp4",
    ];
    let files: Vec<PathBuf> = names.iter().map(|n| fixture(n)).collect();
    let ds = VideoDataset::from_list(files.iter().map(|f| (f.clone(), 0))).with_cache_dir(None);
    let loader = DataLoader::builder(ds)
        .device(Device::Cpu)
        .sampler(UniformSampler::new(8))
        .batch_size(2)
        .workers(2)
        .build()
        .unwrap();
    let (w, h) = (192, 108);
    let fb = planar_frame_bytes(w, h, 1, 1, 1);
    let mut seen = 0;
    for b in collect(&loader, 0) {
        for (i, s) in b.samples.iter().enumerate() {
            let reference = reference_frames(&s.path, "yuv420p", fb);
            let d = SimpleDecoder::open(&s.path, cpu_rgbp()).unwrap();
            assert_eq!(
                d.len(),
                reference.len(),
                "{}: frame count",
                s.path.display()
            );
            let got = b.frames.get(i as i64);
            for (t, &f) in s.frames.iter().enumerate() {
                let want = reference_rgb(&reference[f], w, h, 1, 1, 8, "bt601", false);
                let hwc = tensor_bytes(&got.get(t as i64).permute([1, 2, 0]));
                let diff = max_abs_diff(&hwc, &want);
                assert!(
                    diff <= 1,
                    "{}: frame {f} differs by {diff}",
                    s.path.display()
                );
            }
            seen += 1;
        }
    }
    assert_eq!(seen, names.len());
}

/// CPU workers for hybrid decoding only exist beside NVDEC: a CPU loader has none, whatever the setting.
#[test]
fn cpu_workers_only_apply_to_cuda_batches() {
    let dir = synth("hybrid_setting", 1, 12);
    let loader = builder(&dir).cpu_workers(3).build().unwrap();
    assert_eq!(loader.cpu_workers(), 0);
    let batches = collect(&loader, 0);
    assert!(!batches.is_empty());
    assert_eq!(loader.summary().cpu_samples, 0);
}

/// The metadata columns of `synth(.., 24)`'s videos: 24 frames at 24 fps, 64x48, one second.
const GIVEN: &str = "24,24,64,48,1.0";

/// Writes `name` in `dir` (a CSV with the metadata columns, or the same rows as JSON lines) and opens it with a
/// private cache directory.
fn given_manifest(dir: &Path, name: &str, rows: &[(&str, &str, &str)]) -> VideoDataset {
    let text: String = if name.ends_with(".csv") {
        let mut t = String::from("path,label,num_frames,fps,width,height,duration_s\n");
        for (path, label, meta) in rows {
            t.push_str(&format!("{path},{label},{meta}\n"));
        }
        t
    } else {
        rows.iter()
            .map(|(path, label, meta)| {
                let v: Vec<&str> = meta.split(',').collect();
                format!(
                    "{{\"path\": \"{path}\", \"label\": \"{label}\", \"num_frames\": {}, \"fps\": {}, \"width\": {}, \"height\": {}, \"duration_s\": {}}}\n",
                    v[0], v[1], v[2], v[3], v[4]
                )
            })
            .collect()
    };
    std::fs::write(dir.join(name), text).unwrap();
    VideoDataset::from_manifest(dir.join(name))
        .unwrap()
        .with_cache_dir(Some(dir.join(format!("cache-{name}"))))
}

#[test]
fn manifest_metadata_plans_without_opening_the_files_which_are_read_only_to_decode() {
    let dir = synth("given", 1, 24);
    let rows = [
        ("right_000.mp4", "right", GIVEN),
        ("gone_1.mp4", "left", GIVEN),
        ("left_000.mp4", "left", GIVEN),
        ("down_000.mp4", "down", GIVEN),
        ("gone_2.mp4", "up", GIVEN),
        ("up_000.mp4", "up", GIVEN),
    ];
    let sampler = || ClipSampler::random(2, 3).seconds_between_frames(0.1);
    for name in ["given.csv", "given.jsonl"] {
        // Two of the files do not exist: planning never looks at a file, so it plans them like the others.
        let ds = given_manifest(&dir, name, &rows);
        assert_eq!(
            ds.entries()[1].line,
            Some(if name.ends_with(".csv") { 3 } else { 2 })
        );
        let loader = DataLoader::builder(ds)
            .sampler(sampler())
            .batch_size(2)
            .workers(2)
            .warnings(false)
            .build()
            .unwrap();
        let plan = loader.plan(0).unwrap();
        assert_eq!(
            plan.batches.iter().map(Vec::len).sum::<usize>(),
            6,
            "{name}"
        );
        assert!(plan.skipped.is_empty());
        let stats = loader.dataset().cache_stats();
        assert_eq!(
            (stats.scans, stats.disk_hits, stats.rejected),
            (0, 0, 0),
            "{name}"
        );
        assert_eq!(loader.dataset().metadata_seconds(), 0.0);
        // The same frames and times as a plan from the files themselves: the same rows without the metadata
        // columns (the missing files skipped), whose videos are scanned.
        let scanned = DataLoader::builder(
            VideoDataset::from_list(rows.iter().map(|r| (dir.join(r.0), 0))).with_cache_dir(None),
        )
        .sampler(sampler())
        .batch_size(2)
        .on_error(ErrorPolicy::Skip)
        .warnings(false)
        .build()
        .unwrap()
        .plan(0)
        .unwrap();
        assert_eq!(scanned.skipped.len(), 2);
        let planned: Vec<&SampleInfo> = plan.batches.iter().flatten().collect();
        for s in scanned.batches.iter().flatten() {
            let p = planned[s.dataset_index];
            assert_eq!((&p.path, &p.frames), (&s.path, &s.frames), "{name}");
            assert!(p
                .times
                .iter()
                .zip(&s.times)
                .all(|(a, b)| (a - b).abs() < 1e-9));
        }
        // Decoding opens the files: under Fail the first batch holds a missing one, and the error names it.
        let err = loader.epoch(0).next().unwrap().unwrap_err();
        assert!(
            matches!(&err, vidloader::Error::NotFound { path } if path.ends_with("gone_1.mp4")),
            "{err}"
        );
        // Under Skip the missing ones are skipped and reported, the others delivered as planned.
        let loader = DataLoader::builder(given_manifest(&dir, name, &rows))
            .sampler(sampler())
            .batch_size(2)
            .workers(2)
            .on_error(ErrorPolicy::Skip)
            .warnings(false)
            .build()
            .unwrap();
        let got = collect(&loader, 0);
        let delivered = samples(&got);
        assert_eq!(
            delivered
                .iter()
                .map(|s| s.dataset_index)
                .collect::<Vec<_>>(),
            vec![0, 2, 3, 5]
        );
        for (s, want) in delivered.iter().zip([0, 2, 3, 5]) {
            assert_eq!(s.frames, planned[want].frames);
        }
        for b in &got {
            for (i, s) in b.samples.iter().enumerate() {
                assert!(tensor_bytes(&b.frames.get(i as i64)) == tensor_bytes(&direct(s)));
            }
        }
        let skipped = loader.summary().skipped;
        assert_eq!(
            skipped.iter().map(|s| s.dataset_index).collect::<Vec<_>>(),
            vec![1, 4]
        );
        assert!(
            skipped[0].reason.contains("no such file"),
            "{}",
            skipped[0].reason
        );
    }
}

#[test]
fn a_manifest_value_the_video_contradicts_is_an_error_naming_the_row_or_a_skip() {
    let dir = synth("given-wrong", 1, 24);
    for (name, meta, field) in [
        ("frames.csv", "30,24,64,48,1.0", "num_frames"),
        ("frames.jsonl", "23,24,64,48,1.0", "num_frames"),
        ("width.csv", "24,24,640,48,1.0", "width"),
        ("height.jsonl", "24,24,64,480,1.0", "height"),
        // Frame 23 at 23/25 s instead of 23/24: more than half a frame off.
        ("fps.csv", "24,25,64,48,1.0", "fps"),
        ("duration.jsonl", "24,24,64,48,2.5", "duration_s"),
    ] {
        let rows = [
            ("right_000.mp4", "right", GIVEN),
            ("left_000.mp4", "left", meta),
            ("down_000.mp4", "down", GIVEN),
        ];
        let line = if name.ends_with(".csv") { 3 } else { 2 };
        let loader = |policy| {
            DataLoader::builder(given_manifest(&dir, name, &rows))
                .sampler(UniformSampler::new(4))
                .resize(32, 32) // without one, a wrong size is a plan error: the batch needs it
                .batch_size(3)
                .workers(2)
                .on_error(policy)
                .warnings(false)
                .build()
                .unwrap()
        };
        let fail = loader(ErrorPolicy::Fail);
        // The plan believes the row; decoding finds it out.
        assert!(fail.plan(0).unwrap().skipped.is_empty());
        let err = fail.epoch(0).next().unwrap().unwrap_err();
        match &err {
            vidloader::Error::ManifestMismatch {
                row,
                path,
                field: f,
                ..
            } => {
                assert_eq!(row, &format!("{} line {line}", dir.join(name).display()));
                assert!(path.ends_with("left_000.mp4"));
                assert_eq!(*f, field, "{err}");
            }
            e => panic!("{name}: {e}"),
        }
        let skip = loader(ErrorPolicy::Skip);
        let got = collect(&skip, 0);
        assert_eq!(
            samples(&got)
                .iter()
                .map(|s| s.dataset_index)
                .collect::<Vec<_>>(),
            vec![0, 2],
            "{name}"
        );
        let skipped = skip.summary().skipped;
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].dataset_index, 1);
        assert!(
            skipped[0].reason.contains(&format!("line {line}"))
                && skipped[0].reason.contains(field),
            "{}",
            skipped[0].reason
        );
    }
    // What a constant rate cannot describe: a variable frame rate, a first time stamp other than 0.
    for (file, frames, fps) in [("h264_vfr.mp4", 60, 22.0), ("h264_ts.ts", 60, 30.0)] {
        let path = fixture(file);
        let mut dec = SimpleDecoder::open(&path, cpu_rgbp()).unwrap();
        assert_eq!(dec.len(), frames);
        let info = dec.stream_metadata().clone();
        let given = vidloader::ManifestMeta {
            num_frames: frames as u32,
            fps,
            width: info.width,
            height: info.height,
            duration_s: None,
        };
        let ds = VideoDataset::from_entries(
            vec![VideoEntry::new(&path, 0).with_meta(given)],
            Vec::new(),
        );
        let err = ds
            .check_meta(0, dec.scanned_stream_metadata(), &info)
            .unwrap_err();
        assert!(
            matches!(&err, vidloader::Error::ManifestMismatch { row, field: "fps", .. } if row == "entry 0"),
            "{file}: {err}"
        );
        let _ = dec.get(0).unwrap();
    }
    // The row's values, when right, pass.
    let right = dir.join("right_000.mp4");
    let dec = SimpleDecoder::open(&right, cpu_rgbp()).unwrap();
    let ds = given_manifest(&dir, "right.csv", &[("right_000.mp4", "right", GIVEN)]);
    ds.check_meta(0, dec.scanned_stream_metadata(), dec.stream_metadata())
        .unwrap();
}

#[test]
fn manifest_metadata_columns_come_together_and_in_range() {
    let dir = scratch("given-parse");
    let csv = "path,label,num_frames,fps,width,height,duration_s\n";
    for (name, text, needle) in [
        ("ok.csv", format!("{csv}a.mp4,1,60,29.97,640,360,\nb.mp4,2,,,,,\n"), ""),
        ("partial.csv", format!("{csv}a.mp4,1,60,30,640,360,2\nb.mp4,2,60,30,,,\n"), "line 3: metadata without width, height"),
        ("duration_only.csv", format!("{csv}a.mp4,1,,,,,2\n"), "line 2: metadata without num_frames, fps, width, height"),
        ("zero.csv", format!("{csv}a.mp4,1,0,30,640,360,\n"), "line 2: num_frames 0"),
        ("fps.csv", format!("{csv}a.mp4,1,60,0,640,360,\n"), "line 2: fps 0"),
        ("float.csv", format!("{csv}a.mp4,1,60.5,30,640,360,\n"), "num_frames '60.5' is not a whole number"),
        ("big.csv", format!("{csv}a.mp4,1,4294967296,30,640,360,\n"), "num_frames 4294967296 is too large"),
        ("nan.jsonl", "{\"path\": \"a.mp4\", \"num_frames\": 6, \"fps\": \"x\", \"width\": 2, \"height\": 2}\n".into(), "line 1: \"fps\" is not a number"),
        ("neg.jsonl", "{\"path\": \"a.mp4\", \"num_frames\": -6, \"fps\": 30, \"width\": 2, \"height\": 2}\n".into(), "line 1: \"num_frames\" is not a whole number"),
        ("dur.jsonl", "{\"path\": \"a.mp4\", \"num_frames\": 6, \"fps\": 30, \"width\": 2, \"height\": 2, \"duration_s\": -1}\n".into(), "line 1: duration_s -1"),
        ("array.jsonl", "[\"a.mp4\", 1]\n".into(), "line 1: not a JSON object"),
    ] {
        std::fs::write(dir.join(name), &text).unwrap();
        match VideoDataset::from_manifest(dir.join(name)) {
            Ok(ds) => {
                assert!(needle.is_empty(), "{name} parsed");
                let e = ds.entries();
                assert_eq!(
                    e[0].meta,
                    Some(vidloader::ManifestMeta { num_frames: 60, fps: 29.97, width: 640, height: 360, duration_s: None })
                );
                assert_eq!((e[0].line, e[1].line, e[1].meta), (Some(2), Some(3), None));
                let m = ds.meta(0).unwrap();
                assert_eq!((m.num_frames(), m.width, m.height, m.index.is_none()), (60, 640, 360, true));
                assert!((m.timeline().time_of(30) - 30.0 / 29.97).abs() < 1e-12);
                // The row without metadata is read from its file (which does not exist).
                assert!(matches!(ds.meta(1), Err(vidloader::Error::NotFound { .. })));
            }
            Err(e) => {
                let e = e.to_string();
                assert!(!needle.is_empty() && e.contains(needle), "{name}: {e}");
                assert!(e.contains(name), "{name}: {e}");
            }
        }
    }
}

#[test]
fn max_batches_stop_bench_and_plan_early_and_the_json_gives_first_batch_and_metadata_seconds() {
    let dir = synth("given-cli", 2, 24);
    let rows: Vec<(String, &str)> = ["right", "left", "down", "up"]
        .iter()
        .flat_map(|c| (0..2).map(move |k| (format!("{c}_00{k}.mp4"), *c)))
        .collect();
    let rows: Vec<(&str, &str, &str)> = rows.iter().map(|(p, c)| (p.as_str(), *c, GIVEN)).collect();
    given_manifest(&dir, "given.csv", &rows);
    let bench = |manifest: &str, cache: &str| -> serde_json::Value {
        let out = run(cli()
            .arg("bench")
            .arg(dir.join(manifest))
            .args([
                "--sampler",
                "uniform:2",
                "--batch",
                "2",
                "--max-batches",
                "1",
            ])
            .args(["--epochs", "2", "--workers", "2", "--json", "--cache-dir"])
            .arg(dir.join(cache)));
        serde_json::from_slice(&out).unwrap()
    };
    let _ = std::fs::remove_dir_all(dir.join("cache-bench"));
    for (manifest, scans) in [("given.csv", false), ("labels.csv", true)] {
        let v = bench(manifest, "cache-bench");
        assert_eq!(
            (
                v["epochs"].as_u64(),
                v["batches"].as_u64(),
                v["samples"].as_u64()
            ),
            (Some(2), Some(2), Some(4))
        );
        let first = v["first_batch_s"].as_f64().unwrap();
        assert!(first > 0.0 && first < 60.0, "{first}");
        let meta = v["metadata_scan_s"].as_f64().unwrap();
        assert_eq!(meta > 0.0, scans, "{manifest}: {meta}");
    }
    let plan = |extra: &[&str]| -> serde_json::Value {
        let out = run(cli()
            .arg("plan")
            .arg(dir.join("given.csv"))
            .args([
                "--sampler",
                "random-clips:1:3",
                "--batch",
                "3",
                "--seed",
                "4",
                "--json",
            ])
            .args(extra));
        serde_json::from_slice(&out).unwrap()
    };
    let all = plan(&[]);
    let first = plan(&["--max-batches", "1"]);
    assert_eq!(all["batches"].as_array().unwrap().len(), 3);
    assert_eq!(first["batches"].as_array().unwrap().len(), 1);
    assert_eq!(first["batches"][0], all["batches"][0]);
    assert_eq!(first["metadata_scan_s"].as_f64(), Some(0.0));
    assert!(first["plan_s"].as_f64().unwrap() > 0.0);
}
