//! `VideoDataset`: the list of videos a loader reads, with a label and an optional time range each, and their
//! metadata (size, codec, exact frame index) loaded lazily and cached on disk.
//!
//! A data set comes from a directory (searched recursively for video files; the first sub-directory under the root
//! names the class), from a manifest (CSV or JSON lines with `path`, `label` and optional `start` / `end` seconds),
//! or from a list. Labels are integers, or class names that are mapped to ids (sorted names, or an order given with
//! [`VideoDataset::with_classes`]).
//!
//! A manifest row may also give the video's metadata (`num_frames`, `fps`, `width`, `height`, optionally
//! `duration_s`: a [`ManifestMeta`]). Such a row is planned from those values and its file is not opened until a
//! worker decodes it; [`VideoDataset::check_meta`] then holds the values against the video, and a value that is
//! wrong is an [`Error::ManifestMismatch`] naming the row.
//!
//! A data set also comes from WebDataset tar shards ([`VideoDataset::from_shards`]): each sample's video is read in
//! place as a byte range of its shard, its `.cls` member is its label (as a manifest's label column is), its
//! `.txt` and `.json` members are kept on the entry ([`ShardMember`]).
//!
//! Metadata of the other videos costs one scan of a file's packets (no decoding). It is kept in memory for the life
//! of the data set and in the cache directory's [`MetadataCache`] (one SQLite database shared by every process),
//! keyed by the file's canonical path, size and modification time: a file that changes is scanned again, and an
//! entry that fails the cache's checks is counted in [`CacheStats::rejected`], never used, and replaced by a new
//! scan's.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use serde::Deserialize;

use crate::data::cache::{
    default_cache_dir, CacheKey, CacheRecord, CacheStats, Entry as CacheEntry, Lookup,
    MetadataCache,
};
use crate::data::sampler::Timeline;
use crate::data::shards;
use crate::error::{Error, Result};
use crate::io::demux::{Demuxer, StreamInfo};
use crate::io::index::FrameIndex;
use crate::io::source::Source;

/// File extensions [`VideoDataset::from_dir`] takes for videos (compared without regard to case).
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "ts", "mts", "m2ts", "mpg", "mpeg", "vob", "mxf",
    "flv", "wmv", "3gp", "ogv", "ivf", "y4m",
];

/// Label of a video without one (directory roots, manifests without a label column).
pub const NO_LABEL: i64 = -1;

/// One video of a data set.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoEntry {
    /// Where the file is.
    pub path: PathBuf,
    /// Class id ([`NO_LABEL`] when the video has none).
    pub label: i64,
    /// The class name the label came from, when it was given by name.
    pub class: Option<String>,
    /// Start of the part of the video to sample from, in seconds (`None`: the beginning).
    pub start: Option<f64>,
    /// End of the part of the video to sample from, in seconds, exclusive (`None`: the end).
    pub end: Option<f64>,
    /// The video's metadata as its manifest row gives it: the loader plans from it without opening the file
    /// (`None`: read from the file).
    pub meta: Option<ManifestMeta>,
    /// The manifest line the entry comes from (1-based; `None` for entries not read from a manifest).
    pub line: Option<u32>,
    /// For a video stored in a tar shard (`path` is then the shard): where it lies in the shard, and its sample's
    /// key and `.txt` / `.json` members. `None` for a video file of its own.
    pub member: Option<Box<ShardMember>>,
}

/// Where the video of a tar shard's sample lies in the shard, and the sample's other members (see
/// [`VideoDataset::from_shards`]). The sample's `.cls` member is the entry's label.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardMember {
    /// The shard's position in [`VideoDataset::shards`].
    pub shard: usize,
    /// The sample's key (WebDataset's `__key__`): the members' names up to the first dot of their file names.
    pub key: String,
    /// The video member's name in the archive.
    pub name: String,
    /// Byte offset of the video's data in the shard.
    pub offset: u64,
    /// Length of the video in bytes.
    pub len: u64,
    /// The sample's `.txt` member.
    pub text: Option<String>,
    /// The sample's `.json` member, parsed.
    pub json: Option<serde_json::Value>,
}

impl VideoEntry {
    /// A whole video with an integer label.
    pub fn new(path: impl Into<PathBuf>, label: i64) -> Self {
        VideoEntry {
            path: path.into(),
            label,
            class: None,
            start: None,
            end: None,
            meta: None,
            line: None,
            member: None,
        }
    }

    /// Where the video's bytes are read from: its file, or its byte range of a tar shard
    /// ([`Source::Range`], named `<shard>:<member>`).
    pub fn source(&self) -> Source {
        match &self.member {
            None => Source::Path(self.path.clone()),
            Some(m) => Source::from_file_range(
                self.path.clone(),
                m.offset,
                m.len,
                format!("{}:{}", self.path.display(), m.name),
            ),
        }
    }

    /// The video for messages: its path, or `<shard>:<member>`.
    pub fn name(&self) -> String {
        match &self.member {
            None => self.path.display().to_string(),
            Some(m) => format!("{}:{}", self.path.display(), m.name),
        }
    }

    /// Restricts sampling to `[start, end)` seconds.
    pub fn range(mut self, start: Option<f64>, end: Option<f64>) -> Self {
        self.start = start;
        self.end = end;
        self
    }

    /// Gives the video's metadata, so that planning does not open the file (checked when the file is decoded:
    /// see [`VideoDataset::check_meta`]).
    pub fn with_meta(mut self, meta: ManifestMeta) -> Self {
        self.meta = Some(meta);
        self
    }
}

/// A video's metadata as a manifest row gives it: the columns `num_frames`, `fps`, `width`, `height` (all four, or
/// none) and optionally `duration_s`.
///
/// The loader plans such a video from these values alone: [`Timeline::Constant`], `num_frames` frames with frame
/// `i` at `i / fps` seconds. When a worker opens the file to decode it, [`VideoDataset::check_meta`] holds them
/// against the video: `num_frames`, `width` and `height` must be exact, every frame must be shown within half a
/// frame of `i / fps` (so a variable frame rate, a first time stamp other than 0 or a rounded rate that drifts by
/// half a frame over the video do not match), and `duration_s` must be within one frame of the container's
/// duration where the container gives one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ManifestMeta {
    /// Number of frames (exact, at least 1).
    pub num_frames: u32,
    /// Frames per second (a constant rate; `MIN_FPS..=MAX_FPS`).
    pub fps: f64,
    /// Picture width (at least 1).
    pub width: u32,
    /// Picture height (at least 1).
    pub height: u32,
    /// Duration in seconds, as the container gives it (`None`: not given, not checked).
    pub duration_s: Option<f64>,
}

impl ManifestMeta {
    /// The lowest frame rate a manifest row may give (one frame in about 17 minutes).
    pub const MIN_FPS: f64 = 1e-3;
    /// The highest frame rate a manifest row may give.
    pub const MAX_FPS: f64 = 1e6;

    /// Checks the values (see the field docs); the message names what is wrong.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.num_frames == 0 || self.width == 0 || self.height == 0 {
            return Err(format!(
                "num_frames {}, width {} and height {} must be at least 1",
                self.num_frames, self.width, self.height
            ));
        }
        if !(Self::MIN_FPS..=Self::MAX_FPS).contains(&self.fps) {
            return Err(format!(
                "fps {} is not between {} and {}",
                self.fps,
                Self::MIN_FPS,
                Self::MAX_FPS
            ));
        }
        if let Some(d) = self.duration_s {
            if !d.is_finite() || d < 0.0 {
                return Err(format!(
                    "duration_s {d} must be a finite number of seconds >= 0"
                ));
            }
        }
        Ok(())
    }
}

/// What a sampler and the loader need to know about a video: from one scan of its packets, or from its manifest
/// row's metadata columns.
#[derive(Clone, Debug)]
pub struct VideoMeta {
    /// Codec name as FFmpeg calls it (empty when the metadata came from the manifest).
    pub codec: String,
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Frame rate from the container, or the manifest's (0 when unknown).
    pub fps: f64,
    /// Duration from the container in seconds, or the manifest's `duration_s` (0 when unknown).
    pub duration_s: f64,
    /// Exact frame layout from a scan of the file: frame count, keyframes, time stamps. `None` when the metadata
    /// came from the manifest and the file was not read.
    pub index: Option<Arc<FrameIndex>>,
    /// Number of frames.
    frames: usize,
}

impl VideoMeta {
    /// Metadata from a scan: the stream's description and its exact index.
    pub fn scanned(info: &StreamInfo, index: Arc<FrameIndex>) -> Self {
        VideoMeta {
            codec: info.codec.clone(),
            width: info.width,
            height: info.height,
            fps: info.fps,
            duration_s: info.duration_s,
            frames: index.len(),
            index: Some(index),
        }
    }

    /// Metadata as a manifest row gives it (nothing is read).
    pub fn given(m: &ManifestMeta) -> Self {
        VideoMeta {
            codec: String::new(),
            width: m.width,
            height: m.height,
            fps: m.fps,
            duration_s: m.duration_s.unwrap_or(0.0),
            index: None,
            frames: m.num_frames as usize,
        }
    }

    /// Number of frames (exact from a scan; the manifest's `num_frames` otherwise).
    pub fn num_frames(&self) -> usize {
        self.frames
    }

    /// The frames as samplers see them: the scanned index, or the manifest's constant rate.
    pub fn timeline(&self) -> Timeline<'_> {
        match &self.index {
            Some(index) => Timeline::Index(index),
            None => Timeline::Constant {
                frames: self.frames,
                fps: self.fps,
            },
        }
    }
}

/// A list of labelled videos with lazily loaded, disk-cached metadata.
#[derive(Debug)]
pub struct VideoDataset {
    entries: Vec<VideoEntry>,
    classes: Vec<String>,
    cache: Option<MetadataCache>,
    /// The manifest the entries were read from (for messages that name a row).
    manifest: Option<PathBuf>,
    /// The tar shards the entries were read from (empty for other data sets), each with its entries (a run of
    /// consecutive entries; empty for a shard without samples).
    shards: Vec<(PathBuf, std::ops::Range<usize>)>,
    /// A data set of one rank's shards only: that rank and the world size.
    shard_rank: Option<(usize, usize)>,
    meta: Vec<OnceLock<Arc<VideoMeta>>>,
    disk_hits: AtomicU64,
    scans: AtomicU64,
    rejected: AtomicU64,
    /// Nanoseconds spent reading metadata from the disk cache or the files, summed over threads.
    read_ns: AtomicU64,
}

impl VideoDataset {
    /// A data set of `entries`; `classes` names the class ids (may be empty). Uses [`default_cache_dir`].
    pub fn from_entries(entries: Vec<VideoEntry>, classes: Vec<String>) -> Self {
        let meta = entries.iter().map(|_| OnceLock::new()).collect();
        VideoDataset {
            entries,
            classes,
            cache: default_cache_dir().map(MetadataCache::new),
            manifest: None,
            shards: Vec::new(),
            shard_rank: None,
            meta,
            disk_hits: AtomicU64::new(0),
            scans: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            read_ns: AtomicU64::new(0),
        }
    }

    /// A data set of `(path, label)` pairs.
    pub fn from_list<P: Into<PathBuf>>(items: impl IntoIterator<Item = (P, i64)>) -> Self {
        Self::from_entries(
            items
                .into_iter()
                .map(|(p, l)| VideoEntry::new(p, l))
                .collect(),
            Vec::new(),
        )
    }

    /// Every video file under `dir` (recursively, by [`VIDEO_EXTENSIONS`], sorted by path). A video in a
    /// sub-directory is labelled by the name of the first sub-directory under `dir` (its class; ids follow the
    /// sorted class names); videos directly in `dir` get [`NO_LABEL`].
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(Error::NotFound {
                path: dir.to_path_buf(),
            });
        }
        let mut files = Vec::new();
        walk(dir, &mut files)?;
        files.sort();
        let class_of = |p: &Path| -> Option<String> {
            let rel = p.strip_prefix(dir).ok()?;
            let mut parts = rel.components();
            let first = parts.next()?;
            parts.next()?;
            Some(first.as_os_str().to_string_lossy().into_owned())
        };
        let entries = files
            .into_iter()
            .map(|p| {
                let class = class_of(&p);
                VideoEntry {
                    class,
                    ..VideoEntry::new(p, NO_LABEL)
                }
            })
            .collect();
        Ok(Self::with_sorted_classes(entries))
    }

    /// The videos listed in a manifest: CSV (`.csv`) or JSON lines (`.jsonl`, `.ndjson`, `.json`). Relative paths
    /// are relative to the manifest's directory. The file is read line by line.
    ///
    /// CSV: one video per line, `path,label[,start,end]`; a first line with a field `path` is a header that
    /// names the columns, in any order (`path`, `label`, `start`, `end`, and the metadata columns `num_frames`,
    /// `fps`, `width`, `height`, `duration_s`; others are ignored). Fields may be double-quoted. Blank lines
    /// and lines starting with `#` are ignored. When every label is an integer the labels are ids, otherwise they
    /// are class names. JSON lines: one object per line, `{"path": ..., "label": 3 or "cat", "start": 1.5,
    /// "end": 4.0, "num_frames": 60, "fps": 30, "width": 640, "height": 360, "duration_s": 2.0}`, only `path`
    /// required.
    ///
    /// Metadata (see [`ManifestMeta`]): a row gives `num_frames`, `fps`, `width` and `height` together, with
    /// `duration_s` optional, and is then planned without opening its file; a row whose metadata cells are all
    /// empty (or absent) is read from its file as usual; a row that gives some of the four but not all is an
    /// error naming its line.
    pub fn from_manifest(path: impl AsRef<Path>) -> Result<Self> {
        use std::io::BufRead;
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound {
                path: path.to_path_buf(),
            },
            _ => Error::io(format!("reading {}", path.display()), e),
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let named =
            |reason: String| Error::InvalidArgument(format!("{}: {reason}", path.display()));
        let mut reader = ManifestReader::new(&ext, base).map_err(named)?;
        let mut file = std::io::BufReader::with_capacity(1 << 20, file);
        let mut line = String::new();
        for n in 1.. {
            line.clear();
            let got = file
                .read_line(&mut line)
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            if got == 0 {
                break;
            }
            let text = line.strip_suffix('\n').unwrap_or(&line);
            reader
                .line(n, text.strip_suffix('\r').unwrap_or(text))
                .map_err(named)?;
        }
        let mut set = reader.finish().map_err(named)?;
        set.manifest = Some(path.to_path_buf());
        Ok(set)
    }

    /// The videos listed in a manifest held in memory: `format` is the manifest's extension (`csv`, or `jsonl`,
    /// `ndjson`, `json` for JSON lines), `base` the directory relative paths are relative to. The syntax is that
    /// of [`VideoDataset::from_manifest`]; nothing is read from disk.
    pub fn from_manifest_text(text: &str, format: &str, base: impl AsRef<Path>) -> Result<Self> {
        let mut reader =
            ManifestReader::new(format, base.as_ref()).map_err(Error::InvalidArgument)?;
        for (n, line) in text.lines().enumerate() {
            reader.line(n + 1, line).map_err(Error::InvalidArgument)?;
        }
        reader.finish().map_err(Error::InvalidArgument)
    }

    /// The samples of WebDataset tar shards: `pattern` is one shard (`data/shard-000000.tar`), a brace pattern
    /// (`data/shard-{000000..000999}.tar`: zero-padded ranges as `braceexpand` writes them, `{a,b}` lists, nested
    /// braces) or several separated by `::`.
    ///
    /// Every shard's members are indexed once (their headers, not their data; the shards in parallel), and each
    /// sample becomes an entry in shard order: its video (the member whose extension ends in one of
    /// [`VIDEO_EXTENSIONS`]) read in place as a byte range of the shard, never extracted or copied whole; its `.cls`
    /// member as the label (integers are class ids, otherwise class names mapped to ids as a manifest's are);
    /// its key and `.txt` and `.json` members in [`VideoEntry::member`]. Samples are grouped as WebDataset groups
    /// them (see [`ShardMember::key`]); members without a dot in their file name are ignored.
    ///
    /// A loader over such a data set splits the shards across ranks (shard `i` to rank `i % world_size`) and
    /// shuffles shard order and then samples through a bounded buffer
    /// ([`crate::DataLoaderBuilder::shuffle_buffer`]).
    ///
    /// Errors: [`Error::NotFound`] for a missing shard, [`Error::Unsupported`] for a compressed one (`.tar.gz`: it
    /// cannot be read in place), [`Error::Corrupt`] for a file that is not a tar archive or is cut short, [`Error::ShardSample`] for a sample without a video (or with two, or with an unreadable label
    /// member), [`Error::InvalidArgument`] for a bad pattern. A video member that is not a video is
    /// [`Error::NotVideo`] when the loader first reads it.
    pub fn from_shards(pattern: &str) -> Result<Self> {
        Self::from_shard_paths(shards::shard_paths(pattern)?)
    }

    /// The samples of the shards of `pattern` that rank `rank` of `world_size` reads (shard `i` when
    /// `i % world_size == rank`, as [`VideoDataset::from_shards`] splits them): the other shards are neither opened
    /// nor indexed, so each rank of a large job reads its own shards and no other. The loader over it must be
    /// [`crate::DataLoaderBuilder::shard`]`(rank, world_size)`. Unlike a data set of every shard, the rank does not
    /// know the others' sample counts: with `drop_last` it stops after its own full batches, so ranks whose shards
    /// hold different numbers of samples deliver different numbers of batches.
    pub fn from_shards_of_rank(pattern: &str, rank: usize, world_size: usize) -> Result<Self> {
        if world_size == 0 || rank >= world_size {
            return Err(Error::InvalidArgument(format!(
                "rank {rank} of world size {world_size}"
            )));
        }
        Self::read_shards(shards::shard_paths(pattern)?, Some((rank, world_size)))
    }

    /// The samples of the tar shards `paths`, in this order (see [`VideoDataset::from_shards`]).
    pub fn from_shard_paths<P: Into<PathBuf>>(paths: impl IntoIterator<Item = P>) -> Result<Self> {
        Self::read_shards(paths.into_iter().map(Into::into).collect(), None)
    }

    /// The data set of `paths`, reading only `rank`'s shards when one is given.
    fn read_shards(paths: Vec<PathBuf>, rank: Option<(usize, usize)>) -> Result<Self> {
        use rayon::prelude::*;
        if paths.is_empty() {
            return Err(Error::InvalidArgument("no shards given".into()));
        }
        let started = Instant::now();
        let read: Vec<Vec<shards::RawSample>> = paths
            .par_iter()
            .enumerate()
            .map(|(i, p)| match rank {
                Some((r, w)) if i % w != r => Ok(Vec::new()),
                _ => shards::read_shard(p),
            })
            .collect::<Result<_>>()?;
        let mut entries = Vec::with_capacity(read.iter().map(Vec::len).sum());
        let mut spans = Vec::with_capacity(paths.len());
        let (mut ids, mut names) = (false, false);
        for (shard, (path, samples)) in paths.iter().zip(read).enumerate() {
            let first = entries.len();
            for s in samples {
                let (label, class) = match s.cls.as_deref() {
                    None | Some("") => (NO_LABEL, None),
                    Some(c) => match c.parse::<i64>() {
                        Ok(id) => {
                            ids = true;
                            (id, None)
                        }
                        Err(_) => {
                            names = true;
                            (NO_LABEL, Some(c.to_owned()))
                        }
                    },
                };
                entries.push(VideoEntry {
                    label,
                    class,
                    member: Some(Box::new(ShardMember {
                        shard,
                        key: s.key,
                        name: s.video.name,
                        offset: s.video.offset,
                        len: s.video.len,
                        text: s.text,
                        json: s.json,
                    })),
                    ..VideoEntry::new(path.clone(), NO_LABEL)
                });
            }
            spans.push((path.clone(), first..entries.len()));
        }
        if ids && names {
            // As in a CSV manifest: when some label is a name, every label is a class name.
            for e in &mut entries {
                if e.class.is_none() && e.label != NO_LABEL {
                    e.class = Some(e.label.to_string());
                }
            }
        }
        let mut set = Self::with_sorted_classes(entries);
        set.shards = spans;
        set.shard_rank = rank;
        add_elapsed(&set.read_ns, started);
        Ok(set)
    }

    /// The tar shards the data set was read from, in order (empty when it was not read from shards).
    pub fn shards(&self) -> Vec<&Path> {
        self.shards.iter().map(|(p, _)| p.as_path()).collect()
    }

    /// Whether `pattern` reads as tar shards in [`VideoDataset::open`]: a path ending in `.tar`, or a pattern with
    /// braces or `::`.
    pub fn is_shard_pattern(pattern: &str) -> bool {
        shards::looks_like_shards(pattern)
    }

    /// For a data set of one rank's shards ([`VideoDataset::from_shards_of_rank`]): that rank and the world size.
    pub fn shard_rank(&self) -> Option<(usize, usize)> {
        self.shard_rank
    }

    /// The number of tar shards the data set was read from (0 when it was not read from shards).
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The entries of shard `s` (positions in [`VideoDataset::entries`]); empty for a shard without samples or
    /// out of range.
    pub fn shard_entries(&self, s: usize) -> std::ops::Range<usize> {
        self.shards.get(s).map_or(0..0, |(_, r)| r.clone())
    }

    /// A manifest file, a directory, or tar shards. A directory holding `labels.csv` or `labels.jsonl` is read
    /// through that manifest, any other through [`VideoDataset::from_dir`]; a path ending in `.tar` or a pattern
    /// with braces or `::` (that is not a directory) is read as tar shards ([`VideoDataset::from_shards`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = path.to_string_lossy();
        if !path.is_dir() && shards::looks_like_shards(&text) {
            return Self::from_shards(&text);
        }
        if path.is_dir() {
            for name in ["labels.csv", "labels.jsonl"] {
                let m = path.join(name);
                if m.is_file() {
                    return Self::from_manifest(m);
                }
            }
            Self::from_dir(path)
        } else if path.exists() {
            Self::from_manifest(path)
        } else {
            Err(Error::NotFound {
                path: path.to_path_buf(),
            })
        }
    }

    /// Entries whose labels are class names get ids from the sorted names. Names are found and looked up by hash:
    /// collecting a million labels into a sorted set compared strings twenty million times.
    fn with_sorted_classes(entries: Vec<VideoEntry>) -> Self {
        let names: HashSet<&str> = entries.iter().filter_map(|e| e.class.as_deref()).collect();
        let mut classes: Vec<String> = names.into_iter().map(str::to_owned).collect();
        classes.sort_unstable();
        let mut set = Self::from_entries(entries, Vec::new());
        set.label_by(&classes);
        set.classes = classes;
        set
    }

    /// Sets the label of every entry with a class name to that name's position in `names`; a name that is not
    /// there gets [`NO_LABEL`] and is returned (the first one).
    fn label_by(&mut self, names: &[String]) -> Option<usize> {
        let ids: HashMap<&str, i64> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i as i64))
            .collect();
        let mut unknown = None;
        for (k, e) in self.entries.iter_mut().enumerate() {
            if let Some(c) = &e.class {
                e.label = ids.get(c.as_str()).copied().unwrap_or_else(|| {
                    unknown.get_or_insert(k);
                    NO_LABEL
                });
            }
        }
        unknown
    }

    /// Gives class ids in the order of `names` (id = position) instead of sorted order. Every class name in the
    /// data set must be among them.
    pub fn with_classes<S: AsRef<str>>(mut self, names: &[S]) -> Result<Self> {
        let names: Vec<String> = names.iter().map(|s| s.as_ref().to_owned()).collect();
        if let Some(k) = self.label_by(&names) {
            let e = &self.entries[k];
            return Err(Error::InvalidArgument(format!(
                "{}: class '{}' is not among {names:?}",
                e.path.display(),
                e.class.as_deref().unwrap_or_default()
            )));
        }
        self.classes = names;
        Ok(self)
    }

    /// Sets the directory of the metadata cache (`None`: memory only).
    pub fn with_cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.cache = dir.map(MetadataCache::new);
        self
    }

    /// Number of videos.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the data set has no videos.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All entries.
    pub fn entries(&self) -> &[VideoEntry] {
        &self.entries
    }

    /// Entry `i`.
    pub fn entry(&self, i: usize) -> Result<&VideoEntry> {
        self.entries.get(i).ok_or(Error::OutOfRange {
            index: i as i64,
            len: self.entries.len(),
        })
    }

    /// Class names by id (empty when labels were given as integers).
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// The metadata cache directory, if any.
    pub fn cache_dir(&self) -> Option<&Path> {
        self.cache.as_ref().map(MetadataCache::dir)
    }

    /// Counters of the metadata cache.
    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
            scans: self.scans.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }

    /// The manifest the data set was read from, if any.
    pub fn manifest(&self) -> Option<&Path> {
        self.manifest.as_deref()
    }

    /// Seconds spent reading videos' metadata (disk cache entries and packet scans; not the metadata manifest rows
    /// give), summed over the threads that read it.
    pub fn metadata_seconds(&self) -> f64 {
        self.read_ns.load(Ordering::Relaxed) as f64 * 1e-9
    }

    /// Metadata of video `i`: as its manifest row gives it (nothing is read, nothing is kept), else from memory,
    /// else from the disk cache when the file is unchanged, else from a scan of its packets (then written to the
    /// cache). Decoders opened on the file afterwards reuse its index.
    pub fn meta(&self, i: usize) -> Result<Arc<VideoMeta>> {
        let entry = self.entry(i)?;
        if let Some(m) = &entry.meta {
            return Ok(Arc::new(VideoMeta::given(m)));
        }
        self.read_meta(i, entry, None)
    }

    /// [`VideoDataset::meta`] of entry `i` (`entry`), which its manifest row does not describe: the metadata read
    /// before, else read now (and kept), its cache entry written at once or, with `pending`, added to it for the
    /// caller to write.
    fn read_meta(
        &self,
        i: usize,
        entry: &VideoEntry,
        pending: Option<&mut Vec<CacheEntry>>,
    ) -> Result<Arc<VideoMeta>> {
        if let Some(m) = self.meta[i].get() {
            return Ok(m.clone());
        }
        let started = Instant::now();
        let m = self.load_meta_into(entry, pending);
        add_elapsed(&self.read_ns, started);
        let m = m?;
        Ok(self.meta[i].get_or_init(|| m).clone())
    }

    /// Where entry `i` comes from, for messages: `<manifest> line <n>`, or `entry <i>`.
    pub fn row_name(&self, i: usize) -> String {
        let line = self.entries.get(i).and_then(|e| e.line);
        match (&self.manifest, line) {
            (Some(m), Some(l)) => format!("{} line {l}", m.display()),
            (None, Some(l)) => format!("manifest line {l}"),
            (_, None) => format!("entry {i}"),
        }
    }

    /// Holds the metadata entry `i`'s manifest row gives (see [`ManifestMeta`]) against the video as a decoder
    /// opened it: its exact `index` and its stream description `info`. `Ok` when the entry gives none or all of it
    /// holds; otherwise [`Error::ManifestMismatch`] naming the row, the column and both values.
    pub fn check_meta(&self, i: usize, index: &FrameIndex, info: &StreamInfo) -> Result<()> {
        let entry = self.entry(i)?;
        let Some(m) = &entry.meta else {
            return Ok(());
        };
        let wrong = |field: &'static str, given: String, actual: String| Error::ManifestMismatch {
            row: self.row_name(i),
            path: entry.path.clone(),
            field,
            given,
            actual,
        };
        if index.len() != m.num_frames as usize {
            return Err(wrong(
                "num_frames",
                m.num_frames.to_string(),
                format!("{} frames", index.len()),
            ));
        }
        if info.width != m.width {
            return Err(wrong("width", m.width.to_string(), info.width.to_string()));
        }
        if info.height != m.height {
            return Err(wrong(
                "height",
                m.height.to_string(),
                info.height.to_string(),
            ));
        }
        // Every frame within half a frame of where the constant rate puts it (and a hair for rounded stamps).
        let half = 0.5 / m.fps + 1e-6;
        if let Some(k) =
            (0..index.len()).find(|&k| (index.time_of(k) - k as f64 / m.fps).abs() > half)
        {
            return Err(wrong(
                "fps",
                format!("{} (frame {k} at {:.6} s)", m.fps, k as f64 / m.fps),
                format!("frame {k} at {:.6} s", index.time_of(k)),
            ));
        }
        if let Some(d) = m.duration_s {
            if info.duration_s > 0.0 && (d - info.duration_s).abs() > 1.0 / m.fps + 1e-6 {
                return Err(wrong(
                    "duration_s",
                    d.to_string(),
                    format!("{} s", info.duration_s),
                ));
            }
        }
        Ok(())
    }

    /// Reads the metadata of the videos `indices` (those not given by their manifest rows and not read yet), on
    /// rayon's threads: what [`VideoDataset::meta`] of each would do, except that the entries of the files scanned
    /// are written to the disk cache in batches (one transaction for up to [`WRITE_BATCH`] files of a thread, all of
    /// them written before this returns). Errors are not returned: [`VideoDataset::meta`] of a video that failed
    /// reads it again and says why.
    pub(crate) fn read_metas(&self, indices: &[usize]) {
        use rayon::prelude::*;
        indices.par_iter().for_each_init(
            || PendingWrites {
                cache: self.cache.as_ref(),
                entries: Vec::new(),
                read_ns: &self.read_ns,
            },
            |pending, &i| {
                let Ok(entry) = self.entry(i) else {
                    return;
                };
                if entry.meta.is_some() {
                    return;
                }
                let _ = self.read_meta(i, entry, Some(&mut pending.entries));
                if pending.entries.len() >= WRITE_BATCH {
                    pending.flush();
                }
            },
        );
    }

    /// The metadata of `entry` from the disk cache, else from a scan of the file, whose cache entry is written at
    /// once, or with `pending` added to it for the caller to write.
    fn load_meta_into(
        &self,
        entry: &VideoEntry,
        pending: Option<&mut Vec<CacheEntry>>,
    ) -> Result<Arc<VideoMeta>> {
        let source = entry.source();
        let range = entry.member.as_ref().map(|m| (m.offset, m.len));
        let key = CacheKey::of_range(&entry.path, range)?;
        let remember = |index: &Arc<FrameIndex>| {
            crate::io::index::remember_key(
                key.path.clone(),
                key.size,
                key.modified,
                key.range,
                index.clone(),
            )
        };
        if let Some(cache) = &self.cache {
            match cache.get(&key) {
                Lookup::Hit(rec) => {
                    self.disk_hits.fetch_add(1, Ordering::Relaxed);
                    let meta = VideoMeta::from(*rec);
                    if let Some(index) = &meta.index {
                        remember(index);
                    }
                    return Ok(Arc::new(meta));
                }
                Lookup::Rejected => {
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                }
                Lookup::Miss => {}
            }
        }
        self.scans.fetch_add(1, Ordering::Relaxed);
        let mut demuxer = Demuxer::open(source)?;
        let info = demuxer.info().clone();
        let index = FrameIndex::scan_demuxer(&mut demuxer)?;
        if let Some(cache) = &self.cache {
            match pending {
                Some(pending) => pending.extend(cache.entry(&key, &info, &index)),
                None => cache.put(&key, &info, &index),
            }
        }
        let index = Arc::new(index);
        remember(&index);
        Ok(Arc::new(VideoMeta::scanned(&info, index)))
    }
}

/// Adds the time since `started` to `total` (nanoseconds).
fn add_elapsed(total: &AtomicU64, started: Instant) {
    total.fetch_add(
        u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

/// Files whose cache entries [`VideoDataset::read_metas`] writes in one transaction (per thread).
const WRITE_BATCH: usize = 64;

/// Cache entries of one of [`VideoDataset::read_metas`]'s threads not written yet; written when dropped.
struct PendingWrites<'a> {
    cache: Option<&'a MetadataCache>,
    entries: Vec<CacheEntry>,
    /// The data set's time spent reading metadata, which writing the entries adds to.
    read_ns: &'a AtomicU64,
}

impl PendingWrites<'_> {
    fn flush(&mut self) {
        if let (Some(cache), false) = (self.cache, self.entries.is_empty()) {
            let started = Instant::now();
            cache.put_all(&self.entries);
            add_elapsed(self.read_ns, started);
        }
        self.entries.clear();
    }
}

impl Drop for PendingWrites<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

impl From<CacheRecord> for VideoMeta {
    fn from(rec: CacheRecord) -> Self {
        VideoMeta {
            codec: rec.codec,
            width: rec.width,
            height: rec.height,
            fps: rec.fps,
            duration_s: rec.duration_s,
            frames: rec.index.len(),
            index: Some(Arc::new(rec.index)),
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let rd =
        std::fs::read_dir(dir).map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        let path = entry.path();
        let ft = entry
            .file_type()
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if ft.is_dir() || (ft.is_symlink() && path.is_dir()) {
            walk(&path, out)?;
        } else if path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.as_str()))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// A label as written in a manifest.
#[derive(Debug, PartialEq)]
enum RawLabel {
    None,
    Id(i64),
    Name(String),
}

/// The columns a manifest may have; a CSV header names them in any order.
const COLUMNS: [&str; 9] = [
    "path",
    "label",
    "start",
    "end",
    "num_frames",
    "fps",
    "width",
    "height",
    "duration_s",
];
const PATH: usize = 0;
const LABEL: usize = 1;
const START: usize = 2;
const END: usize = 3;
const NUM_FRAMES: usize = 4;
const FPS: usize = 5;
const WIDTH: usize = 6;
const HEIGHT: usize = 7;
const DURATION: usize = 8;

/// The metadata columns of one row as written (each may be missing).
#[derive(Default)]
struct RawMeta {
    num_frames: Option<u64>,
    fps: Option<f64>,
    width: Option<u64>,
    height: Option<u64>,
    duration_s: Option<f64>,
}

impl RawMeta {
    /// The row's [`ManifestMeta`]: `None` when it gives no metadata, an error when it gives some of the four
    /// required columns but not all, or a value out of range.
    fn into_meta(self) -> std::result::Result<Option<ManifestMeta>, String> {
        let RawMeta {
            num_frames,
            fps,
            width,
            height,
            duration_s,
        } = self;
        match (num_frames, fps, width, height) {
            (None, None, None, None) if duration_s.is_none() => Ok(None),
            (Some(n), Some(fps), Some(w), Some(h)) => {
                let small = |name: &str, v: u64| {
                    u32::try_from(v).map_err(|_| format!("{name} {v} is too large"))
                };
                let m = ManifestMeta {
                    num_frames: small("num_frames", n)?,
                    fps,
                    width: small("width", w)?,
                    height: small("height", h)?,
                    duration_s,
                };
                m.validate()?;
                Ok(Some(m))
            }
            (n, f, w, h) => {
                let missing: Vec<&str> = [
                    ("num_frames", n.is_none()),
                    ("fps", f.is_none()),
                    ("width", w.is_none()),
                    ("height", h.is_none()),
                ]
                .iter()
                .filter(|(_, m)| *m)
                .map(|(c, _)| *c)
                .collect();
                Err(format!(
                    "metadata without {} (a row gives num_frames, fps, width and height together, or none of them)",
                    missing.join(", ")
                ))
            }
        }
    }
}

/// Turns manifest lines into entries, one line at a time (a manifest file is never held in memory whole).
struct ManifestReader<'b> {
    /// JSON lines (else CSV).
    json: bool,
    base: &'b Path,
    /// CSV: the field of each of [`COLUMNS`] (from the header, else `path,label,start,end`).
    cols: [Option<usize>; 9],
    /// No CSV row has been read yet (the first may be a header).
    first: bool,
    entries: Vec<VideoEntry>,
    /// Integer labels were seen.
    ids: bool,
    /// Class names were seen.
    names: bool,
    /// Entries whose integer label was -1 (the value of `NO_LABEL`): named "-1" when the labels turn out to be
    /// class names.
    minus_one: Vec<usize>,
}

impl<'b> ManifestReader<'b> {
    fn new(format: &str, base: &'b Path) -> std::result::Result<Self, String> {
        let json = match format.to_ascii_lowercase().as_str() {
            "csv" => false,
            "jsonl" | "ndjson" | "json" => true,
            ext => {
                return Err(format!(
                    "unknown manifest type '.{ext}' (use .csv or .jsonl)"
                ))
            }
        };
        Ok(ManifestReader {
            json,
            base,
            cols: [
                Some(0),
                Some(1),
                Some(2),
                Some(3),
                None,
                None,
                None,
                None,
                None,
            ],
            first: true,
            entries: Vec::new(),
            ids: false,
            names: false,
            minus_one: Vec::new(),
        })
    }

    /// Line `n` (1-based) of the manifest, without its line break.
    fn line(&mut self, n: usize, text: &str) -> std::result::Result<(), String> {
        let at = |e: String| format!("line {n}: {e}");
        let line =
            u32::try_from(n).map_err(|_| at("a manifest has at most 4294967295 lines".into()))?;
        if self.json {
            self.json_line(line, text).map_err(at)
        } else {
            self.csv_line(line, text).map_err(at)
        }
    }

    fn csv_line(&mut self, line: u32, text: &str) -> std::result::Result<(), String> {
        let text = text.trim_end_matches('\r');
        if text.trim().is_empty() || text.trim_start().starts_with('#') {
            return Ok(());
        }
        let quoted;
        let fields: Vec<&str> = if text.contains('"') {
            quoted = csv_fields(text)?;
            quoted.iter().map(String::as_str).collect()
        } else {
            text.split(',').map(str::trim).collect()
        };
        if std::mem::take(&mut self.first) && fields.iter().any(|f| f.eq_ignore_ascii_case("path"))
        {
            self.cols = COLUMNS.map(|c| fields.iter().position(|f| f.eq_ignore_ascii_case(c)));
            return Ok(());
        }
        let get = |c: usize| self.cols[c].and_then(|i| fields.get(i)).map_or("", |s| *s);
        let path = get(PATH);
        if path.is_empty() {
            return Err("empty path".into());
        }
        let label = match get(LABEL) {
            "" => RawLabel::None,
            l => l
                .parse::<i64>()
                .map_or_else(|_| RawLabel::Name(l.to_owned()), RawLabel::Id),
        };
        let count = |c: usize| -> std::result::Result<Option<u64>, String> {
            match get(c) {
                "" => Ok(None),
                v => v
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| format!("{} '{v}' is not a whole number", COLUMNS[c])),
            }
        };
        let number = |c: usize| -> std::result::Result<Option<f64>, String> {
            match get(c) {
                "" => Ok(None),
                v => v
                    .parse::<f64>()
                    .map(Some)
                    .map_err(|_| format!("{} '{v}' is not a number", COLUMNS[c])),
            }
        };
        let meta = RawMeta {
            num_frames: count(NUM_FRAMES)?,
            fps: number(FPS)?,
            width: count(WIDTH)?,
            height: count(HEIGHT)?,
            duration_s: number(DURATION)?,
        };
        let (start, end) = (parse_time(get(START))?, parse_time(get(END))?);
        self.push(line, path, label, start, end, meta)
    }

    fn json_line(&mut self, line: u32, text: &str) -> std::result::Result<(), String> {
        use serde_json::Value;
        if text.trim().is_empty() {
            return Ok(());
        }
        if !text.trim_start().starts_with('{') {
            return Err("not a JSON object".into());
        }
        let row: JsonRow = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let path = match &row.path {
            Some(Value::String(p)) if !p.is_empty() => p.as_str(),
            _ => return Err("no \"path\" string".into()),
        };
        let label = match row.label {
            None => RawLabel::None,
            Some(Value::String(s)) => {
                self.names = true;
                RawLabel::Name(s)
            }
            Some(l) => {
                self.ids = true;
                RawLabel::Id(
                    l.as_i64()
                        .ok_or_else(|| format!("label {l} is not an integer or a name"))?,
                )
            }
        };
        let number = |k: &str, v: &Option<Value>| -> std::result::Result<Option<f64>, String> {
            v.as_ref()
                .map(|t| t.as_f64().ok_or_else(|| format!("\"{k}\" is not a number")))
                .transpose()
        };
        let count = |k: &str, v: &Option<Value>| -> std::result::Result<Option<u64>, String> {
            v.as_ref()
                .map(|t| {
                    t.as_u64()
                        .ok_or_else(|| format!("\"{k}\" is not a whole number"))
                })
                .transpose()
        };
        let meta = RawMeta {
            num_frames: count("num_frames", &row.num_frames)?,
            fps: number("fps", &row.fps)?,
            width: count("width", &row.width)?,
            height: count("height", &row.height)?,
            duration_s: number("duration_s", &row.duration_s)?,
        };
        let (start, end) = (number("start", &row.start)?, number("end", &row.end)?);
        self.push(line, path, label, start, end, meta)
    }

    fn push(
        &mut self,
        line: u32,
        path: &str,
        label: RawLabel,
        start: Option<f64>,
        end: Option<f64>,
        meta: RawMeta,
    ) -> std::result::Result<(), String> {
        check_range(start, end)?;
        let meta = meta.into_meta()?;
        let p = Path::new(path);
        let path = if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        };
        let (label, class) = match label {
            RawLabel::None => (NO_LABEL, None),
            RawLabel::Id(i) => {
                self.ids = true;
                if i == NO_LABEL {
                    self.minus_one.push(self.entries.len());
                }
                (i, None)
            }
            RawLabel::Name(n) => {
                self.names = true;
                (NO_LABEL, Some(n))
            }
        };
        self.entries.push(VideoEntry {
            path,
            label,
            class,
            start,
            end,
            meta,
            line: Some(line),
            member: None,
        });
        Ok(())
    }

    /// The data set. CSV: integer labels are ids unless some label is a name, then every label is a class name.
    /// JSON lines: mixing integers and names is an error.
    fn finish(self) -> std::result::Result<VideoDataset, String> {
        let mut entries = self.entries;
        if self.names && self.ids {
            if self.json {
                return Err("labels mix integers and class names".into());
            }
            let mut minus_one = self.minus_one.into_iter().peekable();
            for (k, e) in entries.iter_mut().enumerate() {
                let was_minus_one = minus_one.next_if_eq(&k).is_some();
                if e.class.is_none() && (e.label != NO_LABEL || was_minus_one) {
                    e.class = Some(e.label.to_string());
                }
            }
        }
        entries.shrink_to_fit();
        Ok(VideoDataset::with_sorted_classes(entries))
    }
}

/// One line of a JSON-lines manifest (other keys are ignored; `null` is the same as absent).
#[derive(Deserialize)]
struct JsonRow {
    #[serde(default)]
    path: Option<serde_json::Value>,
    #[serde(default)]
    label: Option<serde_json::Value>,
    #[serde(default)]
    start: Option<serde_json::Value>,
    #[serde(default)]
    end: Option<serde_json::Value>,
    #[serde(default)]
    num_frames: Option<serde_json::Value>,
    #[serde(default)]
    fps: Option<serde_json::Value>,
    #[serde(default)]
    width: Option<serde_json::Value>,
    #[serde(default)]
    height: Option<serde_json::Value>,
    #[serde(default)]
    duration_s: Option<serde_json::Value>,
}

fn check_range(start: Option<f64>, end: Option<f64>) -> std::result::Result<(), String> {
    for t in [start, end].into_iter().flatten() {
        if !t.is_finite() || t < 0.0 {
            return Err(format!("time {t} must be a finite number of seconds >= 0"));
        }
    }
    if let (Some(s), Some(e)) = (start, end) {
        if s >= e {
            return Err(format!("start {s} is not before end {e}"));
        }
    }
    Ok(())
}

/// Splits one CSV line into fields (RFC 4180 quoting: `"a,b"`, `""` for a quote).
fn csv_fields(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cur.push(c),
            (false, '"') if cur.trim().is_empty() => {
                cur.clear();
                quoted = true;
                was_quoted = true;
            }
            (false, ',') => {
                fields.push(if was_quoted {
                    std::mem::take(&mut cur)
                } else {
                    std::mem::take(&mut cur).trim().to_owned()
                });
                was_quoted = false;
            }
            // Spaces between a closing quote and the comma are not part of the field.
            (false, c) if was_quoted && c.is_whitespace() => {}
            (false, c) => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    fields.push(if was_quoted {
        cur
    } else {
        cur.trim().to_owned()
    });
    Ok(fields)
}

fn parse_time(s: &str) -> std::result::Result<Option<f64>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<f64>()
        .map(Some)
        .map_err(|_| format!("'{s}' is not a time in seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_handle_quotes_and_spaces() {
        assert_eq!(
            csv_fields(r#" a.mp4 , "b, c" ,"say ""hi""","#).unwrap(),
            vec!["a.mp4", "b, c", r#"say "hi""#, ""]
        );
        assert!(csv_fields(r#""open"#).is_err());
    }
}
