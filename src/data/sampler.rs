//! Samplers: which frames of a video make one sample.
//!
//! A [`Sampler`] looks at a video's frame times (its exact index, or the constant frame rate a manifest row gives:
//! see [`Timeline`]) and the time range its data set entry allows, and returns
//! the frame indices of one sample, `frames_per_sample` of them, in the order they go into the batch. The built-in
//! samplers use the words users know from torchcodec and DALI:
//!
//! - [`UniformSampler`]: `n` frames spaced evenly over the video or a time range, as
//!   `numpy.linspace(first, last, n).astype(int)`.
//! - [`ClipSampler`]: `num_clips` clips of `frames_per_clip` frames, `stride` frames apart (or
//!   `seconds_between_frames` apart by time stamp), at regular or random positions within the range.
//! - [`RandomFrameSampler`]: `n` distinct frames drawn at random, in increasing order.
//!
//! When the range is too short for a sample, [`ShortVideoPolicy`] decides: repeat the last frame, wrap around to
//! the first, or skip the video (with a warning).
//!
//! Randomness comes from the [`SampleRng`] the loader passes in, seeded from (seed, epoch, the video's index in the
//! data set), and is drawn only through [`below`] and [`unit`], which use the generator's raw 64-bit output: the
//! same seed gives the same frames on every platform and in every version, whichever worker or rank draws them.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use rand_chacha::rand_core::RngCore;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::io::index::FrameIndex;

/// The random generator samplers draw from (ChaCha8: portable and reproducible).
pub type SampleRng = rand_chacha::ChaCha8Rng;

/// A uniform integer in `0..n` (`n >= 1`), without bias (Lemire's multiply-and-reject on 64-bit draws).
pub fn below(rng: &mut SampleRng, n: u64) -> u64 {
    assert!(n > 0, "below(0)");
    let threshold = n.wrapping_neg() % n;
    loop {
        let m = u128::from(rng.next_u64()) * u128::from(n);
        if (m as u64) >= threshold {
            return (m >> 64) as u64;
        }
    }
}

/// A uniform float in `[0, 1)` with 53 random bits.
pub fn unit(rng: &mut SampleRng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// `numpy.linspace(start, stop, n)` (endpoint included), computed the way numpy does: `i * step + start`, the last
/// value exactly `stop`.
pub fn linspace(start: f64, stop: f64, n: usize) -> Vec<f64> {
    if n == 0 {
        return Vec::new();
    }
    if n == 1 {
        return vec![start];
    }
    let div = (n - 1) as f64;
    let delta = stop - start;
    let step = delta / div;
    let mut y: Vec<f64> = (0..n)
        .map(|i| {
            if step == 0.0 {
                i as f64 / div * delta + start
            } else {
                i as f64 * step + start
            }
        })
        .collect();
    y[n - 1] = stop;
    y
}

/// A part of a video in seconds of presentation time: `[start, end)`; `None` ends are open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct TimeRange {
    /// First second (inclusive).
    pub start: Option<f64>,
    /// Last second (exclusive).
    pub end: Option<f64>,
}

/// Frames whose time is within this of a range boundary count as on it (time stamps are rounded to ticks).
const TIME_EPS: f64 = 1e-6;

impl TimeRange {
    /// The whole video.
    pub const ALL: TimeRange = TimeRange {
        start: None,
        end: None,
    };

    /// `[start, end)` seconds.
    pub fn new(start: Option<f64>, end: Option<f64>) -> Self {
        TimeRange { start, end }
    }

    /// The part of the video inside both ranges.
    pub fn intersect(self, other: TimeRange) -> TimeRange {
        let max = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let min = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        TimeRange {
            start: max(self.start, other.start),
            end: min(self.end, other.end),
        }
    }

    /// The frames of `timeline` (a [`FrameIndex`] or a [`Timeline`]) whose presentation time `t` is in the range
    /// (`start <= t < end`), as index range.
    pub fn frames<'a>(&self, timeline: impl Into<Timeline<'a>>) -> Range<usize> {
        let index = timeline.into();
        let n = index.len();
        let first = self
            .start
            .map_or(0, |s| partition(n, |i| index.time_of(i) < s - TIME_EPS));
        let end = self
            .end
            .map_or(n, |e| partition(n, |i| index.time_of(i) < e - TIME_EPS));
        first..end.max(first)
    }
}

/// The first `i` in `0..n` for which `pred` is false (`pred` true on a prefix).
fn partition(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The frames of a video as a sampler sees them: how many, and when each is shown.
#[derive(Clone, Copy, Debug)]
pub enum Timeline<'a> {
    /// The exact index from a scan of the file: count, time stamps, keyframes.
    Index(&'a FrameIndex),
    /// What a manifest row's metadata columns give without the file being read: `frames` frames, frame `i` shown
    /// at `i / fps` seconds (a constant frame rate, the first frame at 0).
    Constant {
        /// Number of frames.
        frames: usize,
        /// Frames per second (finite, > 0).
        fps: f64,
    },
}

impl<'a> From<&'a FrameIndex> for Timeline<'a> {
    fn from(index: &'a FrameIndex) -> Self {
        Timeline::Index(index)
    }
}

impl Timeline<'_> {
    /// Number of frames.
    pub fn len(&self) -> usize {
        match self {
            Timeline::Index(i) => i.len(),
            Timeline::Constant { frames, .. } => *frames,
        }
    }

    /// Whether there is no frame.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Presentation time of frame `i` in seconds.
    pub fn time_of(&self, i: usize) -> f64 {
        match self {
            Timeline::Index(x) => x.time_of(i),
            Timeline::Constant { fps, .. } => i as f64 / fps,
        }
    }

    /// Typical frame duration in seconds.
    pub fn frame_duration_s(&self) -> f64 {
        match self {
            Timeline::Index(x) => x.frame_duration_s(),
            Timeline::Constant { fps, .. } => 1.0 / fps,
        }
    }

    /// Time of the end of the last frame, in seconds (0 without frames).
    pub fn end_time(&self) -> f64 {
        match self {
            Timeline::Index(x) if x.is_empty() => 0.0,
            Timeline::Index(x) => x.end_time(),
            Timeline::Constant { frames, fps } => *frames as f64 / fps,
        }
    }

    /// Checks that `i` is a frame index ([`Error::OutOfRange`] otherwise).
    pub fn check(&self, i: i64) -> Result<usize> {
        Error::check_index(i, self.len())
    }
}

/// What a sampler sees of a video.
#[derive(Clone, Copy, Debug)]
pub struct VideoView<'a> {
    /// The file (for messages; with [`Timeline::Constant`] it has not been opened and may not even exist yet).
    pub path: &'a Path,
    /// Its frames: count and time stamps.
    pub timeline: Timeline<'a>,
    /// The part of the video its data set entry allows (whole video when both ends are open).
    pub range: TimeRange,
}

/// The frames of one sample, or why the video gives none.
#[derive(Clone, Debug, PartialEq)]
pub enum Sampled {
    /// Frame indices, `frames_per_sample` of them, in batch order (repeats allowed).
    Frames(Vec<usize>),
    /// The video is skipped (e.g. too short under [`ShortVideoPolicy::Skip`]); the reason goes into a warning and
    /// the loader's summary.
    Skip(String),
}

/// Picks the frames of one sample of a video. Implement it to sample your own way; the loader calls it once per
/// video and epoch (from any worker thread), with a generator seeded for that video and epoch.
pub trait Sampler: Send + Sync + std::fmt::Debug {
    /// Frames in every sample (the `T` of a `[B, T, C, H, W]` batch).
    fn frames_per_sample(&self) -> usize;

    /// Frames per clip; `frames_per_sample` is a whole number of clips. Defaults to one clip per sample.
    fn frames_per_clip(&self) -> usize {
        self.frames_per_sample()
    }

    /// The frames of one sample of `video`. Randomness must come from `rng` only.
    fn sample(&self, video: &VideoView<'_>, rng: &mut SampleRng) -> Result<Sampled>;
}

impl<S: Sampler + ?Sized> Sampler for Arc<S> {
    fn frames_per_sample(&self) -> usize {
        (**self).frames_per_sample()
    }
    fn frames_per_clip(&self) -> usize {
        (**self).frames_per_clip()
    }
    fn sample(&self, video: &VideoView<'_>, rng: &mut SampleRng) -> Result<Sampled> {
        (**self).sample(video, rng)
    }
}

impl<S: Sampler + ?Sized> Sampler for Box<S> {
    fn frames_per_sample(&self) -> usize {
        (**self).frames_per_sample()
    }
    fn frames_per_clip(&self) -> usize {
        (**self).frames_per_clip()
    }
    fn sample(&self, video: &VideoView<'_>, rng: &mut SampleRng) -> Result<Sampled> {
        (**self).sample(video, rng)
    }
}

/// What to do with a video (or range) shorter than one sample needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShortVideoPolicy {
    /// Frames past the end are the last frame of the range (torchcodec's `repeat_last`).
    #[default]
    RepeatLast,
    /// Frames past the end continue from the start of the range (torchcodec's `wrap`).
    Wrap,
    /// The video gives no sample; the loader warns and moves on to the next video, which takes its place in the
    /// batch (the later batches of the epoch shift by one sample, see [`crate::ErrorPolicy::Skip`]).
    Skip,
}

impl std::str::FromStr for ShortVideoPolicy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "repeat_last" => Ok(Self::RepeatLast),
            "wrap" => Ok(Self::Wrap),
            "skip" => Ok(Self::Skip),
            _ => Err(Error::InvalidArgument(format!(
                "short-video policy '{s}' (use repeat_last, wrap or skip)"
            ))),
        }
    }
}

impl ShortVideoPolicy {
    /// Maps offset `k` (from the first frame of a range of `len` frames) into the range.
    fn fold(self, first: usize, len: usize, k: usize) -> usize {
        match self {
            ShortVideoPolicy::Wrap => first + k % len,
            _ => first + k.min(len - 1),
        }
    }

    fn skip_reason(self, available: &str, needed: &str) -> Option<Sampled> {
        (self == ShortVideoPolicy::Skip)
            .then(|| Sampled::Skip(format!("{available}, a sample needs {needed}")))
    }
}

/// What a sampler of `n` frames gives for the frames `r` when they are fewer than `n`: the policy's skip, or `n`
/// frames folded into `r` by the policy. `None` when `r` has `n` frames or more.
fn short_range(policy: ShortVideoPolicy, r: &Range<usize>, n: usize) -> Option<Sampled> {
    let len = r.len();
    if len >= n {
        return None;
    }
    Some(
        policy
            .skip_reason(&format!("{len} frames in range"), &format!("{n}"))
            .unwrap_or_else(|| {
                Sampled::Frames((0..n).map(|k| policy.fold(r.start, len, k)).collect())
            }),
    )
}

/// The frames of `video` in its range intersected with `own`; an empty range is an error.
fn frames_in(video: &VideoView<'_>, own: TimeRange) -> Result<Range<usize>> {
    let range = video.range.intersect(own);
    let r = range.frames(video.timeline);
    if r.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{}: no frame in the range {:?}..{:?} s (the video has {} frames, {:.3} s)",
            video.path.display(),
            range.start,
            range.end,
            video.timeline.len(),
            video.timeline.end_time()
        )));
    }
    Ok(r)
}

/// `n` frames spaced evenly over the video or a time range (`numpy.linspace(first, last, n).astype(int)`).
#[derive(Clone, Debug, PartialEq)]
pub struct UniformSampler {
    n: usize,
    range: TimeRange,
    policy: ShortVideoPolicy,
}

impl UniformSampler {
    /// `n` evenly spaced frames over the whole video.
    pub fn new(n: usize) -> Self {
        UniformSampler {
            n,
            range: TimeRange::ALL,
            policy: ShortVideoPolicy::default(),
        }
    }
    /// Samples only within `[start, end)` seconds (intersected with the entry's own range).
    pub fn range(mut self, start: Option<f64>, end: Option<f64>) -> Self {
        self.range = TimeRange::new(start, end);
        self
    }
    /// What to do when the range has fewer than `n` frames.
    pub fn policy(mut self, policy: ShortVideoPolicy) -> Self {
        self.policy = policy;
        self
    }
}

impl Sampler for UniformSampler {
    fn frames_per_sample(&self) -> usize {
        self.n
    }

    fn sample(&self, video: &VideoView<'_>, _rng: &mut SampleRng) -> Result<Sampled> {
        let r = frames_in(video, self.range)?;
        if let Some(short) = short_range(self.policy, &r, self.n) {
            return Ok(short);
        }
        Ok(Sampled::Frames(
            linspace(r.start as f64, (r.end - 1) as f64, self.n)
                .into_iter()
                .map(|x| x as usize)
                .collect(),
        ))
    }
}

/// Where clips start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClipPositions {
    /// Evenly spaced over the range, first clip at its start and last clip ending at its end.
    Regular,
    /// Drawn at random (independently, then sorted), each clip fully inside the range.
    Random,
}

/// How far apart the frames of a clip are.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClipSpacing {
    /// Every `stride`-th frame by index (`num_indices_between_frames`, DALI's `stride`).
    Frames(usize),
    /// Frames `seconds` apart by presentation time (`seconds_between_frames`): each is the frame on screen then.
    Seconds(f64),
}

/// `num_clips` clips of `frames_per_clip` frames each, at regular or random positions within the range.
#[derive(Clone, Debug, PartialEq)]
pub struct ClipSampler {
    num_clips: usize,
    frames_per_clip: usize,
    positions: ClipPositions,
    spacing: ClipSpacing,
    range: TimeRange,
    policy: ShortVideoPolicy,
}

impl ClipSampler {
    /// `num_clips` clips of `frames_per_clip` consecutive frames, evenly spaced over the range.
    pub fn regular(num_clips: usize, frames_per_clip: usize) -> Self {
        ClipSampler {
            num_clips,
            frames_per_clip,
            positions: ClipPositions::Regular,
            spacing: ClipSpacing::Frames(1),
            range: TimeRange::ALL,
            policy: ShortVideoPolicy::default(),
        }
    }
    /// `num_clips` clips of `frames_per_clip` consecutive frames at random positions in the range.
    pub fn random(num_clips: usize, frames_per_clip: usize) -> Self {
        ClipSampler {
            positions: ClipPositions::Random,
            ..Self::regular(num_clips, frames_per_clip)
        }
    }
    /// Takes every `stride`-th frame within a clip (1: consecutive frames).
    pub fn stride(mut self, stride: usize) -> Self {
        self.spacing = ClipSpacing::Frames(stride);
        self
    }
    /// Places clips and their frames by time stamp: frames `seconds` apart, each the frame on screen at its time.
    pub fn seconds_between_frames(mut self, seconds: f64) -> Self {
        self.spacing = ClipSpacing::Seconds(seconds);
        self
    }
    /// Samples only within `[start, end)` seconds (intersected with the entry's own range).
    pub fn range(mut self, start: Option<f64>, end: Option<f64>) -> Self {
        self.range = TimeRange::new(start, end);
        self
    }
    /// What to do when the range is shorter than one clip.
    pub fn policy(mut self, policy: ShortVideoPolicy) -> Self {
        self.policy = policy;
        self
    }
    /// The number of clips per sample.
    pub fn num_clips(&self) -> usize {
        self.num_clips
    }

    fn by_index(&self, r: Range<usize>, stride: usize, rng: &mut SampleRng) -> Result<Sampled> {
        let len = r.len();
        let span = (self.frames_per_clip - 1) * stride + 1;
        let (c, f) = (self.num_clips, self.frames_per_clip);
        if len < span {
            if let Some(s) = self
                .policy
                .skip_reason(&format!("{len} frames in range"), &format!("{span}"))
            {
                return Ok(s);
            }
            let clip: Vec<usize> = (0..f)
                .map(|k| self.policy.fold(r.start, len, k * stride))
                .collect();
            return Ok(Sampled::Frames(clip.repeat(c)));
        }
        let last_start = r.end - span;
        let starts: Vec<usize> = match self.positions {
            ClipPositions::Regular => linspace(r.start as f64, last_start as f64, c)
                .into_iter()
                .map(|x| x as usize)
                .collect(),
            ClipPositions::Random => {
                let mut s: Vec<usize> = (0..c)
                    .map(|_| r.start + below(rng, (last_start - r.start + 1) as u64) as usize)
                    .collect();
                s.sort_unstable();
                s
            }
        };
        Ok(Sampled::Frames(
            starts
                .iter()
                .flat_map(|&s| (0..f).map(move |k| s + k * stride))
                .collect(),
        ))
    }

    fn by_time(
        &self,
        index: Timeline<'_>,
        r: Range<usize>,
        dt: f64,
        rng: &mut SampleRng,
    ) -> Result<Sampled> {
        let (c, f) = (self.num_clips, self.frames_per_clip);
        let first_t = index.time_of(r.start);
        let last_t = index.time_of(r.end - 1);
        let duration = (f - 1) as f64 * dt;
        // The frame on screen at `t`, kept inside the range.
        let at = |t: f64| -> usize {
            let i = partition(index.len(), |i| index.time_of(i) <= t + TIME_EPS);
            i.saturating_sub(1).clamp(r.start, r.end - 1)
        };
        if last_t - first_t < duration - TIME_EPS {
            if let Some(s) = self.policy.skip_reason(
                &format!("{:.3} s in range", last_t - first_t),
                &format!("{duration:.3} s"),
            ) {
                return Ok(s);
            }
            // Past the end: the last frame (repeat_last), or time continues from the start (wrap).
            let period = last_t - first_t + index.frame_duration_s();
            let clip: Vec<usize> = (0..f)
                .map(|k| {
                    let t = k as f64 * dt;
                    match self.policy {
                        ShortVideoPolicy::Wrap => at(first_t + t.rem_euclid(period)),
                        _ => at(first_t + t),
                    }
                })
                .collect();
            return Ok(Sampled::Frames(clip.repeat(c)));
        }
        let last_start = last_t - duration;
        let starts: Vec<f64> = match self.positions {
            ClipPositions::Regular => linspace(first_t, last_start, c),
            ClipPositions::Random => {
                let mut s: Vec<f64> = (0..c)
                    .map(|_| first_t + unit(rng) * (last_start - first_t))
                    .collect();
                s.sort_by(f64::total_cmp);
                s
            }
        };
        Ok(Sampled::Frames(
            starts
                .iter()
                .flat_map(|&s| (0..f).map(move |k| s + k as f64 * dt))
                .map(at)
                .collect(),
        ))
    }
}

impl Sampler for ClipSampler {
    fn frames_per_sample(&self) -> usize {
        self.num_clips * self.frames_per_clip
    }

    fn frames_per_clip(&self) -> usize {
        self.frames_per_clip
    }

    fn sample(&self, video: &VideoView<'_>, rng: &mut SampleRng) -> Result<Sampled> {
        if self.num_clips == 0 || self.frames_per_clip == 0 {
            return Err(Error::InvalidArgument(
                "a clip sampler needs at least one clip of one frame".into(),
            ));
        }
        let r = frames_in(video, self.range)?;
        match self.spacing {
            ClipSpacing::Frames(0) => {
                Err(Error::InvalidArgument("stride must be at least 1".into()))
            }
            ClipSpacing::Frames(stride) => self.by_index(r, stride, rng),
            ClipSpacing::Seconds(dt) if !(dt.is_finite() && dt > 0.0) => Err(
                Error::InvalidArgument(format!("seconds_between_frames {dt} must be > 0")),
            ),
            ClipSpacing::Seconds(dt) => self.by_time(video.timeline, r, dt, rng),
        }
    }
}

/// `n` distinct frames drawn at random from the range, in increasing order.
#[derive(Clone, Debug, PartialEq)]
pub struct RandomFrameSampler {
    n: usize,
    range: TimeRange,
    policy: ShortVideoPolicy,
}

impl RandomFrameSampler {
    /// `n` distinct random frames of the whole video.
    pub fn new(n: usize) -> Self {
        RandomFrameSampler {
            n,
            range: TimeRange::ALL,
            policy: ShortVideoPolicy::default(),
        }
    }
    /// Samples only within `[start, end)` seconds (intersected with the entry's own range).
    pub fn range(mut self, start: Option<f64>, end: Option<f64>) -> Self {
        self.range = TimeRange::new(start, end);
        self
    }
    /// What to do when the range has fewer than `n` frames (then every frame is taken once before the policy
    /// fills the rest).
    pub fn policy(mut self, policy: ShortVideoPolicy) -> Self {
        self.policy = policy;
        self
    }
}

impl Sampler for RandomFrameSampler {
    fn frames_per_sample(&self) -> usize {
        self.n
    }

    fn sample(&self, video: &VideoView<'_>, rng: &mut SampleRng) -> Result<Sampled> {
        let r = frames_in(video, self.range)?;
        let len = r.len();
        if let Some(short) = short_range(self.policy, &r, self.n) {
            return Ok(short);
        }
        // Floyd's algorithm: n distinct values of 0..len with n draws.
        let mut chosen = std::collections::BTreeSet::new();
        for j in (len - self.n)..len {
            let t = below(rng, j as u64 + 1) as usize;
            if !chosen.insert(t) {
                chosen.insert(j);
            }
        }
        Ok(Sampled::Frames(
            chosen.into_iter().map(|i| r.start + i).collect(),
        ))
    }
}

/// The most frames per sample a description given to [`parse_sampler`] may ask for.
pub const MAX_SPEC_FRAMES: usize = 65_536;

/// Parses a sampler description, as the command line takes it:
///
/// - `uniform:N`: N evenly spaced frames;
/// - `clips:C:F[:STRIDE]`: C clips of F frames at regular positions, every STRIDE-th frame (default 1);
/// - `random-clips:C:F[:STRIDE]`: the same at random positions;
/// - `clips:C:F:0.25s` / `random-clips:C:F:0.25s`: frames 0.25 seconds apart by time stamp;
/// - `random:N`: N distinct random frames.
///
/// `policy` and `range` apply to every kind. A description that asks for more than [`MAX_SPEC_FRAMES`] frames per
/// sample is refused.
pub fn parse_sampler(
    spec: &str,
    policy: ShortVideoPolicy,
    range: TimeRange,
) -> Result<Arc<dyn Sampler>> {
    let bad = |why: &str| {
        Error::InvalidArgument(format!(
            "sampler '{spec}': {why} (use uniform:N, clips:C:F[:STRIDE|:SECONDSs], random-clips:C:F[:STRIDE|:SECONDSs] or random:N)"
        ))
    };
    let parts: Vec<&str> = spec.split(':').map(str::trim).collect();
    let count = |s: &str| -> Result<usize> {
        s.parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| bad(&format!("'{s}' is not a positive integer")))
    };
    let (start, end) = (range.start, range.end);
    // Frames per sample, checked before any sampler exists: each sample allocates them (found by fuzzing:
    // `clips:3333333:3` planned ten million frames per sample, a larger count would exhaust memory).
    let total = match parts.as_slice() {
        [_, n] => n.parse::<usize>().ok(),
        [_, c, f, ..] => c
            .parse::<usize>()
            .ok()
            .zip(f.parse::<usize>().ok())
            .map(|(c, f)| c.saturating_mul(f)),
        _ => None,
    };
    if total.is_some_and(|t| t > MAX_SPEC_FRAMES) {
        return Err(bad(&format!(
            "more than {MAX_SPEC_FRAMES} frames per sample"
        )));
    }
    match parts.as_slice() {
        ["uniform", n] => Ok(Arc::new(
            UniformSampler::new(count(n)?)
                .policy(policy)
                .range(start, end),
        )),
        ["random", n] => Ok(Arc::new(
            RandomFrameSampler::new(count(n)?)
                .policy(policy)
                .range(start, end),
        )),
        [kind @ ("clips" | "random-clips"), c, f, rest @ ..] if rest.len() <= 1 => {
            let mut s = if *kind == "clips" {
                ClipSampler::regular(count(c)?, count(f)?)
            } else {
                ClipSampler::random(count(c)?, count(f)?)
            };
            if let Some(step) = rest.first() {
                s = match step.strip_suffix('s') {
                    Some(secs) => s.seconds_between_frames(
                        secs.parse::<f64>()
                            .ok()
                            .filter(|t| t.is_finite() && *t > 0.0)
                            .ok_or_else(|| bad(&format!("'{step}' is not a positive time")))?,
                    ),
                    None => s.stride(count(step)?),
                };
            }
            Ok(Arc::new(s.policy(policy).range(start, end)))
        }
        _ => Err(bad("unknown form")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn linspace_matches_numpy() {
        // numpy.linspace(0, 74, 16).astype(int)
        let v: Vec<usize> = linspace(0.0, 74.0, 16)
            .into_iter()
            .map(|x| x as usize)
            .collect();
        assert_eq!(
            v,
            vec![0, 4, 9, 14, 19, 24, 29, 34, 39, 44, 49, 54, 59, 64, 69, 74]
        );
        assert_eq!(linspace(3.0, 9.0, 1), vec![3.0]);
        assert_eq!(linspace(5.0, 5.0, 3), vec![5.0, 5.0, 5.0]);
    }

    #[test]
    fn below_is_in_range_and_covers_it() {
        let mut rng = SampleRng::from_seed([7; 32]);
        let mut seen = [false; 5];
        for _ in 0..200 {
            let x = below(&mut rng, 5) as usize;
            seen[x] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert!((0..100).all(|_| (0.0..1.0).contains(&unit(&mut rng))));
    }

    #[test]
    fn parse_forms() {
        let p = |s| parse_sampler(s, ShortVideoPolicy::Wrap, TimeRange::ALL);
        assert_eq!(p("uniform:16").unwrap().frames_per_sample(), 16);
        let c = p("clips:2:8:3").unwrap();
        assert_eq!((c.frames_per_sample(), c.frames_per_clip()), (16, 8));
        assert_eq!(p("random-clips:1:4:0.5s").unwrap().frames_per_sample(), 4);
        assert_eq!(p("random:5").unwrap().frames_per_sample(), 5);
        assert_eq!(p("clips:256:256").unwrap().frames_per_sample(), 65_536);
        for bad in [
            "uniform",
            "uniform:0",
            "clips:2",
            "clips:1:2:x",
            "frames:3",
            "clips:1:2:-1s",
            // Found by the manifest fuzz target: ten million frames per sample.
            "clips:3333333:3",
            "uniform:65537",
            "clips:18446744073709551615:2",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
        assert_eq!(
            "repeat-last".parse::<ShortVideoPolicy>().unwrap(),
            ShortVideoPolicy::RepeatLast
        );
        assert!("pad".parse::<ShortVideoPolicy>().is_err());
    }
}
