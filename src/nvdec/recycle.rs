//! What happens to an NVDEC decoder (`CUvideodecoder`) its session no longer needs: parked in a process-wide
//! cache of idle decoders, where a later session of the same GPU, codec, chroma format, bit depth and output
//! format takes it and reconfigures it instead of creating one; or destroyed on a background thread.
//!
//! Creating a decoder and destroying one each take 25-70 ms of driver time, and the driver does them one at a
//! time for the whole GPU: opening a new `SimpleDecoder` per short clip on 7 threads spent about 0.5 s of
//! thread time per clip in those two calls. Only sessions that ask for it
//! ([`super::SessionOptions::recycle_decoders`], set by the frame-exact decoders) park and take decoders; a
//! session built directly keeps creating its own.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SendError, SyncSender};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::api::NvcuvidApi;
use super::caps::{ChromaFormat, DecoderCaps, NvCodec};
use super::result;
use super::sys;
use crate::cuda::{GpuContext, SurfaceFormat};

/// An idle decoder and what it was created for.
pub(super) struct ParkedDecoder {
    pub api: &'static NvcuvidApi,
    pub handle: sys::CUvideodecoder,
    pub gpu: Arc<GpuContext>,
    pub key: ParkingKey,
    /// Largest coded size it accepts through `cuvidReconfigureDecoder`.
    pub max: (u32, u32),
    pub coded: (u32, u32),
    pub target: (u32, u32),
    pub num_surfaces: u32,
    pub caps: DecoderCaps,
}

// SAFETY: a decoder handle may be used and destroyed from any thread that binds its context; a parked decoder
// belongs to the cache alone (the Decoder that owned the handle is gone), and whoever takes it out owns it.
unsafe impl Send for ParkedDecoder {}

/// What a decoder must have been created with to serve a stream (besides a large enough maximum size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ParkingKey {
    pub codec: NvCodec,
    pub chroma: ChromaFormat,
    pub bit_depth: u32,
    pub surface_format: SurfaceFormat,
    pub output_surfaces: u32,
    pub deinterlace: sys::cudaVideoDeinterlaceMode,
}

impl ParkedDecoder {
    /// Calls `cuvidDestroyDecoder` (with the context bound).
    fn destroy(self) {
        if self.gpu.bind().is_ok() {
            // SAFETY: the handle came from cuvidCreateDecoder and is destroyed exactly once, here (a parked
            // decoder is owned by whoever holds this value); no frame of it is mapped (frames are mapped only
            // through a live session's decoder).
            let _ = unsafe { result::destroy_decoder(self.api, self.handle) };
        }
    }
}

/// Idle decoders, oldest first.
static IDLE: Mutex<VecDeque<ParkedDecoder>> = Mutex::new(VecDeque::new());

/// How many idle decoders the cache keeps: `VIDLOADER_NVDEC_IDLE_DECODERS`, default 16.
static LIMIT: LazyLock<AtomicUsize> = LazyLock::new(|| {
    let n = std::env::var("VIDLOADER_NVDEC_IDLE_DECODERS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(16);
    AtomicUsize::new(n)
});

/// Sets how many idle NVDEC decoders the process keeps for reuse by later decoders (default 16, or
/// `VIDLOADER_NVDEC_IDLE_DECODERS`); 0 destroys every decoder as soon as its owner drops it. Each idle decoder
/// holds its decode surfaces in GPU memory (about 3 MiB per surface at 1080p, typically 10-20 surfaces).
/// Lowering the limit destroys the oldest idle decoders beyond it.
pub fn set_idle_decoder_limit(n: usize) {
    LIMIT.store(n, Ordering::Relaxed);
    trim(n);
}

/// How many idle NVDEC decoders the process keeps (see [`set_idle_decoder_limit`]).
pub fn idle_decoder_limit() -> usize {
    LIMIT.load(Ordering::Relaxed)
}

/// Idle NVDEC decoders held for reuse right now.
pub fn idle_decoders() -> usize {
    IDLE.lock().map(|q| q.len()).unwrap_or(0)
}

/// Destroys the oldest idle decoders beyond `limit`.
fn trim(limit: usize) {
    let extra: Vec<ParkedDecoder> = match IDLE.lock() {
        Ok(mut q) => {
            let n = q.len().saturating_sub(limit);
            q.drain(..n).collect()
        }
        Err(_) => Vec::new(),
    };
    for d in extra {
        destroy_later(d);
    }
}

/// Keeps `d` for a later session, or destroys it (in the background) when the cache is full or off.
pub(super) fn park(d: ParkedDecoder) {
    let limit = LIMIT.load(Ordering::Relaxed);
    if limit == 0 {
        destroy_later(d);
        return;
    }
    match IDLE.lock() {
        Ok(mut q) => q.push_back(d),
        Err(_) => {
            destroy_later(d);
            return;
        }
    }
    trim(limit);
}

/// The most recently parked decoder of `gpu` (same device ordinal and context: a decoder handle belongs to the
/// context it was created in) created for `key` that accepts `coded` size, if any.
pub(super) fn take(gpu: &GpuContext, key: &ParkingKey, coded: (u32, u32)) -> Option<ParkedDecoder> {
    let mut q = IDLE.lock().ok()?;
    let i = q.iter().rposition(|d| {
        d.gpu.ordinal() == gpu.ordinal()
            && d.gpu.cu_context() == gpu.cu_context()
            && d.key == *key
            && coded.0 <= d.max.0
            && coded.1 <= d.max.1
    })?;
    q.remove(i)
}

/// Decoders dropped but not yet destroyed, at most this many: beyond it a drop waits for room, so the GPU memory
/// of dead decoders stays bounded.
const DESTROY_QUEUE: usize = 4;

/// Decoders handed to the destroy thread and not yet destroyed.
static DESTROYS_PENDING: AtomicUsize = AtomicUsize::new(0);

/// How long the process's exit waits for the destroy thread to finish its queue.
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// Run by `exit()`: waits (at most [`EXIT_WAIT`]) until the destroy thread has no decoder left, so that the
/// driver's own exit handlers (registered earlier, so run after this one) never tear the driver down while that
/// thread is inside `cuvidDestroyDecoder`. A test process once passed all its tests and then did not exit.
extern "C" fn wait_for_destroys_at_exit() {
    let deadline = Instant::now() + EXIT_WAIT;
    while DESTROYS_PENDING.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Destroys `d` on the background thread (in place if that thread could not be started).
pub(super) fn destroy_later(d: ParkedDecoder) {
    static QUEUE: OnceLock<Option<SyncSender<ParkedDecoder>>> = OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        let (queue, doomed) = sync_channel::<ParkedDecoder>(DESTROY_QUEUE);
        std::thread::Builder::new()
            .name("vidloader-nvdec-destroy".into())
            .spawn(move || {
                for d in doomed {
                    d.destroy();
                    DESTROYS_PENDING.fetch_sub(1, Ordering::AcqRel);
                }
            })
            .ok()?;
        // SAFETY: registers a plain `extern "C" fn()` that only reads an atomic and sleeps; it stays valid for the
        // life of the process. A failed registration (non-zero return) only loses the wait.
        let _ = unsafe { libc::atexit(wait_for_destroys_at_exit) };
        Some(queue)
    });
    match queue {
        Some(q) => {
            DESTROYS_PENDING.fetch_add(1, Ordering::AcqRel);
            if let Err(SendError(d)) = q.send(d) {
                DESTROYS_PENDING.fetch_sub(1, Ordering::AcqRel);
                d.destroy();
            }
        }
        None => d.destroy(),
    }
}
