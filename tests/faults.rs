//! Faults while the loader runs, through the public API and the CLI: a video deleted, truncated or replaced with
//! garbage in the middle of an epoch (`ErrorPolicy::Skip` reports it and goes on, `Fail` stops with an error that
//! names the file, the workers are joined, nothing hangs); a metadata cache directory that cannot be written (the
//! loader works without it and warns once); damaged rows of the cache database (refused, rescanned, rewritten,
//! never used); a cache database that is garbage (a warning, then no cache); a read-only cache directory (hits
//! served, nothing written); eight processes planning one data set with one cache database at once (identical
//! plans, whole entries).
//!
//! Every test runs under a watchdog: a test that does not finish in time fails instead of hanging the run.

mod common;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use common::*;
use tch::Device;
use vidloader::synth::{write_dataset, SynthSpec};
use vidloader::{DataLoader, ErrorPolicy, UniformSampler, VideoDataset};

/// The tests of this file one at a time: they count the process's threads.
static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `f` on its own thread and fails the test when it does not finish within `secs` (a hang) or panics.
fn watchdog(secs: u64, f: impl FnOnce() + Send + 'static) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => t.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The body panicked: hand its panic on.
            if let Err(p) = t.join() {
                std::panic::resume_unwind(p);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hung: not done after {secs} s"),
    }
}

/// A fresh synthetic data set of 16 videos (64x48, 24 frames) under the fixture scratch folder.
fn dataset(name: &str) -> PathBuf {
    dataset_in(fixture_dir().join("scratch/faults").join(name))
}

/// [`dataset`] in the folder `dir` (emptied first).
fn dataset_in(dir: PathBuf) -> PathBuf {
    let _ = std::fs::remove_dir_all(&dir);
    let spec = SynthSpec {
        width: 64,
        height: 48,
        frames: 24,
        fps: 24,
        gop: 8,
        b_frames: 2,
    };
    write_dataset(&dir, &spec, 4).unwrap();
    dir
}

fn loader(dir: &Path, policy: ErrorPolicy) -> DataLoader {
    let ds = VideoDataset::from_manifest(dir.join("labels.csv"))
        .unwrap()
        .with_cache_dir(Some(dir.join("cache")));
    DataLoader::builder(ds)
        .device(Device::Cpu)
        .sampler(UniformSampler::new(4))
        .batch_size(2)
        .workers(2)
        .prefetch(1)
        .decode_threads(1)
        .on_error(policy)
        .warnings(false)
        .build()
        .unwrap()
}

/// The names of this process's threads (Linux).
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task").map_or(Vec::new(), |d| {
        d.filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
            .map(|n| n.trim().to_string())
            .collect()
    })
}

/// Threads the loader started, or that were started from one of them (a thread inherits its creator's name):
/// every thread vidloader starts is named `vidloader-...`. The test harness's own threads come and go while a
/// test runs (the next test's thread starts when the previous one ends), so the whole process's count cannot be
/// compared.
fn loader_threads() -> usize {
    thread_names()
        .iter()
        .filter(|n| n.starts_with("vidloader"))
        .count()
}

#[derive(Clone, Copy, Debug)]
enum Damage {
    Delete,
    Truncate,
    Garbage,
}

fn damage(path: &Path, how: Damage) {
    match how {
        Damage::Delete => std::fs::remove_file(path).unwrap(),
        Damage::Truncate => {
            let len = std::fs::metadata(path).unwrap().len();
            let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            f.set_len(len / 3).unwrap();
        }
        Damage::Garbage => {
            let len = std::fs::metadata(path).unwrap().len() as usize;
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            std::fs::write(path, bytes).unwrap();
        }
    }
}

/// Epoch 0 runs clean (metadata in memory, threads started); in epoch 1 the last video of the plan is damaged
/// after the first batch. Returns the damaged path, what the epoch delivered, and its error if it stopped.
fn damaged_epoch(
    dir: &Path,
    policy: ErrorPolicy,
    how: Damage,
) -> (
    PathBuf,
    Vec<vidloader::Batch>,
    Option<vidloader::Error>,
    DataLoader,
) {
    let loader = loader(dir, policy);
    let clean: Vec<_> = loader.epoch(0).collect::<Result<_, _>>().unwrap();
    assert_eq!(clean.len(), 8);
    let plan = loader.plan(1).unwrap();
    let victim = plan.batches.last().unwrap().last().unwrap().path.clone();
    let before = loader_threads();
    let mut got = Vec::new();
    let mut error = None;
    {
        let mut epoch = loader.epoch(1);
        got.push(epoch.next().unwrap().unwrap());
        assert!(
            loader_threads() > before,
            "the epoch's workers are counted: {:?}",
            thread_names()
        );
        damage(&victim, how);
        for b in epoch.by_ref() {
            match b {
                Ok(b) => got.push(b),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        if error.is_some() {
            assert!(epoch.next().is_none(), "the epoch ends after its error");
        }
    }
    // Dropping the epoch joined its workers: no thread of it is left. A joined thread can stay listed in
    // /proc/self/task for a moment after `join` returns (the kernel wakes the joiner before it reaps the task),
    // so the count is given a little time to settle; a worker that really lives on stays counted and fails.
    let settled = std::time::Instant::now();
    while loader_threads() > before && settled.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        loader_threads() <= before,
        "{} loader threads after the epoch, {before} before: {:?}",
        loader_threads(),
        thread_names()
    );
    (victim, got, error, loader)
}

fn skip_reports_and_goes_on(how: Damage) {
    let dir = dataset(&format!("skip-{how:?}"));
    let (victim, got, error, loader) = damaged_epoch(&dir, ErrorPolicy::Skip, how);
    assert!(error.is_none(), "{how:?}: {error:?}");
    let delivered: Vec<PathBuf> = got
        .iter()
        .flat_map(|b| b.samples.iter().map(|s| s.path.clone()))
        .collect();
    assert_eq!(
        delivered.len(),
        15,
        "{how:?}: every other video is delivered"
    );
    assert!(
        !delivered.contains(&victim),
        "{how:?}: the damaged video is not delivered"
    );
    let skipped = loader.summary().skipped;
    assert_eq!(skipped.len(), 1, "{how:?}: {skipped:?}");
    assert_eq!(skipped[0].path, victim);
    assert!(!skipped[0].reason.is_empty());
}

fn fail_names_the_file(how: Damage) {
    let dir = dataset(&format!("fail-{how:?}"));
    let (victim, got, error, _) = damaged_epoch(&dir, ErrorPolicy::Fail, how);
    let error = error.unwrap_or_else(|| panic!("{how:?}: no error, {} batches", got.len()));
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        error.to_string().contains(&name),
        "{how:?}: the error names the file: {error}"
    );
    assert!(got.len() < 8, "{how:?}: stopped at the error");
}

#[test]
fn deleted_mid_epoch_skip() {
    watchdog(120, || skip_reports_and_goes_on(Damage::Delete));
}

#[test]
fn truncated_mid_epoch_skip() {
    watchdog(120, || skip_reports_and_goes_on(Damage::Truncate));
}

#[test]
fn garbage_mid_epoch_skip() {
    watchdog(120, || skip_reports_and_goes_on(Damage::Garbage));
}

#[test]
fn deleted_mid_epoch_fail() {
    watchdog(120, || fail_names_the_file(Damage::Delete));
}

#[test]
fn truncated_mid_epoch_fail() {
    watchdog(120, || fail_names_the_file(Damage::Truncate));
}

#[test]
fn garbage_mid_epoch_fail() {
    watchdog(120, || fail_names_the_file(Damage::Garbage));
}

/// A regular file where the cache directory should be: the loader delivers every batch without a cache, and the
/// CLI warns exactly once for the whole data set.
#[test]
fn unwritable_cache_dir_works_without_it_and_warns_once() {
    watchdog(180, || {
        let dir = dataset("unwritable");
        let blocker = dir.join("not-a-dir");
        std::fs::write(&blocker, b"a file, not a directory").unwrap();
        let cache = blocker.join("cache");
        let ds = VideoDataset::from_manifest(dir.join("labels.csv"))
            .unwrap()
            .with_cache_dir(Some(cache.clone()));
        let loader = DataLoader::builder(ds)
            .device(Device::Cpu)
            .sampler(UniformSampler::new(4))
            .batch_size(4)
            .workers(2)
            .decode_threads(1)
            .build()
            .unwrap();
        let n: usize = loader.epoch(0).map(|b| b.unwrap().len()).sum();
        assert_eq!(n, 16);
        assert!(!cache.exists());
        // The CLI: same data set, same cache path, one warning.
        let out = cli()
            .arg("plan")
            .arg(dir.join("labels.csv"))
            .arg("--cache-dir")
            .arg(&cache)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let warnings = stderr.matches("cannot write the metadata cache").count();
        assert_eq!(warnings, 1, "one warning for 16 files:\n{stderr}");
    });
}

/// The cache database of `cache`.
fn database(cache: &Path) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(cache.join("metadata.sqlite")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db
}

/// Every row of the cache database of `cache`, as `(path, entry)`, by path.
fn entries(cache: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let db = database(cache);
    let mut st = db
        .prepare("SELECT path, entry FROM index_v5 ORDER BY path")
        .unwrap();
    let rows = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows
}

/// Replaces the entry of the row of `path` with `value` (an SQL expression over `?1`, the given bytes).
fn damage_row(cache: &Path, path: &[u8], value: &str, bytes: &[u8]) {
    let n = database(cache)
        .execute(
            &format!("UPDATE index_v5 SET entry = {value} WHERE path = ?2"),
            (bytes, path),
        )
        .unwrap();
    assert_eq!(n, 1);
}

/// The names of the files in `cache`.
fn files_in(cache: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The frame layout of every video of a data set, as `(frames, pts of every frame)`.
fn layouts(ds: &VideoDataset) -> Vec<(usize, Vec<i64>)> {
    (0..ds.len())
        .map(|i| {
            let m = ds.meta(i).unwrap();
            let n = m.num_frames();
            let index = m.index.as_ref().unwrap();
            (n, (0..n).map(|f| index.pts(f)).collect())
        })
        .collect()
}

/// Damaged rows of the cache database (garbage, cut short, empty, one changed digit inside a number, an old
/// plain-JSON entry, an entry whose index is inconsistent, another file's whole entry, a well-formed entry naming
/// another path, a number instead of bytes)
/// are refused, the files scanned again and the rows rewritten: the metadata is always that of a fresh scan.
#[test]
fn corrupt_cache_entries_are_detected_and_rebuilt() {
    watchdog(180, || {
        let dir = dataset("corrupt-cache");
        let cache = dir.join("cache");
        let open = || {
            VideoDataset::from_manifest(dir.join("labels.csv"))
                .unwrap()
                .with_cache_dir(Some(cache.clone()))
        };
        let fresh = open();
        let truth = layouts(&fresh);
        assert_eq!(fresh.cache_stats().scans, 16);
        let rows = entries(&cache);
        assert_eq!(rows.len(), 16);
        let warm = open();
        assert_eq!(layouts(&warm), truth);
        assert_eq!(
            (warm.cache_stats().disk_hits, warm.cache_stats().rejected),
            (16, 0)
        );

        // Damage nine rows, nine ways.
        let key = |k: usize| rows[k].0.as_slice();
        let original = |k: usize| rows[k].1.as_slice();
        let garbage: Vec<u8> = (0..original(0).len()).map(|i| (i * 7 + 3) as u8).collect();
        damage_row(&cache, key(0), "?1", &garbage);
        damage_row(&cache, key(1), "?1", &original(1)[..original(1).len() / 2]);
        damage_row(&cache, key(2), "?1", b"");
        // One digit of a time stamp changed: still valid JSON, still a consistent index, but not what was written.
        let mut flipped = original(3).to_vec();
        let at = flipped
            .windows(6)
            .position(|w| w == b"\"pts\":")
            .expect("a pts field")
            + 6;
        let digit = at + flipped[at..].iter().position(u8::is_ascii_digit).unwrap();
        flipped[digit] = if flipped[digit] == b'9' {
            b'8'
        } else {
            flipped[digit] + 1
        };
        damage_row(&cache, key(3), "?1", &flipped);
        // The JSON alone, as the cache was written before entries had a header.
        let nl = original(4).iter().position(|&b| b == b'\n').unwrap();
        damage_row(&cache, key(4), "?1", &original(4)[nl + 1..]);
        // A correct header over an index whose frames point past the packets.
        let json = String::from_utf8(original(5)[nl + 1..].to_vec()).unwrap();
        let broken = json.replacen("\"frame_packet\":[", "\"frame_packet\":[4000000,", 1);
        assert_ne!(broken, json);
        let header = format!(
            "vidloader-index 1 len={} fnv1a={:016x}\n",
            broken.len(),
            fnv1a(broken.as_bytes())
        );
        damage_row(
            &cache,
            key(5),
            "?1",
            &[header.as_bytes(), broken.as_bytes()].concat(),
        );
        // Another file's whole, undamaged entry.
        damage_row(&cache, key(6), "?1", original(7));
        // This file's entry, re-hashed, but naming another path.
        let json = String::from_utf8(original(9)[nl + 1..].to_vec()).unwrap();
        let at = json.find("\"path\":\"").expect("a path field") + 8;
        let moved = format!("{}/elsewhere{}", &json[..at], &json[at..]);
        let header = format!(
            "vidloader-index 1 len={} fnv1a={:016x}\n",
            moved.len(),
            fnv1a(moved.as_bytes())
        );
        damage_row(
            &cache,
            key(9),
            "?1",
            &[header.as_bytes(), moved.as_bytes()].concat(),
        );
        // Not bytes at all.
        damage_row(&cache, key(8), "42 + length(?1)", b"");

        let healed = open();
        assert_eq!(layouts(&healed), truth, "the metadata is a fresh scan's");
        let stats = healed.cache_stats();
        assert_eq!((stats.disk_hits, stats.scans, stats.rejected), (7, 9, 9));
        // Rewritten: a third data set reads every entry from disk again.
        let again = open();
        assert_eq!(layouts(&again), truth);
        assert_eq!(
            (again.cache_stats().disk_hits, again.cache_stats().rejected),
            (16, 0)
        );
        assert_eq!(entries(&cache), rows, "rewritten as they were");
    });
}

/// A cache database that is garbage: the data set warns once (library and CLI), scans every file, delivers every
/// batch, and leaves the file as it was.
#[test]
fn garbage_cache_database_warns_and_goes_on() {
    watchdog(180, || {
        let dir = dataset("garbage-database");
        let cache = dir.join("cache");
        std::fs::create_dir_all(&cache).unwrap();
        let garbage: Vec<u8> = (0..65536u32).map(|i| (i * 131 + 7) as u8).collect();
        std::fs::write(cache.join("metadata.sqlite"), &garbage).unwrap();
        let loader = loader(&dir, ErrorPolicy::Fail);
        let n: usize = loader.epoch(0).map(|b| b.unwrap().len()).sum();
        assert_eq!(n, 16);
        let stats = loader.dataset().cache_stats();
        assert_eq!((stats.disk_hits, stats.scans), (0, 16));
        let out = cli()
            .arg("plan")
            .arg(dir.join("labels.csv"))
            .arg("--cache-dir")
            .arg(&cache)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(
            stderr
                .matches("warning: cannot read the metadata cache")
                .count(),
            1,
            "one warning for 16 files:\n{stderr}"
        );
        assert!(stderr.contains("not a database"), "{stderr}");
        assert_eq!(
            std::fs::read(cache.join("metadata.sqlite")).unwrap(),
            garbage
        );
    });
}

/// Whether this process runs as root (then "a user who cannot write" has to be another user).
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

/// The data set of the read-only test. As root, the test runs the CLI as `nobody`, who may not be able to reach
/// the fixture folder (a checkout under `/root`, a scratch folder made by `mktemp -d`): then the data set and a
/// copy of the executable go into a fresh world-readable folder under the system's temporary directory.
fn read_only_dataset() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    if !running_as_root() {
        return dataset("read-only");
    }
    let dir = dataset_in(
        std::env::temp_dir().join(format!("vidloader-read-only-{}", std::process::id())),
    );
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = dir.join("vidloader");
    std::fs::copy(cli().get_program(), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// `vidloader plan` on `dir`'s manifest `manifest` with the cache `cache`, as a user who cannot write it: as
/// itself where this process is not root (the directory was made read-only), else as `nobody` (root writes
/// anything). Returns the cache's counters and stderr.
fn plan_read_only(dir: &Path, manifest: &str, cache: &Path) -> ((u64, u64, u64), String) {
    let mut cmd = if running_as_root() {
        // `nobody` must reach the executable too: the copy that `read_only_dataset` put beside the data set.
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(dir.join("vidloader"));
        c
    } else {
        cli()
    };
    let out = cmd
        .arg("plan")
        .arg(dir.join(manifest))
        .args(["--json", "--cache-dir"])
        .arg(cache)
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (as root, the test needs setpriv)"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{cmd:?}: {stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let n = |k: &str| v["cache"][k].as_u64().unwrap();
    ((n("disk_hits"), n("scans"), n("rejected")), stderr)
}

/// A cache directory its user cannot write (a shared filesystem, another user's cache): opened read-only, every
/// entry served, nothing written, no error; a file it does not hold is scanned, with one warning. Both with no
/// other connection (SQLite then opens it immutable) and while a writer holds it open (its `-wal` and `-shm`
/// files exist).
#[test]
fn read_only_cache_dir_serves_hits_and_never_errors() {
    watchdog(180, || {
        use std::os::unix::fs::PermissionsExt;
        let dir = read_only_dataset();
        let cache = dir.join("cache");
        let ds = VideoDataset::from_manifest(dir.join("labels.csv"))
            .unwrap()
            .with_cache_dir(Some(cache.clone()));
        for i in 0..ds.len() {
            ds.meta(i).unwrap();
        }
        drop(ds);
        // One more video the cache does not hold.
        let manifest = std::fs::read_to_string(dir.join("labels.csv")).unwrap();
        let first = manifest
            .lines()
            .find(|l| l.contains(".mp4"))
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .to_string();
        std::fs::copy(dir.join(&first), dir.join("extra.mp4")).unwrap();
        let mut more = manifest.clone();
        more.push_str("extra.mp4,0\n");
        std::fs::write(dir.join("more.csv"), more).unwrap();

        assert_eq!(files_in(&cache), ["metadata.sqlite"]);
        let db = std::fs::read(cache.join("metadata.sqlite")).unwrap();
        let set_mode = |dir_mode: u32, file_mode: u32| {
            std::fs::set_permissions(
                cache.join("metadata.sqlite"),
                std::fs::Permissions::from_mode(file_mode),
            )
            .unwrap();
            std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(dir_mode)).unwrap();
        };
        set_mode(0o555, 0o444);
        let (stats, stderr) = plan_read_only(&dir, "labels.csv", &cache);
        assert_eq!(stats, (16, 0, 0), "{stderr}");
        assert!(!stderr.contains("warning"), "{stderr}");
        let (stats, stderr) = plan_read_only(&dir, "more.csv", &cache);
        assert_eq!(stats, (16, 1, 0), "{stderr}");
        assert_eq!(stderr.matches("warning").count(), 1, "{stderr}");
        assert!(stderr.contains("is read-only"), "{stderr}");
        assert_eq!(files_in(&cache), ["metadata.sqlite"]);
        assert_eq!(std::fs::read(cache.join("metadata.sqlite")).unwrap(), db);

        // While a writer (this process) holds the database open in WAL mode.
        set_mode(0o755, 0o644);
        let writer = database(&cache);
        let rows: i64 = writer
            .query_row("SELECT count(*) FROM index_v5", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 16);
        assert_eq!(
            files_in(&cache),
            [
                "metadata.sqlite",
                "metadata.sqlite-shm",
                "metadata.sqlite-wal"
            ]
        );
        set_mode(0o555, 0o444);
        let (stats, stderr) = plan_read_only(&dir, "more.csv", &cache);
        assert_eq!(stats, (16, 1, 0), "{stderr}");
        assert!(stderr.contains("is read-only"), "{stderr}");
        set_mode(0o755, 0o644);
        drop(writer);
        assert_eq!(std::fs::read(cache.join("metadata.sqlite")).unwrap(), db);
        if running_as_root() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    });
}

/// The cache's file hash (FNV-1a, 64 bits), to forge a well-formed entry.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Eight `vidloader plan` processes on one data set and one (empty) cache directory at once, three rounds: the
/// plans are identical, no process fails or warns, the directory holds the one database (and, at most, its WAL
/// files), every entry is whole and a last run reads every one.
#[test]
fn eight_processes_share_one_cache_dir() {
    watchdog(300, || {
        let dir = dataset("eight-processes");
        let cache = dir.join("shared-cache");
        let mut plans = Vec::new();
        for round in 0..3 {
            let _ = std::fs::remove_dir_all(&cache);
            let children: Vec<_> = (0..8)
                .map(|_| {
                    cli()
                        .arg("plan")
                        .arg(dir.join("labels.csv"))
                        .args(["--json", "--sampler", "clips:2:3", "--seed", "7"])
                        .arg("--cache-dir")
                        .arg(&cache)
                        .stdout(std::process::Stdio::piped())
                        .stderr(std::process::Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect();
            for c in children {
                let out = c.wait_with_output().unwrap();
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(out.status.success(), "round {round}: {stderr}");
                assert!(!stderr.contains("warning"), "round {round}: {stderr}");
                // The plan, without the timings and cache counters the command adds to it.
                let mut plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                let obj = plan.as_object_mut().unwrap();
                let counters = obj.remove("cache").unwrap();
                assert_eq!(
                    counters["disk_hits"].as_u64().unwrap() + counters["scans"].as_u64().unwrap(),
                    16
                );
                assert_eq!(counters["rejected"].as_u64(), Some(0));
                assert!(obj.remove("plan_s").is_some() && obj.remove("metadata_scan_s").is_some());
                plans.push(plan);
            }
            let files = files_in(&cache);
            let database = [
                "metadata.sqlite",
                "metadata.sqlite-shm",
                "metadata.sqlite-wal",
            ];
            assert!(
                files.first().is_some_and(|f| f == database[0])
                    && files.iter().all(|f| database.contains(&f.as_str())),
                "round {round}: {files:?}"
            );
            let rows = entries(&cache);
            assert_eq!(rows.len(), 16, "round {round}");
            let ds = VideoDataset::from_manifest(dir.join("labels.csv"))
                .unwrap()
                .with_cache_dir(Some(cache.clone()));
            for i in 0..ds.len() {
                ds.meta(i).unwrap();
            }
            let stats = ds.cache_stats();
            assert_eq!(
                (stats.disk_hits, stats.rejected),
                (16, 0),
                "round {round}: every entry whole"
            );
        }
        assert!(plans[0]["batches"].as_array().unwrap().len() > 1);
        assert!(plans.iter().all(|p| p == &plans[0]), "identical plans");
    });
}
