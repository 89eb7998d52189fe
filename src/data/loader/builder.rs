//! [`DataLoaderBuilder`]: every setting of a loader with its default, the distributed settings torchrun gives
//! ([`dist_from_env`]), and `build`.

use std::sync::{Arc, Mutex};

use tch::{Device, Kind};

use super::{Config, DataLoader, ErrorPolicy, Layout, LoaderSummary, Resize, Shared};
use crate::backend::Backend;
use crate::data::dataset::VideoDataset;
use crate::data::sampler::Sampler;
use crate::decode::pool::DecoderPool;
use crate::error::{Error, Result};
use crate::frame::transform::Normalize;

/// Builds a [`DataLoader`]; every setting has a default.
pub struct DataLoaderBuilder {
    pub(super) dataset: VideoDataset,
    pub(super) sampler: Arc<dyn Sampler>,
    pub(super) cfg: Config,
    pub(super) pool: Option<Arc<DecoderPool>>,
}

impl std::fmt::Debug for DataLoaderBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataLoaderBuilder")
            .field("config", &self.cfg)
            .finish()
    }
}

pub(super) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Where this process stands in a distributed run, as torchrun describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DistEnv {
    /// This process's rank (`RANK`, 0 when unset).
    pub rank: usize,
    /// The number of processes (`WORLD_SIZE`).
    pub world_size: usize,
    /// This process's rank on its machine (`LOCAL_RANK`, 0 when unset): the GPU it uses.
    pub local_rank: usize,
}

/// Rank, world size and local rank from the variables torchrun sets (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`); `None`
/// when `WORLD_SIZE` is not set.
pub fn dist_from_env() -> Result<Option<DistEnv>> {
    let var = |k: &str| -> Result<Option<usize>> {
        match std::env::var(k) {
            Ok(v) => v.trim().parse::<usize>().map(Some).map_err(|_| {
                Error::InvalidArgument(format!("environment variable {k}={v:?} is not a number"))
            }),
            Err(_) => Ok(None),
        }
    };
    let Some(world) = var("WORLD_SIZE")? else {
        return Ok(None);
    };
    let rank = var("RANK")?.unwrap_or(0);
    let local = var("LOCAL_RANK")?.unwrap_or(0);
    Ok(Some(DistEnv {
        rank,
        world_size: world,
        local_rank: local,
    }))
}

impl DataLoaderBuilder {
    /// The sampler (default: `UniformSampler::new(8)`).
    pub fn sampler(mut self, sampler: impl Sampler + 'static) -> Self {
        self.sampler = Arc::new(sampler);
        self
    }
    /// A shared sampler.
    pub fn sampler_arc(mut self, sampler: Arc<dyn Sampler>) -> Self {
        self.sampler = sampler;
        self
    }
    /// Samples per batch (default 8).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.cfg.batch_size = n;
        self
    }
    /// Shuffles the data set every epoch, from the seed and the epoch (default off).
    pub fn shuffle(mut self, on: bool) -> Self {
        self.cfg.shuffle = on;
        self
    }
    /// Samples in the shuffle buffer of a data set read from tar shards (default 1000, as WebDataset's examples
    /// use; 0 or 1: samples in shard order). With [`DataLoaderBuilder::shuffle`] on, such a data set is not
    /// shuffled whole: every epoch the rank's shards are put in a random order, and their samples, read shard after
    /// shard, pass through a buffer of this many from which each next one is drawn at random (WebDataset's
    /// `shuffle(n)`). A sample thus comes out at most `n - 1` places before where shard order puts it (later only
    /// with odds that fall off geometrically), and the samples in flight at one time come from a few neighbouring
    /// shards. The buffer holds positions, not
    /// decoded frames: its size costs no memory. Other data sets are shuffled whole and ignore it.
    pub fn shuffle_buffer(mut self, n: usize) -> Self {
        self.cfg.shuffle_buffer = n;
        self
    }
    /// Seed of the shuffle, the random samplers and random crops (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.cfg.seed = seed;
        self
    }
    /// Epochs that [`DataLoader::iter`] runs (default 1).
    pub fn epochs(mut self, n: u64) -> Self {
        self.cfg.epochs = n;
        self
    }
    /// Drops the last, incomplete batch; with several ranks every rank then delivers the same number of batches
    /// (default off).
    pub fn drop_last(mut self, on: bool) -> Self {
        self.cfg.drop_last = on;
        self
    }
    /// Decode workers: threads each with its own decoder (CPU) or NVDEC session (default: one per core).
    pub fn workers(mut self, n: usize) -> Self {
        self.cfg.workers = n;
        self
    }
    /// Hybrid decoding: `n` CPU decode workers beside the NVDEC workers of a loader whose batches are on a CUDA
    /// device. Each sample goes to whichever worker is free; a CPU worker decodes with libavcodec (one thread),
    /// copies the decoded planes to the GPU through pinned memory and converts them with the kernel NVDEC pictures
    /// go through, so a sample's values do not depend on the engine (H.264 and HEVC decode bit-exactly on both)
    /// and batches stay deterministic. A CPU worker takes a sample only while the machine has an idle core, so a
    /// busy training step pushes the work back to NVDEC. Default: the cores the process may use minus two; 0 turns
    /// it off. No effect on CPU batches. [`LoaderSummary::cpu_samples`] counts the CPU workers' share.
    pub fn cpu_workers(mut self, n: usize) -> Self {
        self.cfg.cpu_workers = Some(n);
        self
    }
    /// CPU decoding threads per worker (default: cores / workers, at least 1).
    pub fn decode_threads(mut self, n: usize) -> Self {
        self.cfg.decode_threads = n;
        self
    }
    /// The largest video size a decoder is set up for (default: each video's own). With a data set of mixed
    /// sizes, a limit that covers them lets one decoder (one NVDEC session) serve every video of a codec instead
    /// of one per size.
    pub fn max_decode_size(mut self, width: u32, height: u32) -> Self {
        self.cfg.max_decode_size = (width, height);
        self
    }
    /// Batches decoded ahead of the consumer (default 2).
    pub fn prefetch(mut self, depth: usize) -> Self {
        self.cfg.prefetch = depth;
        self
    }
    /// Where batches live: the CPU (decoded with libavcodec) or `Device::Cuda(n)` (decoded with NVDEC on GPU `n`).
    pub fn device(mut self, device: Device) -> Self {
        self.cfg.device = device;
        self
    }
    /// Overrides the decoder backend the device implies (e.g. CPU decoding into a CUDA batch).
    pub fn backend(mut self, backend: Backend) -> Self {
        self.cfg.backend = Some(backend);
        self
    }
    /// Dimension order of the frames tensor (default `[B, T, C, H, W]`).
    pub fn layout(mut self, layout: Layout) -> Self {
        self.cfg.layout = layout;
        self
    }
    /// Resizes whole frames to `width x height`.
    pub fn resize(mut self, width: u32, height: u32) -> Self {
        self.cfg.resize = Resize::Fixed { width, height };
        self
    }
    /// Any [`Resize`] mode (shorter side then centre or random crop).
    pub fn resize_mode(mut self, resize: Resize) -> Self {
        self.cfg.resize = resize;
        self
    }
    /// `(x / 255 - mean) / std` per channel (needs a float dtype).
    pub fn normalize(mut self, mean: [f32; 3], std: [f32; 3]) -> Self {
        self.cfg.normalize = Some(Normalize::new(mean, std));
        self
    }
    /// Element type: `Kind::Uint8` (default), `Half`, `BFloat16` or `Float`. Float outputs without
    /// normalisation hold 0..=255.
    pub fn dtype(mut self, kind: Kind) -> Self {
        self.cfg.dtype = kind;
        self
    }
    /// This process's rank and the number of ranks: each rank reads its own disjoint share of every epoch (of a
    /// data set read from tar shards: the shards `i` with `i % world_size == rank`, every epoch).
    pub fn shard(mut self, rank: usize, world_size: usize) -> Self {
        self.cfg.rank = rank;
        self.cfg.world_size = world_size;
        self
    }
    /// Rank and world size from `RANK` / `WORLD_SIZE` as torchrun sets them (unchanged when unset); with a CUDA
    /// device, the GPU is `LOCAL_RANK`.
    pub fn shard_from_env(mut self) -> Result<Self> {
        if let Some(env) = dist_from_env()? {
            self.cfg.rank = env.rank;
            self.cfg.world_size = env.world_size;
            if let Device::Cuda(_) = self.cfg.device {
                self.cfg.device = Device::Cuda(env.local_rank);
            }
        }
        Ok(self)
    }
    /// What a sample error does (default [`ErrorPolicy::Fail`]).
    pub fn on_error(mut self, policy: ErrorPolicy) -> Self {
        self.cfg.on_error = policy;
        self
    }
    /// A progress bar on stderr with live frames/s, ending each epoch on a summary (delivered and decoded
    /// frames/s, decoder pool hit rate); shown only when stderr is a terminal (default off).
    pub fn progress(mut self, on: bool) -> Self {
        self.cfg.progress = on;
        self
    }
    /// Whether skipped samples are reported on stderr as they happen (default on; they are always in the
    /// summary).
    pub fn warnings(mut self, on: bool) -> Self {
        self.cfg.warnings = on;
        self
    }
    /// Whether a video the GPU decoder cannot decode (a codec NVDEC lacks, or no NVDEC at all) is decoded on the
    /// CPU and copied into the batch, instead of being a sample error (default on; said once on stderr and
    /// counted in [`LoaderSummary::cpu_fallbacks`]).
    pub fn cpu_fallback(mut self, on: bool) -> Self {
        self.cfg.cpu_fallback = on;
        self
    }
    /// Shares an existing decoder pool (default: a new one sized for the workers).
    pub fn pool(mut self, pool: Arc<DecoderPool>) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Checks the settings and makes the loader. Without a resize, reads the metadata of the first video that
    /// opens to fix the batch's frame size.
    pub fn build(self) -> Result<DataLoader> {
        let DataLoaderBuilder {
            dataset,
            sampler,
            mut cfg,
            pool,
        } = self;
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if dataset.is_empty() {
            return bad("the data set has no videos".into());
        }
        if cfg.batch_size == 0 || cfg.workers == 0 || cfg.prefetch == 0 {
            return bad("batch_size, workers and prefetch must be at least 1".into());
        }
        if cfg.world_size == 0 || cfg.rank >= cfg.world_size {
            return bad(format!(
                "rank {} of world size {}",
                cfg.rank, cfg.world_size
            ));
        }
        if let Some((r, w)) = dataset.shard_rank() {
            if (r, w) != (cfg.rank, cfg.world_size) {
                return bad(format!(
                    "the data set holds the shards of rank {r} of {w}, the loader is rank {} of {}",
                    cfg.rank, cfg.world_size
                ));
            }
        }
        let t = sampler.frames_per_sample();
        if t == 0 {
            return bad("the sampler gives no frames".into());
        }
        if !cfg.layout.has_time() && t != 1 {
            return bad(format!(
                "layout {:?} holds one frame per sample; the sampler gives {t}",
                cfg.layout
            ));
        }
        if !matches!(
            cfg.dtype,
            Kind::Uint8 | Kind::Half | Kind::BFloat16 | Kind::Float
        ) {
            return bad(format!(
                "dtype {:?} (use Uint8, Half, BFloat16 or Float)",
                cfg.dtype
            ));
        }
        if cfg.normalize.is_some() && cfg.dtype == Kind::Uint8 {
            return bad("normalize needs a float dtype (Half, BFloat16 or Float)".into());
        }
        if let Some(n) = cfg.normalize {
            if n.std.iter().any(|&s| s == 0.0 || !s.is_finite()) {
                return bad(format!("normalisation std {:?}", n.std));
            }
        }
        if let Device::Cuda(n) = cfg.device {
            let count = if tch::Cuda::is_available() {
                tch::Cuda::device_count() as usize
            } else {
                0
            };
            if n >= count {
                return Err(Error::GpuUnavailable(format!(
                    "device cuda:{n} requested, torch sees {count} CUDA devices"
                )));
            }
        }
        if cfg.backend == Some(Backend::Auto) && cfg.device == Device::Cpu {
            // Host batches with `Auto` decoding: the GPU of the thread that builds the loader (what
            // `torch.cuda.set_device` selected), resolved here because the workers bind no CUDA context.
            cfg.backend = Some(Backend::AutoOn(crate::cuda::default_gpu()));
        }
        if cfg.decode_threads == 0 {
            cfg.decode_threads = (cores() / cfg.workers).max(1);
        }
        let out_size = match cfg.resize {
            Resize::Fixed { width, height } | Resize::ShorterSideCrop { width, height, .. }
                if width == 0 || height == 0 =>
            {
                return bad(format!("output size {width}x{height}"));
            }
            Resize::ShorterSideCrop { shorter: 0, .. } => {
                return bad("shorter side 0".into());
            }
            Resize::Fixed { width, height } | Resize::ShorterSideCrop { width, height, .. } => {
                (width, height)
            }
            Resize::None => {
                let mut first_err = None;
                let mut size = None;
                for i in 0..dataset.len() {
                    match dataset.meta(i) {
                        Ok(m) => {
                            size = Some((m.width, m.height));
                            break;
                        }
                        Err(e) if cfg.on_error == ErrorPolicy::Skip => {
                            first_err.get_or_insert(e);
                        }
                        Err(e) => return Err(e),
                    }
                }
                match (size, first_err) {
                    (Some(s), _) => s,
                    (None, Some(e)) => return Err(e),
                    (None, None) => return bad("no video opens".into()),
                }
            }
        };
        let shared = Shared {
            pool: pool.unwrap_or_else(|| DecoderPool::new(cfg.workers.max(4))),
            dataset,
            sampler,
            cfg,
            out_size,
            totals: Mutex::new(LoaderSummary::default()),
            fallback_said: std::sync::atomic::AtomicBool::new(false),
            headroom: Default::default(),
            cpu_sample_us: Default::default(),
            spare: Default::default(),
        };
        Ok(DataLoader {
            shared: Arc::new(shared),
        })
    }
}
