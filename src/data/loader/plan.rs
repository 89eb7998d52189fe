//! The plan of an epoch: which videos a rank reads, in which order, and which frames and crop each sample takes.
//! Everything here is a pure function of (data set, sampler, settings, seed, epoch, rank, world size) and the
//! videos' metadata (read from the files, or given by the manifest's rows); nothing is decoded.

use std::path::PathBuf;

use rand_chacha::rand_core::SeedableRng;
use serde::Serialize;

use crate::data::sampler::{below, SampleRng, Sampled, TimeRange, VideoView};
use crate::error::{Error, Result};
use crate::frame::transform::CropRect;

use super::{Resize, Shared};

/// One sample of a batch: where its frames come from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SampleInfo {
    /// Position of the video in the data set.
    pub dataset_index: usize,
    /// The video file.
    pub path: PathBuf,
    /// Its label.
    pub label: i64,
    /// For a video stored in a tar shard (`path` is the shard): the sample's key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The sample's `.txt` member (tar shards).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The sample's `.json` member (tar shards).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<serde_json::Value>,
    /// Frame indices, in the order of the batch's `T` dimension.
    pub frames: Vec<usize>,
    /// Presentation time of each frame in seconds.
    pub times: Vec<f64>,
    /// The rectangle of the picture that was resized into the slot (`None`: the whole picture).
    #[serde(serialize_with = "ser_crop")]
    pub crop: Option<CropRect>,
}

fn ser_crop<S: serde::Serializer>(
    c: &Option<CropRect>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match c {
        None => s.serialize_none(),
        Some(c) => [c.left, c.top, c.width, c.height].serialize(s),
    }
}

/// A video that gave no sample, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SkippedSample {
    /// Position of the video in the data set.
    pub dataset_index: usize,
    /// The video file.
    pub path: PathBuf,
    /// Why (too short under the skip policy, or the error that [`super::ErrorPolicy::Skip`] skipped).
    pub reason: String,
}

/// The batches an epoch will deliver on one rank, computed without decoding anything.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// The epoch.
    pub epoch: u64,
    /// This rank.
    pub rank: usize,
    /// Number of ranks.
    pub world_size: usize,
    /// The seed.
    pub seed: u64,
    /// Samples per batch.
    pub batch_size: usize,
    /// Batches in delivery order, each a list of samples in slot order.
    pub batches: Vec<Vec<SampleInfo>>,
    /// Videos that give no sample this epoch (decode errors, which only decoding finds, are not among them).
    pub skipped: Vec<SkippedSample>,
}

/// SplitMix64's finaliser: a well-mixed 64-bit value from any input.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A ChaCha8 generator for `(seed, epoch, item, purpose)`, seeded through SplitMix64 (fully specified here, so the
/// same on every platform and version).
pub(crate) fn rng_for(seed: u64, epoch: u64, item: u64, purpose: u64) -> SampleRng {
    let mut state = mix(mix(mix(mix(seed) ^ epoch) ^ item) ^ purpose);
    let mut key = [0u8; 32];
    for chunk in key.chunks_mut(8) {
        state = mix(state);
        chunk.copy_from_slice(&state.to_le_bytes());
    }
    SampleRng::from_seed(key)
}

/// Purposes of the per-item generators.
const SHUFFLE: u64 = 0;
const FRAMES: u64 = 1;
const CROP: u64 = 2;
const SHARD_ORDER: u64 = 3;
const SHUFFLE_BUFFER: u64 = 4;

/// Indices `0..n` in epoch order: shuffled (Fisher-Yates with the `(seed, epoch)` generator) or as they are.
pub(crate) fn epoch_order(n: usize, shuffle: bool, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    if shuffle {
        let mut rng = rng_for(seed, epoch, u64::MAX, SHUFFLE);
        for i in (1..n).rev() {
            let j = below(&mut rng, i as u64 + 1) as usize;
            order.swap(i, j);
        }
    }
    order
}

/// Rank `rank`'s share of `order`: every `world`-th entry starting at `rank` (ranks are disjoint and together
/// hold every entry).
pub(crate) fn shard(order: &[usize], rank: usize, world: usize) -> Vec<usize> {
    order.iter().skip(rank).step_by(world).copied().collect()
}

/// WebDataset's `shuffle(buffer)`: `items` in the order a buffer of `buffer` of them gives, drawing each next one at
/// random from the buffer once it is full (and from what is left at the end). `buffer` 0 or 1 keeps the order.
pub(crate) fn buffer_shuffle(items: &[usize], buffer: usize, rng: &mut SampleRng) -> Vec<usize> {
    if buffer <= 1 {
        return items.to_vec();
    }
    let mut out = Vec::with_capacity(items.len());
    let mut buf: Vec<usize> = Vec::with_capacity(buffer.min(items.len()));
    for &item in items {
        if buf.len() < buffer {
            buf.push(item);
            continue;
        }
        let k = below(rng, buf.len() as u64) as usize;
        out.push(std::mem::replace(&mut buf[k], item));
    }
    while !buf.is_empty() {
        let k = below(rng, buf.len() as u64) as usize;
        out.push(buf.swap_remove(k));
    }
    out
}

/// Batches per rank when `drop_last` is on: the same on every rank, so that collective operations stay in step.
pub(crate) fn full_batches_per_rank(n: usize, world: usize, batch: usize) -> usize {
    n / (world * batch)
}

/// The outcome of planning one sample.
pub(crate) enum Planned {
    Sample(SampleInfo),
    Skip(String),
}

impl Shared {
    /// The frames (and crop) of video `idx` in `epoch`.
    pub(crate) fn plan_sample(&self, epoch: u64, idx: usize) -> Result<Planned> {
        let entry = self.dataset.entry(idx)?;
        let meta = self.dataset.meta(idx)?;
        let timeline = meta.timeline();
        let view = VideoView {
            path: &entry.path,
            timeline,
            range: TimeRange::new(entry.start, entry.end),
        };
        let mut rng = rng_for(self.cfg.seed, epoch, idx as u64, FRAMES);
        let frames = match self.sampler.sample(&view, &mut rng)? {
            Sampled::Frames(f) => f,
            Sampled::Skip(reason) => return Ok(Planned::Skip(reason)),
        };
        let t = self.sampler.frames_per_sample();
        if frames.len() != t {
            return Err(Error::InvalidArgument(format!(
                "{}: the sampler gave {} frames, it promised {t}",
                entry.name(),
                frames.len()
            )));
        }
        for &f in &frames {
            timeline.check(f as i64)?;
        }
        let crop = self.crop_for(epoch, idx, meta.width, meta.height)?;
        let member = entry.member.as_deref();
        Ok(Planned::Sample(SampleInfo {
            dataset_index: idx,
            path: entry.path.clone(),
            label: entry.label,
            key: member.map(|m| m.key.clone()),
            text: member.and_then(|m| m.text.clone()),
            json: member.and_then(|m| m.json.clone()),
            times: frames.iter().map(|&f| timeline.time_of(f)).collect(),
            frames,
            crop,
        }))
    }

    /// The source rectangle resized into the slot, for a `w x h` video.
    fn crop_for(&self, epoch: u64, idx: usize, w: u32, h: u32) -> Result<Option<CropRect>> {
        match self.cfg.resize {
            Resize::None => {
                let (ow, oh) = (self.out_size.0, self.out_size.1);
                if (w, h) != (ow, oh) {
                    return Err(Error::InvalidArgument(format!(
                        "{}: {w}x{h} frames do not fit a {ow}x{oh} batch; set a resize",
                        self.dataset.entry(idx)?.name()
                    )));
                }
                Ok(None)
            }
            Resize::Fixed { .. } => Ok(None),
            Resize::ShorterSideCrop {
                shorter,
                width,
                height,
                random,
            } => {
                // Output pixels per source pixel, then the source rectangle that becomes the width x height crop.
                let scale = f64::from(shorter) / f64::from(w.min(h).max(1));
                let cw = ((f64::from(width) / scale).round() as u32).clamp(1, w);
                let ch = ((f64::from(height) / scale).round() as u32).clamp(1, h);
                let (left, top) = if random {
                    let mut rng = rng_for(self.cfg.seed, epoch, idx as u64, CROP);
                    (
                        below(&mut rng, u64::from(w - cw) + 1) as u32,
                        below(&mut rng, u64::from(h - ch) + 1) as u32,
                    )
                } else {
                    ((w - cw) / 2, (h - ch) / 2)
                };
                // Even origins keep 4:2:0 chroma aligned (NVDEC needs it); the rectangle stays inside the picture.
                Ok(Some(CropRect {
                    left: left & !1,
                    top: top & !1,
                    width: cw,
                    height: ch,
                }))
            }
        }
    }

    /// This rank's videos for `epoch`, in order, and the batch limit (`drop_last`).
    pub(crate) fn rank_order(&self, epoch: u64) -> (Vec<usize>, Option<usize>) {
        if self.dataset.shard_count() > 0 {
            return self.shard_rank_order(epoch);
        }
        let n = self.dataset.len();
        let order = epoch_order(n, self.cfg.shuffle, self.cfg.seed, epoch);
        let mine = shard(&order, self.cfg.rank, self.cfg.world_size);
        let limit = self
            .cfg
            .drop_last
            .then(|| full_batches_per_rank(n, self.cfg.world_size, self.cfg.batch_size));
        (mine, limit)
    }
}

impl Shared {
    /// [`Shared::rank_order`] for a data set of tar shards: this rank's shards (`i % world_size == rank`), in an
    /// order shuffled from `(seed, epoch)`, their samples in archive order through the shuffle buffer. With
    /// `drop_last`, every rank stops after the batches the rank with the fewest samples fills.
    fn shard_rank_order(&self, epoch: u64) -> (Vec<usize>, Option<usize>) {
        let (rank, world) = (self.cfg.rank, self.cfg.world_size.max(1));
        let count = self.dataset.shard_count();
        let mut shards: Vec<usize> = (rank..count).step_by(world).collect();
        if self.cfg.shuffle {
            let mut rng = rng_for(self.cfg.seed, epoch, rank as u64, SHARD_ORDER);
            for i in (1..shards.len()).rev() {
                let j = below(&mut rng, i as u64 + 1) as usize;
                shards.swap(i, j);
            }
        }
        let samples: Vec<usize> = shards
            .iter()
            .flat_map(|&s| self.dataset.shard_entries(s))
            .collect();
        let order = if self.cfg.shuffle {
            let mut rng = rng_for(self.cfg.seed, epoch, rank as u64, SHUFFLE_BUFFER);
            buffer_shuffle(&samples, self.cfg.shuffle_buffer, &mut rng)
        } else {
            samples
        };
        let limit = self.cfg.drop_last.then(|| {
            if self.dataset.shard_rank().is_some() {
                // Only this rank's shards were read: its own full batches.
                return order.len() / self.cfg.batch_size.max(1);
            }
            (0..world)
                .map(|r| {
                    (r..count)
                        .step_by(world)
                        .map(|s| self.dataset.shard_entries(s).len())
                        .sum::<usize>()
                })
                .min()
                .unwrap_or(0)
                / self.cfg.batch_size.max(1)
        });
        (order, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_disjoint_and_complete() {
        let order = epoch_order(10, true, 3, 1);
        let mut all: Vec<usize> = (0..3).flat_map(|r| shard(&order, r, 3)).collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(full_batches_per_rank(10, 3, 2), 1);
    }

    #[test]
    fn the_shuffle_buffer_is_bounded_and_keeps_every_item() {
        let items: Vec<usize> = (0..1000).collect();
        let mut rng = rng_for(1, 2, 3, SHUFFLE_BUFFER);
        let out = buffer_shuffle(&items, 10, &mut rng);
        let mut sorted = out.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, items);
        assert_ne!(out, items);
        // An item leaves the buffer at the earliest when it enters it, so it comes out at most `buffer - 1` places
        // before its place in the input.
        for (pos, &item) in out.iter().enumerate() {
            assert!(pos + 9 >= item, "item {item} came out at {pos}");
        }
        assert_eq!(buffer_shuffle(&items, 1, &mut rng), items);
        let again = buffer_shuffle(&items, 10, &mut rng_for(1, 2, 3, SHUFFLE_BUFFER));
        assert_eq!(again, out);
    }

    #[test]
    fn shuffle_depends_on_seed_and_epoch_only() {
        assert_eq!(epoch_order(50, true, 1, 2), epoch_order(50, true, 1, 2));
        assert_ne!(epoch_order(50, true, 1, 2), epoch_order(50, true, 1, 3));
        assert_ne!(epoch_order(50, true, 1, 2), epoch_order(50, true, 2, 2));
        assert_eq!(epoch_order(5, false, 1, 2), vec![0, 1, 2, 3, 4]);
    }
}
