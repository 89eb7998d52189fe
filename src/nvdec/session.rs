//! A safe NVDEC decode session: one `cuvid` parser plus the decoder it creates, fed with Annex-B packets.
//!
//! ```text
//! decode(packet) ──► parser ──► sequence callback: check caps, create / reconfigure / recreate the decoder
//!                          ├─► decode callback:   cuvidDecodePicture   (Zero latency: queue the picture here)
//!                          ├─► SEI callback:      copy the messages, keep them per picture index
//!                          └─► display callback:  queue a DisplayedFrame (display order)
//! next_frame() ──► map(frame, stream) ──► MappedSurface (device pointer, pitch, ...) ──► convert ──► drop = unmap
//! ```
//!
//! The callbacks never unwind into C: each runs under `catch_unwind`, and the first failure is kept and returned by
//! the call that fed the data (`decode`, `flush`, ...). On driver 580 a callback returning 0 does not make
//! `cuvidParseVideoData` fail, so this sticky error is the only reliable report.
//!
//! # Frame lifetime
//! A [`DisplayedFrame`] names a decode surface; the parser reuses that surface for a later picture once the frame
//! has been displayed. Map (and convert) the queued frames before feeding much more data: the usual loop is
//! "decode one packet, drain `next_frame()`, map + convert each". Extra decode surfaces
//! ([`SessionOptions::extra_decode_surfaces`]) give slack for a few queued frames. A frame whose surface was reused,
//! or whose decoder was reconfigured or replaced, is detected: [`NvdecSession::map`] returns
//! [`Error::InvalidArgument`] for it instead of wrong pixels.

use std::collections::{HashMap, VecDeque};
use std::ffi::{c_int, c_ulong, c_void};
use std::marker::PhantomData;
use std::sync::Arc;

use super::api::{api, NvcuvidApi};
use super::callbacks::{decode_callback, display_callback, sei_callback, sequence_callback, State};
use super::caps::DecoderCaps;
use super::config::{
    DecodeStats, DecodeStatus, DisplayedFrame, LatencyMode, SessionOptions, SessionStats,
    VideoFormat,
};
use super::result;
use super::surface::MappedSurface;
use super::sys;
use crate::cuda::{GpuContext, GpuStream};
use crate::error::{Error, Result};

/// A decode session: an NVDEC parser and the decoder it creates (see the module docs).
///
/// Not `Sync`; `Send`, so it can live in a worker thread (every call binds the GPU context to the calling
/// thread).
pub struct NvdecSession {
    parser: sys::CUvideoparser,
    state: *mut State,
    /// The out-of-band sequence header handed to the parser; must outlive it.
    _ext: Option<Box<sys::CUVIDEOFORMATEX>>,
    gpu: Arc<GpuContext>,
    api: &'static NvcuvidApi,
    cfg: SessionOptions,
}

// SAFETY: the parser/decoder handles and the state are only used through `&mut self`/`&self` methods, each of which
// binds the context on the calling thread first; nvcuvid objects are not tied to the creating thread.
unsafe impl Send for NvdecSession {}

impl std::fmt::Debug for NvdecSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvdecSession")
            .field("config", &self.cfg)
            .field("format", &self.format())
            .field("queued", &self.queued_frames())
            .finish()
    }
}

impl NvdecSession {
    /// Creates the parser for `cfg.codec` on `gpu`. The decoder itself is created by the first sequence header
    /// (in the first `decode` call, or here when `cfg.sequence_header` is given).
    ///
    /// Errors: [`Error::GpuUnavailable`] without libnvcuvid; [`Error::Nvdec`] when the parser cannot be created;
    /// [`Error::Unsupported`] when the sequence header describes a stream this GPU cannot decode.
    pub fn new(gpu: Arc<GpuContext>, cfg: SessionOptions) -> Result<Self> {
        let api = api()?;
        if cfg.output_surfaces == 0 || cfg.output_surfaces > 64 {
            return Err(Error::InvalidArgument(format!(
                "output_surfaces {} (1..=64)",
                cfg.output_surfaces
            )));
        }
        gpu.bind()?;
        let state = Box::new(State {
            api,
            gpu: gpu.clone(),
            codec: cfg.codec,
            latency: cfg.latency,
            display_delay: cfg.effective_display_delay(),
            extra_surfaces: cfg.extra_decode_surfaces,
            output_surfaces: cfg.output_surfaces,
            max_size: (cfg.max_width, cfg.max_height),
            deinterlace: cfg.deinterlace,
            recycle: cfg.recycle_decoders,
            decoder: None,
            retired: Vec::new(),
            next_epoch: 1,
            format: None,
            queue: VecDeque::new(),
            sei_pending: HashMap::new(),
            error: None,
            rejected: None,
            discard: false,
            current_pts: None,
            undisplayed: Vec::new(),
            stats: SessionStats::default(),
        });
        let state = Box::into_raw(state);

        let mut ext = cfg
            .sequence_header
            .as_ref()
            .filter(|h| !h.is_empty() && h.len() <= 1024)
            .map(|h| {
                let mut ex = Box::new(sys::CUVIDEOFORMATEX {
                    format: sys::CUVIDEOFORMAT {
                        codec: cfg.codec.to_raw(),
                        seqhdr_data_length: h.len() as u32,
                        ..Default::default()
                    },
                    raw_seqhdr_data: [0; 1024],
                });
                ex.raw_seqhdr_data[..h.len()].copy_from_slice(h);
                ex
            });
        let mut params = sys::CUVIDPARSERPARAMS {
            CodecType: cfg.codec.to_raw(),
            ulMaxNumDecodeSurfaces: 1,
            ulClockRate: cfg.clock_rate,
            ulErrorThreshold: cfg.error_threshold.min(100),
            ulMaxDisplayDelay: cfg.effective_display_delay(),
            bitfields: 0,
            uReserved1: [0; 4],
            pUserData: state as *mut c_void,
            pfnSequenceCallback: Some(sequence_callback),
            pfnDecodePicture: Some(decode_callback),
            pfnDisplayPicture: if cfg.latency == LatencyMode::Zero {
                None
            } else {
                Some(display_callback)
            },
            pfnGetOperatingPoint: None,
            pfnGetSEIMsg: if cfg.extract_sei {
                Some(sei_callback)
            } else {
                None
            },
            pvReserved2: [std::ptr::null_mut(); 5],
            pExtVideoInfo: ext.as_mut().map_or(std::ptr::null_mut(), |b| {
                &mut **b as *mut sys::CUVIDEOFORMATEX
            }),
        };
        // SAFETY: `params` is fully initialised; the callbacks are `extern "C"` functions that never unwind; the
        // user pointer and the ext info stay valid until the parser is destroyed (Drop destroys the parser first).
        let parser = match unsafe { result::create_video_parser(api, &mut params) } {
            Ok(parser) => parser,
            Err(e) => {
                // SAFETY: the parser was not created, so nothing else holds `state`.
                drop(unsafe { Box::from_raw(state) });
                return Err(e);
            }
        };
        let mut session = NvdecSession {
            parser,
            state,
            _ext: ext,
            gpu,
            api,
            cfg,
        };
        session.feed_sequence_header()?;
        Ok(session)
    }

    fn feed_sequence_header(&mut self) -> Result<()> {
        if let Some(h) = self.cfg.sequence_header.take() {
            let r = self.parse(0, &h, None);
            self.cfg.sequence_header = Some(h);
            r?;
        }
        Ok(())
    }

    fn st(&self) -> &State {
        // SAFETY: `state` comes from Box::into_raw and lives until Drop; callbacks only run inside `parse`, which
        // holds `&mut self`, so no mutable reference exists while `&self` is borrowed.
        unsafe { &*self.state }
    }

    fn st_mut(&mut self) -> &mut State {
        // SAFETY: as in `st`; `&mut self` makes this the only reference.
        unsafe { &mut *self.state }
    }

    fn parse(
        &mut self,
        flags: sys::CUvideopacketflags,
        data: &[u8],
        pts: Option<i64>,
    ) -> Result<()> {
        self.gpu.bind()?;
        {
            let s = self.st_mut();
            s.current_pts = pts;
            // Drop decoders no queued frame refers to any more.
            let queue = &s.queue;
            s.retired
                .retain(|d| queue.iter().any(|f| f.epoch == d.epoch));
        }
        let mut flags = flags;
        if pts.is_some() {
            flags |= sys::CUVID_PKT_TIMESTAMP;
        }
        let mut pkt = sys::CUVIDSOURCEDATAPACKET {
            flags,
            payload_size: data.len() as c_ulong,
            payload: if data.is_empty() {
                std::ptr::null()
            } else {
                data.as_ptr()
            },
            timestamp: pts.unwrap_or(0),
        };
        // SAFETY: valid parser handle; `pkt` and `data` outlive the call; the context is bound; the callbacks reach
        // the state through the raw pointer while no Rust reference to it is live.
        let parsed = unsafe { result::parse_video_data(self.api, self.parser, &mut pkt) };
        let s = self.st_mut();
        s.current_pts = None;
        if let Some(e) = s.error.take() {
            return Err(e);
        }
        parsed
    }

    /// Feeds one packet of the Annex-B byte stream with presentation timestamp `pts` (in the units of
    /// [`SessionOptions::clock_rate`]). `end_of_picture` says the packet holds exactly one whole picture (it is
    /// always set in Low/Zero latency). Displayed pictures are queued for [`NvdecSession::next_frame`]. Returns the
    /// first error any callback hit (unsupported stream, decode failure).
    pub fn decode(&mut self, data: &[u8], pts: i64, end_of_picture: bool) -> Result<()> {
        self.decode_packet(data, Some(pts), end_of_picture)
    }

    /// Like [`NvdecSession::decode`] for data without a timestamp (e.g. arbitrary chunks of an elementary
    /// stream): the parser synthesises timestamps from the frame rate.
    pub fn decode_untimed(&mut self, data: &[u8], end_of_picture: bool) -> Result<()> {
        self.decode_packet(data, None, end_of_picture)
    }

    fn decode_packet(&mut self, data: &[u8], pts: Option<i64>, end_of_picture: bool) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let eop = end_of_picture || self.cfg.latency != LatencyMode::Native;
        self.parse(if eop { sys::CUVID_PKT_ENDOFPICTURE } else { 0 }, data, pts)
    }

    /// End of stream: every picture still held by the parser is decoded and queued. Decoding may continue
    /// afterwards (from a keyframe with its parameter sets).
    pub fn flush(&mut self) -> Result<()> {
        self.parse(sys::CUVID_PKT_ENDOFSTREAM, &[], None)
    }

    /// Prepares for data from a new position (after a seek): pictures still inside the parser are dropped
    /// without being decoded or queued, the queue and pending SEI are cleared, and the out-of-band sequence header
    /// (if any) is fed again. Continue with a keyframe (IDR, or a recovery point with its parameter sets). The
    /// decoder is kept (no 50 ms re-creation).
    pub fn reset(&mut self) -> Result<()> {
        self.st_mut().discard = true;
        let flushed = self.parse(sys::CUVID_PKT_ENDOFSTREAM, &[], None);
        {
            let s = self.st_mut();
            s.discard = false;
            s.queue.clear();
            s.undisplayed.clear();
            s.sei_pending.clear();
            s.error = None;
            s.retired.clear();
        }
        // A failed flush of pictures we throw away does not matter; a broken context shows up on the next call.
        drop(flushed);
        self.feed_sequence_header()
    }

    /// Switches the session to another stream of the same codec (the decoder pool's reuse path): like
    /// [`NvdecSession::reset`], then `sequence_header` (the new stream's Annex-B parameter sets, or `None` when
    /// they are in-band) replaces the configured one and is fed. The next sequence header reconfigures the decoder
    /// when the new coded size fits [`SessionOptions::max_width`] x [`SessionOptions::max_height`] (a few ms), and
    /// recreates it otherwise or when bit depth / chroma format change.
    pub fn start_stream(&mut self, sequence_header: Option<Vec<u8>>) -> Result<()> {
        self.cfg.sequence_header = None;
        self.reset()?;
        self.cfg.sequence_header = sequence_header.filter(|h| !h.is_empty());
        self.feed_sequence_header()
    }

    /// Whether the decoder of `epoch` is the session's current one (not retired by a new sequence: a retired
    /// decoder is destroyed once no queued frame refers to it).
    pub(crate) fn is_current_decoder(&self, epoch: u64) -> bool {
        self.st().decoder.as_ref().is_some_and(|d| d.epoch == epoch)
    }

    /// Queues at once the frame pictures already decoded whose time stamp is at most `through` and that the parser
    /// still holds back for display order (it would display them only after more pictures were sent), in time
    /// stamp order; the parser's own display of them later is dropped. Returns how many were queued.
    ///
    /// For a reader that knows no picture it wants is still to come (every packet up to its last wanted frame was
    /// sent): the pictures it waits for are decoded, only their display is pending. Pictures still to be decoded
    /// may show before the released ones, so the queue is then no longer in display order. Native latency, H.264
    /// and HEVC streams fed with time stamps; elsewhere nothing is released.
    pub fn release_decoded(&mut self, through: i64) -> usize {
        self.st_mut().release_decoded(through)
    }

    /// The next decoded picture, if any.
    pub fn next_frame(&mut self) -> Option<DisplayedFrame> {
        self.st_mut().queue.pop_front()
    }

    /// Pictures waiting in the queue.
    pub fn queued_frames(&self) -> usize {
        self.st().queue.len()
    }

    /// Pictures submitted to the hardware so far.
    pub fn frames_decoded(&self) -> u64 {
        self.st().stats.frames_decoded
    }

    /// Counters: decoders created, reconfigurations, frames decoded and queued.
    pub fn stats(&self) -> SessionStats {
        self.st().stats
    }

    /// The stream format from the last sequence header (`None` before the first one).
    pub fn format(&self) -> Option<&VideoFormat> {
        self.st().format.as_ref()
    }

    /// The capabilities NVDEC reported for the current stream (`None` before the first sequence header).
    pub fn caps(&self) -> Option<&DecoderCaps> {
        self.st().decoder.as_ref().map(|d| &d.caps)
    }

    /// Number of decode surfaces of the current decoder.
    pub fn decode_surfaces(&self) -> Option<u32> {
        self.st().decoder.as_ref().map(|d| d.num_surfaces)
    }

    /// The session's settings.
    pub fn config(&self) -> &SessionOptions {
        &self.cfg
    }

    /// The GPU the session decodes on.
    pub fn gpu(&self) -> &Arc<GpuContext> {
        &self.gpu
    }

    /// Maps `frame` for reading: NVDEC post-processes it into an output surface on `stream` (which must belong to
    /// this session's GPU). Convert it on the same stream; dropping the [`MappedSurface`] waits for that stream and
    /// unmaps. Only one frame can be mapped at a time (the surface borrows the session).
    pub fn map<'a>(
        &'a mut self,
        frame: &DisplayedFrame,
        stream: &'a GpuStream,
    ) -> Result<MappedSurface<'a>> {
        if stream.gpu().cu_context() != self.gpu.cu_context() {
            return Err(Error::InvalidArgument(
                "map: the stream belongs to another GPU context".into(),
            ));
        }
        self.gpu.bind()?;
        let api = self.api;
        let gpu = self.gpu.clone();
        let s = self.st();
        let dec = s
            .decoder
            .iter()
            .chain(s.retired.iter())
            .find(|d| d.epoch == frame.epoch)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "picture {} belongs to a decoder that has since been reconfigured or replaced (a new sequence \
                     began); map frames before feeding the next sequence",
                    frame.picture_index
                ))
            })?;
        let idx = frame.picture_index;
        if idx < 0 || dec.generations.get(idx as usize).copied() != Some(frame.generation) {
            return Err(Error::InvalidArgument(format!(
                "picture {idx} was overwritten by a later picture before it was mapped: map queued frames sooner, \
                 or raise SessionOptions::extra_decode_surfaces"
            )));
        }
        let mut proc = sys::CUVIDPROCPARAMS {
            progressive_frame: c_int::from(frame.progressive),
            second_field: 0,
            top_field_first: c_int::from(frame.top_field_first),
            unpaired_field: c_int::from(frame.repeat_first_field < 0),
            reserved_flags: 0,
            reserved_zero: 0,
            raw_input_dptr: 0,
            raw_input_pitch: 0,
            raw_input_format: 0,
            raw_output_dptr: 0,
            raw_output_pitch: 0,
            Reserved1: 0,
            output_stream: stream.raw() as *mut c_void,
            Reserved: [0; 46],
            histogram_dptr: std::ptr::null_mut(),
            pCuvidProcExt: std::ptr::null_mut(),
        };
        // SAFETY: valid decoder handle and picture index; `proc` is a valid local; the context is bound.
        let (dptr, pitch) = unsafe { result::map_video_frame(api, dec.handle, idx, &mut proc) }?;
        Ok(MappedSurface {
            api,
            gpu,
            handle: dec.handle,
            dptr,
            pitch: pitch as usize,
            surface: dec.target,
            format: dec.surface_format,
            bit_depth: dec.bit_depth,
            display: dec.display,
            picture_index: idx,
            timestamp: frame.timestamp,
            stream,
            mapped: true,
            _session: PhantomData,
        })
    }

    /// `cuvidGetDecodeStatus` for a picture of the current decoder. Not a wait: map the frame to wait for it.
    pub fn decode_status(&self, picture_index: i32) -> Result<DecodeStatus> {
        if self.api.get_decode_status.is_none() {
            return Err(Error::Unsupported(
                "this NVIDIA driver has no cuvidGetDecodeStatus".into(),
            ));
        };
        let Some(d) = self.st().decoder.as_ref() else {
            return Err(Error::InvalidArgument(
                "no decoder yet (no sequence header seen)".into(),
            ));
        };
        self.gpu.bind()?;
        let mut out = sys::CUVIDGETDECODESTATUS {
            decodeStatus: 0,
            reserved: [0; 31],
            pReserved: [std::ptr::null_mut(); 8],
        };
        // SAFETY: valid decoder handle, valid out-struct, context bound.
        unsafe { result::get_decode_status(self.api, d.handle, picture_index, &mut out) }?;
        Ok(DecodeStatus::from_raw(out.decodeStatus))
    }

    /// Whether NVDEC reports decode statistics for the current stream (the SDK 13.1 capability byte; needs a
    /// 590+ driver). False before the first sequence header.
    pub fn decode_stats_supported(&self) -> bool {
        self.caps().is_some_and(|c| c.decode_stats)
    }

    /// Per-block decode statistics of `frame`. Always an [`Error::Unsupported`] in this version: on drivers
    /// before 590 (the H100 here runs 580) the capability is absent, and the statistics buffer layout is not fully
    /// documented, so vidloader does not enable the feature yet.
    pub fn decode_stats(&self, frame: &DisplayedFrame) -> Result<DecodeStats> {
        let _ = frame;
        if !self.decode_stats_supported() {
            return Err(Error::Unsupported(
                "decode statistics need driver >= 590 (NVDEC SDK 13.1 'bIsDecodeStatsSupported'); this GPU/driver \
                 does not report them"
                    .into(),
            ));
        }
        Err(Error::Unsupported(
            "decode statistics are reported by this driver but not yet implemented by vidloader"
                .into(),
        ))
    }
}

impl Drop for NvdecSession {
    fn drop(&mut self) {
        let _ = self.gpu.bind();
        if !self.parser.is_null() {
            // SAFETY: the parser came from cuvidCreateVideoParser and is destroyed once, before the state it calls
            // back into.
            let _ = unsafe { result::destroy_video_parser(self.api, self.parser) };
            self.parser = std::ptr::null_mut();
        }
        // SAFETY: `state` came from Box::into_raw; the parser that held it is gone. Dropping it destroys the
        // decoders (each binds the context first).
        drop(unsafe { Box::from_raw(self.state) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nvdec::NvCodec;

    #[test]
    fn session_without_nvdec_is_a_typed_error() {
        if crate::nvdec::is_available() {
            return;
        }
        // Without libnvcuvid no context can be made either, but the codepath must not panic.
        if let Ok(gpu) = GpuContext::new(0) {
            assert!(matches!(
                NvdecSession::new(gpu, SessionOptions::new(NvCodec::H264)),
                Err(Error::GpuUnavailable(_))
            ));
        }
    }
}
