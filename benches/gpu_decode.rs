//! NVDEC throughput, scenario for scenario against PyNvVideoCodec (`benches/pynvc_bench.py` and
//! `benches/pynvc_loader.py` run the same scenarios on the same files and print the same JSON lines;
//! `benches/compare.py` puts them side by side; `scripts/gpu-bench-remote.sh` runs everything on a GPU machine).
//!
//! Files come from `datasets/make-gpu-bench.sh`, in `$VIDLOADER_BENCH_DATA` (default `.benchdata`). Scenarios
//! (each thread has its own decoder; threads start together after an untimed warm-up;
//! fps = all threads' frames / wall time):
//!   - `seq100_b5`, `seq100_b100`: SimpleDecoder RGBP on the GPU, the first 100 frames, in batches of 5 (as
//!     PyNvVideoCodec's `frame_sampling_benchmark.py`) or in one batch; GOP 30 and GOP 250 files, 1 and 7 threads.
//!   - `uniform30`: frames `i * len / 30`; `random30`: 30 distinct frames drawn with splitmix64 (seed 7), in draw
//!     order (same numbers in the Python script).
//!   - `clips_new`, `clips_reused`, `clips_reused_batch`, `clips_new_no_recycling`: 210 two-second clips (the
//!     distinct clips of the data folder, linked under 210 names, fresh names per scenario so no per-path cache
//!     helps), 7 threads, NATIVE (NV12) output: a new decoder per clip vs one decoder reconfigured from clip to clip, every frame fetched
//!     one by one (as `cached_decoder_benchmark.py`) or all 60 in one call. A new decoder takes the NVDEC
//!     decoder its predecessor parked in the process-wide idle cache (`nvdec::set_idle_decoder_limit`);
//!     `clips_new_no_recycling` turns that cache off, so every clip creates and destroys one.
//!   - `nv12_x4`: the low-level session (`NvdecSession` fed by an Annex-B `Demuxer`), every frame mapped and copied
//!     out as NV12 into a device buffer (what PyNvVideoCodec's `Decode` does), the whole file 4 times per thread;
//!     H.264 and HEVC, 1, 7 and 14 threads.
//!   - `loader`: W workers, one SimpleDecoder each reconfigured from clip to clip, 16 evenly spaced frames per
//!     clip written resized to 224x224, normalised, fp16, into `[8, 16, 3, 224, 224]` CUDA batches of 8 clips.
//!
//! `uniform30`, `random30` and `loader` also report `decoded`: the pictures the decoders decoded to deliver them.
//!
//! Prints one JSON line per result (`{"impl":"vidloader","scenario":..,"file":..,"threads":..,"frames":..,
//! "seconds":..,"fps":..}`) and a readable line. Without NVDEC, CUDA-enabled torch or the data folder it prints
//! `skipped: ...` and exits 0.
//!
//! Environment: `VIDLOADER_BENCH_DATA`; `VIDLOADER_BENCH_ONLY` (comma-separated scenario prefixes, also taken
//! from the command line); `VIDLOADER_BENCH_CLIPS` (210); `VIDLOADER_BENCH_PASSES` (4);
//! `VIDLOADER_BENCH_REPEATS` (3: each scenario runs at least this often, clip scenarios on fresh names each time,
//! and its line reports the median run, with `fps_runs` and `spread_pct` = (max - min) / median);
//! `VIDLOADER_BENCH_MIN_S` (1.0) and `VIDLOADER_BENCH_MAX_REPEATS` (25): a scenario runs again until its timed runs
//! add up to `MIN_S` seconds, at most `MAX_REPEATS` times (single requests of 30 frames take 30-40 ms: their
//! medians of 5 moved by up to 4 % between bench runs of the same build, 2026-12-03);
//! `VIDLOADER_BENCH_CLIP_MIN_S` (5.0, used when larger than `MIN_S`): the same for the clip scenarios (a run of the
//! 360p clips lasts about 0.6 s; with three runs their medians moved by up to 28 % between bench runs, 2026-12-04);
//! `VIDLOADER_BENCH_CLIP_THREADS` (7: threads of the clip scenarios). Scenarios of several threads also print, per
//! run, each thread's seconds from the common start to its own end, its time on a CPU and waiting for one (from
//! `/proc/thread-self/schedstat`), the core it last ran on, the CPU time of the process's other busiest threads
//! and, for clip scenarios, each thread's open / demux+decode / write milliseconds (a readable line, not JSON);
//! `VIDLOADER_BENCH_SETTLE_MS` (20; 0 = none): the pause after every thread has prepared and before the clock
//! starts, so that the timed part begins with idle decoders in both programs. A sequential warm-up ends with the
//! look-ahead pictures its last request sent still being decoded, and `seek_to_index(0)` defers its restart to the
//! first timed request: without the pause those pictures ran inside our clock (seq100_b5, GOP 250, one thread: +0.3 %
//! with the pause, PyNvVideoCodec unchanged, whose preparation reopens the file; H200, 2026-12-04);
//! `VIDLOADER_BENCH_PIN_CORES` (unset: threads float; `1-7` or `0,2,4`: bench thread `i` is pinned to the
//! `i % len`-th listed core. Unpinned, the 360p `clips_reused_batch` runs had one late thread in 5 of 9 runs,
//! each time that thread spending 2.2-2.7x the others' CPU time with only ~3 ms waiting for a CPU; pinned, none
//! in 9 of 9, H200 host, 2026-12-04. `scripts/gpu-bench-remote.sh` pins both programs to cores 1.. by default);
//! `VIDLOADER_BENCH_BUDGET_S` (after this many seconds the clip and loader loops stop early, marking their line
//! `"truncated"`, and the scenarios left are skipped; 0 = no limit);
//! `VIDLOADER_BENCH_SESSIONS` (`DecoderOptions::sessions`, 0 = automatic); `VIDLOADER_BENCH_DISPLAY_DELAY`
//! (display delay of the low-level session, default 4 as PyNvVideoCodec's native latency);
//! `VIDLOADER_BENCH_TMP` (where the clip names are linked, default the system temp folder);
//! `VIDLOADER_BENCH_BACKEND=cpu` runs the SimpleDecoder scenarios with libavcodec into host tensors (a check of
//! the harness on machines without a GPU; its lines say `"impl":"vidloader-cpu"`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Instant;

use serde_json::{json, Value};
use tch::{Device, Kind, Tensor};

use vidloader::cuda::{DstBytes, GpuContext, GpuStream};
use vidloader::nvdec::{self, NvCodec, NvdecSession, SessionOptions};
use vidloader::{
    Backend, ColorType, DecodeWork, DecoderOptions, Demuxer, FrameTransform, Normalize,
    SimpleDecoder,
};

type Res<T> = Result<T, String>;

const SAMPLE_FILES: [&str; 2] = ["h264_1080p_gop30.mp4", "h264_1080p_gop250.mp4"];
const NV12_FILES: [&str; 2] = ["h264_1080p_gop30.mp4", "hevc_1080p_gop30.mp4"];
const CLIP_SETS: [&str; 2] = ["clips_1080p", "clips_360p"];
const SAMPLE_THREADS: [usize; 2] = [1, 7];
const NV12_THREADS: [usize; 3] = [1, 7, 14];
const LOADER_WORKERS: [usize; 3] = [1, 7, 14];
const LOADER_FRAMES: usize = 16;
const LOADER_BATCH: usize = 8;
const LOADER_SIZE: i64 = 224;
const RANDOM_SEED: u64 = 7;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

/// A number of seconds from the environment (finite, not negative), else `default`.
fn env_seconds(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(default)
}

/// The pause between the end of every thread's preparation and the start of the clock (see the module docs).
fn settle() {
    static SETTLE: std::sync::LazyLock<f64> =
        std::sync::LazyLock::new(|| env_seconds("VIDLOADER_BENCH_SETTLE_MS", 20.0) / 1000.0);
    if *SETTLE > 0.0 {
        std::thread::sleep(std::time::Duration::from_secs_f64(*SETTLE));
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// splitmix64: a tiny portable generator, implemented identically in `benches/pynvc_bench.py`.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// `count` evenly spread frames: `i * len / count` (PyNvVideoCodec's `i * duration / count` seconds).
fn uniform_indices(len: usize, count: usize) -> Vec<i64> {
    (0..count).map(|i| (i * len / count) as i64).collect()
}

/// `count` distinct frames in `0..len`, in draw order.
fn random_indices(len: usize, count: usize, seed: u64) -> Vec<i64> {
    let mut rng = SplitMix64(seed);
    let mut out: Vec<i64> = Vec::with_capacity(count);
    while out.len() < count.min(len) {
        let i = (rng.next() % len as u64) as i64;
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// `count` evenly spaced frames from first to last, truncated (`numpy.linspace(0, len - 1, count, dtype=int)`).
fn linspace_indices(len: usize, count: usize) -> Vec<usize> {
    if count == 1 {
        return vec![0];
    }
    (0..count).map(|i| i * (len - 1) / (count - 1)).collect()
}

/// Contiguous chunks, sizes differing by at most one (the `split_list` of PyNvVideoCodec's benchmark).
fn split_list<T: Clone>(items: &[T], n: usize) -> Vec<Vec<T>> {
    let (k, m) = (items.len() / n, items.len() % n);
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for i in 0..n {
        let end = start + k + usize::from(i < m);
        out.push(items[start..end].to_vec());
        start = end;
    }
    out
}

/// Time the last [`run_threads`] took to drop its threads' states (decoders), after its clock stopped.
static LAST_TEARDOWN_US: AtomicU64 = AtomicU64::new(0);

/// Each thread's timed part in the last [`run_threads`] (a run whose wall time is set by one slow thread shows it
/// here), in thread order.
static LAST_THREADS: Mutex<Vec<ThreadRun>> = Mutex::new(Vec::new());

/// The other threads of the process in the last [`run_threads`]'s timed part: how many ran, and the CPU time of
/// the busiest names (a readable summary).
static LAST_OTHER_THREADS: Mutex<String> = Mutex::new(String::new());

/// One benchmark thread's timed part: seconds from the common start to its own end, and what the scheduler says it
/// did meanwhile.
#[derive(Clone, Copy, Debug, Default)]
struct ThreadRun {
    seconds: f64,
    sched: SchedStat,
    /// The core it last ran on.
    core: Option<u32>,
}

/// The core the calling thread last ran on (field 39 of `/proc/thread-self/stat`, Linux).
fn this_core() -> Option<u32> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // The name (field 2) is in parentheses and may hold spaces: count from the last ')', which ends field 2.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(39 - 3)?.parse().ok()
}

/// A thread's scheduler account (`/proc/<pid>/task/<tid>/schedstat`, Linux): nanoseconds on a CPU, and nanoseconds
/// ready to run but waiting in a run queue (time lost to other threads on its CPU). Zero where the file is absent.
#[derive(Clone, Copy, Debug, Default)]
struct SchedStat {
    on_cpu_ns: u64,
    run_wait_ns: u64,
}

impl SchedStat {
    fn read(path: &Path) -> SchedStat {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut fields = text
            .split_whitespace()
            .map(|v| v.parse::<u64>().unwrap_or(0));
        SchedStat {
            on_cpu_ns: fields.next().unwrap_or(0),
            run_wait_ns: fields.next().unwrap_or(0),
        }
    }

    fn this_thread() -> SchedStat {
        SchedStat::read(Path::new("/proc/thread-self/schedstat"))
    }

    fn since(&self, before: &SchedStat) -> SchedStat {
        SchedStat {
            on_cpu_ns: self.on_cpu_ns.saturating_sub(before.on_cpu_ns),
            run_wait_ns: self.run_wait_ns.saturating_sub(before.run_wait_ns),
        }
    }
}

/// The calling thread's kernel thread id (Linux), from `/proc/thread-self`.
fn this_tid() -> Option<u64> {
    std::fs::read_link("/proc/thread-self")
        .ok()?
        .file_name()?
        .to_str()?
        .parse()
        .ok()
}

/// Every thread of this process: (tid, name, scheduler account).
fn process_threads() -> Vec<(u64, String, SchedStat)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let tid = e.file_name().to_str()?.parse().ok()?;
        let name = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        Some((
            tid,
            name.trim().to_string(),
            SchedStat::read(&e.path().join("schedstat")),
        ))
    })
    .collect()
}

/// Summarises what the threads not in `skip` did between two [`process_threads`] snapshots: their number and the
/// CPU time of the busiest names.
fn other_threads_summary(
    before: &[(u64, String, SchedStat)],
    after: &[(u64, String, SchedStat)],
    skip: &[u64],
) -> String {
    let mut by_name: Vec<(String, usize, f64)> = Vec::new();
    let mut count = 0;
    for (tid, name, now) in after.iter().filter(|(tid, ..)| !skip.contains(tid)) {
        let was = before
            .iter()
            .find(|(t, ..)| t == tid)
            .map(|(.., s)| *s)
            .unwrap_or_default();
        let ms = now.since(&was).on_cpu_ns as f64 / 1e6;
        count += 1;
        match by_name.iter_mut().find(|(n, ..)| n == name) {
            Some(entry) => {
                entry.1 += 1;
                entry.2 += ms;
            }
            None => by_name.push((name.clone(), 1, ms)),
        }
    }
    by_name.sort_by(|a, b| b.2.total_cmp(&a.2));
    let total = by_name.iter().fold(0.0, |sum, e| sum + e.2);
    let top: Vec<String> = by_name
        .iter()
        .take(4)
        .map(|(name, n, ms)| format!("{name} x{n} {ms:.1}"))
        .collect();
    format!("{count} threads, {total:.1} ms on CPU ({})", top.join(", "))
}

/// The cores the benchmark threads are pinned to (`VIDLOADER_BENCH_PIN_CORES`, e.g. `1-7` or `0,2,4`; thread `i`
/// takes the `i % len`-th): empty = not pinned. Threads a pinned thread starts inherit its core.
fn pin_cores() -> &'static [usize] {
    static CORES: std::sync::OnceLock<Vec<usize>> = std::sync::OnceLock::new();
    CORES.get_or_init(|| {
        let spec = std::env::var("VIDLOADER_BENCH_PIN_CORES").unwrap_or_default();
        let mut cores = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let parsed = match part.split_once('-') {
                Some((a, b)) => a
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .zip(b.trim().parse::<usize>().ok()),
                None => part.parse::<usize>().ok().map(|a| (a, a)),
            };
            match parsed {
                Some((a, b)) if a <= b => cores.extend(a..=b),
                _ => eprintln!("VIDLOADER_BENCH_PIN_CORES: cannot read {part:?}, ignored"),
            }
        }
        cores
    })
}

/// Pins the calling benchmark thread `i` as [`pin_cores`] says (a warning where the system refuses).
fn pin_this_thread(i: usize) {
    let cores = pin_cores();
    if cores.is_empty() {
        return;
    }
    let id = cores[i % cores.len()];
    if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
        eprintln!("benchmark thread {i}: could not pin it to core {id}");
    }
}

/// Runs `n` threads: each prepares its state and warms up (untimed), all start together, and the wall time of the
/// timed part is measured from the common start to the last thread's end. The states are dropped after the clock
/// stops (closing NVDEC sessions takes tens of ms each, which is no part of decoding). Returns (frames, seconds).
fn run_threads<S: Send>(
    n: usize,
    prepare: impl Fn(usize) -> Res<S> + Sync,
    timed: impl Fn(usize, &mut S) -> Res<usize> + Sync,
) -> Res<(usize, f64)> {
    // Threads wait at `ready` once prepared, so that the snapshot of the process's threads below is taken when every
    // helper thread the preparation started exists; then all start together at `start_line`.
    let ready = Barrier::new(n + 1);
    let start_line = Barrier::new(n + 1);
    let finish_line = Barrier::new(n + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (ready, start_line, finish_line, prepare, timed) =
                    (&ready, &start_line, &finish_line, &prepare, &timed);
                s.spawn(move || {
                    pin_this_thread(i);
                    let tid = this_tid();
                    // A panic while preparing must still reach the barriers, or the others would wait forever.
                    let state =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| prepare(i)))
                            .unwrap_or_else(|_| {
                                Err("a benchmark thread panicked while preparing".into())
                            });
                    ready.wait();
                    start_line.wait();
                    let began = Instant::now();
                    let sched_before = SchedStat::this_thread();
                    let result = match state {
                        Ok(mut state) => {
                            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                timed(i, &mut state)
                            }))
                            .unwrap_or_else(|_| Err("a benchmark thread panicked".into()));
                            (r, Some(state))
                        }
                        Err(e) => (Err(e), None),
                    };
                    let took = ThreadRun {
                        seconds: began.elapsed().as_secs_f64(),
                        sched: SchedStat::this_thread().since(&sched_before),
                        core: this_core(),
                    };
                    finish_line.wait();
                    (result, took, tid)
                })
            })
            .collect();
        ready.wait();
        // The pause first, so that the other threads' work during it is not counted as part of the timed run.
        settle();
        let threads_before = process_threads();
        start_line.wait();
        let start = Instant::now();
        finish_line.wait();
        let secs = start.elapsed().as_secs_f64();
        let threads_after = process_threads();
        let teardown = Instant::now();
        let mut frames = 0;
        let mut first_err = None;
        let mut thread_runs = Vec::with_capacity(n);
        let mut bench_tids = this_tid().into_iter().collect::<Vec<_>>();
        for h in handles {
            match h.join() {
                Ok(((Ok(f), state), took, tid)) => {
                    frames += f;
                    thread_runs.push(took);
                    bench_tids.extend(tid);
                    drop(state);
                }
                Ok(((Err(e), _), _, _)) => first_err = first_err.or(Some(e)),
                Err(_) => first_err = first_err.or(Some("a benchmark thread panicked".into())),
            }
        }
        LAST_TEARDOWN_US.store(teardown.elapsed().as_micros() as u64, Ordering::Relaxed);
        if let Ok(mut t) = LAST_THREADS.lock() {
            *t = thread_runs;
        }
        if let Ok(mut o) = LAST_OTHER_THREADS.lock() {
            *o = other_threads_summary(&threads_before, &threads_after, &bench_tids);
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok((frames, secs)),
        }
    })
}

struct Bench {
    data: PathBuf,
    only: Vec<String>,
    start: Instant,
    budget_s: f64,
    tmp: PathBuf,
    clips: usize,
    passes: usize,
    sessions: usize,
    display_delay: u32,
    cpu: bool,
    /// Runs of each scenario at least; the line reports the median (`VIDLOADER_BENCH_REPEATS`).
    repeats: usize,
    /// More runs until the timed runs add up to this many seconds (`VIDLOADER_BENCH_MIN_S`), up to
    /// `max_repeats` (`VIDLOADER_BENCH_MAX_REPEATS`): a scenario of 30 ms is timed often enough for its median
    /// to hold still from one bench run to the next.
    min_timed_s: f64,
    /// `min_timed_s` of the clip scenarios (`VIDLOADER_BENCH_CLIP_MIN_S`, at least `min_timed_s`).
    clip_min_timed_s: f64,
    max_repeats: usize,
    /// Threads of the clip scenarios (`VIDLOADER_BENCH_CLIP_THREADS`, default 7).
    clip_threads: usize,
    /// Per thread (its index) of the running clip scenario's run: ms spent opening (and reconfiguring), demuxing and
    /// decoding, and writing, and its slowest clip, "#place open_ms+fetch_ms".
    thread_clip_summaries: Mutex<Vec<(usize, String)>>,
    /// The run of the scenario in progress (0-based): clip scenarios link fresh names per run.
    repeat: AtomicUsize,
    /// Fields a scenario adds to its result line (e.g. pictures decoded).
    notes: Mutex<serde_json::Map<String, Value>>,
    /// Decode work of the timed part of the running scenario, over all its threads.
    work: Mutex<DecodeWork>,
    /// Clip scenarios: time of the timed clip loops (all threads), and the part of it spent dropping decoders.
    loop_us: AtomicU64,
    drop_us: AtomicU64,
}

impl Bench {
    fn wanted(&self, scenario: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| scenario.starts_with(o.as_str()))
    }

    fn note(&self, key: &str, value: Value) {
        if let Ok(mut n) = self.notes.lock() {
            n.insert(key.to_string(), value);
        }
    }

    /// Adds the work `d` did since `before` to the running scenario's total, and returns it.
    fn add_work(&self, d: &SimpleDecoder, before: &DecodeWork) -> DecodeWork {
        let done = d.decode_work().since(before);
        if let Ok(mut w) = self.work.lock() {
            *w += done;
        }
        done
    }

    /// The running scenario's decode work as a JSON object (times in ms, summed over threads and lanes).
    fn work_json(&self) -> Option<Value> {
        let w = *self.work.lock().ok()?;
        if w.packets_decoded == 0 && w.frames_written == 0 {
            return None;
        }
        let ms = |d: std::time::Duration| (d.as_secs_f64() * 1e4).round() / 10.0;
        Some(json!({
            "packets_decoded": w.packets_decoded, "packets_dropped": w.packets_dropped,
            "frames_written": w.frames_written, "restarts": w.restarts,
            "demux_ms": ms(w.times.demux), "decode_ms": ms(w.times.decode), "receive_ms": ms(w.times.receive),
            "write_ms": ms(w.times.write), "restart_ms": ms(w.times.restart),
            "open_ms": ms(w.times.open), "setup_ms": ms(w.times.setup),
            "loop_ms": self.loop_us.load(Ordering::Relaxed) as f64 / 1000.0,
            "drop_ms": self.drop_us.load(Ordering::Relaxed) as f64 / 1000.0,
        }))
    }

    fn over_budget(&self) -> bool {
        self.budget_s > 0.0 && self.start.elapsed().as_secs_f64() > self.budget_s
    }

    /// In a long scenario's timed loop: whether to stop taking work because the time budget ran out (the result
    /// then covers the work done so far and says `"truncated": true`).
    fn stop_early(&self) -> bool {
        let stop = self.over_budget();
        if stop {
            self.note("truncated", json!(true));
        }
        stop
    }

    fn opts(&self, color: ColorType) -> DecoderOptions {
        DecoderOptions::default()
            .backend(if self.cpu {
                Backend::Cpu
            } else {
                Backend::Nvdec(0)
            })
            .color(color)
            .sessions(self.sessions)
    }

    /// Runs one scenario (unless filtered out or over budget) and prints its line.
    fn run(
        &self,
        scenario: &str,
        file: &str,
        threads: usize,
        extra: Value,
        f: impl Fn() -> Res<(usize, f64)>,
    ) {
        self.run_for(scenario, file, threads, self.min_timed_s, extra, f)
    }

    /// [`Bench::run`], repeating the scenario until its timed runs add up to `min_timed_s` seconds.
    fn run_for(
        &self,
        scenario: &str,
        file: &str,
        threads: usize,
        min_timed_s: f64,
        extra: Value,
        f: impl Fn() -> Res<(usize, f64)>,
    ) {
        if !self.wanted(scenario) {
            return;
        }
        let imp = if self.cpu {
            "vidloader-cpu"
        } else {
            "vidloader"
        };
        let mut line = json!({"impl": imp, "scenario": scenario, "file": file, "threads": threads});
        if self.over_budget() {
            line["skipped"] = json!(format!("time budget of {} s spent", self.budget_s));
            println!("{line}");
            return;
        }
        // Each run resets the notes and the work totals: the line keeps those of the median run.
        let mut runs: Vec<(usize, f64, serde_json::Map<String, Value>)> = Vec::new();
        let mut failure = None;
        let mut timed_s = 0.0;
        for r in 0..self.repeats.max(self.max_repeats) {
            if r > 0 && self.over_budget() {
                break;
            }
            if r >= self.repeats && timed_s >= min_timed_s {
                break;
            }
            self.repeat.store(r, Ordering::Relaxed);
            if let Ok(mut n) = self.notes.lock() {
                n.clear();
            }
            if let Ok(mut w) = self.work.lock() {
                *w = DecodeWork::default();
            }
            self.loop_us.store(0, Ordering::Relaxed);
            self.drop_us.store(0, Ordering::Relaxed);
            LAST_TEARDOWN_US.store(0, Ordering::Relaxed);
            if let Ok(mut t) = LAST_THREADS.lock() {
                t.clear();
            }
            if let Ok(mut w) = self.thread_clip_summaries.lock() {
                w.clear();
            }
            let result = f();
            if let Some(w) = self.work_json() {
                self.note("work", w);
            }
            let teardown_us = LAST_TEARDOWN_US.load(Ordering::Relaxed);
            if teardown_us > 0 {
                self.note("teardown_ms", json!(teardown_us as f64 / 1000.0));
            }
            let notes = self
                .notes
                .lock()
                .map(|mut n| std::mem::take(&mut *n))
                .unwrap_or_default();
            let threads_run = LAST_THREADS.lock().map(|t| t.clone()).unwrap_or_default();
            match result {
                Ok((frames, secs)) => {
                    if threads_run.len() > 1 {
                        // Not JSON: benches/compare.py skips it. Everything per thread is in thread order.
                        let list = |f: &dyn Fn(&ThreadRun) -> String| {
                            threads_run.iter().map(f).collect::<Vec<_>>().join(", ")
                        };
                        let ms = |ns: u64| ns as f64 / 1e6;
                        let mut clips = self
                            .thread_clip_summaries
                            .lock()
                            .map(|w| w.clone())
                            .unwrap_or_default();
                        clips.sort();
                        let clips: Vec<String> = clips.into_iter().map(|(_, c)| c).collect();
                        let others = LAST_OTHER_THREADS
                            .lock()
                            .map(|o| o.clone())
                            .unwrap_or_default();
                        println!(
                            "  {scenario} {file} run {r}: {frames} frames in {secs:.3} s; threads' seconds [{}]; \
                             on a CPU ms [{}]; waiting for a CPU ms [{}]; last core [{}]{}; other threads: {others}",
                            list(&|t| format!("{:.3}", t.seconds)),
                            list(&|t| format!("{:.0}", ms(t.sched.on_cpu_ns))),
                            list(&|t| format!("{:.1}", ms(t.sched.run_wait_ns))),
                            list(&|t| t.core.map_or("?".into(), |c| c.to_string())),
                            if clips.is_empty() {
                                String::new()
                            } else {
                                format!(
                                    "; per thread, ms of open / demux+decode / write and its slowest clip \
                                     (ms to open + fetch) [{}]",
                                    clips.join(", ")
                                )
                            }
                        );
                    }
                    timed_s += secs;
                    runs.push((frames, secs, notes));
                }
                Err(e) => {
                    failure = Some((e, notes));
                    break;
                }
            }
        }
        let fps_of = |(frames, secs, _): &(usize, f64, _)| *frames as f64 / secs.max(1e-9);
        runs.sort_by(|a, b| fps_of(a).total_cmp(&fps_of(b)));
        let all_fps: Vec<f64> = runs
            .iter()
            .map(|r| (fps_of(r) * 10.0).round() / 10.0)
            .collect();
        let mut notes = serde_json::Map::new();
        if let Some((e, n)) = failure {
            line["error"] = json!(e);
            println!("{imp} {scenario:<20} {file:<24} threads {threads:>2}: ERROR {e}");
            notes = n;
        } else if !runs.is_empty() {
            let median = runs.len() / 2;
            let (frames, secs, n) = runs.swap_remove(median);
            let fps = frames as f64 / secs.max(1e-9);
            line["frames"] = json!(frames);
            line["seconds"] = json!((secs * 1e4).round() / 1e4);
            line["fps"] = json!((fps * 10.0).round() / 10.0);
            line["fps_runs"] = json!(all_fps);
            if let (Some(lo), Some(hi)) = (all_fps.first(), all_fps.last()) {
                line["spread_pct"] = json!(((hi - lo) / fps.max(1e-9) * 1000.0).round() / 10.0);
            }
            println!(
                "{imp} {scenario:<20} {file:<24} threads {threads:>2}: {frames:>6} frames in {secs:>7.3} s = {fps:>8.1} fps (median of {})",
                all_fps.len()
            );
            notes = n;
        }
        if let (Value::Object(l), Value::Object(x)) = (&mut line, extra) {
            l.extend(x);
            l.append(&mut notes);
        }
        println!("{line}");
    }

    /// The distinct clips of `set` and `count` names for them under a fresh folder (hard links, else copies).
    fn replicate(&self, set: &str, tag: &str, count: usize) -> Res<(Vec<PathBuf>, Vec<PathBuf>)> {
        let mut distinct: Vec<PathBuf> = std::fs::read_dir(self.data.join(set))
            .map_err(|e| format!("{}: {e}", self.data.join(set).display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "mp4"))
            .collect();
        distinct.sort();
        if distinct.is_empty() {
            return Err(format!("no .mp4 in {}", self.data.join(set).display()));
        }
        let dir = self.tmp.join(format!("{set}-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(err)?;
        let mut names = Vec::with_capacity(count);
        for j in 0..count {
            let src = &distinct[j % distinct.len()];
            let dst = dir.join(format!("{tag}_{j:03}.mp4"));
            if std::fs::hard_link(src, &dst).is_err() {
                std::fs::copy(src, &dst).map_err(err)?;
            }
            names.push(dst);
        }
        Ok((distinct, names))
    }

    // -----------------------------------------------------------------------------------------------------------
    // SimpleDecoder sampling

    fn sampling(&self) {
        for file in SAMPLE_FILES {
            let path = self.data.join(file);
            for threads in SAMPLE_THREADS {
                for (scenario, batch) in [("seq100_b5", 5), ("seq100_b100", 100)] {
                    self.run(scenario, file, threads, json!({"batch": batch}), || {
                        self.sequential(&path, threads, 100, batch)
                    });
                }
                self.run("uniform30", file, threads, json!({}), || {
                    self.by_index(&path, threads, |len| uniform_indices(len, 30))
                });
                self.run(
                    "random30",
                    file,
                    threads,
                    json!({"seed": RANDOM_SEED}),
                    || self.by_index(&path, threads, |len| random_indices(len, 30, RANDOM_SEED)),
                );
            }
        }
    }

    fn sequential(&self, path: &Path, threads: usize, n: usize, batch: usize) -> Res<(usize, f64)> {
        let read = |d: &mut SimpleDecoder| -> Res<usize> {
            let mut got = 0;
            while got < n {
                let b = d.get_batch_frames(batch.min(n - got)).map_err(err)?;
                if b.is_empty() {
                    break;
                }
                got += b.len();
            }
            Ok(got)
        };
        run_threads(
            threads,
            |_| {
                let mut d = SimpleDecoder::open(path, self.opts(ColorType::Rgbp)).map_err(err)?;
                read(&mut d)?;
                d.seek_to_index(0).map_err(err)?;
                Ok(d)
            },
            |_, d| {
                let before = d.decode_work();
                let n = read(d);
                self.add_work(d, &before);
                n
            },
        )
    }

    fn by_index(
        &self,
        path: &Path,
        threads: usize,
        indices: impl Fn(usize) -> Vec<i64> + Sync,
    ) -> Res<(usize, f64)> {
        let decoded = AtomicU64::new(0);
        let r = run_threads(
            threads,
            |_| {
                let mut d = SimpleDecoder::open(path, self.opts(ColorType::Rgbp)).map_err(err)?;
                let idx = indices(d.len());
                d.get_batch_frames_by_index(&idx).map_err(err)?;
                Ok((d, idx))
            },
            |_, (d, idx)| {
                let before = d.decode_work();
                let n = d.get_batch_frames_by_index(idx).map_err(err)?.len();
                decoded.fetch_add(
                    d.decode_work().since(&before).packets_decoded,
                    Ordering::Relaxed,
                );
                self.add_work(d, &before);
                Ok(n)
            },
        );
        self.note("decoded", json!(decoded.load(Ordering::Relaxed)));
        r
    }

    // -----------------------------------------------------------------------------------------------------------
    // Short clips: a new decoder per clip vs one reconfigured decoder

    fn clips(&self) {
        for set in CLIP_SETS {
            for (scenario, reuse, batch, recycle) in [
                ("clips_new", false, false, true),
                ("clips_reused", true, false, true),
                ("clips_reused_batch", true, true, true),
                ("clips_new_no_recycling", false, false, false),
            ] {
                let access = if batch { "batch" } else { "frame" };
                let limit = nvdec::idle_decoder_limit();
                let idle = if recycle { limit } else { 0 };
                let extra = json!({"color": "native", "access": access, "clips": self.clips,
                                   "idle_decoder_limit": idle});
                nvdec::set_idle_decoder_limit(idle);
                let threads = self.clip_threads;
                self.run_for(scenario, set, threads, self.clip_min_timed_s, extra, || {
                    let tag = format!("{scenario}_r{}", self.repeat.load(Ordering::Relaxed));
                    let (distinct, names) = self.replicate(set, &tag, self.clips)?;
                    let warm = split_list(&distinct, threads);
                    let chunks = split_list(&names, threads);
                    let r = run_threads(
                        threads,
                        |i| {
                            let mut dec = None;
                            self.decode_clips(i, &mut dec, &warm[i], reuse, batch, false)?;
                            Ok(dec)
                        },
                        |i, dec| self.decode_clips(i, dec, &chunks[i], reuse, batch, true),
                    );
                    let _ = std::fs::remove_dir_all(names[0].parent().unwrap());
                    r
                });
                nvdec::set_idle_decoder_limit(limit);
            }
        }
    }

    /// Decodes every frame of every clip with `dec` (reconfigured from clip to clip when `reuse`, else replaced by a
    /// new decoder per clip); the number of frames.
    fn decode_clips(
        &self,
        thread: usize,
        dec: &mut Option<SimpleDecoder>,
        clips: &[PathBuf],
        reuse: bool,
        batch: bool,
        timed: bool,
    ) -> Res<usize> {
        let opts = self.opts(ColorType::Native);
        let reused_opts = opts.clone().max_size(3840, 2160);
        let mut frames = 0;
        let loop_start = Instant::now();
        // The slowest clip of this thread: (ms to open or reconfigure, ms to fetch its frames, its place).
        let mut slowest = (0.0f64, 0.0f64, 0usize);
        // This thread's share of the decode work.
        let mut mine = DecodeWork::default();
        for (k, clip) in clips.iter().enumerate() {
            if timed && self.stop_early() {
                break;
            }
            let clip_start = Instant::now();
            let before = match dec.as_mut() {
                Some(d) if reuse => {
                    let before = d.decode_work();
                    d.reconfigure(clip.as_path()).map_err(err)?;
                    before
                }
                _ => {
                    let o = if reuse {
                        reused_opts.clone()
                    } else {
                        opts.clone()
                    };
                    let t = Instant::now();
                    drop(dec.take());
                    if timed {
                        let us = t.elapsed().as_micros() as u64;
                        self.drop_us.fetch_add(us, Ordering::Relaxed);
                    }
                    *dec = Some(SimpleDecoder::open(clip.as_path(), o).map_err(err)?);
                    DecodeWork::default()
                }
            };
            let opened = clip_start.elapsed().as_secs_f64() * 1e3;
            let d = dec.as_mut().unwrap();
            let len = d.len();
            if batch {
                frames += d.get_batch_frames(len).map_err(err)?.len();
            } else {
                for i in 0..len {
                    frames += d.get(i as i64).map_err(err)?.len();
                }
            }
            let total = clip_start.elapsed().as_secs_f64() * 1e3;
            if total > slowest.0 + slowest.1 {
                slowest = (opened, total - opened, k);
            }
            if timed {
                mine += self.add_work(d, &before);
            }
        }
        if timed {
            let us = loop_start.elapsed().as_micros() as u64;
            self.loop_us.fetch_add(us, Ordering::Relaxed);
            if let Ok(mut w) = self.thread_clip_summaries.lock() {
                let (open, fetch, k) = slowest;
                let t = mine.times;
                let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
                w.push((
                    thread,
                    format!(
                        "{:.0} / {:.0} / {:.0} #{k} {open:.1}+{fetch:.1}",
                        ms(t.open + t.setup),
                        ms(t.demux + t.decode + t.receive + t.restart),
                        ms(t.write)
                    ),
                ));
            }
        }
        Ok(frames)
    }

    // -----------------------------------------------------------------------------------------------------------
    // Low-level session: whole file, NV12 copied out per frame

    fn nv12(&self) {
        for file in NV12_FILES {
            let path = self.data.join(file);
            for threads in NV12_THREADS {
                let extra = json!({"passes": self.passes, "display_delay": self.display_delay});
                self.run("nv12_x4", file, threads, extra, || {
                    if self.cpu {
                        return Err("the low-level session needs NVDEC".into());
                    }
                    run_threads(
                        threads,
                        |_| {
                            let mut s = Nv12Decoder::new(&path, self.display_delay)?;
                            s.pass(&path)?;
                            Ok(s)
                        },
                        |_, s| {
                            let mut frames = 0;
                            for _ in 0..self.passes {
                                frames += s.pass(&path)?;
                            }
                            Ok(frames)
                        },
                    )
                });
            }
        }
    }

    // -----------------------------------------------------------------------------------------------------------
    // The data-loader pattern of the hand-written PyNvVideoCodec + torch loader

    fn loader(&self) {
        for set in CLIP_SETS {
            for workers in LOADER_WORKERS {
                let extra = json!({"clips": self.clips, "frames_per_clip": LOADER_FRAMES,
                                   "clips_per_batch": LOADER_BATCH, "size": LOADER_SIZE, "dtype": "fp16"});
                self.run("loader_simple", set, workers, extra, || {
                    let (distinct, names) = self.replicate(
                        set,
                        &format!("loader{workers}_r{}", self.repeat.load(Ordering::Relaxed)),
                        self.clips,
                    )?;
                    let batches: Vec<Vec<PathBuf>> = names
                        .chunks(LOADER_BATCH)
                        .map(<[PathBuf]>::to_vec)
                        .collect();
                    let warm: Vec<PathBuf> = distinct.iter().take(LOADER_BATCH).cloned().collect();
                    let next = AtomicUsize::new(0);
                    let decoded = AtomicU64::new(0);
                    let r = run_threads(
                        workers,
                        |_| {
                            let mut w = LoaderWorker {
                                dec: None,
                                opts: self.opts(ColorType::Rgbp),
                                device: if self.cpu {
                                    Device::Cpu
                                } else {
                                    Device::Cuda(0)
                                },
                            };
                            w.batch(&warm)?;
                            Ok(w)
                        },
                        |_, w| {
                            let before = w.decoded();
                            let mut frames = 0;
                            loop {
                                let k = next.fetch_add(1, Ordering::Relaxed);
                                let Some(b) = batches.get(k) else {
                                    break;
                                };
                                if self.stop_early() {
                                    break;
                                }
                                frames += w.batch(b)?;
                            }
                            decoded.fetch_add(w.decoded() - before, Ordering::Relaxed);
                            Ok(frames)
                        },
                    );
                    self.note("decoded", json!(decoded.load(Ordering::Relaxed)));
                    let _ = std::fs::remove_dir_all(names[0].parent().unwrap());
                    r
                });
            }
        }
    }
}

struct LoaderWorker {
    dec: Option<SimpleDecoder>,
    opts: DecoderOptions,
    device: Device,
}

impl LoaderWorker {
    /// Pictures this worker's decoder has decoded so far.
    fn decoded(&self) -> u64 {
        self.dec
            .as_ref()
            .map_or(0, |d| d.decode_work().packets_decoded)
    }

    /// One batch `[clips, 16, 3, 224, 224]` fp16 on cuda:0; the number of frames delivered.
    fn batch(&mut self, clips: &[PathBuf]) -> Res<usize> {
        let dims = [
            clips.len() as i64,
            LOADER_FRAMES as i64,
            3,
            LOADER_SIZE,
            LOADER_SIZE,
        ];
        let out = Tensor::f_empty(dims, (Kind::Half, self.device)).map_err(err)?;
        let transform = FrameTransform {
            crop: None,
            normalize: Some(Normalize::imagenet()),
        };
        for (k, clip) in clips.iter().enumerate() {
            match self.dec.as_mut() {
                Some(d) => d.reconfigure(clip.as_path()).map_err(err)?,
                None => {
                    self.dec =
                        Some(SimpleDecoder::open(clip.as_path(), self.opts.clone()).map_err(err)?)
                }
            }
            let d = self.dec.as_mut().unwrap();
            let idx = linspace_indices(d.len(), LOADER_FRAMES);
            let mut slot = out.get(k as i64);
            d.decode_frames_into(&idx, &mut slot, &transform)
                .map_err(err)?;
        }
        Ok(clips.len() * LOADER_FRAMES)
    }
}

/// A low-level NVDEC session with its stream and an NV12 output buffer, as PyNvVideoCodec's `CreateDecoder`.
struct Nv12Decoder {
    gpu: Arc<GpuContext>,
    stream: GpuStream,
    session: NvdecSession,
    out: Option<vidloader::cuda::DeviceBuffer>,
    first: bool,
}

impl Nv12Decoder {
    fn new(path: &Path, display_delay: u32) -> Res<Self> {
        let gpu = GpuContext::shared(0).map_err(err)?;
        let stream = GpuStream::new(&gpu).map_err(err)?;
        let dmx = Self::demuxer(path)?;
        let info = dmx.info();
        let codec = match info.codec.as_str() {
            "h264" => NvCodec::H264,
            "hevc" => NvCodec::Hevc,
            other => {
                return Err(format!(
                    "{}: codec {other} not in this benchmark",
                    path.display()
                ))
            }
        };
        let mut cfg = SessionOptions::new(codec);
        cfg.sequence_header = Some(dmx.extradata()).filter(|e| !e.is_empty());
        cfg.clock_rate = u32::try_from(info.time_base.1).unwrap_or(0);
        cfg.display_delay = Some(display_delay);
        let session = NvdecSession::new(gpu.clone(), cfg).map_err(err)?;
        Ok(Nv12Decoder {
            gpu,
            stream,
            session,
            out: None,
            first: true,
        })
    }

    fn demuxer(path: &Path) -> Res<Demuxer> {
        let mut d = Demuxer::open(path).map_err(err)?;
        d.set_annexb(true).map_err(err)?;
        Ok(d)
    }

    /// Decodes the whole file once (a fresh demuxer, the same session); the number of frames.
    fn pass(&mut self, path: &Path) -> Res<usize> {
        let mut dmx = Self::demuxer(path)?;
        if !self.first {
            let header = Some(dmx.extradata()).filter(|e| !e.is_empty());
            self.session.start_stream(header).map_err(err)?;
        }
        self.first = false;
        let mut frames = 0;
        while let Some(p) = dmx.read_packet().map_err(err)? {
            match p.pts().or(p.dts()) {
                Some(pts) => self.session.decode(p.data(), pts, true),
                None => self.session.decode_untimed(p.data(), true),
            }
            .map_err(err)?;
            frames += self.drain()?;
        }
        self.session.flush().map_err(err)?;
        frames += self.drain()?;
        Ok(frames)
    }

    /// Maps every queued picture and copies its NV12 planes into the output buffer.
    fn drain(&mut self) -> Res<usize> {
        let conv = self.gpu.converter().map_err(err)?;
        let mut n = 0;
        while let Some(f) = self.session.next_frame() {
            let m = self.session.map(&f, &self.stream).map_err(err)?;
            let src = m.source().map_err(err)?;
            let bytes = src.native_bytes();
            if self.out.as_ref().is_none_or(|b| b.len() < bytes) {
                self.out = Some(self.gpu.alloc(bytes).map_err(err)?);
            }
            let buf = self.out.as_mut().unwrap();
            let mut dst = DstBytes::from_buffer(buf, 0, bytes).map_err(err)?;
            conv.to_native(&src, &mut dst, &self.stream).map_err(err)?;
            m.unmap().map_err(err)?;
            n += 1;
        }
        Ok(n)
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let data = std::env::var_os("VIDLOADER_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".benchdata"));
    let cpu = std::env::var("VIDLOADER_BENCH_BACKEND").is_ok_and(|b| b == "cpu");
    if !cpu && !nvdec::is_available() {
        println!(
            "skipped: no NVDEC ({})",
            nvdec::unavailable_reason().unwrap_or_default()
        );
        return;
    }
    if !cpu && !tch::Cuda::is_available() {
        println!("skipped: torch sees no CUDA device (a CPU-only libtorch?)");
        return;
    }
    if !data.join(SAMPLE_FILES[0]).is_file() {
        println!(
            "skipped: no benchmark data in {} (make it with datasets/make-gpu-bench.sh, or set VIDLOADER_BENCH_DATA)",
            data.display()
        );
        return;
    }
    let mut only: Vec<String> = std::env::var("VIDLOADER_BENCH_ONLY")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    only.extend(args);
    let tmp = std::env::var_os("VIDLOADER_BENCH_TMP")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("vidloader-gpu-bench-{}", std::process::id()));
    let min_timed_s = env_seconds("VIDLOADER_BENCH_MIN_S", 1.0);
    let bench = Bench {
        data,
        only,
        start: Instant::now(),
        budget_s: env_usize("VIDLOADER_BENCH_BUDGET_S", 0) as f64,
        tmp,
        clips: env_usize("VIDLOADER_BENCH_CLIPS", 210).max(1),
        passes: env_usize("VIDLOADER_BENCH_PASSES", 4).max(1),
        sessions: env_usize("VIDLOADER_BENCH_SESSIONS", 0),
        display_delay: env_usize("VIDLOADER_BENCH_DISPLAY_DELAY", 4) as u32,
        cpu,
        repeats: env_usize("VIDLOADER_BENCH_REPEATS", 3).max(1),
        min_timed_s,
        clip_min_timed_s: env_seconds("VIDLOADER_BENCH_CLIP_MIN_S", 5.0).max(min_timed_s),
        max_repeats: env_usize("VIDLOADER_BENCH_MAX_REPEATS", 25).max(1),
        clip_threads: env_usize("VIDLOADER_BENCH_CLIP_THREADS", 7).max(1),
        thread_clip_summaries: Mutex::new(Vec::new()),
        repeat: AtomicUsize::new(0),
        notes: Mutex::new(serde_json::Map::new()),
        work: Mutex::new(DecodeWork::default()),
        loop_us: AtomicU64::new(0),
        drop_us: AtomicU64::new(0),
    };
    let gpu = if cpu {
        "the CPU".to_string()
    } else {
        GpuContext::shared(0)
            .map(|g| g.name().to_string())
            .unwrap_or_default()
    };
    println!(
        "vidloader GPU benchmark on {gpu}: data {}, {} clips, budget {} s",
        bench.data.display(),
        bench.clips,
        bench.budget_s
    );
    bench.sampling();
    bench.nv12();
    bench.clips();
    bench.loader();
    let _ = std::fs::remove_dir_all(&bench.tmp);
    println!(
        "vidloader GPU benchmark done in {:.1} s",
        bench.start.elapsed().as_secs_f64()
    );
}
