//! SimpleDecoder: frames by index, slices, sequential batches and arbitrary index lists, as tensors.
//!
//! Random access plans each request: the wanted frames are sorted and grouped by the keyframe they must be
//! decoded from; each group costs at most one seek, decoding runs forward from that keyframe, and only the wanted
//! frames are converted (straight into their slot of the batch tensor). On NVDEC the groups of one request are
//! spread over several decode sessions ("lanes", each with its own demuxer) that run at once, since one session
//! keeps only part of the GPU's decode engines busy.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tch::{Device, Tensor};

use crate::backend::nvdec::{bit_exact, check_support, NvdecDecoder};
use crate::backend::{Backend, DecoderKey, FrameDecoder, FrameSink};
use crate::bitstream::nal::{self, NalCodec, NalFraming};
use crate::cpu::convert::frame_bytes;
use crate::cpu::decoder::CpuDecoder;
use crate::error::{Error, Result};
use crate::ffi::tensor::host_bytes_mut;
use crate::frame::batch::{FrameBatch, FrameShape};
use crate::frame::color::ColorType;
use crate::frame::transform::{self, FrameTransform, ResizeTarget};
use crate::io::demux::{Demuxer, Packet, StreamInfo};
use crate::io::index::{index_for, FrameIndex};
use crate::io::source::Source;
use crate::pool::DecoderPool;

/// Packets a restart may read and drop (instead of seeking) to reach a keyframe ahead.
const SKIP_READ_LIMIT: usize = 64;
/// Packets a running decoder may decode through to reach a keyframe ahead (instead of flushing and restarting).
const CONTINUE_LIMIT: usize = 4;
/// NVDEC sessions one request is spread over when [`DecoderOptions::sessions`] is 0 (the H100 has 7 engines;
/// a few more sessions than engines keep them all fed).
const DEFAULT_NVDEC_SESSIONS: usize = 8;

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
    /// With NVDEC, whether batches stay in GPU memory (`use_device_memory`, the default) or are copied to host
    /// memory once complete. CPU decoding always returns host tensors.
    pub use_device_memory: bool,
    /// With NVDEC, how many decode sessions one request may use at once (its keyframe groups are spread over
    /// them); 0 = automatic (8), 1 = one session. Ignored on the CPU, where libavcodec's threads already run in
    /// parallel.
    pub sessions: usize,
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
            use_device_memory: true,
            sessions: 0,
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
    /// Sets whether NVDEC batches stay on the GPU.
    pub fn use_device_memory(mut self, on: bool) -> Self {
        self.use_device_memory = on;
        self
    }
    /// Sets how many NVDEC sessions one request may use at once (0 = automatic).
    pub fn sessions(mut self, n: usize) -> Self {
        self.sessions = n;
        self
    }
}

/// Where a lane's demuxer and decoder stand.
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
    /// Presentation index of the keyframe decoding restarted from: frames that come out without a time stamp
    /// are counted from here.
    count_from: Option<usize>,
    /// The end of the stream was signalled to the decoder.
    eof_sent: bool,
}

/// One demuxer and one decoder over the current stream.
struct Lane {
    demuxer: Demuxer,
    decoder: Box<dyn FrameDecoder>,
    pos: Position,
    /// Work done since the decoder last collected it.
    work: DecodeWork,
}

/// How much decoding the requests took: packets sent to the decoder, packets dropped before it (non-reference
/// pictures nobody wanted), frames written into batch slots, and where the time went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeWork {
    /// Packets (pictures) sent to the decoder.
    pub packets_decoded: u64,
    /// Packets of unneeded non-reference pictures that never reached the decoder.
    pub packets_dropped: u64,
    /// Frames converted into batch slots (duplicates copied, not counted).
    pub frames_written: u64,
    /// Keyframe restarts (a seek or a read-ahead to a keyframe, then a decoder reset).
    pub restarts: u64,
    /// Time spent, summed over the lanes that ran at once (so it can exceed the wall time of a request).
    pub times: DecodeTimes,
}

/// Where a decoder's time went, summed over its lanes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeTimes {
    /// Reading packets from the demuxer.
    pub demux: Duration,
    /// Sending packets (and end of stream) to the decoder: parsing, and on NVDEC waiting for a free decode
    /// surface; on the CPU the decoding itself.
    pub decode: Duration,
    /// Taking decoded pictures out of the decoder (on the CPU, part of decoding happens here).
    pub receive: Duration,
    /// Converting wanted pictures into their slots, waiting for the GPU to finish each (NVDEC: map, kernel,
    /// synchronise, unmap).
    pub write: Duration,
    /// Seeking and resetting the decoder for a keyframe restart.
    pub restart: Duration,
    /// Opening videos: the container and its stream probe, and the packet scan that builds the frame index
    /// (zero when the index came from the cache).
    pub open: Duration,
    /// Getting a decoder ready for a video: creating one, or taking one from the pool or the previous video and
    /// reconfiguring it (parallel lanes included).
    pub setup: Duration,
}

impl DecodeTimes {
    fn add(&mut self, o: DecodeTimes) {
        self.demux += o.demux;
        self.decode += o.decode;
        self.receive += o.receive;
        self.write += o.write;
        self.restart += o.restart;
        self.open += o.open;
        self.setup += o.setup;
    }

    fn since(&self, before: &DecodeTimes) -> DecodeTimes {
        DecodeTimes {
            demux: self.demux.saturating_sub(before.demux),
            decode: self.decode.saturating_sub(before.decode),
            receive: self.receive.saturating_sub(before.receive),
            write: self.write.saturating_sub(before.write),
            restart: self.restart.saturating_sub(before.restart),
            open: self.open.saturating_sub(before.open),
            setup: self.setup.saturating_sub(before.setup),
        }
    }
}

impl std::ops::AddAssign for DecodeWork {
    /// Adds another decoder's (or lane's) work: counts and times are summed.
    fn add_assign(&mut self, o: DecodeWork) {
        self.packets_decoded += o.packets_decoded;
        self.packets_dropped += o.packets_dropped;
        self.frames_written += o.frames_written;
        self.restarts += o.restarts;
        self.times.add(o.times);
    }
}

impl DecodeWork {
    /// The work done between `before` (an earlier reading of the same decoder) and `self`.
    pub fn since(&self, before: &DecodeWork) -> DecodeWork {
        DecodeWork {
            packets_decoded: self.packets_decoded.saturating_sub(before.packets_decoded),
            packets_dropped: self.packets_dropped.saturating_sub(before.packets_dropped),
            frames_written: self.frames_written.saturating_sub(before.frames_written),
            restarts: self.restarts.saturating_sub(before.restarts),
            times: self.times.since(&before.times),
        }
    }
}

/// The batch being written: host bytes (CPU decoding), host f32 RGB slots resized on the way (CPU decoding into
/// slots of another size), or a CUDA tensor (NVDEC).
enum Output<'a> {
    Host {
        bytes: &'a mut [u8],
        frame_bytes: usize,
    },
    HostResized {
        values: &'a mut [f32],
        target: &'a ResizeTarget,
    },
    Device {
        batch: Tensor,
        transform: FrameTransform,
    },
}

impl Output<'_> {
    /// Writes `decoder`'s current frame into slot `slot`.
    fn write(
        &mut self,
        decoder: &mut dyn FrameDecoder,
        color: ColorType,
        slot: usize,
    ) -> Result<()> {
        match self {
            Output::Host { bytes, frame_bytes } => {
                let fb = *frame_bytes;
                decoder.write_current(
                    color,
                    FrameSink::Host(&mut bytes[slot * fb..(slot + 1) * fb]),
                )
            }
            Output::HostResized { values, target } => {
                let n = 3 * target.width * target.height;
                decoder.write_current(
                    color,
                    FrameSink::HostResized {
                        values: &mut values[slot * n..(slot + 1) * n],
                        target,
                    },
                )
            }
            Output::Device { batch, transform } => {
                let mut view = batch.f_select(0, slot as i64)?;
                decoder.write_current(
                    color,
                    FrameSink::Device {
                        slot: &mut view,
                        transform,
                    },
                )
            }
        }
    }
}

/// Frame -> the slots of the batch that want it (the first is decoded into, the others copied).
type Slots = BTreeMap<usize, Vec<usize>>;
/// Frames grouped by the keyframe packet they decode from: `(packet, sorted frames)`, in decode order.
type Groups = Vec<(usize, Vec<usize>)>;

/// What a lane needs to know about the request it serves.
struct Request<'a> {
    index: &'a FrameIndex,
    color: ColorType,
    /// Frame -> the slots that want it (the first is decoded into).
    slots: &'a Slots,
    /// Keyframe groups in the whole request (over all lanes).
    groups: usize,
    /// Whether a group may end with a flush. Only on NVDEC: libavcodec's H.264 decoder, drained right after the
    /// last needed packet while unneeded B-pictures were dropped, withheld a P-picture that it had decoded.
    flush_groups: bool,
    /// Drop packets of non-reference H.264/HEVC pictures that no slot wants.
    skip_codec: Option<(NalCodec, NalFraming)>,
}

impl Lane {
    /// Decodes the frames of one group (all decodable from keyframe packet `start`; sorted) into their slots.
    fn decode_group(
        &mut self,
        req: &Request<'_>,
        start: usize,
        frames: &[usize],
        flush_after: bool,
        out: &mut Output<'_>,
    ) -> Result<()> {
        let first_frame = frames[0];
        let last_frame = frames[frames.len() - 1];
        // After the end of the stream was sent the decoder still hands out the pictures it holds, so a request for
        // later frames continues from them (a group-end flush in the middle of the stream resets NVDEC's parser,
        // so that one does not).
        let at_stream_end = self.pos.read_pos >= req.index.packets().len();
        let continuing = self.pos.decoding_from.is_some_and(|k| k <= start)
            && (!self.pos.eof_sent || at_stream_end)
            && self.pos.last_out.is_none_or(|lo| first_frame > lo)
            && self.pos.read_pos + CONTINUE_LIMIT >= start;
        if !continuing {
            let t = Instant::now();
            self.restart_at(req.index, start)?;
            self.work.restarts += 1;
            self.work.times.restart += t.elapsed();
        }
        // Once every packet the group needs has been sent, a flush hands out the pictures still queued in the
        // decoder without decoding any beyond them (worth it when decoding will not continue from here).
        let last_packet = frames
            .iter()
            .map(|&f| req.index.packet_of(f))
            .max()
            .unwrap_or(start);
        let mut remaining = frames.len();
        loop {
            loop {
                let t = Instant::now();
                let next = self.next_frame(req)?;
                self.work.times.receive += t.elapsed();
                let Some(f) = next else { break };
                self.pos.last_out = Some(f);
                if frames.binary_search(&f).is_ok() {
                    let t = Instant::now();
                    out.write(self.decoder.as_mut(), req.color, req.slots[&f][0])?;
                    self.work.times.write += t.elapsed();
                    self.work.frames_written += 1;
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
            if flush_after && self.pos.read_pos > last_packet {
                let t = Instant::now();
                self.decoder.send_eof()?;
                self.work.times.decode += t.elapsed();
                self.pos.eof_sent = true;
                continue;
            }
            let t = Instant::now();
            let packet = next_packet(&mut self.demuxer, req.index, &mut self.pos)?;
            self.work.times.demux += t.elapsed();
            let t = Instant::now();
            match packet {
                Some(p) => {
                    // A non-reference picture before the last wanted frame that nobody wants is never decoded
                    // (frames after it are kept, so a later request that continues from here still finds them).
                    let droppable = req.skip_codec.is_some_and(|(c, framing)| {
                        p.pts()
                            .and_then(|t| frame_at_pts(req.index, t))
                            .is_some_and(|f| f < last_frame && !req.slots.contains_key(&f))
                            && nal::is_disposable(c, framing, p.data())
                    });
                    if droppable {
                        self.work.packets_dropped += 1;
                    } else {
                        self.decoder.send_packet(&p)?;
                        self.work.packets_decoded += 1;
                    }
                }
                None => {
                    self.decoder.send_eof()?;
                    self.pos.eof_sent = true;
                }
            }
            self.work.times.decode += t.elapsed();
        }
    }

    /// The frame index of the decoder's next picture (`None` when it needs more input or is drained); pictures
    /// whose time stamp is not in the index are skipped.
    fn next_frame(&mut self, req: &Request<'_>) -> Result<Option<usize>> {
        while let Some(ts) = self.decoder.receive()? {
            // Time stamps the index made itself (from picture types) are not the decoder's: count instead.
            let ts = ts.filter(|_| !req.index.counted_order());
            let frame = match ts {
                Some(pts) => frame_at_pts(req.index, pts),
                None => Some(
                    self.pos
                        .last_out
                        .map_or(self.pos.count_from.unwrap_or(0), |l| l + 1),
                ),
            };
            if frame.is_some() {
                return Ok(frame);
            }
        }
        Ok(None)
    }

    /// Positions the demuxer at keyframe packet `start` (reading forward or seeking) and resets the decoder.
    fn restart_at(&mut self, index: &FrameIndex, start: usize) -> Result<()> {
        if !(self.pos.read_pos <= start && start - self.pos.read_pos <= SKIP_READ_LIMIT) {
            self.seek_near(index, start)?;
        }
        while self.pos.read_pos < start {
            if next_packet(&mut self.demuxer, index, &mut self.pos)?.is_none() {
                return Err(Error::Corrupt {
                    source_name: self.demuxer.source().name(),
                    reason: format!("stream ended before packet {start}"),
                });
            }
        }
        self.decoder.flush();
        self.pos.decoding_from = Some(start);
        self.pos.count_from = frame_at_pts(index, index.packets()[start].pts);
        self.pos.last_out = None;
        self.pos.eof_sent = false;
        Ok(())
    }

    /// Seeks to at or before packet `start` and finds out where the demuxer landed.
    fn seek_near(&mut self, index: &FrameIndex, start: usize) -> Result<()> {
        let entry = index.packets()[start];
        self.pos.pending = None;
        let landed = match self.demuxer.seek_to_timestamp(entry.dts.min(entry.pts)) {
            Ok(()) => match self.demuxer.read_packet()? {
                Some(p) => locate(index, &p, start).map(|at| (at, p)),
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

    /// Decodes `groups` (in decode order) one after the other.
    fn decode_groups(
        &mut self,
        req: &Request<'_>,
        groups: &[(usize, Vec<usize>)],
        out: &mut Output<'_>,
    ) -> Result<()> {
        for (k, (start, frames)) in groups.iter().enumerate() {
            // Flush at the end of a group when decoding will restart anyway: before a group further on, and at
            // the end of a request of several groups (random access); a one-group request keeps the decoder
            // running for the next one (sequential reading).
            let flush_after = req.flush_groups
                && match groups.get(k + 1) {
                    Some((next, _)) => {
                        let last = frames
                            .iter()
                            .map(|&f| req.index.packet_of(f))
                            .max()
                            .unwrap_or(*start);
                        *next > last + CONTINUE_LIMIT
                    }
                    None => req.groups > 1,
                };
            self.decode_group(req, *start, frames, flush_after, out)?;
        }
        Ok(())
    }
}

/// Random-access decoder of one video at a time.
pub struct SimpleDecoder {
    opts: DecoderOptions,
    pool: Arc<DecoderPool>,
    source: Source,
    info: StreamInfo,
    index: Arc<FrameIndex>,
    shape: FrameShape,
    key: DecoderKey,
    backend: Backend,
    /// How to recognise droppable packets of this stream.
    skip: Option<(NalCodec, NalFraming)>,
    /// Lane 0 always exists; more are opened on demand for parallel NVDEC decoding.
    lanes: Vec<Lane>,
    /// Lanes beyond the first whose demuxer belongs to an earlier stream (their decoder has the current key).
    stale: Vec<Box<dyn FrameDecoder>>,
    /// Work collected from the lanes.
    work: DecodeWork,
    cursor: usize,
}

impl std::fmt::Debug for SimpleDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimpleDecoder")
            .field("source", &self.source)
            .field("frames", &self.index.len())
            .field("backend", &self.backend)
            .finish()
    }
}

/// The backend that `requested` resolves to for `demuxer`'s stream. `Auto` takes NVDEC on GPU 0 when it can
/// decode the stream bit-exactly and says once per process (on stderr) why it uses the CPU when there is no GPU.
fn resolve_backend(requested: Backend, demuxer: &Demuxer) -> Result<Backend> {
    match requested {
        Backend::Cpu => Ok(Backend::Cpu),
        Backend::Nvdec(gpu) => {
            check_support(gpu, demuxer)?;
            if !bit_exact(demuxer) {
                return Err(Error::Unsupported(format!(
                    "{} on NVDEC differs from libavcodec in the inverse DCT (the standard allows it); vidloader \
                     decodes it on the CPU so that frames stay exact (PacketDecoder still decodes it on NVDEC)",
                    demuxer.info().codec
                )));
            }
            Ok(Backend::Nvdec(gpu))
        }
        Backend::Auto => match check_support(0, demuxer) {
            Ok(()) if bit_exact(demuxer) => Ok(Backend::Nvdec(0)),
            Ok(()) => Ok(Backend::Cpu),
            Err(why) => {
                static SAID: std::sync::Once = std::sync::Once::new();
                if matches!(why, Error::GpuUnavailable(_)) {
                    SAID.call_once(|| eprintln!("vidloader: decoding on the CPU ({why})"));
                }
                Ok(Backend::Cpu)
            }
        },
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
    key: &DecoderKey,
    demuxer: &Demuxer,
    opts: &DecoderOptions,
) -> Result<Box<dyn FrameDecoder>> {
    match key.backend {
        Backend::Cpu | Backend::Auto => Ok(Box::new(CpuDecoder::new(demuxer, opts.threads)?)),
        Backend::Nvdec(gpu) => Ok(Box::new(NvdecDecoder::new(
            gpu,
            demuxer,
            key.max_width,
            key.max_height,
        )?)),
    }
}

/// A decoder for `key`: an idle one from the pool (reconfigured for `demuxer`), or a new one.
fn take_decoder(
    pool: &DecoderPool,
    key: &DecoderKey,
    demuxer: &Demuxer,
    opts: &DecoderOptions,
) -> Result<Box<dyn FrameDecoder>> {
    match pool.take(key) {
        Some(mut d) => {
            d.reconfigure(demuxer)?;
            Ok(d)
        }
        None => new_decoder(key, demuxer, opts),
    }
}

/// An opened stream: its demuxer (in Annex-B mode for NVDEC), index, frame shape and backend.
struct Stream {
    demuxer: Demuxer,
    index: Arc<FrameIndex>,
    shape: FrameShape,
    backend: Backend,
    /// Time spent opening it (see [`DecodeTimes::open`]).
    opening: Duration,
}

/// Opens `source`, builds its index and frame shape and picks the backend.
fn open_stream(source: &Source, opts: &DecoderOptions) -> Result<Stream> {
    let started = Instant::now();
    let mut demuxer = Demuxer::open(source.clone())?;
    let index = index_for(source, &mut demuxer)?;
    let backend = resolve_backend(opts.backend, &demuxer)?;
    if matches!(backend, Backend::Nvdec(_)) {
        demuxer.set_annexb(true)?;
    }
    let info = demuxer.info();
    let bytes = frame_bytes(opts.color, info.pixel, info.width, info.height)?;
    let shape = FrameShape {
        color: opts.color,
        width: info.width,
        height: info.height,
        bytes,
    };
    Ok(Stream {
        demuxer,
        index,
        shape,
        backend,
        opening: started.elapsed(),
    })
}

/// Opens another demuxer on `source` for a parallel lane.
fn open_lane_demuxer(source: &Source, backend: Backend) -> Result<Demuxer> {
    let mut demuxer = Demuxer::open(source.clone())?;
    if matches!(backend, Backend::Nvdec(_)) {
        demuxer.set_annexb(true)?;
    }
    Ok(demuxer)
}

/// The NAL syntax to look into for dropping unneeded non-reference pictures (H.264 and HEVC; Annex-B on NVDEC,
/// the container's framing on the CPU).
fn skip_codec(backend: Backend, demuxer: &Demuxer) -> Option<(NalCodec, NalFraming)> {
    let codec = match demuxer.info().codec.as_str() {
        "h264" => NalCodec::H264,
        "hevc" => NalCodec::Hevc,
        _ => return None,
    };
    let framing = match backend {
        Backend::Nvdec(_) => NalFraming::AnnexB,
        Backend::Cpu | Backend::Auto => NalFraming::from_extradata(codec, &demuxer.extradata()),
    };
    Some((codec, framing))
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
        let source = source.into();
        let s = open_stream(&source, &opts)?;
        let key = decoder_key(s.backend, s.demuxer.info(), &opts);
        let started = Instant::now();
        let decoder = take_decoder(&pool, &key, &s.demuxer, &opts)?;
        let mut work = DecodeWork::default();
        work.times.open = s.opening;
        work.times.setup = started.elapsed();
        Ok(SimpleDecoder {
            opts,
            pool,
            source,
            info: s.demuxer.info().clone(),
            skip: skip_codec(s.backend, &s.demuxer),
            index: s.index,
            shape: s.shape,
            key,
            backend: s.backend,
            lanes: vec![Lane {
                demuxer: s.demuxer,
                decoder,
                pos: Position::default(),
                work: DecodeWork::default(),
            }],
            stale: Vec::new(),
            work,
            cursor: 0,
        })
    }

    /// Switches to another video, reusing this decoder (or a pooled one) when the new stream has the same codec,
    /// bit depth, chroma format and fits the size limit, otherwise building one. On NVDEC the session is
    /// reconfigured in place (`cuvidReconfigureDecoder`), not rebuilt. Position resets to frame 0.
    pub fn reconfigure(&mut self, source: impl Into<Source>) -> Result<()> {
        let source = source.into();
        let s = open_stream(&source, &self.opts)?;
        let key = decoder_key(s.backend, s.demuxer.info(), &self.opts);
        self.skip = skip_codec(s.backend, &s.demuxer);
        self.collect_work();
        self.work.times.open += s.opening;
        let started = Instant::now();
        let mut lanes = std::mem::take(&mut self.lanes).into_iter();
        let main = lanes.next();
        let mut parked: Vec<Box<dyn FrameDecoder>> = lanes.map(|l| l.decoder).collect();
        parked.append(&mut self.stale);
        let decoder = if key == self.key {
            match main {
                Some(mut lane) => {
                    self.pool.count_reuse();
                    lane.decoder.reconfigure(&s.demuxer)?;
                    self.stale = parked;
                    lane.decoder
                }
                None => take_decoder(&self.pool, &key, &s.demuxer, &self.opts)?,
            }
        } else {
            for d in main.map(|l| l.decoder).into_iter().chain(parked) {
                self.pool.put(self.key.clone(), d);
            }
            take_decoder(&self.pool, &key, &s.demuxer, &self.opts)?
        };
        self.work.times.setup += started.elapsed();
        self.lanes = vec![Lane {
            demuxer: s.demuxer,
            decoder,
            pos: Position::default(),
            work: DecodeWork::default(),
        }];
        self.source = source;
        self.info = self.lanes[0].demuxer.info().clone();
        self.index = s.index;
        self.shape = s.shape;
        self.key = key;
        self.backend = s.backend;
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
        &self.info
    }

    /// Metadata from scanning every packet: exact frame count, keyframes, time stamps.
    pub fn scanned_stream_metadata(&self) -> &FrameIndex {
        &self.index
    }

    /// The backend decoding this video (`Auto` resolved: [`Backend::Cpu`] or [`Backend::Nvdec`]).
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The output colour type.
    pub fn color(&self) -> ColorType {
        self.opts.color
    }

    /// The device batches come back on: the GPU for NVDEC with [`DecoderOptions::use_device_memory`], else the
    /// CPU.
    pub fn device(&self) -> Device {
        match self.backend {
            Backend::Nvdec(gpu) if self.opts.use_device_memory => Device::Cuda(gpu),
            _ => Device::Cpu,
        }
    }

    /// Tensor dimensions of a batch of `n` frames of this video.
    pub fn batch_dims(&self, n: usize) -> Vec<i64> {
        self.shape.dims(n)
    }

    /// The decoding work of this decoder's life so far (across files): with `frames_written` it says how many
    /// pictures had to be decoded per frame delivered.
    pub fn decode_work(&self) -> DecodeWork {
        let mut w = self.work;
        for l in &self.lanes {
            w += l.work;
        }
        w
    }

    /// Moves the lanes' counters into the decoder's total.
    fn collect_work(&mut self) {
        for l in &mut self.lanes {
            self.work += std::mem::take(&mut l.work);
        }
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
    /// nothing is decoded. The batch is on [`SimpleDecoder::device`] and complete when this returns.
    pub fn get_batch_frames_by_index(&mut self, indices: &[i64]) -> Result<FrameBatch> {
        let wanted: Vec<usize> = indices
            .iter()
            .map(|&i| self.index.check(i))
            .collect::<Result<_>>()?;
        let mut frames = self.shape.alloc(wanted.len(), self.device())?;
        self.decode_frames_into(&wanted, &mut frames, &FrameTransform::identity())?;
        Ok(FrameBatch {
            frames,
            pts: wanted.iter().map(|&i| self.index.pts(i)).collect(),
            times: wanted.iter().map(|&i| self.index.time_of(i)).collect(),
            indices: wanted,
            color: self.opts.color,
        })
    }

    /// Decodes the frames at `indices` (any order, duplicates allowed) into `out`, one frame per entry of its
    /// first dimension: the zero-copy path of the data loader, which passes a view of its batch tensor.
    ///
    /// `out` is `[n, 3, H, W]` for [`ColorType::Rgbp`] or `[n, H, W, 3]` for [`ColorType::Rgb`], of kind u8, f16,
    /// bf16 or f32, on the CPU or any CUDA device, of any `H x W` (frames are resized bilinearly from the picture,
    /// or from `transform`'s crop); for [`ColorType::Native`] it is `[n, bytes]` u8 and takes no transform. On
    /// NVDEC the conversion, resize and normalisation run in one kernel writing each slot; on the CPU frames are
    /// decoded at their own size and then transformed with torch operations. `out` is complete when this returns.
    pub fn decode_frames_into(
        &mut self,
        indices: &[usize],
        out: &mut Tensor,
        transform: &FrameTransform,
    ) -> Result<()> {
        for &i in indices {
            self.index.check(i as i64)?;
        }
        let size = out.size();
        if size.first().copied() != Some(indices.len() as i64) {
            return Err(Error::InvalidArgument(format!(
                "destination {size:?} does not hold {} frames",
                indices.len()
            )));
        }
        transform.check(self.shape.width, self.shape.height)?;
        let native_dims = self.shape.dims(indices.len());
        if self.opts.color == ColorType::Native {
            if size != native_dims || out.kind() != tch::Kind::Uint8 || !transform.is_identity() {
                return Err(Error::InvalidArgument(format!(
                    "NATIVE frames need a {native_dims:?} uint8 destination and no transform, not {size:?} {:?}",
                    out.kind()
                )));
            }
        } else {
            transform::slot_hw(self.opts.color, &size[1..])?;
        }
        if indices.is_empty() {
            return Ok(());
        }
        match self.backend {
            Backend::Nvdec(gpu) if out.device() == Device::Cuda(gpu) => {
                self.decode_device(indices, out.shallow_clone(), *transform)
            }
            Backend::Nvdec(gpu) => {
                let tmp = Tensor::f_empty(size.as_slice(), (out.kind(), Device::Cuda(gpu)))?;
                self.decode_device(indices, tmp.shallow_clone(), *transform)?;
                out.f_copy_(&tmp)?;
                Ok(())
            }
            Backend::Cpu | Backend::Auto => {
                let direct = out.device() == Device::Cpu
                    && out.kind() == tch::Kind::Uint8
                    && out.is_contiguous()
                    && size == native_dims
                    && transform.is_identity();
                let (crop_w, crop_h) = transform
                    .crop
                    .map_or((self.shape.width, self.shape.height), |c| {
                        (c.width, c.height)
                    });
                let resized = self.opts.color != ColorType::Native
                    && transform::slot_hw(self.opts.color, &size[1..])?
                        != (i64::from(crop_h), i64::from(crop_w))
                    && crate::cpu::convert::resizes_directly(self.info.pixel);
                if direct {
                    self.decode_host(indices, host_bytes_mut(out)?)
                } else if resized {
                    self.decode_host_resized(indices, out, transform)
                } else {
                    let mut host = self.shape.alloc(indices.len(), Device::Cpu)?;
                    self.decode_host(indices, host_bytes_mut(&mut host)?)?;
                    transform::apply(&host, self.opts.color, transform, out)
                }
            }
        }
    }

    /// Frame -> the slots that want it, and the frames grouped by the keyframe packet they decode from, in decode
    /// order.
    fn plan(&self, wanted: &[usize]) -> (Slots, Groups) {
        let mut slots: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (slot, &f) in wanted.iter().enumerate() {
            slots.entry(f).or_default().push(slot);
        }
        let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for &f in slots.keys() {
            groups
                .entry(self.index.start_packet_of(f))
                .or_default()
                .push(f);
        }
        (slots, groups.into_iter().collect())
    }

    fn request<'a>(&'a self, slots: &'a Slots, groups: usize) -> Request<'a> {
        Request {
            index: &self.index,
            groups,
            flush_groups: matches!(self.backend, Backend::Nvdec(_)),
            color: self.opts.color,
            slots,
            skip_codec: self.skip,
        }
    }

    fn lane0(&mut self) -> Result<&mut Lane> {
        self.lanes.first_mut().ok_or_else(|| {
            Error::Worker(
                "this decoder lost its decoder in a failed reconfigure; open it again".into(),
            )
        })
    }

    /// Decodes `wanted` (valid indices) into `output`'s slots on lane 0; the slots of duplicates are left to the
    /// caller (returned).
    fn decode_on_lane0(&mut self, wanted: &[usize], mut output: Output<'_>) -> Result<Slots> {
        let (slots, groups) = self.plan(wanted);
        let mut lanes = std::mem::take(&mut self.lanes);
        let result = match lanes.first_mut() {
            Some(lane) => {
                let req = self.request(&slots, groups.len());
                lane.decode_groups(&req, &groups, &mut output)
            }
            None => self.lane0().map(|_| ()),
        };
        self.lanes = lanes;
        result.map(|()| slots)
    }

    /// Decodes `wanted` (valid indices) into consecutive host slots of `out` on lane 0.
    fn decode_host(&mut self, wanted: &[usize], out: &mut [u8]) -> Result<()> {
        let fb = self.shape.bytes;
        let slots = self.decode_on_lane0(
            wanted,
            Output::Host {
                bytes: &mut *out,
                frame_bytes: fb,
            },
        )?;
        copy_duplicate_slots(out, &slots, fb);
        Ok(())
    }

    /// Decodes `wanted` on the CPU straight into `out` (an RGB/RGBP destination of another size than the
    /// pictures): each frame is cropped, resized and normalised from its YUV planes in one pass (see
    /// [`crate::cpu::convert::write_frame_resized`]) into f32 values, which go into `out` with one copy (rounded for
    /// integer kinds).
    fn decode_host_resized(
        &mut self,
        wanted: &[usize],
        out: &mut Tensor,
        transform: &FrameTransform,
    ) -> Result<()> {
        let size = out.size();
        let (oh, ow) = transform::slot_hw(self.opts.color, &size[1..])?;
        let float_out = transform::float_destination(out.kind(), transform)?;
        let target = ResizeTarget {
            crop: transform.crop,
            width: ow as usize,
            height: oh as usize,
            planar: self.opts.color == ColorType::Rgbp,
            normalize: transform.normalize,
        };
        let n = 3 * target.width * target.height;
        let mut values = vec![0f32; wanted.len() * n];
        let slots = self.decode_on_lane0(
            wanted,
            Output::HostResized {
                values: &mut values,
                target: &target,
            },
        )?;
        copy_duplicate_slots(&mut values, &slots, n);
        let mut x = Tensor::f_from_slice(&values)?.f_view(size.as_slice())?;
        if !float_out {
            // Round half up and clamp, as the GPU kernel does for u8.
            x = (x + 0.5).f_floor()?.f_clamp(0.0, 255.0)?;
        }
        out.f_copy_(&x)?;
        Ok(())
    }

    /// Decodes `wanted` into the slots of the CUDA tensor `batch`, spreading the keyframe groups over up to
    /// [`DecoderOptions::sessions`] lanes that run at once.
    fn decode_device(
        &mut self,
        wanted: &[usize],
        batch: Tensor,
        transform: FrameTransform,
    ) -> Result<()> {
        let (slots, groups) = self.plan(wanted);
        let sessions = match self.opts.sessions {
            0 => DEFAULT_NVDEC_SESSIONS,
            n => n,
        };
        let n_lanes = sessions.min(groups.len()).max(1);
        self.ensure_lanes(n_lanes)?;
        let mut lanes = std::mem::take(&mut self.lanes);
        let result = {
            let req = self.request(&slots, groups.len());
            // Contiguous runs of groups per lane (sizes differing by at most one), so each lane decodes forward
            // through its part of the file.
            let chunks = split_even(&groups, n_lanes);
            if chunks.len() <= 1 {
                let mut out = Output::Device {
                    batch: batch.shallow_clone(),
                    transform,
                };
                match lanes.first_mut() {
                    Some(lane) => lane.decode_groups(&req, &groups, &mut out),
                    None => Err(Error::Worker("no decode lane".into())),
                }
            } else {
                std::thread::scope(|scope| {
                    let handles: Vec<_> = lanes
                        .iter_mut()
                        .zip(chunks)
                        .map(|(lane, chunk)| {
                            let mut out = Output::Device {
                                batch: batch.shallow_clone(),
                                transform,
                            };
                            let req = &req;
                            scope.spawn(move || lane.decode_groups(req, chunk, &mut out))
                        })
                        .collect();
                    handles.into_iter().try_for_each(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(Error::Worker("a decode lane panicked".into())))
                    })
                })
            }
        };
        self.lanes = lanes;
        result?;
        for dests in slots.values() {
            let first = batch.f_select(0, dests[0] as i64)?;
            for &d in &dests[1..] {
                batch.f_select(0, d as i64)?.f_copy_(&first)?;
            }
        }
        Ok(())
    }

    /// Opens lanes until there are `n`, reusing parked decoders of this key, then the pool's.
    fn ensure_lanes(&mut self, n: usize) -> Result<()> {
        while self.lanes.len() < n {
            let started = Instant::now();
            let demuxer = open_lane_demuxer(&self.source, self.backend)?;
            self.work.times.open += started.elapsed();
            let started = Instant::now();
            let decoder = match self.stale.pop() {
                Some(mut d) => {
                    d.reconfigure(&demuxer)?;
                    d
                }
                None => take_decoder(&self.pool, &self.key, &demuxer, &self.opts)?,
            };
            self.work.times.setup += started.elapsed();
            self.lanes.push(Lane {
                demuxer,
                decoder,
                pos: Position::default(),
                work: DecodeWork::default(),
            });
        }
        Ok(())
    }
}

impl Drop for SimpleDecoder {
    fn drop(&mut self) {
        let lanes = std::mem::take(&mut self.lanes);
        for d in lanes
            .into_iter()
            .map(|l| l.decoder)
            .chain(self.stale.drain(..))
        {
            self.pool.put(self.key.clone(), d);
        }
    }
}

/// Copies the slot each frame was decoded into (the first of its slots) into its other slots; a slot is `len`
/// elements of `buf`.
fn copy_duplicate_slots<T: Copy>(buf: &mut [T], slots: &Slots, len: usize) {
    for dests in slots.values() {
        let first = dests[0];
        for &d in &dests[1..] {
            buf.copy_within(first * len..(first + 1) * len, d * len);
        }
    }
}

/// `items` cut into `n` contiguous runs whose lengths differ by at most one (fewer when there are fewer items).
fn split_even<T>(items: &[T], n: usize) -> Vec<&[T]> {
    let n = n.clamp(1, items.len().max(1));
    let (base, extra) = (items.len() / n, items.len() % n);
    let mut out = Vec::with_capacity(n);
    let mut at = 0;
    for k in 0..n {
        let len = base + usize::from(k < extra);
        out.push(&items[at..at + len]);
        at += len;
    }
    out
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
    let packets = index.packets();
    let range = (0..=limit.min(packets.len().saturating_sub(1))).rev();
    if index.counted_order() {
        // The index's pts are its own; the container's decode time stamps identify the packet.
        let dts = p.dts()?;
        return range.into_iter().find(|&i| packets[i].dts == dts);
    }
    let pts = p.pts().or(p.dts())?;
    range
        .into_iter()
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
    let (ts, expected) = if index.counted_order() {
        (
            packet.dts(),
            index.packets().get(pos.read_pos).map(|e| e.dts),
        )
    } else {
        (
            packet.pts().or(packet.dts()),
            index.packets().get(pos.read_pos).map(|e| e.pts),
        )
    };
    if let (Some(expected), Some(ts)) = (expected, ts) {
        if expected != ts {
            return Err(Error::Corrupt {
                source_name: demuxer.source().name(),
                reason: format!(
                    "packet {} has time stamp {ts}, the index says {expected}",
                    pos.read_pos
                ),
            });
        }
    }
    pos.read_pos += 1;
    Ok(Some(packet))
}

#[cfg(test)]
mod tests {
    use super::split_even;

    #[test]
    fn groups_are_spread_evenly_over_lanes() {
        let g: Vec<usize> = (0..10).collect();
        let lens: Vec<usize> = split_even(&g, 8).iter().map(|c| c.len()).collect();
        assert_eq!(lens, vec![2, 2, 1, 1, 1, 1, 1, 1]);
        assert_eq!(split_even(&g, 20).len(), 10);
        assert_eq!(split_even(&g[..0], 3).len(), 1);
        assert_eq!(split_even(&g, 3).concat(), g);
    }
}
