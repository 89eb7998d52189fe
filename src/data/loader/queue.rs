//! The queue of dispatched samples an epoch's workers take from.
//!
//! The loader's own workers (NVDEC, or the CPU for CPU batches) take the earliest sample. The CPU workers of a
//! hybrid loader take the latest one, and only when it lies far enough ahead of the consumer that a CPU decode
//! finishes before the batch holding it is due: far enough is the CPU workers' measured time per sample times
//! the rate the consumer takes samples at, with a margin. So a slow CPU sample never holds up a batch that NVDEC
//! could have filled, and near the end of an epoch the last samples are left to NVDEC.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tch::Tensor;

/// A sample for a worker: plan position, video, and the slot its frames go into.
pub(super) struct Task {
    pub pos: usize,
    pub dataset_index: usize,
    pub slot: Tensor,
}

#[derive(Default)]
struct State {
    tasks: VecDeque<Task>,
    closed: bool,
}

/// What [`TaskQueue::take_late`] found.
pub(super) enum Late {
    Task(Task),
    /// Nothing far enough ahead now; ask again later.
    NotYet,
    /// The queue is closed.
    Closed,
}

/// Margin on the CPU lead: a CPU sample is taken only this many times further ahead than it needs on average.
const LEAD_MARGIN: f64 = 1.5;

/// Dispatched samples in plan order, with what the CPU workers need to choose theirs.
pub(super) struct TaskQueue {
    state: Mutex<State>,
    ready: Condvar,
    /// Samples the consumer has taken (the epoch's position).
    consumed: AtomicUsize,
    started: Instant,
    /// Smoothed seconds per sample of the CPU workers, in microseconds (0: none measured yet); the loader's, so
    /// that it carries over from one epoch to the next.
    cpu_sample_us: Arc<AtomicU64>,
    /// Samples the CPU workers keep at least between the consumer and the sample they take.
    min_lead: usize,
}

impl TaskQueue {
    /// An empty queue; CPU workers stay at least `min_lead` samples ahead of the consumer. `cpu_sample_us` is the
    /// CPU workers' smoothed time per sample so far (see [`TaskQueue::record_cpu_sample`]).
    pub(super) fn new(min_lead: usize, cpu_sample_us: Arc<AtomicU64>) -> TaskQueue {
        TaskQueue {
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
            consumed: AtomicUsize::new(0),
            started: Instant::now(),
            cpu_sample_us,
            min_lead,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a task at the back.
    pub(super) fn push(&self, task: Task) {
        self.lock().tasks.push_back(task);
        // Every waiter: a CPU worker woken alone might leave the task (not far enough ahead) while a worker that
        // would take it sleeps on.
        self.ready.notify_all();
    }

    /// Closes the queue: workers finish the task they hold and stop; tasks still queued are dropped.
    pub(super) fn close(&self) {
        let mut s = self.lock();
        s.closed = true;
        s.tasks.clear();
        drop(s);
        self.ready.notify_all();
    }

    /// The consumer has taken `n` samples so far.
    pub(super) fn set_consumed(&self, n: usize) {
        self.consumed.store(n, Ordering::Relaxed);
    }

    /// A CPU worker took `seconds` for one sample.
    pub(super) fn record_cpu_sample(&self, seconds: f64) {
        let us = (seconds * 1e6) as u64;
        let old = self.cpu_sample_us.load(Ordering::Relaxed);
        let new = if old == 0 { us } else { (3 * old + us) / 4 };
        self.cpu_sample_us.store(new, Ordering::Relaxed);
    }

    /// The earliest task, waiting for one; `None` once the queue is closed.
    pub(super) fn take_early(&self) -> Option<Task> {
        let mut s = self.lock();
        loop {
            if s.closed {
                return None;
            }
            if let Some(t) = s.tasks.pop_front() {
                return Some(t);
            }
            s = self.ready.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// How far ahead of the consumer a CPU worker's sample must lie.
    fn cpu_lead(&self) -> usize {
        let consumed = self.consumed.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64();
        let per_sample = self.cpu_sample_us.load(Ordering::Relaxed) as f64 / 1e6;
        if consumed == 0 || secs <= 0.0 || per_sample == 0.0 {
            return self.min_lead;
        }
        let rate = consumed as f64 / secs;
        ((per_sample * rate * LEAD_MARGIN).ceil() as usize).max(self.min_lead)
    }

    /// For a CPU worker: the latest task if it lies far enough ahead of the consumer (see the module docs),
    /// waiting at most `wait` for one.
    pub(super) fn take_late(&self, wait: Duration) -> Late {
        let deadline = Instant::now() + wait;
        let mut s = self.lock();
        loop {
            if s.closed {
                return Late::Closed;
            }
            let lead = self.cpu_lead();
            let consumed = self.consumed.load(Ordering::Relaxed);
            if s.tasks.back().is_some_and(|t| t.pos >= consumed + lead) {
                if let Some(t) = s.tasks.pop_back() {
                    return Late::Task(t);
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Late::NotYet;
            }
            s = self
                .ready
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(pos: usize) -> Task {
        Task {
            pos,
            dataset_index: pos,
            slot: Tensor::zeros([1], (tch::Kind::Uint8, tch::Device::Cpu)),
        }
    }

    #[test]
    fn early_takes_the_front_late_takes_the_back_far_enough_ahead() {
        let q = TaskQueue::new(4, Default::default());
        for p in 0..6 {
            q.push(task(p));
        }
        assert_eq!(q.take_early().unwrap().pos, 0);
        // Position 5 is 5 ahead of the consumer (at 0): far enough for a lead of 4.
        match q.take_late(Duration::ZERO) {
            Late::Task(t) => assert_eq!(t.pos, 5),
            _ => panic!("expected the last task"),
        }
        // Position 4 is only 3 ahead once the consumer is at 1.
        q.set_consumed(1);
        assert!(matches!(q.take_late(Duration::ZERO), Late::NotYet));
        q.close();
        assert!(matches!(q.take_late(Duration::ZERO), Late::Closed));
        assert!(q.take_early().is_none());
    }

    #[test]
    fn a_waiting_early_taker_is_woken_although_a_late_taker_waits_too() {
        use std::sync::Arc;
        let q = Arc::new(TaskQueue::new(1000, Default::default()));
        for _ in 0..50 {
            let late = {
                let q = q.clone();
                std::thread::spawn(move || {
                    matches!(q.take_late(Duration::from_millis(20)), Late::Task(_))
                })
            };
            let (tx, rx) = std::sync::mpsc::channel();
            {
                let q = q.clone();
                std::thread::spawn(move || tx.send(q.take_early().map(|t| t.pos)));
            }
            std::thread::sleep(Duration::from_micros(200));
            q.push(task(0));
            // The late taker never takes position 0 (lead 1000); the early one must get it, and soon.
            let early = rx.recv_timeout(Duration::from_secs(5));
            assert_eq!(early, Ok(Some(0)), "the early taker was not woken");
            assert!(!late.join().unwrap());
        }
    }

    #[test]
    fn the_lead_grows_with_the_cpu_time_per_sample() {
        let q = TaskQueue::new(2, Default::default());
        assert_eq!(q.cpu_lead(), 2);
        q.record_cpu_sample(0.5);
        q.set_consumed(100);
        std::thread::sleep(Duration::from_millis(20));
        // 100 samples in ~20 ms is ~5000 samples/s: 0.5 s of CPU decoding needs thousands of samples of lead.
        assert!(q.cpu_lead() > 100, "{}", q.cpu_lead());
    }
}
