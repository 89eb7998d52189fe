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

use crate::backend::{self, Backend, DecoderKey, FrameDecoder};
use crate::bitstream::nal::{NalCodec, NalFraming};
use crate::cpu::convert::frame_bytes;
use crate::decode::lanes::{
    copy_duplicate_slots, skip_codec, split_even, Groups, Lane, Output, Position, Request, Slots,
};
use crate::decode::options::DecoderOptions;
use crate::decode::pool::DecoderPool;
use crate::decode::stats::DecodeWork;
use crate::error::{Error, Result};
use crate::ffi::tensor::{host_bytes_mut, host_f32_mut};
use crate::frame::batch::{FrameBatch, FrameShape};
use crate::frame::color::ColorType;
use crate::frame::transform::{self, FrameTransform, ResizeTarget};
use crate::io::demux::{Demuxer, StreamInfo};
use crate::io::index::{index_for, FrameIndex};
use crate::io::source::Source;

/// NVDEC sessions one request is spread over when [`DecoderOptions::sessions`] is 0. Measured on the H200 (7
/// engines; `gpu_decode` bench, 1080p H.264, GOP 30, one thread, medians of 3): 30 evenly spaced frames 596 fps
/// with 8 sessions and 908 with 16 (+52 %), 30 random frames 744 and 763; with 7 threads or a GOP of 250 no
/// change. A request only opens as many sessions as it has keyframe groups, and idle ones are parked for reuse
/// (BENCHMARKS.md has their memory).
pub(crate) const DEFAULT_NVDEC_SESSIONS: usize = 16;

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
    /// Host batches handed back by [`SimpleDecoder::recycle`]: the next batch of their size is written into one.
    spare: Vec<Tensor>,
}

/// How many recycled batches a [`SimpleDecoder`] keeps.
const MAX_SPARE_BATCHES: usize = 2;

thread_local! {
    /// The f32 values of CPU resizes into f16 / bf16 / u8 destinations, kept by each thread from call to call and
    /// from decoder to decoder (a DataLoader worker opens a decoder per sample; a fresh buffer would be zeroed and
    /// fault in page by page every time).
    static RESIZE_SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
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
        None => backend::open(key, demuxer, opts.threads),
    }
}

/// An opened stream: its demuxer (in Annex-B mode for NVDEC), index, frame shape and backend.
struct Stream {
    demuxer: Demuxer,
    index: Arc<FrameIndex>,
    shape: FrameShape,
    backend: Backend,
    /// Time spent opening it (see [`crate::DecodeTimes::open`]).
    opening: Duration,
}

/// Why NVDEC is not used for a file with this index although it decodes the codec exactly: random access gave
/// wrong pictures in the GPU tests while the CPU is exact. Several decode segments (an edit list of several
/// edits): the last frame of the last edit came back 21 dB off. Display order from H.264 picture order counts
/// (laced Matroska blocks without time stamps): a frame in the middle of a GOP never came out. Frames decoded from
/// before the first keyframe of a stream that begins inside a group of pictures (decoded against missing
/// references): never compared on NVDEC. Such files decode on the CPU under `Auto`, and `Backend::Nvdec` refuses
/// them, until that is understood.
fn nvdec_index_limit(index: &FrameIndex) -> Option<String> {
    if index.segment_count() > 1 {
        Some(format!(
            "{} decode segments (an edit list of several edits)",
            index.segment_count()
        ))
    } else if index.poc_order() {
        Some("packets without time stamps (display order from picture order counts)".into())
    } else if index.starts_mid_group() && !index.is_empty() && index.start_packet_of(0) == 0 {
        // Frames that libavcodec shows from the pictures before the first keyframe (decoded against missing
        // references): how NVDEC makes those was never compared.
        Some("frames decoded before the stream's first keyframe (it begins inside a group of pictures)".into())
    } else {
        None
    }
}

/// Opens `source`, builds its index and frame shape and picks the backend.
fn open_stream(source: &Source, opts: &DecoderOptions) -> Result<Stream> {
    let started = Instant::now();
    let mut demuxer = Demuxer::open(source.clone())?;
    let index = index_for(source, &mut demuxer)?;
    let backend = match backend::resolve(opts.backend, &demuxer)? {
        Backend::Nvdec(_) if nvdec_index_limit(&index).is_some() => match opts.backend {
            Backend::Nvdec(_) => {
                return Err(Error::Unsupported(format!(
                    "{}: {}: random access on NVDEC is not exact for such files yet; decode it on the CPU",
                    source.name(),
                    nvdec_index_limit(&index).unwrap_or_default()
                )))
            }
            _ => Backend::Cpu,
        },
        b => b,
    };
    backend::prepare(backend, &mut demuxer)?;
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
    backend::prepare(backend, &mut demuxer)?;
    Ok(demuxer)
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
        let mut opts = opts;
        if opts.backend == Backend::Auto {
            // `Auto` means the GPU of the thread that opens the decoder; pinned here, so that a later
            // `reconfigure` on another thread (a loader's worker, which binds no context) keeps that GPU instead of
            // falling back to GPU 0.
            opts.backend = Backend::AutoOn(crate::cuda::default_gpu());
        }
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
            spare: Vec::new(),
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

    /// Hands a batch back once the caller is done with it: the next batch of the same size (from
    /// [`SimpleDecoder::get_batch_frames`], `get_batch_frames_by_index` or `get_range`) is written into its tensor
    /// instead of a new one. A fresh host batch costs a page fault per page on its first write (a 16-frame 1080p
    /// RGB batch is 100 MB); GPU batches come from torch's caching allocator and are not kept. The two handed
    /// back last are kept. Hand back only a batch that nothing holds any more, not even a view of its frames
    /// (`narrow`, `view`, `select`, ...): the next batch overwrites it.
    pub fn recycle(&mut self, batch: FrameBatch) {
        let t = batch.frames;
        if t.device() == Device::Cpu
            && t.numel() > 0
            && t.kind() == tch::Kind::Uint8
            && t.is_contiguous()
        {
            if self.spare.len() == MAX_SPARE_BATCHES {
                // The oldest goes: a batch of a size no longer asked for does not hold its place for good.
                drop(self.spare.remove(0));
            }
            self.spare.push(t);
        }
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
        let dims = self.shape.dims(wanted.len());
        let device = self.device();
        let mut frames = match self
            .spare
            .iter()
            .position(|t| t.size() == dims && t.device() == device)
        {
            Some(i) => self.spare.swap_remove(i),
            None => self.shape.alloc(wanted.len(), device)?,
        };
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
    /// NVDEC the conversion, resize and normalisation run in one kernel writing each slot. On the CPU, into a CUDA
    /// tensor, 4:2:0 and 4:4:4 pictures are copied to the GPU and go through that same kernel (the values are those
    /// NVDEC gives for the same decoded samples); into a CPU tensor they are converted, cropped, resized and
    /// normalised in one pass on the CPU. `out` is complete when this returns.
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
            Backend::Cpu | Backend::Auto | Backend::AutoOn(_) => {
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
                let uploaded = out.device().is_cuda()
                    && self.opts.color != ColorType::Native
                    && crate::cpu::decoder::uploads_to_gpu(self.info.pixel);
                if direct {
                    self.decode_host(indices, host_bytes_mut(out)?)
                } else if uploaded {
                    self.decode_uploaded(indices, out, *transform)
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

    /// Decodes `wanted` on the CPU into the CUDA tensor `out`: each picture is staged in pinned memory, copied to
    /// the GPU and converted there by the kernel NVDEC pictures go through (with the crop, resize, normalisation and
    /// element type of `out` fused in), so the values are those an NVDEC decode of the same stream gives.
    fn decode_uploaded(
        &mut self,
        wanted: &[usize],
        out: &mut Tensor,
        transform: FrameTransform,
    ) -> Result<()> {
        let slots = self.decode_on_lane0(
            wanted,
            Output::Device {
                batch: out.shallow_clone(),
                transform,
            },
        )?;
        copy_duplicate_tensor_slots(out, &slots)
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
            // One decoding thread: the conversion stays on the calling thread too (see `ResizeTarget::parallel`).
            parallel: self.opts.threads != 1,
        };
        let n = 3 * target.width * target.height;
        let contiguous_host = out.device() == Device::Cpu && out.is_contiguous();
        // f16, bf16 and u8 destinations: the f32 values go into a scratch buffer kept by the thread and are
        // converted into `out` here, with no torch operation (whose OpenMP threads then spin: 13 % of a 2-core
        // machine's time in the CPU loader at 360p).
        if contiguous_host && crate::ffi::tensor::stores_f32(out.kind()) {
            let mut scratch = RESIZE_SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
            scratch.resize(out.numel(), 0.0);
            let slots = self.decode_on_lane0(
                wanted,
                Output::HostResized {
                    values: &mut scratch,
                    target: &target,
                },
            )?;
            copy_duplicate_slots(&mut scratch, &slots, n);
            crate::ffi::tensor::store_f32(out, &scratch)?;
            RESIZE_SCRATCH.with(|s| *s.borrow_mut() = scratch);
            return Ok(());
        }
        // Written in place when `out` is a contiguous f32 CPU tensor; otherwise into an f32 tensor copied (and
        // converted) into `out` once.
        let in_place = contiguous_host && out.kind() == tch::Kind::Float;
        let mut values = if in_place {
            out.shallow_clone()
        } else {
            crate::ffi::tensor::empty(size.as_slice(), tch::Kind::Float, Device::Cpu)?
        };
        let host = host_f32_mut(&mut values)?;
        let slots = self.decode_on_lane0(
            wanted,
            Output::HostResized {
                values: &mut *host,
                target: &target,
            },
        )?;
        copy_duplicate_slots(host, &slots, n);
        if !in_place {
            if float_out {
                out.f_copy_(&values)?;
            } else {
                // Round half up and clamp, as the GPU kernel does for u8.
                out.f_copy_(&(values + 0.5).f_floor()?.f_clamp(0.0, 255.0)?)?;
            }
        }
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
        copy_duplicate_tensor_slots(&batch, &slots)
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

/// Copies the slot each frame was decoded into (the first of its slots) into its other slots of `batch` (any
/// device), with torch.
fn copy_duplicate_tensor_slots(batch: &Tensor, slots: &Slots) -> Result<()> {
    for dests in slots.values() {
        let first = batch.f_select(0, dests[0] as i64)?;
        for &d in &dests[1..] {
            batch.f_select(0, d as i64)?.f_copy_(&first)?;
        }
    }
    Ok(())
}
