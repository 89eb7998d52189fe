//! An LRU pool of idle decoder sessions. A decoder returned to the pool can serve another stream with the same
//! [`DecoderKey`] (codec, bit depth, chroma format, size limit) after a reconfigure, instead of being rebuilt;
//! for NVDEC that saves tens of milliseconds per file.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::backend::{DecoderKey, FrameDecoder};

/// Counters of a pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PoolStats {
    /// Requests served by a pooled decoder.
    pub hits: u64,
    /// Requests that had to build a new decoder.
    pub misses: u64,
    /// Idle decoders dropped to stay within capacity.
    pub evictions: u64,
    /// Idle decoders held now.
    pub idle: usize,
}

impl PoolStats {
    /// Hits over all requests (0 when there were none).
    pub fn hit_rate(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

/// Idle decoders by serial number, with the key each can serve.
type IdleDecoders = lru::LruCache<u64, (DecoderKey, Box<dyn FrameDecoder>)>;

/// Idle decoders, least recently used dropped first. Shared between decoders (and loader workers) by `Arc`.
pub struct DecoderPool {
    idle: Mutex<IdleDecoders>,
    serial: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

impl std::fmt::Debug for DecoderPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecoderPool")
            .field("stats", &self.stats())
            .finish()
    }
}

impl DecoderPool {
    /// A pool holding at most `capacity` idle decoders (at least one).
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(DecoderPool {
            idle: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(capacity.max(1)).expect("non-zero"),
            )),
            serial: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        })
    }

    /// Current counters.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            idle: self.idle.lock().map(|c| c.len()).unwrap_or(0),
        }
    }

    /// Takes an idle decoder for `key`, counting a hit; `None` (a miss) when there is none.
    pub(crate) fn take(&self, key: &DecoderKey) -> Option<Box<dyn FrameDecoder>> {
        let found = self.idle.lock().ok().and_then(|mut c| {
            let id = c.iter().find(|(_, (k, _))| k == key).map(|(id, _)| *id)?;
            c.pop(&id).map(|(_, d)| d)
        });
        match found {
            Some(d) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(d)
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Counts a request that reused the caller's own decoder in place.
    pub(crate) fn count_reuse(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Returns an idle decoder to the pool, evicting the least recently used one when full.
    pub(crate) fn put(&self, key: DecoderKey, decoder: Box<dyn FrameDecoder>) {
        let id = self.serial.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut c) = self.idle.lock() {
            if c.push(id, (key, decoder)).is_some() {
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
