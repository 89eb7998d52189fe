//! `MetadataCache`: the disk cache of videos' metadata (codec, picture size, rate, duration, exact frame index),
//! one SQLite database per cache directory (`CACHE_DIR/metadata.sqlite`) that every thread and process planning
//! from that directory shares.
//!
//! A row is keyed by the file's canonical path, size and modification time ([`CacheKey`]): a file that changes is a
//! miss, and its new entry replaces the old row. A video stored in a tar shard is keyed by the shard's canonical
//! path, size and modification time and the member's byte range in it (the path column holds the shard's path, a
//! NUL byte, which no path contains, and `<offset>+<length>`): a shard that changes is a miss for every member, and
//! the first new entry of the shard removes the rows of its earlier versions. The row holds an entry: one header line
//! (`vidloader-index 1 len=<bytes> fnv1a=<hash>`), then the record as JSON, which repeats the key. On reading, the
//! length, the hash, the record's key and the index's own consistency are checked; a row that fails is
//! [`Lookup::Rejected`] and never used (the caller scans the file and puts a new entry over it).
//!
//! Many processes on one machine at once (eight ranks planning one data set): the database is in WAL mode, so
//! readers never wait for writers, and entries are written in short transactions under a busy timeout: one entry
//! each, or (a data set reading many videos' metadata at once) up to 64 of one thread.
//! SQLite's WAL needs memory shared between the processes, so one database is for the processes of one machine;
//! machines that share a network filesystem share a cache read-only.
//!
//! A directory or database this process cannot write (a read-only or shared filesystem, another user's cache) is
//! opened read-only (`mode=ro`): hits are served, nothing is written, and the first entry that cannot be added is
//! reported once on stderr. Where SQLite cannot open it that way, because the WAL database's `-shm` file neither
//! exists nor can be created, it is opened with `immutable=1`: no `-shm` file means no connection had it open in
//! WAL mode, and should a writer change it later, a page read half-way is an SQLite error (a miss) or a row that
//! fails the checks above (rejected), never wrong metadata. A database that cannot be opened or read (not a
//! database, another schema) or a directory that cannot be created is not used: the cache warns once on stderr and
//! the data set goes on without it, scanning every file. Nothing here fails the data set.
//!
//! The per-file caches of earlier versions (`CACHE_DIR/index-v2/<hash>.json`) are not read and are left where
//! they are; deleting that folder frees their space.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::demux::StreamInfo;
use crate::io::index::FrameIndex;

/// The name of the database file in a cache directory.
pub const CACHE_FILE: &str = "metadata.sqlite";

/// The table of entries; its name carries the record's version, so another format never reads these rows.
const TABLE: &str = "index_v5";

/// The record's version (v2: indexes of MPEG-4 B-frame AVIs changed; v3: H.264 indexes carry their reference
/// structure; v4: an H.264 or MPEG-2 stream that begins inside a group of pictures no longer counts the pictures
/// before its first keyframe, and MPEG program streams with untimed pictures are indexed instead of refused; v5:
/// H.264 frames inside an intra-refresh period decode from the recovery point before, and a stream that begins
/// at a recovery point no longer counts the pictures before its recovery picture).
const RECORD_VERSION: u32 = 5;

/// How long a statement waits for another connection's lock before it gives up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The first word of an entry's header line.
const ENTRY_MAGIC: &str = "vidloader-index";

/// Counters of the metadata cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    /// Metadata read from the disk cache.
    pub disk_hits: u64,
    /// Files scanned (not in the disk cache, cache disabled, or changed since they were cached).
    pub scans: u64,
    /// Cache entries found but refused: cut short, damaged or in another format (each file was scanned again and
    /// its entry rewritten where the cache can be written).
    pub rejected: u64,
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

/// What a cache entry belongs to: a file's canonical path, size and modification time, and the byte range of the
/// video in it when the file is a tar shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CacheKey {
    /// The canonical path.
    pub path: PathBuf,
    /// The size in bytes.
    pub size: u64,
    /// The modification time in nanoseconds since the Unix epoch (0 when unknown or earlier).
    pub mtime_ns: u128,
    /// The video's offset and length in the file (`None`: the whole file).
    pub range: Option<(u64, u64)>,
    /// The modification time as the filesystem gave it (the per-process index cache's key has it in this form).
    pub modified: Option<SystemTime>,
}

impl CacheKey {
    /// The key of the bytes `range` (offset, length) of the file at `path` as it is now (`None`: the whole
    /// file); [`Error::NotFound`] when there is no such file.
    pub fn of_range(path: &Path, range: Option<(u64, u64)>) -> Result<CacheKey> {
        let stat = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound {
                path: path.to_path_buf(),
            },
            _ => Error::io(format!("reading {}", path.display()), e),
        })?;
        let canonical = std::fs::canonicalize(path)
            .map_err(|e| Error::io(format!("resolving {}", path.display()), e))?;
        let modified = stat.modified().ok();
        let mtime_ns = modified
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        Ok(CacheKey {
            path: canonical,
            size: stat.len(),
            mtime_ns,
            range,
            modified,
        })
    }

    /// What follows the path in the path column and the record for a range: NUL, `<offset>+<length>`.
    fn range_suffix(&self) -> String {
        match self.range {
            Some((offset, len)) => format!("\0{offset}+{len}"),
            None => String::new(),
        }
    }

    /// The path (and range) as the record spells it.
    fn name(&self) -> String {
        format!("{}{}", self.path.to_string_lossy(), self.range_suffix())
    }

    /// The key columns of the row: the path's bytes (and the range), size and modification time as SQLite
    /// integers; `None` when they do not fit (such a file is not cached).
    fn columns(&self) -> Option<(Vec<u8>, i64, i64)> {
        let mut path = self.path.as_os_str().as_encoded_bytes().to_vec();
        path.extend_from_slice(self.range_suffix().as_bytes());
        Some((
            path,
            i64::try_from(self.size).ok()?,
            i64::try_from(self.mtime_ns).ok()?,
        ))
    }
}

/// A cache entry's record: its key and the metadata of the file.
#[derive(Serialize, Deserialize)]
pub(crate) struct CacheRecord {
    version: u32,
    path: String,
    size: u64,
    mtime_ns: u128,
    /// Codec name as FFmpeg calls it.
    pub codec: String,
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Frame rate from the container.
    pub fps: f64,
    /// Duration from the container in seconds.
    pub duration_s: f64,
    /// The file's exact frame index.
    pub index: FrameIndex,
}

/// A record as it is written (borrowing what it serialises; the same JSON as [`CacheRecord`]).
#[derive(Serialize)]
struct RecordRef<'a> {
    version: u32,
    path: &'a str,
    size: u64,
    mtime_ns: u128,
    codec: &'a str,
    width: u32,
    height: u32,
    fps: f64,
    duration_s: f64,
    index: &'a FrameIndex,
}

/// An entry ready to be written ([`MetadataCache::entry`]).
pub(crate) struct Entry {
    /// The key columns (see [`CacheKey::columns`]).
    path: Vec<u8>,
    size: i64,
    mtime: i64,
    /// For a member of a tar shard: the shard's path, whose rows of other versions the entry replaces.
    shard: Option<Vec<u8>>,
    /// The row's `entry` value.
    bytes: Vec<u8>,
}

/// What the cache has for a key.
pub(crate) enum Lookup {
    /// A whole, undamaged entry of this key.
    Hit(Box<CacheRecord>),
    /// No entry (or no usable cache).
    Miss,
    /// A row of this key that fails the checks: not used.
    Rejected,
}

/// An open database.
struct Store {
    /// Idle connections: a statement takes one, or opens another, so the threads of a data set read at once.
    idle: Mutex<Vec<Connection>>,
    file: PathBuf,
    /// Whether this process may write it (false: opened read-only).
    writable: bool,
    /// The URI query that opened it read-only.
    read_only: &'static str,
}

impl Store {
    /// `f` on one of the store's connections.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None if self.writable => open_read_write(&self.file)?,
            None => open_read_only(&self.file, &[self.read_only])?.0,
        };
        let out = f(&mut conn);
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
        out
    }
}

/// The metadata cache of one directory: opened on first use, shared by the threads of a data set.
pub(crate) struct MetadataCache {
    dir: PathBuf,
    store: OnceLock<Option<Store>>,
    /// Whether the warning that the cache cannot be used or written has been given.
    warned: AtomicBool,
    /// Set when a write failed: later entries are not tried (each could wait for the busy timeout).
    writes_off: AtomicBool,
}

impl std::fmt::Debug for MetadataCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataCache")
            .field("dir", &self.dir)
            .field(
                "writable",
                &self
                    .store
                    .get()
                    .map(|s| s.as_ref().is_some_and(|s| s.writable)),
            )
            .finish()
    }
}

impl MetadataCache {
    /// The cache of directory `dir` (nothing is opened or created before the first lookup).
    pub fn new(dir: PathBuf) -> Self {
        MetadataCache {
            dir,
            store: OnceLock::new(),
            warned: AtomicBool::new(false),
            writes_off: AtomicBool::new(false),
        }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry of `key`, checked (see the module's description).
    pub fn get(&self, key: &CacheKey) -> Lookup {
        let (Some(store), Some((path, size, mtime))) = (self.store(), key.columns()) else {
            return Lookup::Miss;
        };
        let row = store.with(|conn| {
            conn.prepare_cached(&format!(
                "SELECT entry FROM {TABLE} WHERE path = ?1 AND size = ?2 AND mtime_ns = ?3"
            ))?
            .query_row((&path, size, mtime), |r| {
                Ok(match r.get_ref(0)? {
                    ValueRef::Blob(b) | ValueRef::Text(b) => Some(b.to_vec()),
                    _ => None,
                })
            })
            .optional()
        });
        match row {
            Ok(None) => Lookup::Miss,
            Ok(Some(None)) => Lookup::Rejected,
            Ok(Some(Some(bytes))) => match read_entry(&bytes) {
                Some(rec)
                    if rec.version == RECORD_VERSION
                        && rec.path == key.name()
                        && rec.size == key.size
                        && rec.mtime_ns == key.mtime_ns =>
                {
                    Lookup::Hit(Box::new(rec))
                }
                _ => Lookup::Rejected,
            },
            Err(e) => {
                self.warn(format!(
                    "cannot read the metadata cache {} ({e}); the file is scanned",
                    self.file().display()
                ));
                Lookup::Miss
            }
        }
    }

    /// Writes the entry of `key`: the stream `info` and the exact `index` of the file. Replaces the file's rows of
    /// other sizes or times. A cache that cannot be written says so once on stderr and is not written again.
    pub fn put(&self, key: &CacheKey, info: &StreamInfo, index: &FrameIndex) {
        if let Some(entry) = self.entry(key, info, index) {
            self.put_all(std::slice::from_ref(&entry));
        }
    }

    /// The entry [`MetadataCache::put`] would write for `key`, made ready to be written later with others by
    /// [`MetadataCache::put_all`]; `None` where nothing would be written (no cache, a cache that cannot be written,
    /// a key that does not fit the table).
    pub fn entry(&self, key: &CacheKey, info: &StreamInfo, index: &FrameIndex) -> Option<Entry> {
        let (store, (path, size, mtime)) = (self.store()?, key.columns()?);
        if self.writes_off.load(Ordering::Relaxed) {
            return None;
        }
        if !store.writable {
            self.writes_off.store(true, Ordering::Relaxed);
            self.warn(format!(
                "the metadata cache {} is read-only: files it does not hold are scanned and not added",
                self.file().display()
            ));
            return None;
        }
        let name = key.name();
        let rec = RecordRef {
            version: RECORD_VERSION,
            path: &name,
            size: key.size,
            mtime_ns: key.mtime_ns,
            codec: &info.codec,
            width: info.width,
            height: info.height,
            fps: info.fps,
            duration_s: info.duration_s,
            index,
        };
        let json = serde_json::to_vec(&rec).ok()?;
        Some(Entry {
            path,
            size,
            mtime,
            shard: key
                .range
                .map(|_| key.path.as_os_str().as_encoded_bytes().to_vec()),
            bytes: entry_bytes(&json),
        })
    }

    /// Writes `entries` (each as [`MetadataCache::put`] would) in one transaction: one commit for many files, where
    /// a commit per file was a tenth of a cold scan of short clips. A cache that cannot be written says so once on
    /// stderr and is not written again.
    pub fn put_all(&self, entries: &[Entry]) {
        let Some(store) = self.store() else {
            return;
        };
        if entries.is_empty() || self.writes_off.load(Ordering::Relaxed) {
            return;
        }
        let written = store.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for e in entries {
                if let Some(shard) = &e.shard {
                    // Every member row of the shard's other versions: the paths from `<shard>\0` up to
                    // `<shard>\x01`.
                    let (low, high) = (
                        [shard.as_slice(), b"\0"].concat(),
                        [shard.as_slice(), b"\x01"].concat(),
                    );
                    tx.prepare_cached(&format!(
                        "DELETE FROM {TABLE} WHERE path >= ?1 AND path < ?2 \
                         AND (size <> ?3 OR mtime_ns <> ?4)"
                    ))?
                    .execute((&low, &high, e.size, e.mtime))?;
                } else {
                    tx.prepare_cached(&format!(
                        "DELETE FROM {TABLE} WHERE path = ?1 AND (size <> ?2 OR mtime_ns <> ?3)"
                    ))?
                    .execute((&e.path, e.size, e.mtime))?;
                }
                tx.prepare_cached(&format!(
                    "INSERT OR REPLACE INTO {TABLE} (path, size, mtime_ns, entry) \
                     VALUES (?1, ?2, ?3, ?4)"
                ))?
                .execute((&e.path, e.size, e.mtime, &e.bytes))?;
            }
            tx.commit()
        });
        if let Err(e) = written {
            self.writes_off.store(true, Ordering::Relaxed);
            self.warn(format!(
                "cannot write the metadata cache {} ({e}); going on without writing it",
                self.file().display()
            ));
        }
    }

    /// The database file.
    fn file(&self) -> PathBuf {
        self.dir.join(CACHE_FILE)
    }

    /// Prints `message` on stderr, once per cache.
    fn warn(&self, message: String) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            eprintln!("vidloader: warning: {message}");
        }
    }

    /// The open database, opened on the first call; `None` when there is none to use.
    fn store(&self) -> Option<&Store> {
        self.store.get_or_init(|| self.open()).as_ref()
    }

    fn open(&self) -> Option<Store> {
        let file = self.file();
        let rw = std::fs::create_dir_all(&self.dir)
            .map_err(|e| e.to_string())
            .and_then(|()| open_read_write(&file).map_err(|e| e.to_string()));
        let why = match rw {
            Ok(conn) => {
                return Some(Store {
                    idle: Mutex::new(vec![conn]),
                    file,
                    writable: true,
                    read_only: "",
                })
            }
            Err(why) => why,
        };
        if file.is_file() {
            return match open_read_only(&file, &READ_ONLY) {
                Ok((conn, query)) => Some(Store {
                    idle: Mutex::new(vec![conn]),
                    file,
                    writable: false,
                    read_only: query,
                }),
                Err(e) => {
                    self.warn(format!(
                        "cannot read the metadata cache {} ({e}); going on without it (every file is scanned)",
                        file.display()
                    ));
                    None
                }
            };
        }
        self.warn(format!(
            "cannot write the metadata cache at {} ({why}); going on without it (every file is scanned)",
            self.dir.display()
        ));
        None
    }
}

/// The schema, created where missing.
fn schema() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {TABLE} (path BLOB NOT NULL, size INTEGER NOT NULL, \
         mtime_ns INTEGER NOT NULL, entry BLOB NOT NULL, PRIMARY KEY (path, size, mtime_ns))"
    )
}

/// Whether `e` is another connection's lock (worth waiting for).
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// `f`, again while another connection holds a lock SQLite's busy handler does not wait for (switching the
/// journal mode of a database another process is creating), for up to [`BUSY_TIMEOUT`].
fn retry_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let started = Instant::now();
    loop {
        match f() {
            Err(e) if is_busy(&e) && started.elapsed() < BUSY_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// The database at `file` for reading and writing, created with its table where missing; an error when this
/// process cannot write it.
fn open_read_write(file: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if conn.is_readonly(rusqlite::MAIN_DB)? {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
            Some("the database is read-only".into()),
        ));
    }
    // WAL: readers do not wait for the writer. The mode stays in the file; where the filesystem cannot give it,
    // SQLite keeps its rollback journal, which is as safe and only slower.
    retry_busy(|| conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())))?;
    // In WAL mode a commit is durable at the next checkpoint; a crash loses at most the last entries, which are
    // only an optimisation, and never damages the database.
    retry_busy(|| conn.execute_batch(&format!("PRAGMA synchronous = NORMAL; {}", schema())))?;
    Ok(conn)
}

/// The URI queries that open a database read-only, in the order they are tried (see the module's description for
/// `immutable=1`).
const READ_ONLY: [&str; 2] = ["mode=ro", "mode=ro&immutable=1"];

/// The database at `file`, read-only, opened with the first of `queries` that works, and that query; the first
/// error when it cannot be read or has no table of entries.
fn open_read_only(
    file: &Path,
    queries: &[&'static str],
) -> rusqlite::Result<(Connection, &'static str)> {
    let open = |query: &str| -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            format!("file:{}?{query}", uri_path(file)),
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Reads the schema: a file that is not a database, or has no table of entries, fails here.
        conn.prepare(&format!("SELECT entry FROM {TABLE} LIMIT 0"))?
            .query([])?
            .next()?;
        Ok(conn)
    };
    let mut first = None;
    for &query in queries {
        match open(query) {
            Ok(conn) => return Ok((conn, query)),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    Err(first.unwrap_or(rusqlite::Error::InvalidQuery))
}

/// `path` for an SQLite URI: bytes other than letters, digits and `/._-~` percent-encoded.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for &b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/._-~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An entry: the header line (format, length and FNV-1a hash of the JSON that follows), then the JSON.
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

/// The record of an entry's bytes; `None` when they are not a whole, undamaged entry of this format.
pub(crate) fn read_entry(bytes: &[u8]) -> Option<CacheRecord> {
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
    record_of_json(json)
}

/// The record of an entry's JSON (the part after the header line); `None` when it is not a record or its index is
/// inconsistent. Public to the crate for the fuzz targets, which would rarely get past the hash.
pub(crate) fn record_of_json(json: &[u8]) -> Option<CacheRecord> {
    let rec = serde_json::from_slice::<CacheRecord>(json).ok()?;
    rec.index.validate().ok()?;
    Some(rec)
}

/// 64-bit FNV-1a: a hash that is the same in every Rust version (unlike std's hasher).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_is_stable() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn uri_paths_escape_what_a_uri_would_read() {
        assert_eq!(
            uri_path(Path::new("/a b/c?d#e%f/x.sqlite")),
            "/a%20b/c%3Fd%23e%25f/x.sqlite"
        );
    }

    #[test]
    fn entries_read_back_and_damage_is_refused() {
        let raw: Vec<_> = (0..5i64)
            .map(|i| (Some(i * 512), Some(i * 512), i == 0, false, 512))
            .collect();
        let index = FrameIndex::from_packets(&raw, (1, 12800)).unwrap();
        let rec = RecordRef {
            version: RECORD_VERSION,
            path: "/v.mp4",
            size: 10,
            mtime_ns: 7,
            codec: "h264",
            width: 64,
            height: 48,
            fps: 25.0,
            duration_s: 0.2,
            index: &index,
        };
        let entry = entry_bytes(&serde_json::to_vec(&rec).unwrap());
        let back = read_entry(&entry).unwrap();
        assert_eq!((back.path.as_str(), back.index.len()), ("/v.mp4", 5));
        assert!(read_entry(&entry[..entry.len() - 1]).is_none());
        let mut flipped = entry.clone();
        let last = flipped.len() - 2;
        flipped[last] ^= 1;
        assert!(read_entry(&flipped).is_none());
    }
}
