//! SimpleDecoder: frames by index, slices, sequential batches and arbitrary index lists, as tensors.
//!
//! Random access plans each request: the wanted frames are sorted and grouped by the keyframe they must be
//! decoded from; each group costs at most one seek, decoding runs forward from that keyframe, and only the wanted
//! frames are converted (straight into their slot of the batch tensor).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::backend::cpu::CpuDecoder;
use crate::backend::{Backend, DecoderKey, FrameDecoder};
use crate::batch::{FrameBatch, FrameShape};
use crate::color::ColorType;
use crate::convert::frame_bytes;
use crate::demux::{Demuxer, Packet, StreamInfo};
use crate::error::{Error, Result};
use crate::ffi::tensor::host_bytes_mut;
use crate::index::{index_for, FrameIndex};
use crate::pool::DecoderPool;
use crate::source::Source;

/// Packets a restart may read and drop (instead of seeking) to reach a keyframe ahead.
const SKIP_READ_LIMIT: usize = 64;
/// Packets a running decoder may decode through to reach a keyframe ahead (instead of flushing and restarting).
const CONTINUE_LIMIT: usize = 4;

/// Options of a decoder (the seed's constructor arguments).
#[derive(Clone, Debug)]
pub struct DecoderOptions {
    /// What frames are turned into (`output_color_type`).
    pub color: ColorType,
    /// Which decoder to use.
    pub backend: Backend,
    /// CPU decoding threads; 0 means one per core.
    pub threads: usize,
    /// Idle decoders kept for reuse by [`SimpleDecoder::reconfigure`] (`decoder_cache_size`).
    pub decoder_cache_size: usize,
    /// Largest width a pooled decoder must accept (`max_width`); 0 means the stream's own.
    pub max_width: u32,
    /// Largest height a pooled decoder must accept (`max_height`); 0 means the stream's own.
    pub max_height: u32,
}

impl Default for DecoderOptions {
    fn default() -> Self {
        DecoderOptions {
            color: ColorType::Rgbp,
            backend: Backend::Auto,
            threads: 0,
            decoder_cache_size: 4,
            max_width: 0,
            max_height: 0,
        }
    }
}

impl DecoderOptions {
    /// Sets the output colour type.
    pub fn color(mut self, color: ColorType) -> Self {
        self.color = color;
        self
    }
    /// Sets the backend.
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }
    /// Sets the number of CPU decoding threads (0 = one per core).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }
    /// Sets the number of idle decoders kept for reuse.
    pub fn decoder_cache_size(mut self, n: usize) -> Self {
        self.decoder_cache_size = n;
        self
    }
    /// Sets the size limit of pooled decoders.
    pub fn max_size(mut self, width: u32, height: u32) -> Self {
        self.max_width = width;
        self.max_height = height;
        self
    }
}

/// Where the demuxer and decoder stand.
#[derive(Default)]
struct Position {
    /// Decode-order position of the packet the next read returns.
    read_pos: usize,
    /// A packet already read, at `read_pos`.
    pending: Option<Packet>,
    /// The keyframe packet decoding has run from, without a break; `None` when the decoder needs a fresh start.
    decoding_from: Option<usize>,
    /// Presentation index of the last frame the decoder gave out.
    last_out: Option<usize>,
    /// The end of the stream was signalled to the decoder.
    eof_sent: bool,
}

/// Random-access decoder of one video at a time.
pub struct SimpleDecoder {
    opts: DecoderOptions,
    pool: Arc<DecoderPool>,
    demuxer: Demuxer,
    index: Arc<FrameIndex>,
    shape: FrameShape,
    key: DecoderKey,
    decoder: Option<Box<dyn FrameDecoder>>,
    backend: Backend,
    pos: Position,
    cursor: usize,
}

impl std::fmt::Debug for SimpleDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimpleDecoder")
            .field("source", self.demuxer.source())
            .field("frames", &self.index.len())
            .field("backend", &self.backend)
            .finish()
    }
}

/// The backend that `requested` resolves to for this stream.
fn resolve_backend(requested: Backend) -> Result<Backend> {
    match requested {
        Backend::Cpu | Backend::Auto => Ok(Backend::Cpu),
        Backend::Nvdec(gpu) => Err(Error::GpuUnavailable(format!(
            "NVDEC backend for GPU {gpu} is not available in this build path; use Backend::Cpu or Backend::Auto"
        ))),
    }
}

fn decoder_key(backend: Backend, info: &StreamInfo, opts: &DecoderOptions) -> DecoderKey {
    DecoderKey {
        backend,
        codec: info.codec.clone(),
        bit_depth: info.bit_depth,
        chroma: info.chroma.clone(),
        max_width: opts.max_width.max(info.width),
        max_height: opts.max_height.max(info.height),
    }
}

fn new_decoder(
    backend: Backend,
    demuxer: &Demuxer,
    opts: &DecoderOptions,
) -> Result<Box<dyn FrameDecoder>> {
    match backend {
        Backend::Cpu | Backend::Auto => Ok(Box::new(CpuDecoder::new(demuxer, opts.threads)?)),
        Backend::Nvdec(gpu) => Err(Error::GpuUnavailable(format!(
            "no NVDEC decoder for GPU {gpu}"
        ))),
    }
}

/// Opens `source` and builds its index and frame shape.
fn open_stream(source: Source, color: ColorType) -> Result<(Demuxer, Arc<FrameIndex>, FrameShape)> {
    let mut demuxer = Demuxer::open(source.clone())?;
    let index = index_for(&source, &mut demuxer)?;
    let info = demuxer.info();
    let bytes = frame_bytes(color, info.pixel, info.width, info.height)?;
    let shape = FrameShape {
        color,
        width: info.width,
        height: info.height,
        bytes,
    };
    Ok((demuxer, index, shape))
}

impl SimpleDecoder {
    /// Opens `source` with `opts`; the decoder pool is private to this decoder.
    pub fn open(source: impl Into<Source>, opts: DecoderOptions) -> Result<Self> {
        let pool = DecoderPool::new(opts.decoder_cache_size);
        Self::open_with_pool(source, opts, pool)
    }

    /// Opens `source` with `opts`, taking and returning decoders through a shared `pool`.
    pub fn open_with_pool(
        source: impl Into<Source>,
        opts: DecoderOptions,
        pool: Arc<DecoderPool>,
    ) -> Result<Self> {
        let backend = resolve_backend(opts.backend)?;
        let (demuxer, index, shape) = open_stream(source.into(), opts.color)?;
        let key = decoder_key(backend, demuxer.info(), &opts);
        let decoder = match pool.take(&key) {
            Some(mut d) => {
                d.reconfigure(&demuxer)?;
                d
            }
            None => new_decoder(backend, &demuxer, &opts)?,
        };
        Ok(SimpleDecoder {
            opts,
            pool,
            demuxer,
            index,
            shape,
            key,
            decoder: Some(decoder),
            backend,
            pos: Position::default(),
            cursor: 0,
        })
    }

    /// Switches to another video, reusing this decoder (or a pooled one) when the new stream has the same codec,
    /// bit depth, chroma format and fits the size limit, otherwise building one. Position resets to frame 0.
    pub fn reconfigure(&mut self, source: impl Into<Source>) -> Result<()> {
        let (demuxer, index, shape) = open_stream(source.into(), self.opts.color)?;
        let key = decoder_key(self.backend, demuxer.info(), &self.opts);
        let decoder = if key == self.key {
            self.pool.count_reuse();
            self.decoder.take()
        } else {
            if let Some(old) = self.decoder.take() {
                self.pool.put(self.key.clone(), old);
            }
            self.pool.take(&key)
        };
        let decoder = match decoder {
            Some(mut d) => {
                d.reconfigure(&demuxer)?;
                d
            }
            None => new_decoder(self.backend, &demuxer, &self.opts)?,
        };
        self.demuxer = demuxer;
        self.index = index;
        self.shape = shape;
        self.key = key;
        self.decoder = Some(decoder);
        self.pos = Position::default();
        self.cursor = 0;
        Ok(())
    }

    /// Number of frames (exact, from the index).
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the video has no frames (never true for an opened decoder).
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Stream metadata from the container and codec headers.
    pub fn stream_metadata(&self) -> &StreamInfo {
        self.demuxer.info()
    }

    /// Metadata from scanning every packet: exact frame count, keyframes, time stamps.
    pub fn scanned_stream_metadata(&self) -> &FrameIndex {
        &self.index
    }

    /// The backend decoding this video.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The output colour type.
    pub fn color(&self) -> ColorType {
        self.opts.color
    }

    /// Tensor dimensions of a batch of `n` frames of this video.
    pub fn batch_dims(&self, n: usize) -> Vec<i64> {
        self.shape.dims(n)
    }

    /// The pool this decoder takes decoders from and returns them to.
    pub fn pool(&self) -> &Arc<DecoderPool> {
        &self.pool
    }

    /// The frame on screen at `seconds`.
    pub fn index_from_time(&self, seconds: f64) -> Result<usize> {
        self.index.index_from_time(seconds)
    }

    /// Moves the position that [`SimpleDecoder::get_batch_frames`] reads from.
    pub fn seek_to_index(&mut self, index: usize) -> Result<()> {
        if index > self.len() {
            return Err(Error::OutOfRange {
                index: index as i64,
                len: self.len(),
            });
        }
        self.cursor = index;
        Ok(())
    }

    /// The position [`SimpleDecoder::get_batch_frames`] reads from next.
    pub fn position(&self) -> usize {
        self.cursor
    }

    /// Frame `index` as a batch of one.
    pub fn get(&mut self, index: i64) -> Result<FrameBatch> {
        self.get_batch_frames_by_index(&[index])
    }

    /// Frames `start, start+step, ...` below `stop` (a slice with a step).
    pub fn get_range(&mut self, start: usize, stop: usize, step: usize) -> Result<FrameBatch> {
        if step == 0 {
            return Err(Error::InvalidArgument("step must be at least 1".into()));
        }
        if start > stop || stop > self.len() {
            return Err(Error::OutOfRange {
                index: stop.max(start) as i64,
                len: self.len(),
            });
        }
        let indices: Vec<i64> = (start..stop).step_by(step).map(|i| i as i64).collect();
        self.get_batch_frames_by_index(&indices)
    }

    /// The next `n` frames from the current position (fewer at the end, none past it); the position advances.
    pub fn get_batch_frames(&mut self, n: usize) -> Result<FrameBatch> {
        let end = (self.cursor + n).min(self.len());
        let indices: Vec<i64> = (self.cursor..end).map(|i| i as i64).collect();
        let batch = self.get_batch_frames_by_index(&indices)?;
        self.cursor = end;
        Ok(batch)
    }

    /// The frames at `indices`, in the caller's order (duplicates allowed). An index out of range is an error and
    /// nothing is decoded.
    pub fn get_batch_frames_by_index(&mut self, indices: &[i64]) -> Result<FrameBatch> {
        let wanted: Vec<usize> = indices
            .iter()
            .map(|&i| self.index.check(i))
            .collect::<Result<_>>()?;
        let mut frames = self.shape.alloc(wanted.len())?;
        {
            let bytes = host_bytes_mut(&mut frames)?;
            self.decode_into(&wanted, bytes)?;
        }
        Ok(FrameBatch {
            frames,
            pts: wanted.iter().map(|&i| self.index.pts(i)).collect(),
            times: wanted.iter().map(|&i| self.index.time_of(i)).collect(),
            indices: wanted,
            color: self.opts.color,
        })
    }

    /// Decodes `wanted` (valid indices, any order, duplicates allowed) into consecutive slots of `out`.
    pub(crate) fn decode_into(&mut self, wanted: &[usize], out: &mut [u8]) -> Result<()> {
        let fb = self.shape.bytes;
        if out.len() != fb * wanted.len() {
            return Err(Error::InvalidArgument(format!(
                "{} bytes for {} frames of {fb}",
                out.len(),
                wanted.len()
            )));
        }
        // Frame -> the slots that want it; first slot is decoded into, the others copied.
        let mut slots: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (slot, &f) in wanted.iter().enumerate() {
            slots.entry(f).or_default().push(slot);
        }
        // Group by start keyframe, in decode order.
        let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for &f in slots.keys() {
            groups
                .entry(self.index.start_packet_of(f))
                .or_default()
                .push(f);
        }
        for (start, frames) in groups {
            self.decode_group(start, &frames, &slots, out)?;
        }
        for dests in slots.values() {
            let first = dests[0];
            for &d in &dests[1..] {
                out.copy_within(first * fb..(first + 1) * fb, d * fb);
            }
        }
        Ok(())
    }

    /// Decodes the frames of one group (all decodable from keyframe packet `start`; sorted) into their slots.
    fn decode_group(
        &mut self,
        start: usize,
        frames: &[usize],
        slots: &BTreeMap<usize, Vec<usize>>,
        out: &mut [u8],
    ) -> Result<()> {
        let fb = self.shape.bytes;
        let first_frame = frames[0];
        let continuing = self.pos.decoding_from.is_some_and(|k| k <= start)
            && !self.pos.eof_sent
            && self.pos.last_out.is_none_or(|lo| first_frame > lo)
            && self.pos.read_pos + CONTINUE_LIMIT >= start;
        if !continuing {
            self.restart_at(start)?;
        }
        let mut remaining = frames.len();
        let decoder = self
            .decoder
            .as_mut()
            .ok_or_else(|| Error::Worker("decoder missing".into()))?;
        loop {
            while let Some(ts) = decoder.receive()? {
                let frame = match ts {
                    Some(pts) => frame_at_pts(&self.index, pts),
                    None => Some(self.pos.last_out.map_or(0, |l| l + 1)),
                };
                let Some(f) = frame else { continue };
                self.pos.last_out = Some(f);
                if frames.binary_search(&f).is_ok() {
                    let slot = slots[&f][0];
                    decoder
                        .write_current(self.shape.color, &mut out[slot * fb..(slot + 1) * fb])?;
                    remaining -= 1;
                    if remaining == 0 {
                        return Ok(());
                    }
                }
            }
            if self.pos.eof_sent {
                let missing = frames
                    .iter()
                    .find(|&&f| self.pos.last_out.is_none_or(|lo| f > lo))
                    .copied()
                    .unwrap_or(first_frame);
                return Err(Error::Corrupt {
                    source_name: self.demuxer.source().name(),
                    reason: format!("frame {missing} could not be decoded"),
                });
            }
            match next_packet(&mut self.demuxer, &self.index, &mut self.pos)? {
                Some(p) => decoder.send_packet(&p)?,
                None => {
                    decoder.send_eof()?;
                    self.pos.eof_sent = true;
                }
            }
        }
    }

    /// Positions the demuxer at keyframe packet `start` (reading forward or seeking) and resets the decoder.
    fn restart_at(&mut self, start: usize) -> Result<()> {
        if !(self.pos.read_pos <= start && start - self.pos.read_pos <= SKIP_READ_LIMIT) {
            self.seek_near(start)?;
        }
        while self.pos.read_pos < start {
            if next_packet(&mut self.demuxer, &self.index, &mut self.pos)?.is_none() {
                return Err(Error::Corrupt {
                    source_name: self.demuxer.source().name(),
                    reason: format!("stream ended before packet {start}"),
                });
            }
        }
        if let Some(d) = self.decoder.as_mut() {
            d.flush();
        }
        self.pos.decoding_from = Some(start);
        self.pos.last_out = None;
        self.pos.eof_sent = false;
        Ok(())
    }

    /// Seeks to at or before packet `start` and finds out where the demuxer landed.
    fn seek_near(&mut self, start: usize) -> Result<()> {
        let entry = self.index.packets()[start];
        self.pos.pending = None;
        let landed = match self.demuxer.seek_to_timestamp(entry.dts.min(entry.pts)) {
            Ok(()) => match self.demuxer.read_packet()? {
                Some(p) => locate(&self.index, &p, start).map(|at| (at, p)),
                None => None,
            },
            Err(_) => None,
        };
        match landed {
            Some((at, p)) => {
                self.pos.read_pos = at;
                self.pos.pending = Some(p);
            }
            None => {
                self.demuxer.rewind()?;
                self.pos.read_pos = 0;
            }
        }
        Ok(())
    }
}

impl Drop for SimpleDecoder {
    fn drop(&mut self) {
        if let Some(d) = self.decoder.take() {
            self.pool.put(self.key.clone(), d);
        }
    }
}

/// The presentation index of the frame with time stamp `pts`.
fn frame_at_pts(index: &FrameIndex, pts: i64) -> Option<usize> {
    let (mut lo, mut hi) = (0, index.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if index.pts(mid) < pts {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    (lo < index.len() && index.pts(lo) == pts).then_some(lo)
}

/// The decode-order position (at or before `limit`) of packet `p`, found by its time stamps.
fn locate(index: &FrameIndex, p: &Packet, limit: usize) -> Option<usize> {
    let pts = p.pts().or(p.dts())?;
    let packets = index.packets();
    (0..=limit.min(packets.len().saturating_sub(1)))
        .rev()
        .find(|&i| packets[i].pts == pts && p.dts().is_none_or(|d| d == packets[i].dts))
}

/// Reads the packet at `pos.read_pos`, checking it against the index.
fn next_packet(
    demuxer: &mut Demuxer,
    index: &FrameIndex,
    pos: &mut Position,
) -> Result<Option<Packet>> {
    let packet = match pos.pending.take() {
        Some(p) => Some(p),
        None => demuxer.read_packet()?,
    };
    let Some(packet) = packet else {
        return Ok(None);
    };
    if let (Some(entry), Some(ts)) = (
        index.packets().get(pos.read_pos),
        packet.pts().or(packet.dts()),
    ) {
        if entry.pts != ts {
            return Err(Error::Corrupt {
                source_name: demuxer.source().name(),
                reason: format!(
                    "packet {} has pts {ts}, the index says {}",
                    pos.read_pos, entry.pts
                ),
            });
        }
    }
    pos.read_pos += 1;
    Ok(Some(packet))
}
