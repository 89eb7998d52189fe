//! `DataLoader`: batches of clips from a [`VideoDataset`], decoded by a pool of workers straight into batch
//! tensors on the CPU or a GPU.
//!
//! ```no_run
//! use vidloader::{ClipSampler, DataLoader, VideoDataset};
//!
//! # fn main() -> vidloader::Result<()> {
//! let loader = DataLoader::builder(VideoDataset::open("clips/")?)
//!     .sampler(ClipSampler::random(1, 16).stride(2))
//!     .batch_size(8)
//!     .shuffle(true)
//!     .seed(7)
//!     .resize(112, 112)
//!     .normalize([0.45; 3], [0.225; 3])
//!     .dtype(tch::Kind::Float)
//!     .build()?;
//! for batch in loader.epoch(0) {
//!     let batch = batch?; // frames [8, 16, 3, 112, 112], labels [8]
//!     println!("{:?} {:?}", batch.frames.size(), batch.samples[0].frames);
//! }
//! # Ok(()) }
//! ```
//!
//! Each epoch has a plan (see [`DataLoader::plan`]): the data set order (shuffled with the seed and epoch), this
//! rank's share of it, and per video the frames its sampler picks with a generator seeded from (seed, epoch,
//! video). Workers take samples in plan order, each with its own [`SimpleDecoder`] drawing on one shared
//! [`DecoderPool`], and decode all frames of a sample with one request, so clips that share a GOP decode it once;
//! frames go straight into their slot of a batch tensor that torch allocated once per batch. Batches come out in
//! plan order whatever the number of workers.

mod builder;
mod epoch;
mod headroom;
mod plan;
mod queue;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tch::{Device, Kind};

use crate::backend::Backend;
use crate::data::dataset::VideoDataset;
use crate::data::sampler::{Sampler, UniformSampler};
use crate::decode::options::DecoderOptions;
use crate::decode::pool::{DecoderPool, PoolStats};
use crate::decode::simple::DEFAULT_NVDEC_SESSIONS;
use crate::error::{Error, Result};
use crate::frame::color::ColorType;
use crate::frame::transform::Normalize;

use builder::cores;

/// Samples in the shuffle buffer of a data set of tar shards, unless the builder says otherwise.
const DEFAULT_SHUFFLE_BUFFER: usize = 1000;
pub use builder::{dist_from_env, DataLoaderBuilder, DistEnv};
pub use epoch::{Epoch, Epochs};
pub use plan::{Plan, SampleInfo, SkippedSample};

/// What happens when a sample cannot be read (missing or corrupt file, decode error).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorPolicy {
    /// The epoch iterator returns the error (and then ends).
    #[default]
    Fail,
    /// The sample is dropped with a warning, recorded in the summary, and the batch is filled from the next ones:
    /// the later batches of the epoch on this rank shift by one sample, and this rank may end with fewer batches
    /// than the others (README, "Skips and batch composition").
    Skip,
}

/// How frames are sized for the batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resize {
    /// The videos' own size (every video must have the size of the data set's first one).
    #[default]
    None,
    /// The whole picture resized (bilinear) to `width x height`, aspect ratio not kept.
    Fixed {
        /// Output width.
        width: u32,
        /// Output height.
        height: u32,
    },
    /// The shorter side scaled to `shorter`, then a `width x height` crop: centred, or at a random position
    /// drawn per sample (the same for every frame of the sample). Done as one crop of the source resized into the
    /// slot.
    ShorterSideCrop {
        /// Length of the shorter side after scaling.
        shorter: u32,
        /// Crop width.
        width: u32,
        /// Crop height.
        height: u32,
        /// Random position instead of the centre.
        random: bool,
    },
}

/// Dimension order of the frames tensor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum Layout {
    /// `[B, T, C, H, W]`.
    #[default]
    Btchw,
    /// `[B, C, H, W]`: one frame per sample (the sampler must give `T = 1`).
    Bchw,
    /// `[B, T, H, W, C]` (channels last).
    Bthwc,
    /// `[B, H, W, C]`: one frame per sample, channels last.
    Bhwc,
}

impl Layout {
    fn color(self) -> ColorType {
        match self {
            Layout::Btchw | Layout::Bchw => ColorType::Rgbp,
            Layout::Bthwc | Layout::Bhwc => ColorType::Rgb,
        }
    }
    fn has_time(self) -> bool {
        matches!(self, Layout::Btchw | Layout::Bthwc)
    }
}

/// One batch.
#[derive(Debug)]
pub struct Batch {
    /// The frames, `[B, T, 3, H, W]` by default (see [`Layout`]), of the loader's dtype and on its device.
    pub frames: tch::Tensor,
    /// Labels, int64 `[B]`, on the loader's device.
    pub labels: tch::Tensor,
    /// Where each sample came from (file, label, frame indices, times, crop), in batch order.
    pub samples: Vec<SampleInfo>,
    /// The epoch.
    pub epoch: u64,
    /// Position of the batch in the epoch.
    pub index: usize,
}

impl Batch {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether the batch has no sample (never for a delivered batch).
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The frames with the clips of each sample split out: `[B, clips, frames_per_clip, ...]` (a view, no copy).
    /// Only for layouts with a time dimension.
    pub fn clips(&self, frames_per_clip: usize) -> Result<tch::Tensor> {
        let size = self.frames.size();
        if size.len() != 5 || frames_per_clip == 0 || size[1] % frames_per_clip as i64 != 0 {
            return Err(Error::InvalidArgument(format!(
                "frames {size:?} cannot be split into clips of {frames_per_clip}"
            )));
        }
        let mut dims = vec![
            size[0],
            size[1] / frames_per_clip as i64,
            frames_per_clip as i64,
        ];
        dims.extend_from_slice(&size[2..]);
        Ok(self.frames.f_view(dims.as_slice())?)
    }
}

/// Throughput and pool counters of the epochs run so far.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LoaderSummary {
    /// Epochs finished or stopped.
    pub epochs: u64,
    /// Batches delivered.
    pub batches: u64,
    /// Samples delivered.
    pub samples: u64,
    /// Frames delivered (samples x frames per sample).
    pub frames: u64,
    /// Pictures the decoders decoded for them (counted by the decoders): `frames / frames_decoded` is how much
    /// of the decoding reached a batch.
    pub frames_decoded: u64,
    /// Packets of non-reference pictures no sample needed, dropped before they reached the decoder.
    pub packets_dropped: u64,
    /// Packets of H.264 reference pictures no sample depended on, decoded as skip pictures (a copy) instead.
    pub packets_substituted: u64,
    /// Samples decoded on the CPU because the loader's GPU decoder could not decode their video.
    pub cpu_fallbacks: u64,
    /// Samples decoded by the CPU workers of a hybrid loader (NVDEC and CPU decoders feeding one CUDA batch; see
    /// [`DataLoaderBuilder::cpu_workers`]); the rest of `samples` came from the loader's own backend.
    pub cpu_samples: u64,
    /// Seconds from the start of an epoch (its iterator made) to its last batch, summed over epochs.
    pub seconds: f64,
    /// The shared decoder pool's counters.
    pub pool: PoolStats,
    /// Samples that were skipped, and why.
    pub skipped: Vec<SkippedSample>,
}

impl LoaderSummary {
    /// What happened between `before` (an earlier summary of the same loader) and `self`: counts and seconds
    /// are differences; the pool's counters and the skipped samples are `self`'s.
    pub fn since(&self, before: &LoaderSummary) -> LoaderSummary {
        LoaderSummary {
            epochs: self.epochs.saturating_sub(before.epochs),
            batches: self.batches.saturating_sub(before.batches),
            samples: self.samples.saturating_sub(before.samples),
            frames: self.frames.saturating_sub(before.frames),
            frames_decoded: self.frames_decoded.saturating_sub(before.frames_decoded),
            packets_dropped: self.packets_dropped.saturating_sub(before.packets_dropped),
            packets_substituted: self
                .packets_substituted
                .saturating_sub(before.packets_substituted),
            cpu_fallbacks: self.cpu_fallbacks.saturating_sub(before.cpu_fallbacks),
            cpu_samples: self.cpu_samples.saturating_sub(before.cpu_samples),
            seconds: (self.seconds - before.seconds).max(0.0),
            pool: self.pool,
            skipped: self.skipped[before.skipped.len().min(self.skipped.len())..].to_vec(),
        }
    }

    /// Frames delivered per second.
    pub fn fps(&self) -> f64 {
        self.frames as f64 / self.seconds.max(1e-9)
    }
    /// Frames decoded per second (index model).
    pub fn decoded_fps(&self) -> f64 {
        self.frames_decoded as f64 / self.seconds.max(1e-9)
    }
    /// Batches per second.
    pub fn batches_per_s(&self) -> f64 {
        self.batches as f64 / self.seconds.max(1e-9)
    }
}

impl std::fmt::Display for LoaderSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} batches, {} frames in {:.2} s: {:.0} frames/s delivered, {:.0} decoded (ratio {:.2}), {:.1} batches/s, decoder pool hit rate {:.2}",
            self.batches,
            self.frames,
            self.seconds,
            self.fps(),
            self.decoded_fps(),
            self.frames as f64 / (self.frames_decoded.max(1)) as f64,
            self.batches_per_s(),
            self.pool.hit_rate()
        )?;
        if self.cpu_samples > 0 {
            write!(
                f,
                ", {:.0}% of the samples decoded by the CPU workers",
                100.0 * self.cpu_samples as f64 / self.samples.max(1) as f64
            )?;
        }
        if !self.skipped.is_empty() {
            write!(f, ", {} samples skipped", self.skipped.len())?;
        }
        Ok(())
    }
}

/// Settings of a loader (see the builder's methods).
#[derive(Clone, Debug)]
struct Config {
    batch_size: usize,
    shuffle: bool,
    /// Samples in the shuffle buffer of a data set of tar shards.
    shuffle_buffer: usize,
    seed: u64,
    epochs: u64,
    drop_last: bool,
    workers: usize,
    decode_threads: usize,
    max_decode_size: (u32, u32),
    prefetch: usize,
    device: Device,
    backend: Option<Backend>,
    layout: Layout,
    resize: Resize,
    normalize: Option<Normalize>,
    dtype: Kind,
    rank: usize,
    world_size: usize,
    on_error: ErrorPolicy,
    progress: bool,
    warnings: bool,
    cpu_fallback: bool,
    /// CPU workers beside the NVDEC ones (`None`: chosen from the cores).
    cpu_workers: Option<usize>,
}

/// What the loader, its epochs and their workers share.
pub(crate) struct Shared {
    dataset: VideoDataset,
    sampler: Arc<dyn Sampler>,
    cfg: Config,
    pool: Arc<DecoderPool>,
    /// Output width and height.
    out_size: (u32, u32),
    totals: Mutex<LoaderSummary>,
    /// The first CPU fallback was reported.
    fallback_said: std::sync::atomic::AtomicBool,
    /// Idle cores, for the CPU workers of a hybrid loader.
    headroom: headroom::CpuHeadroom,
    /// The hybrid CPU workers' smoothed time per sample, in microseconds (see `queue.rs`).
    cpu_sample_us: Arc<std::sync::atomic::AtomicU64>,
    /// Batch tensors handed back with [`DataLoader::recycle`], for the next batches to be written into.
    spare: Mutex<Vec<tch::Tensor>>,
}

impl Shared {
    /// The decoder backend for the loader's device ([`Backend::for_device`] unless overridden). An overriding
    /// `Backend::Auto` means the loader's GPU for CUDA batches (`AutoOn(n)`), never the worker thread's default
    /// device (a worker binds no CUDA context, so that would be GPU 0).
    fn backend(&self) -> Backend {
        match (self.cfg.backend, self.cfg.device) {
            (Some(Backend::Auto), Device::Cuda(n)) => Backend::AutoOn(n),
            (Some(b), _) => b,
            (None, d) => Backend::for_device(d),
        }
    }

    /// CPU workers that decode beside the NVDEC workers: only for CUDA batches decoded with NVDEC (the setting,
    /// or by default two cores fewer than the process may use).
    fn cpu_workers(&self) -> usize {
        let nvdec = matches!(self.cfg.device, Device::Cuda(_))
            && matches!(
                self.backend(),
                Backend::Nvdec(_) | Backend::Auto | Backend::AutoOn(_)
            );
        if !nvdec {
            return 0;
        }
        self.cfg
            .cpu_workers
            .unwrap_or_else(|| builder::cores().saturating_sub(2))
    }

    fn decoder_options(&self) -> DecoderOptions {
        DecoderOptions::default()
            .backend(self.backend())
            .color(self.cfg.layout.color())
            .threads(self.cfg.decode_threads)
            .max_size(self.cfg.max_decode_size.0, self.cfg.max_decode_size.1)
            .decoder_cache_size(self.pool_capacity())
            .sessions(self.sessions_per_sample())
    }

    /// NVDEC sessions one sample's request may use: the decoders' default budget shared among the workers. A
    /// sample of several keyframe groups (a long video) is spread over that many lanes, each with its own demuxer
    /// and hardware decoder for the video; with many workers the workers already keep the engines busy, and 14
    /// workers x 5 lanes each made 10 s videos slower than one worker did (H200: 1,021 against 1,106 fps).
    fn sessions_per_sample(&self) -> usize {
        (DEFAULT_NVDEC_SESSIONS / self.cfg.workers.max(1)).max(1)
    }

    fn pool_capacity(&self) -> usize {
        self.cfg.workers.max(4)
    }

    /// Dimensions of a full batch.
    /// A new batch tensor of `dims`: a recycled one when there is one, else freshly allocated.
    pub(crate) fn batch_tensor(&self, dims: &[i64]) -> Result<tch::Tensor> {
        let spare = self.spare.lock().ok().and_then(|mut s| s.pop());
        if let Some(t) = spare {
            if let Ok(t) = t.f_view(dims) {
                return Ok(t);
            }
        }
        crate::ffi::tensor::empty(dims, self.cfg.dtype, self.cfg.device)
    }

    fn batch_dims(&self, batch: usize) -> Vec<i64> {
        let (w, h) = (i64::from(self.out_size.0), i64::from(self.out_size.1));
        let t = self.sampler.frames_per_sample() as i64;
        match self.cfg.layout {
            Layout::Btchw | Layout::Bchw => vec![batch as i64, t, 3, h, w],
            Layout::Bthwc | Layout::Bhwc => vec![batch as i64, t, h, w, 3],
        }
    }
}

/// Batches of clips from a [`VideoDataset`]; see the module documentation.
pub struct DataLoader {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for DataLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataLoader")
            .field("videos", &self.shared.dataset.len())
            .field("sampler", &self.shared.sampler)
            .field("config", &self.shared.cfg)
            .finish()
    }
}

impl DataLoader {
    /// A builder over `dataset`.
    pub fn builder(dataset: VideoDataset) -> DataLoaderBuilder {
        let workers = cores().min(8);
        DataLoaderBuilder {
            dataset,
            sampler: Arc::new(UniformSampler::new(8)),
            cfg: Config {
                batch_size: 8,
                shuffle: false,
                shuffle_buffer: DEFAULT_SHUFFLE_BUFFER,
                seed: 0,
                epochs: 1,
                drop_last: false,
                workers,
                decode_threads: 0,
                max_decode_size: (0, 0),
                prefetch: 2,
                device: Device::Cpu,
                backend: None,
                layout: Layout::default(),
                resize: Resize::None,
                normalize: None,
                dtype: Kind::Uint8,
                rank: 0,
                world_size: 1,
                on_error: ErrorPolicy::Fail,
                progress: false,
                warnings: true,
                cpu_fallback: true,
                cpu_workers: None,
            },
            pool: None,
        }
    }

    /// The batches of epoch `epoch` on this rank, decoded in the background from now on (`prefetch` batches
    /// ahead); dropping the iterator stops the workers.
    pub fn epoch(&self, epoch: u64) -> Epoch {
        Epoch::start(self.shared.clone(), epoch)
    }

    /// Hands a delivered batch back once the training step is done with it: its frame tensor is written over by
    /// a later batch instead of allocating a new one. Only CPU batches are kept (a fresh host batch costs a page
    /// fault per page on first write: on the 2-core build machine 74-330 ms per 100 MB, as much as decoding into
    /// it; CUDA batches come from torch's caching allocator and gain nothing), only whole ones of this loader's
    /// shape and dtype, and at most as many as the loader prefetches. Hand back only a batch that nothing holds
    /// any more, not even a view of its frames (`narrow`, `view`, `select`, ...): the next batch overwrites it
    /// while the worker threads write.
    pub fn recycle(&self, batch: Batch) {
        let s = &self.shared;
        let t = batch.frames;
        let whole = t.device() == Device::Cpu
            && t.kind() == s.cfg.dtype
            && t.is_contiguous()
            && t.numel() as i64 == s.batch_dims(s.cfg.batch_size).iter().product::<i64>();
        if let (true, Ok(mut spare)) = (whole, s.spare.lock()) {
            if spare.len() <= s.cfg.prefetch {
                spare.push(t);
            }
        }
    }

    /// The batches of every epoch (`0..epochs`), one after the other.
    pub fn iter(&self) -> Epochs {
        Epochs::new(self.shared.clone(), self.shared.cfg.epochs)
    }

    /// What epoch `epoch` delivers on this rank (videos, frames, crops, in batch order), without decoding. With
    /// [`ErrorPolicy::Fail`] a video whose metadata cannot be read is an error; with `Skip` it is listed among
    /// the skipped ones. The loader delivers exactly these batches unless decoding itself fails.
    pub fn plan(&self, epoch: u64) -> Result<Plan> {
        self.plan_batches(epoch, usize::MAX)
    }

    /// The first `max_batches` batches of [`DataLoader::plan`]`(epoch)` (all of them when there are fewer), and
    /// the videos skipped before the last of them: only the videos those batches need are planned.
    pub fn plan_batches(&self, epoch: u64, max_batches: usize) -> Result<Plan> {
        let s = &self.shared;
        let (order, limit) = s.rank_order(epoch);
        let limit = Some(limit.unwrap_or(usize::MAX).min(max_batches));
        let b = s.cfg.batch_size;
        // Metadata first, in parallel (a packet scan per file not cached yet, nothing for rows whose manifest
        // gives it); errors show in the loop below, which also reads what the skipped videos leave to read.
        let wanted = limit.map_or(order.len(), |l| l.saturating_mul(b).min(order.len()));
        s.dataset.read_metas(&order[..wanted]);
        let mut samples = Vec::new();
        let mut skipped = Vec::new();
        for &idx in &order {
            if limit.is_some_and(|l| samples.len() >= l.saturating_mul(b)) {
                break;
            }
            match s.plan_sample(epoch, idx) {
                Ok(plan::Planned::Sample(info)) => samples.push(info),
                Ok(plan::Planned::Skip(reason)) => skipped.push(s.skipped(idx, reason)),
                Err(e) if s.cfg.on_error == ErrorPolicy::Skip => {
                    skipped.push(s.skipped(idx, e.to_string()))
                }
                Err(e) => return Err(e),
            }
        }
        let mut batches: Vec<Vec<SampleInfo>> = Vec::new();
        let mut it = samples.into_iter().peekable();
        while it.peek().is_some() {
            let batch: Vec<SampleInfo> = it.by_ref().take(b).collect();
            if batch.len() < b && s.cfg.drop_last {
                break;
            }
            batches.push(batch);
        }
        Ok(Plan {
            epoch,
            rank: s.cfg.rank,
            world_size: s.cfg.world_size,
            seed: s.cfg.seed,
            batch_size: b,
            batches,
            skipped,
        })
    }

    /// Batches per epoch on this rank when no sample is skipped.
    pub fn num_batches(&self) -> usize {
        let s = &self.shared;
        let n = s.dataset.len();
        let (w, b) = (s.cfg.world_size, s.cfg.batch_size);
        if s.cfg.drop_last {
            plan::full_batches_per_rank(n, w, b)
        } else {
            let mine = n / w + usize::from(s.cfg.rank < n % w);
            mine.div_ceil(b)
        }
    }

    /// Dimensions of a full batch's frames tensor.
    pub fn batch_shape(&self) -> Vec<i64> {
        let dims = self.shared.batch_dims(self.shared.cfg.batch_size);
        match self.shared.cfg.layout {
            Layout::Btchw | Layout::Bthwc => dims,
            Layout::Bchw | Layout::Bhwc => {
                let mut d = dims;
                d.remove(1);
                d
            }
        }
    }

    /// The data set.
    pub fn dataset(&self) -> &VideoDataset {
        &self.shared.dataset
    }

    /// The sampler.
    pub fn sampler(&self) -> &Arc<dyn Sampler> {
        &self.shared.sampler
    }

    /// The device batches are delivered on.
    pub fn device(&self) -> Device {
        self.shared.cfg.device
    }

    /// The decoder backend the workers use.
    pub fn backend(&self) -> Backend {
        self.shared.backend()
    }

    /// Decode workers.
    pub fn workers(&self) -> usize {
        self.shared.cfg.workers
    }

    /// CPU decode workers beside the NVDEC ones (hybrid decoding; 0 unless batches are on a CUDA device decoded
    /// with NVDEC). See [`DataLoaderBuilder::cpu_workers`].
    pub fn cpu_workers(&self) -> usize {
        self.shared.cpu_workers()
    }

    /// This rank and the number of ranks.
    pub fn shard_info(&self) -> (usize, usize) {
        (self.shared.cfg.rank, self.shared.cfg.world_size)
    }

    /// The shared decoder pool.
    pub fn pool(&self) -> &Arc<DecoderPool> {
        &self.shared.pool
    }

    /// Throughput, pool counters and skipped samples of the epochs run so far.
    pub fn summary(&self) -> LoaderSummary {
        let mut s = self
            .shared
            .totals
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default();
        s.pool = self.shared.pool.stats();
        s
    }
}

impl Shared {
    /// Says once per loader that videos go to the CPU decoder, and why.
    fn note_fallback(&self, path: &std::path::Path, why: &Error) {
        if self.cfg.warnings
            && !self
                .fallback_said
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            eprintln!(
                "vidloader: warning: decoding {} (and others like it) on the CPU: {why}",
                path.display()
            );
        }
    }

    fn skipped(&self, idx: usize, reason: String) -> SkippedSample {
        SkippedSample {
            dataset_index: idx,
            path: self
                .dataset
                .entry(idx)
                .map(|e| e.path.clone())
                .unwrap_or_else(|_| PathBuf::new()),
            reason,
        }
    }
}
