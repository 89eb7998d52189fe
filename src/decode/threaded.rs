//! ThreadedDecoder: a background thread keeps frames decoded ahead of the caller.
//!
//! The thread decodes batches of `batch_size` frames straight into torch-allocated tensors and queues up to
//! `buffer_size` frames. A request for `batch_size` frames hands a queued tensor over as it is; other sizes are
//! assembled from the queued ones.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::decode::options::DecoderOptions;
use crate::decode::simple::SimpleDecoder;
use crate::error::{Error, Result};
use crate::frame::batch::FrameBatch;
use crate::io::source::Source;

/// Options of a [`ThreadedDecoder`].
#[derive(Clone, Debug)]
pub struct ThreadedOptions {
    /// Frames kept decoded ahead of the caller.
    pub buffer_size: usize,
    /// Frames per queued batch; requests of this size are served without a copy.
    pub batch_size: usize,
    /// The decoder's own options.
    pub decoder: DecoderOptions,
}

impl Default for ThreadedOptions {
    fn default() -> Self {
        ThreadedOptions {
            buffer_size: 32,
            batch_size: 8,
            decoder: DecoderOptions::default(),
        }
    }
}

struct Worker {
    rx: Receiver<Result<FrameBatch>>,
    /// Batches handed back by [`ThreadedDecoder::recycle`], for the thread's decoder to write over.
    recycled: Sender<FrameBatch>,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<SimpleDecoder>,
}

/// Sequential decoding with background prefetch.
pub struct ThreadedDecoder {
    opts: ThreadedOptions,
    worker: Option<Worker>,
    /// A batch partly handed out, and how many of its frames are gone.
    leftover: Option<(FrameBatch, usize)>,
    len: usize,
    /// Dimensions of an empty batch of the current video.
    empty_dims: Vec<i64>,
    finished: bool,
}

impl std::fmt::Debug for ThreadedDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadedDecoder")
            .field("frames", &self.len)
            .field("finished", &self.finished)
            .finish()
    }
}

impl ThreadedDecoder {
    /// Opens `source` and starts decoding at `start_frame` in the background.
    pub fn open(
        source: impl Into<Source>,
        opts: ThreadedOptions,
        start_frame: usize,
    ) -> Result<Self> {
        if opts.batch_size == 0 || opts.buffer_size == 0 {
            return Err(Error::InvalidArgument(
                "buffer_size and batch_size must be at least 1".into(),
            ));
        }
        let decoder = SimpleDecoder::open(source, opts.decoder.clone())?;
        let mut this = ThreadedDecoder {
            opts,
            worker: None,
            leftover: None,
            len: 0,
            empty_dims: vec![0],
            finished: false,
        };
        this.start(decoder, start_frame)?;
        Ok(this)
    }

    fn start(&mut self, mut decoder: SimpleDecoder, start_frame: usize) -> Result<()> {
        decoder.seek_to_index(start_frame)?;
        self.len = decoder.len();
        self.empty_dims = decoder.batch_dims(0);
        let batch = self.opts.batch_size;
        let depth = (self.opts.buffer_size / batch).max(1);
        let (tx, rx) = sync_channel(depth - 1);
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = stop.clone();
        let (recycled, recycled_rx) = channel::<FrameBatch>();
        let handle = std::thread::Builder::new()
            .name("vidloader-prefetch".into())
            .spawn(move || {
                while !stop_flag.load(Ordering::Relaxed) {
                    while let Ok(b) = recycled_rx.try_recv() {
                        decoder.recycle(b);
                    }
                    let result = decoder.get_batch_frames(batch);
                    let end = matches!(&result, Ok(b) if b.is_empty()) || result.is_err();
                    if tx.send(result).is_err() || end {
                        break;
                    }
                }
                decoder
            })
            .map_err(|e| Error::Worker(format!("cannot start the prefetch thread: {e}")))?;
        self.worker = Some(Worker {
            rx,
            recycled,
            stop,
            handle,
        });
        self.leftover = None;
        self.finished = false;
        Ok(())
    }

    /// Stops the thread and returns its decoder.
    fn stop(&mut self) -> Result<SimpleDecoder> {
        let worker = self
            .worker
            .take()
            .ok_or_else(|| Error::Worker("no prefetch thread".into()))?;
        worker.stop.store(true, Ordering::Relaxed);
        drop(worker.rx); // unblocks a send
        worker
            .handle
            .join()
            .map_err(|_| Error::Worker("the prefetch thread panicked".into()))
    }

    /// Hands a batch back once the caller is done with it, for the background thread to decode a later batch of
    /// `batch_size` frames into (see [`SimpleDecoder::recycle`]: a fresh host batch costs a page fault per page on
    /// its first write). Hand back only a batch that nothing holds any more, not even a view of its frames.
    pub fn recycle(&self, batch: FrameBatch) {
        if let Some(w) = &self.worker {
            // A thread that has stopped has no use for it: the batch is dropped.
            let _ = w.recycled.send(batch);
        }
    }

    /// Number of frames of the current video.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the video has no frames.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Switches to another video (reusing the decoder where the stream allows) and starts at `start_frame`.
    pub fn reconfigure(&mut self, source: impl Into<Source>, start_frame: usize) -> Result<()> {
        let mut decoder = self.stop()?;
        decoder.reconfigure(source)?;
        self.start(decoder, start_frame)
    }

    /// The next `n` frames, waiting until they are decoded; fewer at the end of the video and none after it.
    pub fn get_batch_frames(&mut self, n: usize) -> Result<FrameBatch> {
        let mut parts: Vec<(FrameBatch, usize, usize)> = Vec::new();
        let mut have = 0;
        while have < n {
            let (batch, used) = match self.leftover.take() {
                Some(l) => l,
                None => match self.next_queued()? {
                    Some(b) => (b, 0),
                    None => break,
                },
            };
            let take = (batch.len() - used).min(n - have);
            have += take;
            if used + take < batch.len() {
                // Keep the rest for the next call (a view: the tensor is shared, not copied).
                let rest = FrameBatch {
                    frames: batch.frames.shallow_clone(),
                    indices: batch.indices.clone(),
                    pts: batch.pts.clone(),
                    times: batch.times.clone(),
                    color: batch.color,
                };
                self.leftover = Some((rest, used + take));
            }
            parts.push((batch, used, take));
        }
        if parts.len() == 1 && parts[0].1 == 0 && parts[0].2 == parts[0].0.len() {
            return Ok(parts.pop().expect("one part").0);
        }
        assemble(parts, self.opts.decoder.color, &self.empty_dims)
    }

    fn next_queued(&mut self) -> Result<Option<FrameBatch>> {
        if self.finished {
            return Ok(None);
        }
        let worker = self
            .worker
            .as_ref()
            .ok_or_else(|| Error::Worker("no prefetch thread".into()))?;
        match worker.rx.recv() {
            Ok(Ok(b)) if b.is_empty() => {
                self.finished = true;
                Ok(None)
            }
            Ok(Ok(b)) => Ok(Some(b)),
            Ok(Err(e)) => {
                self.finished = true;
                Err(e)
            }
            Err(_) => {
                self.finished = true;
                Ok(None)
            }
        }
    }
}

/// Joins the given ranges of queued batches into one batch (one copy per frame).
fn assemble(
    parts: Vec<(FrameBatch, usize, usize)>,
    color: crate::frame::color::ColorType,
    empty_dims: &[i64],
) -> Result<FrameBatch> {
    let mut out = FrameBatch {
        frames: tch::Tensor::new(),
        indices: vec![],
        pts: vec![],
        times: vec![],
        color,
    };
    if parts.is_empty() {
        out.frames = tch::Tensor::f_empty(empty_dims, (tch::Kind::Uint8, tch::Device::Cpu))?;
        return Ok(out);
    }
    let mut views = Vec::with_capacity(parts.len());
    for (b, from, n) in &parts {
        views.push(b.frames.f_narrow(0, *from as i64, *n as i64)?);
        out.indices.extend_from_slice(&b.indices[*from..from + n]);
        out.pts.extend_from_slice(&b.pts[*from..from + n]);
        out.times.extend_from_slice(&b.times[*from..from + n]);
    }
    out.frames = tch::Tensor::f_cat(&views, 0)?;
    Ok(out)
}

impl Drop for ThreadedDecoder {
    fn drop(&mut self) {
        if self.worker.is_some() {
            let _ = self.stop();
        }
    }
}
