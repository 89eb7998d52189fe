//! The parser side of a session: the hardware decoder a sequence header creates ([`Decoder`], parked in the idle
//! cache or destroyed on drop), and the state the parser callbacks work on ([`State`]: sequence, decode, display and
//! SEI callbacks; create / reconfigure / recreate the decoder; the display queue; the sticky error). The `extern "C"`
//! callbacks never unwind into C: each body runs under `catch_unwind`.

use std::collections::{HashMap, VecDeque};
use std::ffi::{c_int, c_ulong, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use super::api::NvcuvidApi;
use super::caps::{query_caps, ChromaFormat, DecoderCaps, NvCodec};
use super::config::{
    Deinterlace, DisplayedFrame, LatencyMode, Rect, SeiMessage, SessionStats, VideoFormat,
};
use super::recycle;
use super::result;
use super::sys;
use crate::cuda::{GpuContext, SurfaceFormat};
use crate::error::{Error, Result};

/// One NVDEC decoder instance (handle plus what it was created for).
pub(crate) struct Decoder {
    pub(crate) handle: sys::CUvideodecoder,
    pub(crate) epoch: u64,
    pub(crate) codec: NvCodec,
    pub(crate) chroma: ChromaFormat,
    pub(crate) bit_depth: u32,
    pub(crate) surface_format: SurfaceFormat,
    pub(crate) coded: (u32, u32),
    pub(crate) max: (u32, u32),
    pub(crate) target: (u32, u32),
    pub(crate) num_surfaces: u32,
    pub(crate) display: Rect,
    pub(crate) caps: DecoderCaps,
    /// Bumped every time a picture is decoded into surface `i`.
    pub(crate) generations: Vec<u64>,
    /// `intra_pic_flag` of the last picture decoded into surface `i`.
    pub(crate) intra: Vec<bool>,
    /// `ulNumOutputSurfaces` and `DeinterlaceMode` it was created with.
    pub(crate) output_surfaces: u32,
    pub(crate) deinterlace: sys::cudaVideoDeinterlaceMode,
    /// Park it in the idle cache when dropped (instead of destroying it).
    pub(crate) recycle: bool,
    pub(crate) api: &'static NvcuvidApi,
    pub(crate) gpu: Arc<GpuContext>,
}

impl Drop for Decoder {
    fn drop(&mut self) {
        let parked = recycle::ParkedDecoder {
            api: self.api,
            handle: self.handle,
            gpu: self.gpu.clone(),
            key: self.parking_key(),
            max: self.max,
            coded: self.coded,
            target: self.target,
            num_surfaces: self.num_surfaces,
            caps: self.caps.clone(),
        };
        if self.recycle {
            recycle::park(parked);
        } else {
            recycle::destroy_later(parked);
        }
    }
}

impl Decoder {
    fn parking_key(&self) -> recycle::ParkingKey {
        recycle::ParkingKey {
            codec: self.codec,
            chroma: self.chroma,
            bit_depth: self.bit_depth,
            surface_format: self.surface_format,
            output_surfaces: self.output_surfaces,
            deinterlace: self.deinterlace,
        }
    }
}

/// Everything the parser callbacks touch. Lives behind a raw pointer (from `Box::into_raw`) that the parser holds
/// as `pUserData`.
pub(crate) struct State {
    pub(crate) api: &'static NvcuvidApi,
    pub(crate) gpu: Arc<GpuContext>,
    pub(crate) codec: NvCodec,
    pub(crate) latency: LatencyMode,
    pub(crate) display_delay: u32,
    pub(crate) extra_surfaces: u32,
    pub(crate) output_surfaces: u32,
    pub(crate) max_size: (u32, u32),
    pub(crate) deinterlace: Deinterlace,
    pub(crate) recycle: bool,
    pub(crate) decoder: Option<Decoder>,
    /// Replaced decoders that queued frames still refer to.
    pub(crate) retired: Vec<Decoder>,
    pub(crate) next_epoch: u64,
    pub(crate) format: Option<VideoFormat>,
    pub(crate) queue: VecDeque<DisplayedFrame>,
    pub(crate) sei_pending: HashMap<i32, Vec<SeiMessage>>,
    pub(crate) error: Option<Error>,
    pub(crate) rejected: Option<String>,
    pub(crate) discard: bool,
    pub(crate) current_pts: Option<i64>,
    /// Frame pictures decoded and not displayed yet, with the time stamp of the packet they came in (Native
    /// latency, H.264 / HEVC, timed packets): what [`State::release_decoded`] may hand out before the parser does.
    pub(crate) undisplayed: Vec<Undisplayed>,
    pub(crate) stats: SessionStats,
}

/// A picture decoded and not yet displayed by the parser.
pub(crate) struct Undisplayed {
    pub(crate) frame: DisplayedFrame,
    /// Already queued by [`State::release_decoded`]: the parser's display of it is dropped.
    pub(crate) released: bool,
}

enum SequenceAction {
    Keep,
    Reconfigure,
    Recreate,
}

impl State {
    /// NVDEC's capabilities for a stream of this GPU (asked once per process, see [`query_caps`]).
    fn caps(&self, codec: NvCodec, chroma: ChromaFormat, bit_depth: u32) -> Result<DecoderCaps> {
        query_caps(self.api, &self.gpu, codec, chroma, bit_depth)
    }

    fn on_sequence(
        &mut self,
        f: &sys::CUVIDEOFORMAT,
        av1_max: Option<(u32, u32)>,
    ) -> Result<c_int> {
        let vf = match VideoFormat::from_raw(f) {
            Ok(vf) => vf,
            Err(e) => {
                self.rejected = Some(e.to_string());
                return Err(e);
            }
        };
        match self.apply_sequence(&vf, av1_max) {
            Ok(n) => {
                self.rejected = None;
                self.format = Some(vf);
                Ok(n as c_int)
            }
            Err(e) => {
                self.rejected = Some(e.to_string());
                Err(e)
            }
        }
    }

    fn apply_sequence(&mut self, vf: &VideoFormat, av1_max: Option<(u32, u32)>) -> Result<u32> {
        if vf.codec != self.codec {
            return Err(Error::Unsupported(format!(
                "the stream is {} but the session was created for {}",
                vf.codec.name(),
                self.codec.name()
            )));
        }
        if vf.bit_depth_chroma != vf.bit_depth {
            return Err(Error::Unsupported(format!(
                "{}-bit luma with {}-bit chroma",
                vf.bit_depth, vf.bit_depth_chroma
            )));
        }
        let caps = self.caps(vf.codec, vf.chroma, vf.bit_depth)?;
        if !caps.supported {
            return Err(Error::Unsupported(format!(
                "NVDEC on {} does not decode {} {}-bit {}",
                self.gpu.name(),
                vf.codec.name(),
                vf.bit_depth,
                vf.chroma.name()
            )));
        }
        if !caps.supports_output(vf.surface_format) {
            return Err(Error::Unsupported(format!(
                "NVDEC on {} cannot output {:?} for {} {}-bit {} (output mask {:#x})",
                self.gpu.name(),
                vf.surface_format,
                vf.codec.name(),
                vf.bit_depth,
                vf.chroma.name(),
                caps.output_format_mask
            )));
        }
        caps.check_size(vf.coded_width, vf.coded_height)?;
        let min = vf.min_decode_surfaces.max(1);
        let wanted = (min + self.display_delay + self.extra_surfaces)
            .min(32)
            .max(min);
        let coded = (vf.coded_width, vf.coded_height);
        if self.decoder.is_none() && self.recycle {
            self.decoder = self.take_parked(vf);
        }

        let action = match &self.decoder {
            None => SequenceAction::Recreate,
            Some(d)
                if d.codec == vf.codec && d.chroma == vf.chroma && d.bit_depth == vf.bit_depth =>
            {
                let queued = self.queue.iter().any(|fr| fr.epoch == d.epoch);
                if d.coded == coded && d.num_surfaces >= wanted {
                    SequenceAction::Keep
                } else if coded.0 <= d.max.0
                    && coded.1 <= d.max.1
                    && !queued
                    && self.api.reconfigure_decoder.is_some()
                {
                    SequenceAction::Reconfigure
                } else {
                    SequenceAction::Recreate
                }
            }
            Some(_) => SequenceAction::Recreate,
        };
        match action {
            SequenceAction::Keep => {
                let d = self.decoder.as_mut().expect("matched Some");
                d.display = vf.display;
                Ok(d.num_surfaces)
            }
            SequenceAction::Reconfigure => {
                let epoch = self.next_epoch;
                let d = self.decoder.as_mut().expect("matched Some");
                let n = wanted.max(d.num_surfaces).min(32);
                let target = (align2(coded.0), align2(coded.1));
                let mut rc = sys::CUVIDRECONFIGUREDECODERINFO {
                    ulWidth: coded.0,
                    ulHeight: coded.1,
                    ulTargetWidth: target.0,
                    ulTargetHeight: target.1,
                    ulNumDecodeSurfaces: n,
                    display_area: sys::CUVIDRECT16 {
                        left: 0,
                        top: 0,
                        right: coded.0 as i16,
                        bottom: coded.1 as i16,
                    },
                    ..Default::default()
                };
                // SAFETY: valid decoder handle, initialised struct, called from inside the sequence callback: the
                // caller (`NvdecSession::parse`) bound the session's context before cuvidParseVideoData (nvcuvid's
                // requirement); no frame of this decoder is mapped or queued.
                let reconfigured =
                    unsafe { result::reconfigure_decoder(self.api, d.handle, &mut rc) };
                if reconfigured.is_ok() {
                    self.next_epoch += 1;
                    self.stats.reconfigurations += 1;
                    d.epoch = epoch;
                    d.coded = coded;
                    d.target = target;
                    d.num_surfaces = n;
                    d.display = vf.display;
                    d.generations = vec![0; n as usize];
                    d.intra = vec![false; n as usize];
                    return Ok(n);
                }
                // Fall back to a new decoder (e.g. the driver refused the size).
                self.recreate(vf, wanted, caps, av1_max)
            }
            SequenceAction::Recreate => self.recreate(vf, wanted, caps, av1_max),
        }
    }

    /// `DeinterlaceMode` for a decoder of `vf`'s stream.
    fn deinterlace_mode(&self, vf: &VideoFormat) -> sys::cudaVideoDeinterlaceMode {
        if vf.progressive {
            return sys::cudaVideoDeinterlaceMode_Weave;
        }
        match self.deinterlace {
            Deinterlace::Weave => sys::cudaVideoDeinterlaceMode_Weave,
            Deinterlace::Bob => sys::cudaVideoDeinterlaceMode_Bob,
            Deinterlace::Adaptive => sys::cudaVideoDeinterlaceMode_Adaptive,
        }
    }

    /// A parked decoder that can serve `vf` (after a reconfigure if its size differs), made this session's.
    fn take_parked(&mut self, vf: &VideoFormat) -> Option<Decoder> {
        let key = recycle::ParkingKey {
            codec: vf.codec,
            chroma: vf.chroma,
            bit_depth: vf.bit_depth,
            surface_format: vf.surface_format,
            output_surfaces: self.output_surfaces.max(1),
            deinterlace: self.deinterlace_mode(vf),
        };
        let p = recycle::take(&self.gpu, &key, (vf.coded_width, vf.coded_height))?;
        let epoch = self.next_epoch;
        self.next_epoch += 1;
        self.stats.decoders_recycled += 1;
        let n = p.num_surfaces as usize;
        Some(Decoder {
            handle: p.handle,
            epoch,
            codec: key.codec,
            chroma: key.chroma,
            bit_depth: key.bit_depth,
            surface_format: key.surface_format,
            coded: p.coded,
            max: p.max,
            target: p.target,
            num_surfaces: p.num_surfaces,
            display: vf.display,
            caps: p.caps.clone(),
            generations: vec![0; n],
            intra: vec![false; n],
            output_surfaces: key.output_surfaces,
            deinterlace: key.deinterlace,
            recycle: true,
            api: p.api,
            gpu: p.gpu.clone(),
        })
    }

    fn recreate(
        &mut self,
        vf: &VideoFormat,
        n: u32,
        caps: DecoderCaps,
        av1_max: Option<(u32, u32)>,
    ) -> Result<u32> {
        if let Some(old) = self.decoder.take() {
            if self.queue.iter().any(|fr| fr.epoch == old.epoch) {
                self.retired.push(old);
            }
        }
        let (aw, ah) = av1_max.unwrap_or((0, 0));
        let max_w = self
            .max_size
            .0
            .max(vf.coded_width)
            .max(aw)
            .min(caps.max_width)
            .max(vf.coded_width);
        let max_h = self
            .max_size
            .1
            .max(vf.coded_height)
            .max(ah)
            .min(caps.max_height)
            .max(vf.coded_height);
        let target = (align2(vf.coded_width), align2(vf.coded_height));
        let deinterlace = self.deinterlace_mode(vf);
        let mut ci = sys::CUVIDDECODECREATEINFO {
            ulWidth: c_ulong::from(vf.coded_width),
            ulHeight: c_ulong::from(vf.coded_height),
            ulNumDecodeSurfaces: c_ulong::from(n),
            CodecType: vf.codec.to_raw(),
            ChromaFormat: vf.chroma.to_raw(),
            ulCreationFlags: c_ulong::from(sys::cudaVideoCreate_PreferCUVID),
            bitDepthMinus8: c_ulong::from(vf.bit_depth - 8),
            ulIntraDecodeOnly: 0,
            ulMaxWidth: c_ulong::from(max_w),
            ulMaxHeight: c_ulong::from(max_h),
            Reserved1: 0,
            display_area: sys::CUVIDRECT16::default(),
            OutputFormat: vf.surface_format.to_raw(),
            DeinterlaceMode: deinterlace,
            ulTargetWidth: c_ulong::from(target.0),
            ulTargetHeight: c_ulong::from(target.1),
            ulNumOutputSurfaces: c_ulong::from(self.output_surfaces.max(1)),
            vidLock: std::ptr::null_mut(),
            target_rect: sys::CUVIDRECT16::default(),
            enableHistogram: 0,
            enableDecodeFeatures: 0,
            Reserved2: [0; 3],
        };
        // SAFETY: `ci` is fully initialised and outlives the call; we are inside cuvidParseVideoData, whose caller
        // (`NvdecSession::parse`) bound the session's context; the new decoder's handle is returned.
        let handle = unsafe { result::create_decoder(self.api, &mut ci) }?;
        let epoch = self.next_epoch;
        self.next_epoch += 1;
        self.stats.decoders_created += 1;
        self.decoder = Some(Decoder {
            handle,
            epoch,
            codec: vf.codec,
            chroma: vf.chroma,
            bit_depth: vf.bit_depth,
            surface_format: vf.surface_format,
            coded: (vf.coded_width, vf.coded_height),
            max: (max_w, max_h),
            target,
            num_surfaces: n,
            display: vf.display,
            caps,
            generations: vec![0; n as usize],
            intra: vec![false; n as usize],
            output_surfaces: self.output_surfaces.max(1),
            deinterlace,
            recycle: self.recycle,
            api: self.api,
            gpu: self.gpu.clone(),
        });
        Ok(n)
    }

    fn no_decoder_error(&self) -> Error {
        match &self.rejected {
            Some(why) => Error::Unsupported(format!(
                "no decoder: the stream's sequence was rejected: {why}"
            )),
            None => Error::Nvdec {
                call: "cuvidDecodePicture (no decoder)",
                code: 1,
                name: super::api::cu_result_name(1),
            },
        }
    }

    fn on_decode(&mut self, pic: *mut sys::CUVIDPICPARAMS) -> Result<c_int> {
        if self.discard {
            return Ok(1);
        }
        // After a rejected sequence the parser keeps calling back (driver 580): never decode the new stream's
        // pictures with a decoder made for the previous one.
        if self.decoder.is_none() || self.rejected.is_some() {
            return Err(self.no_decoder_error());
        }
        let d = self.decoder.as_mut().expect("checked");
        // SAFETY: the parser hands a valid CUVIDPICPARAMS for the duration of the callback.
        let p = unsafe { &*pic };
        let idx = p.curr_pic_idx();
        if idx < 0 {
            return Err(Error::Nvdec {
                call: "decode callback (negative CurrPicIdx)",
                code: 1,
                name: super::api::cu_result_name(1),
            });
        }
        let i = idx as usize;
        if d.generations.len() <= i {
            d.generations.resize(i + 1, 0);
            d.intra.resize(i + 1, false);
        }
        d.generations[i] += 1;
        d.intra[i] = p.intra_pic_flag() != 0;
        // SAFETY: valid decoder handle; `pic` is the parser's own struct, passed through unchanged during the
        // callback, whose caller (`NvdecSession::parse`) bound the session's context.
        unsafe { result::decode_picture(self.api, d.handle, pic) }?;
        self.stats.frames_decoded += 1;
        let complete = p.field_pic_flag() == 0 || p.second_field() != 0;
        if self.latency == LatencyMode::Zero && complete {
            let frame = DisplayedFrame {
                picture_index: idx,
                timestamp: self
                    .current_pts
                    .unwrap_or(self.stats.frames_decoded as i64 - 1),
                progressive: p.field_pic_flag() == 0,
                top_field_first: true,
                repeat_first_field: 0,
                key_frame: d.intra[i],
                sei: self.sei_pending.remove(&idx).unwrap_or_default(),
                epoch: d.epoch,
                generation: d.generations[i],
            };
            self.queue.push_back(frame);
            self.stats.frames_queued += 1;
        } else if self.latency == LatencyMode::Native
            && p.field_pic_flag() == 0
            && matches!(self.codec, NvCodec::H264 | NvCodec::Hevc)
        {
            if let Some(pts) = self.current_pts {
                let (epoch, generation) = (d.epoch, d.generations[i]);
                // A surface decoded into again replaces what was recorded for it.
                self.undisplayed
                    .retain(|u| !(u.frame.picture_index == idx && u.frame.epoch == epoch));
                self.undisplayed.push(Undisplayed {
                    frame: DisplayedFrame {
                        picture_index: idx,
                        timestamp: pts,
                        progressive: true,
                        top_field_first: true,
                        repeat_first_field: 0,
                        key_frame: d.intra[i],
                        sei: Vec::new(),
                        epoch,
                        generation,
                    },
                    released: false,
                });
            }
        }
        Ok(1)
    }

    /// Queues, in time stamp order, the pictures decoded but not displayed yet whose time stamp is at most
    /// `through` (see [`super::NvdecSession::release_decoded`]); returns how many.
    pub(crate) fn release_decoded(&mut self, through: i64) -> usize {
        let mut ready: Vec<usize> = (0..self.undisplayed.len())
            .filter(|&k| {
                let u = &self.undisplayed[k];
                !u.released && u.frame.timestamp <= through
            })
            .collect();
        ready.sort_by_key(|&k| self.undisplayed[k].frame.timestamp);
        for &k in &ready {
            let u = &mut self.undisplayed[k];
            u.released = true;
            let mut frame = u.frame.clone();
            frame.sei = self
                .sei_pending
                .remove(&frame.picture_index)
                .unwrap_or_default();
            self.queue.push_back(frame);
            self.stats.frames_queued += 1;
        }
        ready.len()
    }

    fn on_display(&mut self, info: *mut sys::CUVIDPARSERDISPINFO) -> Result<c_int> {
        if info.is_null() {
            return Ok(1); // NOTIFY_EOS marker
        }
        // SAFETY: non-null pointer from the parser, valid during the callback.
        let di = unsafe { *info };
        if self.discard {
            self.sei_pending.remove(&di.picture_index);
            return Ok(1);
        }
        let Some(d) = self.decoder.as_ref().filter(|_| self.rejected.is_none()) else {
            return Err(self.no_decoder_error());
        };
        let i = di.picture_index.max(0) as usize;
        let generation = d.generations.get(i).copied().unwrap_or(0);
        if let Some(k) = self.undisplayed.iter().position(|u| {
            u.frame.picture_index == di.picture_index
                && u.frame.epoch == d.epoch
                && u.frame.generation == generation
        }) {
            if self.undisplayed.swap_remove(k).released {
                return Ok(1); // handed out already
            }
        }
        let frame = DisplayedFrame {
            picture_index: di.picture_index,
            timestamp: di.timestamp,
            progressive: di.progressive_frame != 0,
            top_field_first: di.top_field_first != 0,
            repeat_first_field: di.repeat_first_field,
            key_frame: d.intra.get(i).copied().unwrap_or(false),
            sei: self
                .sei_pending
                .remove(&di.picture_index)
                .unwrap_or_default(),
            epoch: d.epoch,
            generation: d.generations.get(i).copied().unwrap_or(0),
        };
        self.queue.push_back(frame);
        self.stats.frames_queued += 1;
        Ok(1)
    }

    fn on_sei(&mut self, info: *mut sys::CUVIDSEIMESSAGEINFO) -> Result<c_int> {
        if self.discard || info.is_null() {
            return Ok(1);
        }
        // SAFETY: non-null pointer from the parser, valid during the callback.
        let si = unsafe { *info };
        let count = si.sei_message_count as usize;
        if count == 0 || si.pSEIMessage.is_null() {
            return Ok(1);
        }
        // SAFETY: the parser provides `count` message headers at pSEIMessage, valid during the callback.
        let headers = unsafe { std::slice::from_raw_parts(si.pSEIMessage, count) };
        let total: usize = headers.iter().map(|h| h.sei_message_size as usize).sum();
        if total > 0 && si.pSEIData.is_null() {
            return Ok(1);
        }
        let data: &[u8] = if total == 0 {
            &[]
        } else {
            // SAFETY: pSEIData holds all payloads concatenated (sum of the sizes), valid during the callback.
            unsafe { std::slice::from_raw_parts(si.pSEIData as *const u8, total) }
        };
        let mut msgs = Vec::with_capacity(count);
        let mut off = 0;
        for h in headers {
            let end = off + h.sei_message_size as usize;
            msgs.push(SeiMessage {
                sei_type: h.sei_message_type,
                payload: data[off..end].to_vec(),
            });
            off = end;
        }
        let idx = si.picIdx as i32;
        if self.latency == LatencyMode::Zero {
            // The picture may already have been queued by the decode callback.
            if let (Some(back), Some(d)) = (self.queue.back_mut(), self.decoder.as_ref()) {
                let gen = d.generations.get(idx.max(0) as usize).copied().unwrap_or(0);
                if back.picture_index == idx && back.epoch == d.epoch && back.generation == gen {
                    back.sei.extend(msgs);
                    return Ok(1);
                }
            }
        }
        self.sei_pending.entry(idx).or_default().extend(msgs);
        Ok(1)
    }
}

pub(crate) fn align2(v: u32) -> u32 {
    (v + 1) & !1
}

/// Runs a callback body on the state behind `state`, converting errors and panics into the sticky error.
fn run_callback(state: *mut State, body: impl FnOnce(&mut State) -> Result<c_int>) -> c_int {
    // SAFETY: `state` is the pointer registered as pUserData; callbacks only run synchronously inside
    // cuvidParseVideoData, which NvdecSession calls while holding `&mut self` and no reference into the state.
    // Each access below creates the only live reference for its duration.
    if unsafe { (*state).error.is_some() } {
        return 0;
    }
    // SAFETY: as above.
    let result = catch_unwind(AssertUnwindSafe(|| body(unsafe { &mut *state })));
    let err = match result {
        Ok(Ok(v)) => return v,
        Ok(Err(e)) => e,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Error::Cuda {
                call: "NVDEC parser callback",
                reason: format!("panicked: {msg}"),
                source: None,
            }
        }
    };
    // SAFETY: as above; the body's reference has ended.
    unsafe { (*state).error = Some(err) };
    0
}

pub(crate) unsafe extern "C" fn sequence_callback(
    user: *mut c_void,
    fmt: *mut sys::CUVIDEOFORMAT,
) -> c_int {
    if user.is_null() || fmt.is_null() {
        return 0;
    }
    // SAFETY: the parser passes a valid CUVIDEOFORMAT for the duration of the callback.
    let f = unsafe { *fmt };
    let av1_max = if f.codec == sys::cudaVideoCodec_AV1 && f.seqhdr_data_length > 0 {
        // SAFETY: for AV1 with seqhdr_data_length > 0 the parser hands a CUVIDEOFORMATEX (NVIDIA's NvDecoder reads
        // it the same way); only the first 8 bytes of the union are read.
        let ex = unsafe { &*(fmt as *const sys::CUVIDEOFORMATEX) };
        Some((ex.av1_max_width(), ex.av1_max_height()))
    } else {
        None
    };
    run_callback(user as *mut State, |s| s.on_sequence(&f, av1_max))
}

pub(crate) unsafe extern "C" fn decode_callback(
    user: *mut c_void,
    pic: *mut sys::CUVIDPICPARAMS,
) -> c_int {
    if user.is_null() || pic.is_null() {
        return 0;
    }
    run_callback(user as *mut State, |s| s.on_decode(pic))
}

pub(crate) unsafe extern "C" fn display_callback(
    user: *mut c_void,
    info: *mut sys::CUVIDPARSERDISPINFO,
) -> c_int {
    if user.is_null() {
        return 0;
    }
    run_callback(user as *mut State, |s| s.on_display(info))
}

pub(crate) unsafe extern "C" fn sei_callback(
    user: *mut c_void,
    info: *mut sys::CUVIDSEIMESSAGEINFO,
) -> c_int {
    if user.is_null() {
        return 0;
    }
    run_callback(user as *mut State, |s| s.on_sei(info))
}
