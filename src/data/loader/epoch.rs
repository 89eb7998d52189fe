//! One epoch: dispatching samples to decode workers, reassembling batches in plan order, progress and totals.
//!
//! Position `p` of the rank's order is decoded into slot `p % B` of raw batch `p / B`, a tensor allocated once
//! with torch when that batch is dispatched (at most `prefetch` batches ahead of the consumer; more for a hybrid
//! loader, whose CPU workers take samples far ahead: see `queue.rs`). Results are taken
//! in plan order. A sample that is skipped leaves a hole: the next samples move up, their slots copied into the
//! earlier ones (only then is anything copied), so that batches are always full and in plan order, whatever the
//! number of workers and the order they finish in.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use tch::Tensor;

use super::plan::Planned;
use super::queue::{Late, Task, TaskQueue};
use super::{Batch, ErrorPolicy, Layout, Shared};
use crate::backend::Backend;
use crate::data::loader::plan::{SampleInfo, SkippedSample};
use crate::decode::options::DecoderOptions;
use crate::decode::simple::SimpleDecoder;
use crate::decode::stats::DecodeWork;
use crate::error::{Error, Result};
use crate::frame::transform::FrameTransform;

/// Which decoders a worker runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Engine {
    /// The loader's backend (NVDEC for CUDA batches, with the CPU as fallback where allowed).
    Main,
    /// The CPU, beside NVDEC (hybrid decoding): libavcodec on one thread, then the GPU conversion kernel.
    Cpu,
}

/// What became of a task.
enum Outcome {
    Done {
        /// Boxed: a sample of a tar shard carries its text and JSON members.
        info: Box<SampleInfo>,
        work: DecodeWork,
        fallback: bool,
        engine: Engine,
    },
    Skipped(String),
    Failed(Error),
}

struct Done {
    pos: usize,
    outcome: Outcome,
}

/// The batches of one epoch on one rank, in plan order. Dropping it stops its workers.
pub struct Epoch {
    shared: Arc<Shared>,
    epoch: u64,
    /// Data set indices of this rank's samples, in plan order.
    order: Vec<usize>,
    /// Batches to deliver at most (`drop_last`).
    limit: Option<usize>,
    batch: usize,
    dispatched: usize,
    /// Raw batch tensors from `raw_front` on; the front one is the batch being filled.
    raw: VecDeque<Tensor>,
    queue: Arc<TaskQueue>,
    /// Batches dispatched ahead of the one being filled (more for a hybrid loader, whose CPU workers take
    /// samples far ahead).
    depth: usize,
    done_rx: Receiver<Done>,
    arrived: HashMap<usize, Outcome>,
    processed: usize,
    /// Samples of the batch being filled.
    current: Vec<SampleInfo>,
    emitted: usize,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    /// A worker thread that could not be started: the epoch's first item is this error.
    spawn_error: Option<Error>,
    finished: bool,
    started: Instant,
    stats: EpochStats,
    progress: Option<indicatif::ProgressBar>,
}

#[derive(Default)]
struct EpochStats {
    batches: u64,
    samples: u64,
    frames: u64,
    decoded: u64,
    dropped: u64,
    substituted: u64,
    cpu_fallbacks: u64,
    cpu_samples: u64,
    seconds: f64,
    skipped: Vec<SkippedSample>,
}

impl std::fmt::Debug for Epoch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Epoch")
            .field("epoch", &self.epoch)
            .field("samples", &self.order.len())
            .field("emitted", &self.emitted)
            .finish()
    }
}

impl Epoch {
    pub(crate) fn start(shared: Arc<Shared>, epoch: u64) -> Epoch {
        let (order, limit) = shared.rank_order(epoch);

        let (done_tx, done_rx) = channel::<Done>();
        let queue = Arc::new(TaskQueue::new(
            shared.cfg.batch_size,
            shared.cpu_sample_us.clone(),
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        let mut spawn_error = None;
        let main_workers = shared.cfg.workers.min(order.len()).max(1);
        let cpu_workers = shared.cpu_workers().min(order.len());
        // A hybrid loader keeps about four samples per worker in flight, so that the CPU workers find samples far
        // enough ahead of the consumer (see `queue`).
        let depth = if cpu_workers > 0 {
            shared
                .cfg
                .prefetch
                .max(2 + (4 * (main_workers + cpu_workers)).div_ceil(shared.cfg.batch_size))
        } else {
            shared.cfg.prefetch
        };
        for i in 0..main_workers + cpu_workers {
            let (shared, rx, tx, stop) =
                (shared.clone(), queue.clone(), done_tx.clone(), stop.clone());
            let engine = if i < main_workers {
                Engine::Main
            } else {
                Engine::Cpu
            };
            let name = match engine {
                Engine::Main => format!("vidloader-worker-{i}"),
                Engine::Cpu => format!("vidloader-cpu-worker-{}", i - main_workers),
            };
            match std::thread::Builder::new()
                .name(name)
                .spawn(move || worker(shared, epoch, engine, rx, tx, stop))
            {
                Ok(handle) => workers.push(handle),
                Err(e) => {
                    // Reported as the epoch's first item; the workers already started are stopped then.
                    spawn_error = Some(Error::Worker(format!(
                        "cannot start loader worker {i}: {e}"
                    )));
                    break;
                }
            }
        }
        let progress = shared.cfg.progress.then(|| {
            let total = limit.unwrap_or_else(|| order.len().div_ceil(shared.cfg.batch_size));
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "epoch {prefix} [{bar:30}] {pos}/{len} batches {msg} ({elapsed})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(epoch.to_string());
            bar
        });
        let mut epoch = Epoch {
            batch: shared.cfg.batch_size,
            shared,
            epoch,
            order,
            limit,
            dispatched: 0,
            raw: VecDeque::new(),
            queue,
            depth,
            done_rx,
            arrived: HashMap::new(),
            processed: 0,
            current: Vec::new(),
            emitted: 0,
            stop,
            workers,
            spawn_error,
            finished: false,
            started: Instant::now(),
            stats: EpochStats::default(),
            progress,
        };
        // Decoding starts now; an error here shows again on the first `next`.
        if epoch.spawn_error.is_none() {
            let _ = epoch.top_up();
        }
        epoch
    }

    /// Samples in this rank's plan for the epoch (before any are skipped).
    pub fn planned_samples(&self) -> usize {
        self.order.len()
    }

    /// Dispatches raw batches until `prefetch` of them are ahead of the position being processed.
    fn top_up(&mut self) -> Result<()> {
        let b = self.batch;
        while self.dispatched < self.order.len()
            && self.dispatched / b < self.processed / b + self.depth
        {
            let dims = self.shared.batch_dims(b);
            let tensor = self.shared.batch_tensor(&dims)?;
            let end = (self.dispatched + b).min(self.order.len());
            for pos in self.dispatched..end {
                let task = Task {
                    pos,
                    dataset_index: self.order[pos],
                    slot: tensor.f_select(0, (pos % b) as i64)?,
                };
                self.queue.push(task);
            }
            self.dispatched = end;
            self.raw.push_back(tensor);
        }
        Ok(())
    }

    /// The outcome of position `pos`, waiting for it.
    fn outcome(&mut self, pos: usize) -> Outcome {
        loop {
            if let Some(o) = self.arrived.remove(&pos) {
                return o;
            }
            match self.done_rx.recv() {
                Ok(d) => {
                    self.arrived.insert(d.pos, d.outcome);
                }
                Err(_) => {
                    return Outcome::Failed(Error::Worker("the decode workers stopped".into()))
                }
            }
        }
    }

    fn skip(&mut self, idx: usize, reason: String) {
        let s = self.shared.skipped(idx, reason);
        if self.shared.cfg.warnings {
            let line = format!(
                "vidloader: warning: skipping {}: {}",
                s.path.display(),
                s.reason
            );
            match &self.progress {
                Some(p) => p.suspend(|| eprintln!("{line}")),
                None => eprintln!("{line}"),
            }
        }
        self.stats.skipped.push(s);
    }

    /// Hands out the batch being filled (all of it, or its first `current.len()` slots at the end).
    fn emit(&mut self) -> Result<Batch> {
        let tensor = self
            .raw
            .pop_front()
            .ok_or_else(|| Error::Worker("no batch tensor".into()))?;
        let samples = std::mem::take(&mut self.current);
        let n = samples.len() as i64;
        let mut frames = if n < self.batch as i64 {
            tensor.f_narrow(0, 0, n)?
        } else {
            tensor
        };
        if matches!(self.shared.cfg.layout, Layout::Bchw | Layout::Bhwc) {
            frames = frames.f_squeeze_dim(1)?;
        }
        let labels: Vec<i64> = samples.iter().map(|s| s.label).collect();
        let labels = Tensor::f_from_slice(&labels)?.f_to_device(self.shared.cfg.device)?;
        let t = self.shared.sampler.frames_per_sample() as u64;
        self.stats.batches += 1;
        self.stats.samples += n as u64;
        self.stats.frames += n as u64 * t;
        self.stats.seconds = self.started.elapsed().as_secs_f64();
        if let Some(p) = &self.progress {
            p.inc(1);
            p.set_message(format!(
                "{:.0} frames/s",
                self.stats.frames as f64 / self.stats.seconds.max(1e-9)
            ));
        }
        let batch = Batch {
            frames,
            labels,
            samples,
            epoch: self.epoch,
            index: self.emitted,
        };
        self.emitted += 1;
        Ok(batch)
    }

    fn next_batch(&mut self) -> Result<Option<Batch>> {
        let b = self.batch;
        loop {
            if self.limit.is_some_and(|l| self.emitted >= l) {
                return Ok(None);
            }
            if self.current.len() == b {
                return self.emit().map(Some);
            }
            if self.processed == self.order.len() {
                if !self.current.is_empty() && !self.shared.cfg.drop_last {
                    return self.emit().map(Some);
                }
                return Ok(None);
            }
            self.top_up()?;
            let pos = self.processed;
            let idx = self.order[pos];
            let outcome = self.outcome(pos);
            self.processed += 1;
            self.queue.set_consumed(self.processed);
            match outcome {
                Outcome::Done {
                    info,
                    work,
                    fallback,
                    engine,
                } => {
                    let q = self.emitted * b + self.current.len();
                    if q != pos {
                        // Move the sample up into the hole a skipped one left.
                        let front = self.emitted;
                        let src = self.raw[pos / b - front].f_select(0, (pos % b) as i64)?;
                        let mut dst = self.raw[q / b - front].f_select(0, (q % b) as i64)?;
                        dst.f_copy_(&src)?;
                    }
                    self.stats.decoded += work.packets_decoded;
                    self.stats.dropped += work.packets_dropped;
                    self.stats.substituted += work.packets_substituted;
                    self.stats.cpu_fallbacks += u64::from(fallback);
                    self.stats.cpu_samples += u64::from(engine == Engine::Cpu);
                    self.current.push(*info);
                }
                Outcome::Skipped(reason) => self.skip(idx, reason),
                Outcome::Failed(e) => match self.shared.cfg.on_error {
                    ErrorPolicy::Skip => self.skip(idx, e.to_string()),
                    ErrorPolicy::Fail => return Err(e),
                },
            }
        }
    }

    /// Stops the workers and adds this epoch to the loader's totals (once).
    fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.stop.store(true, Ordering::Relaxed);
        self.queue.close();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        self.raw.clear();
        if let Some(p) = self.progress.take() {
            let secs = self.stats.seconds.max(1e-9);
            p.finish_with_message(format!(
                "{:.0} frames/s delivered, {:.0} decoded, decoder pool hit rate {:.2}{}",
                self.stats.frames as f64 / secs,
                self.stats.decoded as f64 / secs,
                self.shared.pool.stats().hit_rate(),
                match self.stats.skipped.len() {
                    0 => String::new(),
                    n => format!(", {n} skipped"),
                }
            ));
        }
        if let Ok(mut t) = self.shared.totals.lock() {
            t.epochs += 1;
            t.batches += self.stats.batches;
            t.samples += self.stats.samples;
            t.frames += self.stats.frames;
            t.frames_decoded += self.stats.decoded;
            t.packets_dropped += self.stats.dropped;
            t.packets_substituted += self.stats.substituted;
            t.cpu_fallbacks += self.stats.cpu_fallbacks;
            t.cpu_samples += self.stats.cpu_samples;
            t.seconds += self.stats.seconds;
            t.skipped.append(&mut self.stats.skipped);
        }
    }
}

impl Iterator for Epoch {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.finished {
            return None;
        }
        if let Some(e) = self.spawn_error.take() {
            self.finish();
            return Some(Err(e));
        }
        match self.next_batch() {
            Ok(Some(b)) => Some(Ok(b)),
            Ok(None) => {
                self.finish();
                None
            }
            Err(e) => {
                self.finish();
                Some(Err(e))
            }
        }
    }
}

impl Drop for Epoch {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The batches of several epochs in a row ([`super::DataLoader::iter`]).
pub struct Epochs {
    shared: Arc<Shared>,
    next_epoch: u64,
    epochs: u64,
    current: Option<Epoch>,
}

impl std::fmt::Debug for Epochs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Epochs")
            .field("next_epoch", &self.next_epoch)
            .field("epochs", &self.epochs)
            .finish()
    }
}

impl Epochs {
    pub(crate) fn new(shared: Arc<Shared>, epochs: u64) -> Self {
        Epochs {
            shared,
            next_epoch: 0,
            epochs,
            current: None,
        }
    }
}

impl Iterator for Epochs {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        loop {
            if let Some(e) = self.current.as_mut() {
                match e.next() {
                    Some(Err(err)) => {
                        self.next_epoch = self.epochs;
                        self.current = None;
                        return Some(Err(err));
                    }
                    Some(ok) => return Some(ok),
                    None => self.current = None,
                }
            }
            if self.next_epoch >= self.epochs {
                return None;
            }
            self.current = Some(Epoch::start(self.shared.clone(), self.next_epoch));
            self.next_epoch += 1;
        }
    }
}

/// A decoder and the video it is on: the file, and the video's offset in it for a member of a tar shard.
type OpenDecoder = Option<(SimpleDecoder, (std::path::PathBuf, Option<u64>))>;

/// A worker's decoders: the loader's backend, and a CPU one for videos that backend cannot decode.
#[derive(Default)]
struct WorkerDecoders {
    main: OpenDecoder,
    cpu: OpenDecoder,
    /// The main backend is unavailable altogether (no NVDEC): go straight to the CPU.
    main_unavailable: bool,
}

/// A worker: takes tasks until the queue closes or the epoch stops, decoding each into its slot.
fn worker(
    shared: Arc<Shared>,
    epoch: u64,
    engine: Engine,
    queue: Arc<TaskQueue>,
    done: Sender<Done>,
    stop: Arc<AtomicBool>,
) {
    let mut decoders = WorkerDecoders::default();
    loop {
        let task = match engine {
            Engine::Main => queue.take_early(),
            Engine::Cpu => {
                // A CPU worker takes a sample only while a core is idle, and only one far enough ahead.
                let wait = super::headroom::SAMPLE_PERIOD / 4;
                loop {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    if !shared.headroom.allows_cpu_work() {
                        std::thread::sleep(wait);
                        continue;
                    }
                    match queue.take_late(wait) {
                        Late::Task(t) => break Some(t),
                        Late::NotYet => continue,
                        Late::Closed => break None,
                    }
                }
            }
        };
        let Some(mut task) = task else { break };
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let started = Instant::now();
        let pos = task.pos;
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            run_task(&shared, epoch, engine, &mut decoders, &mut task)
        }))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            Outcome::Failed(Error::Worker(format!(
                "decoding sample {pos} failed: {what}"
            )))
        });
        if engine == Engine::Cpu && matches!(outcome, Outcome::Done { .. }) {
            queue.record_cpu_sample(started.elapsed().as_secs_f64());
        }
        if matches!(outcome, Outcome::Failed(_)) {
            // Start the next sample with fresh decoder state.
            decoders.main = None;
            decoders.cpu = None;
        }
        if done.send(Done { pos, outcome }).is_err() {
            break;
        }
    }
}

/// Decodes `info`'s frames into `slot` with the decoder in `open` (pointed at the file, or opened with `opts`).
fn decode_sample(
    open: &mut OpenDecoder,
    opts: &DecoderOptions,
    shared: &Shared,
    info: &SampleInfo,
    slot: &mut Tensor,
) -> Result<DecodeWork> {
    let entry = shared.dataset.entry(info.dataset_index)?;
    let at = (info.path.clone(), entry.member.as_ref().map(|m| m.offset));
    let dec = match open.take() {
        Some((d, p)) if p == at => open.insert((d, p)),
        Some((mut d, _)) => {
            d.reconfigure(entry.source())?;
            open.insert((d, at))
        }
        None => open.insert((
            SimpleDecoder::open_with_pool(entry.source(), opts.clone(), shared.pool.clone())?,
            at,
        )),
    };
    // A video planned from its manifest row is opened for the first time here: the row must hold.
    shared.dataset.check_meta(
        info.dataset_index,
        dec.0.scanned_stream_metadata(),
        dec.0.stream_metadata(),
    )?;
    let transform = FrameTransform {
        crop: info.crop,
        normalize: shared.cfg.normalize,
    };
    let before = dec.0.decode_work();
    dec.0.decode_frames_into(&info.frames, slot, &transform)?;
    let after = dec.0.decode_work();
    Ok(after.since(&before))
}

/// Plans and decodes one sample into its slot; on NVDEC, a video it cannot decode (or no NVDEC at all) goes to
/// the CPU decoder when the loader allows it.
fn run_task(
    shared: &Shared,
    epoch: u64,
    engine: Engine,
    decoders: &mut WorkerDecoders,
    task: &mut Task,
) -> Outcome {
    let info = match shared.plan_sample(epoch, task.dataset_index) {
        Ok(Planned::Sample(info)) => info,
        Ok(Planned::Skip(reason)) => return Outcome::Skipped(reason),
        Err(e) => return Outcome::Failed(e),
    };
    let opts = match engine {
        Engine::Main => shared.decoder_options(),
        Engine::Cpu => shared.decoder_options().backend(Backend::Cpu).threads(1),
    };
    let fallback_ok = shared.cfg.cpu_fallback && opts.backend != Backend::Cpu;
    let main = if decoders.main_unavailable && fallback_ok {
        None
    } else {
        Some(decode_sample(
            &mut decoders.main,
            &opts,
            shared,
            &info,
            &mut task.slot,
        ))
    };
    let (result, fallback) = match main {
        Some(Err(e @ (Error::Unsupported(_) | Error::GpuUnavailable(_)))) if fallback_ok => {
            decoders.main = None;
            decoders.main_unavailable |= matches!(e, Error::GpuUnavailable(_));
            shared.note_fallback(&info.path, &e);
            let cpu = opts.backend(Backend::Cpu);
            (
                decode_sample(&mut decoders.cpu, &cpu, shared, &info, &mut task.slot),
                true,
            )
        }
        Some(r) => (r, false),
        None => {
            let cpu = opts.backend(Backend::Cpu);
            (
                decode_sample(&mut decoders.cpu, &cpu, shared, &info, &mut task.slot),
                true,
            )
        }
    };
    match result {
        Ok(work) => Outcome::Done {
            info: Box::new(info),
            work,
            fallback: fallback && engine == Engine::Main,
            engine,
        },
        Err(e) => Outcome::Failed(e),
    }
}
