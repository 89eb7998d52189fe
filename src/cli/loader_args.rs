//! Options shared by `bench` and `plan`: the data set, the sampler and the loader settings that decide the plan.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use vidloader::{dist_from_env, DataLoaderBuilder};
use vidloader::{parse_sampler, Sampler, ShortVideoPolicy, TimeRange};
use vidloader::{DataLoader, Error, ErrorPolicy, Resize, Result, VideoDataset};

#[derive(Args, Debug)]
pub struct LoaderArgs {
    /// The data set: a manifest (.csv or .jsonl: path,label[,start,end], and optionally the metadata columns
    /// num_frames,fps,width,height[,duration_s], which spare reading the files to plan) or a directory (videos
    /// found recursively, the first sub-directory naming the class; a labels.csv or labels.jsonl in it is used
    /// instead when present), or WebDataset tar shards: a .tar path or a brace pattern such as
    /// 'data/shard-{000000..000999}.tar' (several separated by '::'), each sample's video read in place, its
    /// .cls member the label.
    pub dataset: PathBuf,
    /// Frames of one sample: uniform:N (N evenly spaced frames), clips:C:F[:STRIDE] (C clips of F frames at
    /// regular positions, every STRIDE-th frame), random-clips:C:F[:STRIDE] (at random positions),
    /// clips:C:F:0.5s (frames 0.5 s apart by time stamp), random:N (N distinct random frames).
    #[arg(long, default_value = "uniform:8")]
    pub sampler: String,
    /// Videos (or ranges) shorter than a sample: repeat_last, wrap or skip.
    #[arg(long, default_value = "repeat_last")]
    pub short: String,
    /// Sample only within START:END seconds of each video (either may be empty).
    #[arg(long)]
    pub range: Option<String>,
    /// Samples per batch.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Seed of the shuffle, random samplers and random crops.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Keep the data set order instead of shuffling it every epoch.
    #[arg(long)]
    pub no_shuffle: bool,
    /// Tar shards: samples in the shuffle buffer (shard order is shuffled, then samples are drawn at random from a
    /// buffer of this many; 0: shard order only).
    #[arg(long, default_value_t = 1000)]
    pub shuffle_buffer: usize,
    /// Drop the last incomplete batch (every rank then gets the same number of batches).
    #[arg(long)]
    pub drop_last: bool,
    /// This process's rank (default: $RANK, else 0).
    #[arg(long)]
    pub rank: Option<usize>,
    /// Number of ranks (default: $WORLD_SIZE, else 1).
    #[arg(long)]
    pub world: Option<usize>,
    /// Resize whole frames to WxH.
    #[arg(long, value_name = "WxH")]
    pub resize: Option<String>,
    /// Crop WxH after scaling the shorter side to --shorter (default: the crop's shorter side).
    #[arg(long, value_name = "WxH", conflicts_with = "resize")]
    pub crop: Option<String>,
    /// Length of the shorter side before --crop.
    #[arg(long, requires = "crop")]
    pub shorter: Option<u32>,
    /// Crop at a random position (per sample) instead of the centre.
    #[arg(long, requires = "crop")]
    pub random_crop: bool,
    /// Skip samples that cannot be read (and report them) instead of failing.
    #[arg(long)]
    pub skip_errors: bool,
    /// Directory of the metadata cache (default: $VIDLOADER_CACHE_DIR, else ~/.cache/vidloader).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

fn size(s: &str) -> Result<(u32, u32)> {
    let bad = || Error::InvalidArgument(format!("size '{s}' (use WxH, e.g. 224x224)"));
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    if w == 0 || h == 0 {
        return Err(bad());
    }
    Ok((w, h))
}

fn range(s: &str) -> Result<TimeRange> {
    let bad = || Error::InvalidArgument(format!("range '{s}' (use START:END in seconds)"));
    let (a, b) = s.split_once(':').ok_or_else(bad)?;
    let t = |x: &str| -> Result<Option<f64>> {
        match x.trim() {
            "" => Ok(None),
            x => x.parse::<f64>().map(Some).map_err(|_| bad()),
        }
    };
    Ok(TimeRange::new(t(a)?, t(b)?))
}

impl LoaderArgs {
    pub fn sampler(&self) -> Result<Arc<dyn Sampler>> {
        let policy: ShortVideoPolicy = self.short.parse()?;
        let r = self
            .range
            .as_deref()
            .map(range)
            .transpose()?
            .unwrap_or_default();
        parse_sampler(&self.sampler, policy, r)
    }

    pub fn dataset(&self) -> Result<VideoDataset> {
        let (rank, world) = self.rank_world()?;
        let text = self.dataset.to_string_lossy();
        // Tar shards over several ranks: this rank reads (and indexes) its own shards only.
        let ds = if world > 1 && !self.dataset.is_dir() && VideoDataset::is_shard_pattern(&text) {
            VideoDataset::from_shards_of_rank(&text, rank, world)?
        } else {
            VideoDataset::open(&self.dataset)?
        };
        Ok(match &self.cache_dir {
            Some(d) => ds.with_cache_dir(Some(d.clone())),
            None => ds,
        })
    }

    /// This process's rank and the number of ranks: the options, else `$RANK` / `$WORLD_SIZE`, else 0 of 1.
    fn rank_world(&self) -> Result<(usize, usize)> {
        let env = dist_from_env()?;
        let rank = self.rank.or(env.map(|e| e.rank)).unwrap_or(0);
        let world = self.world.or(env.map(|e| e.world_size)).unwrap_or(1);
        Ok((rank, world))
    }

    /// A builder with the dataset, sampler, batching, shuffling, sharding, resize and error policy set.
    pub fn builder(&self) -> Result<DataLoaderBuilder> {
        let (rank, world) = self.rank_world()?;
        let mut b = DataLoader::builder(self.dataset()?)
            .sampler_arc(self.sampler()?)
            .batch_size(self.batch)
            .seed(self.seed)
            .shuffle(!self.no_shuffle)
            .shuffle_buffer(self.shuffle_buffer)
            .drop_last(self.drop_last)
            .shard(rank, world)
            .on_error(if self.skip_errors {
                ErrorPolicy::Skip
            } else {
                ErrorPolicy::Fail
            });
        if let Some(r) = &self.resize {
            let (width, height) = size(r)?;
            b = b.resize(width, height);
        }
        if let Some(c) = &self.crop {
            let (width, height) = size(c)?;
            b = b.resize_mode(Resize::ShorterSideCrop {
                shorter: self.shorter.unwrap_or(width.min(height)),
                width,
                height,
                random: self.random_crop,
            });
        }
        Ok(b)
    }
}

/// Parses `u8`, `f16`, `bf16` or `f32`.
pub fn dtype(s: &str) -> Result<tch::Kind> {
    match s {
        "u8" | "uint8" => Ok(tch::Kind::Uint8),
        "f16" | "half" => Ok(tch::Kind::Half),
        "bf16" => Ok(tch::Kind::BFloat16),
        "f32" | "float" => Ok(tch::Kind::Float),
        _ => Err(Error::InvalidArgument(format!(
            "dtype '{s}' (use u8, f16, bf16 or f32)"
        ))),
    }
}

/// Parses `imagenet` or `M,M,M/S,S,S`.
pub fn normalize(s: &str) -> Result<([f32; 3], [f32; 3])> {
    if s == "imagenet" {
        return Ok(([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]));
    }
    let bad = || Error::InvalidArgument(format!("normalize '{s}' (use imagenet or M,M,M/S,S,S)"));
    let (m, sd) = s.split_once('/').ok_or_else(bad)?;
    let three = |x: &str| -> Result<[f32; 3]> {
        let v: Vec<f32> = x
            .split(',')
            .map(|t| t.trim().parse::<f32>().map_err(|_| bad()))
            .collect::<Result<_>>()?;
        v.try_into().map_err(|_| bad())
    };
    Ok((three(m)?, three(sd)?))
}
