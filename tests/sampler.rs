//! Samplers on real files: uniform (numpy linspace), clips (stride, regular/random, by index/by time stamp,
//! ranges), random frames, the short-video policies, and determinism of everything random.

mod common;

use std::sync::Arc;

use common::*;
use rand_chacha::rand_core::SeedableRng;
use vidloader::{linspace, parse_sampler, SampleRng, Sampled, TimeRange, VideoView};
use vidloader::{
    ClipSampler, RandomFrameSampler, Sampler, ShortVideoPolicy, UniformSampler, VideoDataset,
    VideoMeta,
};

/// Metadata of a fixture (75 frames at 30 fps, keyframes 0/30/60 for `h264_b3_gop30.mp4`).
fn meta(name: &str) -> Arc<VideoMeta> {
    VideoDataset::from_list([(fixture(name), 0)])
        .with_cache_dir(None)
        .meta(0)
        .unwrap()
}

fn rng(seed: u8) -> SampleRng {
    SampleRng::from_seed([seed; 32])
}

fn sample_in(s: &dyn Sampler, m: &VideoMeta, range: TimeRange, seed: u8) -> Sampled {
    let path = std::path::Path::new("video.mp4");
    let view = VideoView {
        path,
        timeline: m.timeline(),
        range,
    };
    s.sample(&view, &mut rng(seed)).unwrap()
}

fn frames(s: &dyn Sampler, m: &VideoMeta, range: TimeRange, seed: u8) -> Vec<usize> {
    match sample_in(s, m, range, seed) {
        Sampled::Frames(f) => {
            assert_eq!(f.len(), s.frames_per_sample());
            f
        }
        Sampled::Skip(why) => panic!("unexpected skip: {why}"),
    }
}

const ALL: TimeRange = TimeRange::ALL;

#[test]
fn uniform_is_numpy_linspace_over_the_video_and_time_ranges() {
    let m = meta("h264_b3_gop30.mp4");
    assert_eq!(m.num_frames(), 75);
    // numpy.linspace(0, 74, 16).astype(int)
    assert_eq!(
        frames(&UniformSampler::new(16), &m, ALL, 0),
        vec![0, 4, 9, 14, 19, 24, 29, 34, 39, 44, 49, 54, 59, 64, 69, 74]
    );
    assert_eq!(
        frames(&UniformSampler::new(7), &m, ALL, 0),
        vec![0, 12, 24, 37, 49, 61, 74]
    );
    assert_eq!(frames(&UniformSampler::new(1), &m, ALL, 0), vec![0]);
    // [0.5 s, 1.5 s) at 30 fps holds frames 15..=44: numpy.linspace(15, 44, 5).astype(int).
    let s = UniformSampler::new(5).range(Some(0.5), Some(1.5));
    assert_eq!(frames(&s, &m, ALL, 0), vec![15, 22, 29, 36, 44]);
    // The entry's own range (from a manifest) intersects the sampler's.
    let s = UniformSampler::new(4).range(None, Some(2.0));
    assert_eq!(
        frames(&s, &m, TimeRange::new(Some(1.0), None), 0),
        vec![30, 39, 49, 59]
    );
    assert_eq!(
        linspace(0.0, 74.0, 16)
            .iter()
            .map(|&x| x as usize)
            .collect::<Vec<_>>(),
        frames(&UniformSampler::new(16), &m, ALL, 0)
    );
}

#[test]
fn regular_clips_by_index_with_stride() {
    let m = meta("h264_b3_gop30.mp4");
    // 3 clips of 4 frames every 5th frame: span 16, starts numpy.linspace(0, 59, 3) = 0, 29, 59.
    let s = ClipSampler::regular(3, 4).stride(5);
    assert_eq!((s.frames_per_sample(), s.frames_per_clip()), (12, 4));
    assert_eq!(
        frames(&s, &m, ALL, 0),
        vec![0, 5, 10, 15, 29, 34, 39, 44, 59, 64, 69, 74]
    );
    // Within [1 s, 2 s): frames 30..=59, one clip of 8 consecutive frames at each end.
    let s = ClipSampler::regular(2, 8).range(Some(1.0), Some(2.0));
    assert_eq!(
        frames(&s, &m, ALL, 0),
        vec![30, 31, 32, 33, 34, 35, 36, 37, 52, 53, 54, 55, 56, 57, 58, 59]
    );
}

#[test]
fn random_clips_stay_in_range_are_sorted_and_seeded() {
    let m = meta("h264_b3_gop30.mp4");
    let s = ClipSampler::random(3, 4)
        .stride(2)
        .range(Some(1.0), Some(2.0));
    let mut starts_seen = std::collections::BTreeSet::new();
    for seed in 0..100u8 {
        let f = frames(&s, &m, ALL, seed);
        assert_eq!(f, frames(&s, &m, ALL, seed), "same seed, same clips");
        let starts: Vec<usize> = f.chunks(4).map(|c| c[0]).collect();
        assert!(starts.windows(2).all(|w| w[0] <= w[1]), "{starts:?}");
        for clip in f.chunks(4) {
            assert!(clip.windows(2).all(|w| w[1] == w[0] + 2), "{clip:?}");
            assert!(clip[0] >= 30 && clip[3] <= 59, "{clip:?}");
        }
        starts_seen.extend(starts);
    }
    // Every possible start (30..=53) is drawn at some seed, and nothing else.
    assert_eq!(starts_seen, (30..=53).collect());
    assert_ne!(frames(&s, &m, ALL, 1), frames(&s, &m, ALL, 2));
}

#[test]
fn clips_by_time_stamp_follow_the_clock_of_a_variable_rate_video() {
    // 30 fps up to frame 30 (1 s), then 15 fps: frame i is at i/30 s, then at 1 + (i - 30)/15 s.
    let m = meta("h264_vfr.mp4");
    assert_eq!(m.num_frames(), 60);
    // Two clips of 4 frames 0.2 s apart, evenly spaced: starts at 0 s and at 2.9333 - 0.6 = 2.3333 s.
    let s = ClipSampler::regular(2, 4).seconds_between_frames(0.2);
    assert_eq!(frames(&s, &m, ALL, 0), vec![0, 6, 12, 18, 50, 53, 56, 59]);
    // Random positions by time: frame times step by ~0.2 s (one frame of 15 fps = 0.0667 s of slack).
    let s = ClipSampler::random(1, 3).seconds_between_frames(0.2);
    for seed in 0..20 {
        let f = frames(&s, &m, ALL, seed);
        let t: Vec<f64> = f.iter().map(|&i| m.timeline().time_of(i)).collect();
        for w in t.windows(2) {
            assert!((w[1] - w[0] - 0.2).abs() < 0.067 + 1e-6, "{t:?}");
        }
    }
}

#[test]
fn random_frames_are_distinct_sorted_and_cover_the_range() {
    let m = meta("h264_b3_gop30.mp4");
    let s = RandomFrameSampler::new(10);
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..60u8 {
        let f = frames(&s, &m, ALL, seed);
        assert!(
            f.windows(2).all(|w| w[0] < w[1]),
            "distinct and sorted: {f:?}"
        );
        assert!(f.iter().all(|&i| i < 75));
        seen.extend(f);
    }
    assert_eq!(seen, (0..75).collect());
    let s = RandomFrameSampler::new(15).range(Some(2.0), None);
    // Exactly the 15 frames of [2 s, end).
    assert_eq!(frames(&s, &m, ALL, 3), (60..75).collect::<Vec<_>>());
}

#[test]
fn short_video_policies_repeat_last_wrap_and_skip() {
    let m = meta("h264_b3_gop30.mp4");
    // A clip of 10 frames every 10th frame spans 91 > 75 frames.
    let clip = |p| ClipSampler::regular(2, 10).stride(10).policy(p);
    let one: Vec<usize> = vec![0, 10, 20, 30, 40, 50, 60, 70, 74, 74];
    assert_eq!(
        frames(&clip(ShortVideoPolicy::RepeatLast), &m, ALL, 0),
        [one.clone(), one].concat()
    );
    let wrapped: Vec<usize> = vec![0, 10, 20, 30, 40, 50, 60, 70, 5, 15];
    assert_eq!(
        frames(&clip(ShortVideoPolicy::Wrap), &m, ALL, 0),
        [wrapped.clone(), wrapped].concat()
    );
    assert!(matches!(
        sample_in(&clip(ShortVideoPolicy::Skip), &m, ALL, 0),
        Sampled::Skip(_)
    ));
    // By time: 4 frames 1 s apart need 3 s; the video is 2.5 s long (frame times 0 .. 2.4667).
    let timed = |p| {
        ClipSampler::random(1, 4)
            .seconds_between_frames(1.0)
            .policy(p)
    };
    assert_eq!(
        frames(&timed(ShortVideoPolicy::RepeatLast), &m, ALL, 0),
        vec![0, 30, 60, 74]
    );
    assert_eq!(
        frames(&timed(ShortVideoPolicy::Wrap), &m, ALL, 0),
        vec![0, 30, 60, 15]
    );
    // Uniform and random frames over a range of 15 frames ([0, 0.5 s)).
    let r = TimeRange::new(Some(0.0), Some(0.5));
    let u = |p| UniformSampler::new(18).policy(p);
    assert_eq!(
        frames(&u(ShortVideoPolicy::RepeatLast), &m, r, 0),
        [(0..15).collect::<Vec<_>>(), vec![14, 14, 14]].concat()
    );
    assert_eq!(
        frames(&u(ShortVideoPolicy::Wrap), &m, r, 0),
        [(0..15).collect::<Vec<_>>(), vec![0, 1, 2]].concat()
    );
    let rnd = RandomFrameSampler::new(17).policy(ShortVideoPolicy::Wrap);
    assert_eq!(
        frames(&rnd, &m, r, 0),
        [(0..15).collect::<Vec<_>>(), vec![0, 1]].concat()
    );
    assert!(matches!(
        sample_in(
            &RandomFrameSampler::new(17).policy(ShortVideoPolicy::Skip),
            &m,
            r,
            0
        ),
        Sampled::Skip(_)
    ));
}

#[test]
fn a_range_without_frames_is_an_error() {
    let m = meta("h264_b3_gop30.mp4");
    let view = VideoView {
        path: std::path::Path::new("video.mp4"),
        timeline: m.timeline(),
        range: TimeRange::new(Some(10.0), None),
    };
    assert!(UniformSampler::new(4).sample(&view, &mut rng(0)).is_err());
}

#[test]
fn parsed_samplers_match_the_built_ones() {
    let m = meta("h264_b3_gop30.mp4");
    let p = |s: &str| parse_sampler(s, ShortVideoPolicy::RepeatLast, ALL).unwrap();
    assert_eq!(
        frames(&p("uniform:16"), &m, ALL, 0),
        frames(&UniformSampler::new(16), &m, ALL, 0)
    );
    assert_eq!(
        frames(&p("clips:3:4:5"), &m, ALL, 0),
        frames(&ClipSampler::regular(3, 4).stride(5), &m, ALL, 0)
    );
    assert_eq!(
        frames(&p("random-clips:2:3:0.25s"), &m, ALL, 4),
        frames(
            &ClipSampler::random(2, 3).seconds_between_frames(0.25),
            &m,
            ALL,
            4
        )
    );
    assert_eq!(
        frames(&p("random:5"), &m, ALL, 9),
        frames(&RandomFrameSampler::new(5), &m, ALL, 9)
    );
}
