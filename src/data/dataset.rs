//! `VideoDataset`: the list of videos a loader reads, with a label and an optional time range each, and their
//! metadata (size, codec, exact frame index) loaded lazily and cached on disk.
//!
//! A data set comes from a directory (searched recursively for video files; the first sub-directory under the root
//! names the class), from a manifest (CSV or JSON lines with `path`, `label` and optional `start` / `end` seconds),
//! or from a list. Labels are integers, or class names that are mapped to ids (sorted names, or an order given with
//! [`VideoDataset::with_classes`]).
//!
//! Metadata costs one scan of a file's packets (no decoding). It is kept in memory for the life of the data set
//! and written to `CACHE_DIR/index-v2/<hash of the path>.json` (v2: indexes of MPEG-4 B-frame AVIs changed), keyed
//! by the file's canonical path, size and modification time: a file that changes is scanned again.
//!
//! An entry is one header line (`vidloader-index 1 len=<bytes> fnv1a=<hash>`) and the record as JSON. It is
//! written to a temporary file and renamed into place, so readers (other workers, other processes) see a whole
//! entry or none; on reading, the length, the hash and the index's own consistency are checked, and an entry that
//! fails (cut short, damaged, another format) is counted in [`CacheStats::rejected`], the file is scanned again and
//! the entry rewritten. A cache directory that cannot be written costs a scan per file: the data set says so once
//! on stderr and goes on without it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::demux::Demuxer;
use crate::io::index::FrameIndex;

/// File extensions [`VideoDataset::from_dir`] takes for videos (compared without regard to case).
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "ts", "mts", "m2ts", "mpg", "mpeg", "flv", "wmv",
    "3gp", "ivf", "y4m",
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
        }
    }

    /// Restricts sampling to `[start, end)` seconds.
    pub fn range(mut self, start: Option<f64>, end: Option<f64>) -> Self {
        self.start = start;
        self.end = end;
        self
    }
}

/// What a sampler and the loader need to know about a video, from one scan of its packets.
#[derive(Clone, Debug)]
pub struct VideoMeta {
    /// Codec name as FFmpeg calls it.
    pub codec: String,
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Frame rate from the container (0 when unknown).
    pub fps: f64,
    /// Duration from the container in seconds (0 when unknown).
    pub duration_s: f64,
    /// Exact frame layout: frame count, keyframes, time stamps.
    pub index: Arc<FrameIndex>,
}

impl VideoMeta {
    /// Number of frames (exact).
    pub fn num_frames(&self) -> usize {
        self.index.len()
    }
}

/// Counters of the metadata cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    /// Metadata read from the disk cache.
    pub disk_hits: u64,
    /// Files scanned (not in the disk cache, cache disabled, or changed since they were cached).
    pub scans: u64,
    /// Cache entries found but refused: cut short, damaged or in another format (each file was scanned again and
    /// its entry rewritten).
    pub rejected: u64,
}

/// What is stored on disk per file.
#[derive(Serialize, Deserialize)]
struct DiskRecord {
    version: u32,
    path: String,
    size: u64,
    mtime_ns: u128,
    codec: String,
    width: u32,
    height: u32,
    fps: f64,
    duration_s: f64,
    index: FrameIndex,
}

const DISK_VERSION: u32 = 2;

/// A list of labelled videos with lazily loaded, disk-cached metadata.
#[derive(Debug)]
pub struct VideoDataset {
    entries: Vec<VideoEntry>,
    classes: Vec<String>,
    cache_dir: Option<PathBuf>,
    meta: Vec<OnceLock<Arc<VideoMeta>>>,
    disk_hits: AtomicU64,
    scans: AtomicU64,
    rejected: AtomicU64,
    /// Whether the warning that the cache cannot be written has been given.
    cache_warned: AtomicBool,
}

/// The cache directory used when none is given: `$VIDLOADER_CACHE_DIR`, else `$XDG_CACHE_HOME/vidloader`, else
/// `$HOME/.cache/vidloader`; `None` when none of them is set.
pub fn default_cache_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("VIDLOADER_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|p| p.join("vidloader")))
        .or_else(|| var("HOME").map(|p| p.join(".cache/vidloader")))
}

impl VideoDataset {
    /// A data set of `entries`; `classes` names the class ids (may be empty). Uses [`default_cache_dir`].
    pub fn from_entries(entries: Vec<VideoEntry>, classes: Vec<String>) -> Self {
        let meta = entries.iter().map(|_| OnceLock::new()).collect();
        VideoDataset {
            entries,
            classes,
            cache_dir: default_cache_dir(),
            meta,
            disk_hits: AtomicU64::new(0),
            scans: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            cache_warned: AtomicBool::new(false),
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
                    path: p,
                    label: NO_LABEL,
                    class,
                    start: None,
                    end: None,
                }
            })
            .collect();
        Ok(Self::with_sorted_classes(entries))
    }

    /// The videos listed in a manifest: CSV (`.csv`) or JSON lines (`.jsonl`, `.ndjson`, `.json`). Relative paths
    /// are relative to the manifest's directory.
    ///
    /// CSV: one video per line, `path,label[,start,end]`; a first line with a field `path` is a header that
    /// names the columns, in any order (`path`, `label`, `start`, `end`; others are ignored). Fields may be double-quoted. Blank lines
    /// and lines starting with `#` are ignored. When every label is an integer the labels are ids, otherwise they
    /// are class names. JSON lines: one object per line, `{"path": ..., "label": 3 or "cat", "start": 1.5,
    /// "end": 4.0}`, only `path` required.
    pub fn from_manifest(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
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
        Self::from_manifest_text(&text, &ext, base).map_err(|e| match e {
            Error::InvalidArgument(reason) => {
                Error::InvalidArgument(format!("{}: {reason}", path.display()))
            }
            e => e,
        })
    }

    /// The videos listed in a manifest held in memory: `format` is the manifest's extension (`csv`, or `jsonl`,
    /// `ndjson`, `json` for JSON lines), `base` the directory relative paths are relative to. The syntax is that
    /// of [`VideoDataset::from_manifest`]; nothing is read from disk.
    pub fn from_manifest_text(text: &str, format: &str, base: impl AsRef<Path>) -> Result<Self> {
        let base = base.as_ref();
        let rows = match format.to_ascii_lowercase().as_str() {
            "csv" => parse_csv(text),
            "jsonl" | "ndjson" | "json" => parse_jsonl(text),
            ext => Err(format!(
                "unknown manifest type '.{ext}' (use .csv or .jsonl)"
            )),
        }
        .map_err(Error::InvalidArgument)?;
        let ints = rows
            .iter()
            .all(|r| matches!(r.label, RawLabel::None | RawLabel::Id(_)));
        let entries = rows
            .into_iter()
            .map(|r| {
                let p = PathBuf::from(&r.path);
                let path = if p.is_absolute() { p } else { base.join(p) };
                let (label, class) = match r.label {
                    RawLabel::None => (NO_LABEL, None),
                    RawLabel::Id(i) if ints => (i, None),
                    RawLabel::Id(i) => (NO_LABEL, Some(i.to_string())),
                    RawLabel::Name(n) => (NO_LABEL, Some(n)),
                };
                VideoEntry {
                    path,
                    label,
                    class,
                    start: r.start,
                    end: r.end,
                }
            })
            .collect();
        Ok(Self::with_sorted_classes(entries))
    }

    /// A manifest file, or a directory: one holding `labels.csv` or `labels.jsonl` is read through that manifest,
    /// any other through [`VideoDataset::from_dir`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
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

    /// Entries whose labels are class names get ids from the sorted names.
    fn with_sorted_classes(mut entries: Vec<VideoEntry>) -> Self {
        let names: BTreeSet<&str> = entries.iter().filter_map(|e| e.class.as_deref()).collect();
        let classes: Vec<String> = names.into_iter().map(str::to_owned).collect();
        for e in &mut entries {
            if let Some(c) = &e.class {
                e.label = classes.binary_search(c).map_or(NO_LABEL, |i| i as i64);
            }
        }
        Self::from_entries(entries, classes)
    }

    /// Gives class ids in the order of `names` (id = position) instead of sorted order. Every class name in the
    /// data set must be among them.
    pub fn with_classes<S: AsRef<str>>(mut self, names: &[S]) -> Result<Self> {
        let names: Vec<String> = names.iter().map(|s| s.as_ref().to_owned()).collect();
        for e in &mut self.entries {
            if let Some(c) = &e.class {
                e.label = names.iter().position(|n| n == c).ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "{}: class '{c}' is not among {names:?}",
                        e.path.display()
                    ))
                })? as i64;
            }
        }
        self.classes = names;
        Ok(self)
    }

    /// Sets the directory of the metadata cache (`None`: memory only).
    pub fn with_cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.cache_dir = dir;
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
        self.cache_dir.as_deref()
    }

    /// Counters of the metadata cache.
    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
            scans: self.scans.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }

    /// Metadata of video `i`: from memory, else from the disk cache when the file is unchanged, else from a scan
    /// of its packets (then written to the cache). Decoders opened on the file afterwards reuse its index.
    pub fn meta(&self, i: usize) -> Result<Arc<VideoMeta>> {
        let entry = self.entry(i)?;
        if let Some(m) = self.meta[i].get() {
            return Ok(m.clone());
        }
        let m = self.load_meta(&entry.path)?;
        Ok(self.meta[i].get_or_init(|| m).clone())
    }

    fn load_meta(&self, path: &Path) -> Result<Arc<VideoMeta>> {
        let stat = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound {
                path: path.to_path_buf(),
            },
            _ => Error::io(format!("reading {}", path.display()), e),
        })?;
        let canonical = std::fs::canonicalize(path)
            .map_err(|e| Error::io(format!("resolving {}", path.display()), e))?;
        let size = stat.len();
        let mtime_ns = stat
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let cache_file = self.cache_dir.as_ref().map(|d| {
            d.join("index-v2").join(format!(
                "{:016x}.json",
                fnv1a(canonical.to_string_lossy().as_bytes())
            ))
        });
        let name = canonical.to_string_lossy().into_owned();
        if let Some(file) = &cache_file {
            let rec = match std::fs::read(file) {
                Ok(bytes) => {
                    let rec = read_entry(&bytes);
                    if rec.is_none() {
                        self.rejected.fetch_add(1, Ordering::Relaxed);
                    }
                    rec
                }
                Err(_) => None,
            };
            if let Some(rec) = rec.filter(|r| {
                r.version == DISK_VERSION
                    && r.path == name
                    && r.size == size
                    && r.mtime_ns == mtime_ns
            }) {
                self.disk_hits.fetch_add(1, Ordering::Relaxed);
                let meta = Arc::new(VideoMeta::from(rec));
                crate::io::index::remember(path, meta.index.clone());
                return Ok(meta);
            }
        }
        self.scans.fetch_add(1, Ordering::Relaxed);
        let mut demuxer = Demuxer::open(path)?;
        let info = demuxer.info().clone();
        let index = FrameIndex::scan_demuxer(&mut demuxer)?;
        if let Some(file) = &cache_file {
            let rec = DiskRecord {
                version: DISK_VERSION,
                path: name,
                size,
                mtime_ns,
                codec: info.codec.clone(),
                width: info.width,
                height: info.height,
                fps: info.fps,
                duration_s: info.duration_s,
                index: index.clone(),
            };
            // The cache is an optimisation: a directory that cannot be written only costs a scan next time.
            if let Ok(json) = serde_json::to_vec(&rec) {
                if let Err(e) = write_atomically(file, &entry_bytes(&json)) {
                    if !self.cache_warned.swap(true, Ordering::Relaxed) {
                        eprintln!(
                            "vidloader: warning: cannot write the metadata cache at {} ({e}); going on without it \
                             (every file is scanned)",
                            file.parent().unwrap_or(file).display()
                        );
                    }
                }
            }
        }
        let meta = Arc::new(VideoMeta {
            codec: info.codec,
            width: info.width,
            height: info.height,
            fps: info.fps,
            duration_s: info.duration_s,
            index: Arc::new(index),
        });
        crate::io::index::remember(path, meta.index.clone());
        Ok(meta)
    }
}

/// The first word of a cache entry's header line.
const ENTRY_MAGIC: &str = "vidloader-index";

/// A cache entry: the header line (format, length and FNV-1a hash of the JSON that follows), then the JSON.
fn entry_bytes(json: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "{ENTRY_MAGIC} 1 len={} fnv1a={:016x}\n",
        json.len(),
        fnv1a(json)
    )
    .into_bytes();
    out.extend_from_slice(json);
    out
}

/// A cache entry read back from disk; `None` when it is not a whole, undamaged one of this format.
fn read_entry(bytes: &[u8]) -> Option<DiskRecord> {
    let nl = bytes.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&bytes[..nl]).ok()?;
    let json = &bytes[nl + 1..];
    let mut words = header.split(' ');
    let ok = words.next() == Some(ENTRY_MAGIC)
        && words.next() == Some("1")
        && words.next() == Some(format!("len={}", json.len()).as_str())
        && words.next() == Some(format!("fnv1a={:016x}", fnv1a(json)).as_str())
        && words.next().is_none();
    if !ok {
        return None;
    }
    parse_record(json)
}

/// The JSON of a cache entry; `None` when it is not a record or its index is inconsistent.
fn parse_record(json: &[u8]) -> Option<DiskRecord> {
    let rec = serde_json::from_slice::<DiskRecord>(json).ok()?;
    rec.index.validate().ok()?;
    Some(rec)
}

/// The metadata of a cache entry's JSON (the part after the header line) as [`VideoDataset::meta`] would take
/// it, or `None` when it would be refused (and the file scanned again). For the fuzz targets, which would rarely
/// get past the hash.
pub(crate) fn meta_of_cache_entry(json: &[u8]) -> Option<VideoMeta> {
    parse_record(json).map(VideoMeta::from)
}

impl From<DiskRecord> for VideoMeta {
    fn from(rec: DiskRecord) -> Self {
        VideoMeta {
            codec: rec.codec,
            width: rec.width,
            height: rec.height,
            fps: rec.fps,
            duration_s: rec.duration_s,
            index: Arc::new(rec.index),
        }
    }
}

/// 64-bit FNV-1a: a stable file name for a path (unlike std's hasher, the same in every Rust version).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn write_atomically(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = file.with_extension(format!(
        "tmp{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, file).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
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

/// One manifest row.
#[derive(Debug)]
struct Row {
    path: String,
    label: RawLabel,
    start: Option<f64>,
    end: Option<f64>,
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

fn parse_csv(text: &str) -> std::result::Result<Vec<Row>, String> {
    let mut cols = [Some(0usize), Some(1), Some(2), Some(3)]; // path, label, start, end
    let mut rows = Vec::new();
    let mut first = true;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let at = |e: String| format!("line {}: {e}", n + 1);
        let fields = csv_fields(line).map_err(at)?;
        if std::mem::take(&mut first) && fields.iter().any(|f| f.eq_ignore_ascii_case("path")) {
            let find = |name: &str| fields.iter().position(|f| f.eq_ignore_ascii_case(name));
            cols = [find("path"), find("label"), find("start"), find("end")];
            continue;
        }
        let get = |c: Option<usize>| c.and_then(|i| fields.get(i)).map_or("", |s| s.as_str());
        let path = get(cols[0]);
        if path.is_empty() {
            return Err(at("empty path".into()));
        }
        let label = match get(cols[1]) {
            "" => RawLabel::None,
            l => l
                .parse::<i64>()
                .map_or_else(|_| RawLabel::Name(l.to_owned()), RawLabel::Id),
        };
        let start = parse_time(get(cols[2])).map_err(at)?;
        let end = parse_time(get(cols[3])).map_err(at)?;
        check_range(start, end).map_err(at)?;
        rows.push(Row {
            path: path.to_owned(),
            label,
            start,
            end,
        });
    }
    Ok(rows)
}

fn parse_jsonl(text: &str) -> std::result::Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    let mut kinds = (false, false); // saw integer labels, saw names
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |e: String| format!("line {}: {e}", n + 1);
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| at(e.to_string()))?;
        let obj = v
            .as_object()
            .ok_or_else(|| at("not a JSON object".into()))?;
        let path = obj
            .get("path")
            .and_then(|p| p.as_str())
            .filter(|p| !p.is_empty())
            .ok_or_else(|| at("no \"path\" string".into()))?;
        let label = match obj.get("label") {
            None | Some(serde_json::Value::Null) => RawLabel::None,
            Some(serde_json::Value::String(s)) => {
                kinds.1 = true;
                RawLabel::Name(s.clone())
            }
            Some(l) => {
                kinds.0 = true;
                RawLabel::Id(
                    l.as_i64()
                        .ok_or_else(|| at(format!("label {l} is not an integer or a name")))?,
                )
            }
        };
        let time = |k: &str| -> std::result::Result<Option<f64>, String> {
            match obj.get(k) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(t) => t
                    .as_f64()
                    .map(Some)
                    .ok_or_else(|| at(format!("\"{k}\" is not a number"))),
            }
        };
        let (start, end) = (time("start")?, time("end")?);
        check_range(start, end).map_err(at)?;
        rows.push(Row {
            path: path.to_owned(),
            label,
            start,
            end,
        });
    }
    if kinds.0 && kinds.1 {
        return Err("labels mix integers and class names".into());
    }
    Ok(rows)
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

    #[test]
    fn fnv1a_is_stable() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
