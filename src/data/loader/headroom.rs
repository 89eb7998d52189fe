//! Idle CPU of the machine, for the hybrid loader's CPU workers: they take a sample only while at least one core
//! is idle, so that a training step that needs every core (its own threads, a CPU-side augmentation) is not
//! slowed down by decoding; NVDEC then serves alone.
//!
//! Read from `/proc/stat` (Linux) at most every [`SAMPLE_PERIOD`]; where it cannot be read the workers always run.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the counters are read.
pub(super) const SAMPLE_PERIOD: Duration = Duration::from_millis(100);

/// Idle cores needed for a CPU worker to take a sample.
const MIN_IDLE_CORES: f64 = 0.5;

#[derive(Default)]
struct Sample {
    at: Option<Instant>,
    /// Busy and total jiffies at `at`.
    counters: Option<(u64, u64)>,
    /// Idle cores over the last period (`None`: unknown).
    idle_cores: Option<f64>,
}

/// The idle cores of the machine, sampled.
#[derive(Default)]
pub(super) struct CpuHeadroom {
    sample: Mutex<Sample>,
}

/// `(busy, total)` jiffies summed over all CPUs, and the number of CPUs.
fn read_counters() -> Option<((u64, u64), usize)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let mut lines = stat.lines();
    let all: Vec<u64> = lines
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    if all.len() < 4 {
        return None;
    }
    let total: u64 = all.iter().sum();
    // idle + iowait are not busy.
    let idle = all[3] + all.get(4).copied().unwrap_or(0);
    let cpus = lines
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    Some(((total - idle, total), cpus.max(1)))
}

impl CpuHeadroom {
    /// Whether a CPU worker may take a sample now.
    pub(super) fn allows_cpu_work(&self) -> bool {
        let Ok(mut s) = self.sample.lock() else {
            return true;
        };
        let now = Instant::now();
        if s.at
            .is_none_or(|at| now.duration_since(at) >= SAMPLE_PERIOD)
        {
            if let Some(((busy, total), cpus)) = read_counters() {
                if let Some((b0, t0)) = s.counters {
                    let dt = total.saturating_sub(t0);
                    if dt > 0 {
                        let busy_frac = busy.saturating_sub(b0) as f64 / dt as f64;
                        s.idle_cores = Some((1.0 - busy_frac) * cpus as f64);
                    }
                }
                s.counters = Some((busy, total));
            }
            s.at = Some(now);
        }
        s.idle_cores.is_none_or(|idle| idle >= MIN_IDLE_CORES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_read_on_linux() {
        if cfg!(target_os = "linux") {
            let ((busy, total), cpus) = read_counters().unwrap();
            assert!(busy <= total && cpus >= 1);
        }
        // Unknown load never blocks the workers.
        assert!(CpuHeadroom::default().allows_cpu_work());
    }
}
