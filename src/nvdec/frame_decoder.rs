//! The NVDEC frame decoder behind [`crate::backend::FrameDecoder`]: an [`NvdecSession`] fed with the demuxer's
//! Annex-B packets; each wanted frame is mapped and converted by one kernel straight into its slot of a CUDA batch
//! tensor (with crop, resize, normalisation and element type fused in).

use std::sync::LazyLock;

use super::caps::{reliable_timestamps, sequence_header, stream_codec};
use super::surface::PendingUnmap;
use super::{DisplayedFrame, NvCodec, NvdecSession, SessionOptions};
use crate::backend::{FrameDecoder, FrameSink};
use crate::cuda::{write_surface, GpuContext, GpuStream};
use crate::error::{Error, Result};
use crate::frame::color::{ColorMatrix, ColorRange, ColorType, YuvToRgb};
use crate::io::demux::StreamInfo;
use crate::io::demux::{Demuxer, Packet};

/// Colour conversion of a stream: the container's matrix and range, as the CPU backend uses them.
fn stream_color(info: &StreamInfo) -> (ColorMatrix, ColorRange) {
    (info.color_matrix, info.color_range)
}

/// Pictures kept decoded ahead of the one handed out, so that NVDEC has work queued while a picture is converted.
/// `VIDLOADER_NVDEC_DISPLAY_DELAY` overrides it (0..=8), for tuning.
fn lookahead() -> u32 {
    static LOOKAHEAD: LazyLock<u32> = LazyLock::new(|| {
        std::env::var("VIDLOADER_NVDEC_DISPLAY_DELAY")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(4, |d: u32| d.min(8))
    });
    *LOOKAHEAD
}

/// Where the look-ahead is kept. In the decoder (the default): the parser hands out each picture as soon as display
/// order allows (`ulMaxDisplayDelay` 0) and the decoder keeps the last [`lookahead`] of them queued, unmapped, while
/// NVDEC decodes the next ones; once the lane says that every packet its request needs was sent
/// ([`FrameDecoder::set_input_complete`]), the queued pictures come out at once, so a request never decodes
/// pictures past its last frame only to fill the queue. In the parser (`VIDLOADER_NVDEC_LOOKAHEAD=parser`, the
/// earlier way, kept for comparison): `ulMaxDisplayDelay` = the look-ahead, and a picture leaves the parser only
/// after that many more were sent.
fn lookahead_in_parser() -> bool {
    static IN_PARSER: LazyLock<bool> =
        LazyLock::new(|| std::env::var("VIDLOADER_NVDEC_LOOKAHEAD").is_ok_and(|v| v == "parser"));
    *IN_PARSER
}

/// The time stamp sent with packets whose picture the container says to drop (`Packet::is_discard`: an edit
/// list's pre-roll), so that their pictures are recognised when they come out and dropped, as libavcodec drops
/// them. Never a real stamp: far below any a container gives, with room for the parser's arithmetic.
const DISCARD_TS: i64 = i64::MIN / 4;

/// An NVDEC decode session with its own CUDA stream.
pub(crate) struct NvdecDecoder {
    session: NvdecSession,
    stream: GpuStream,
    codec: NvCodec,
    /// See [`reliable_timestamps`].
    timestamps: bool,
    current: Option<DisplayedFrame>,
    /// Displayed pictures kept queued (unmapped) while more are decoded; 0 when the parser keeps the look-ahead.
    hold: usize,
    /// Every packet the current request needs was sent (or the end of the stream): nothing is held back.
    input_complete: bool,
    /// Pictures the parser still holds for display order and stamped up to this are handed out at once (set with
    /// `input_complete`; see [`NvdecSession::release_decoded`]).
    release_through: Option<i64>,
    /// For codecs numbered by counting (no reliable stamps, no reordering): per packet sent and not yet shown,
    /// whether its picture is to be dropped.
    discards: std::collections::VecDeque<bool>,
    matrix: ColorMatrix,
    range: ColorRange,
    source_name: String,
    /// The last written picture, still mapped while its conversion runs, with the epoch of its decoder: it is
    /// waited for and unmapped by the next write or [`FrameDecoder::finish_writes`], so that the packets the lane
    /// sends meanwhile are not held up by that wait (sequential batches on 7 sessions: +1 %).
    pending: Option<(PendingUnmap, u64)>,
}

impl NvdecDecoder {
    /// A session on GPU `gpu` for `demuxer`'s stream (which must be in Annex-B mode), accepting streams up to
    /// `max_width x max_height` through reconfiguration.
    pub(crate) fn new(
        gpu: usize,
        demuxer: &Demuxer,
        max_width: u32,
        max_height: u32,
    ) -> Result<Self> {
        let ctx = GpuContext::shared(gpu)?;
        let (codec, _) = stream_codec(demuxer)?;
        let info = demuxer.info();
        let mut cfg = SessionOptions::new(codec);
        cfg.max_width = max_width.max(info.width);
        cfg.max_height = max_height.max(info.height);
        cfg.sequence_header = sequence_header(codec, demuxer);
        cfg.clock_rate = u32::try_from(info.time_base.1).unwrap_or(0);
        let (parser_delay, hold) = if lookahead_in_parser() {
            (lookahead(), 0)
        } else {
            (0, lookahead())
        };
        cfg.display_delay = Some(parser_delay);
        // The held pictures need their surfaces kept as the parser's display delay would.
        cfg.extra_decode_surfaces += hold;
        cfg.recycle_decoders = true;
        let stream = GpuStream::new(&ctx)?;
        let session = NvdecSession::new(ctx, cfg)?;
        let (matrix, range) = stream_color(info);
        Ok(NvdecDecoder {
            session,
            stream,
            codec,
            timestamps: reliable_timestamps(codec),
            current: None,
            hold: hold as usize,
            input_complete: false,
            release_through: None,
            discards: Default::default(),
            matrix,
            range,
            source_name: demuxer.source().name(),
            pending: None,
        })
    }

    /// Waits for the conversion of the last written picture and unmaps it.
    fn finish_pending(&mut self) -> Result<()> {
        match self.pending.take() {
            Some((p, _)) => p.finish(&self.stream),
            None => Ok(()),
        }
    }

    /// A decoder retired by a new sequence is destroyed by the session's next parse once no queued frame refers
    /// to it: a picture of it still mapped is finished before that.
    fn finish_if_retired(&mut self) -> Result<()> {
        if self
            .pending
            .as_ref()
            .is_some_and(|&(_, epoch)| !self.session.is_current_decoder(epoch))
        {
            self.finish_pending()?;
        }
        Ok(())
    }

    fn corrupt(&self, e: Error) -> Error {
        match e {
            Error::Nvdec { call, name, .. } => Error::Corrupt {
                source_name: self.source_name.clone(),
                reason: format!("NVDEC {call} failed ({name})"),
            },
            other => other,
        }
    }
}

impl Drop for NvdecDecoder {
    fn drop(&mut self) {
        // Before the session (and its decoders) go.
        let _ = self.finish_pending();
    }
}

impl FrameDecoder for NvdecDecoder {
    fn reconfigure(&mut self, demuxer: &Demuxer) -> Result<()> {
        let (codec, _) = stream_codec(demuxer)?;
        if codec != self.codec {
            return Err(Error::InvalidArgument(format!(
                "an NVDEC session for {} cannot decode {}",
                self.codec.name(),
                codec.name()
            )));
        }
        self.finish_pending()?;
        self.session.start_stream(sequence_header(codec, demuxer))?;
        self.current = None;
        self.input_complete = false;
        self.release_through = None;
        self.discards.clear();
        (self.matrix, self.range) = stream_color(demuxer.info());
        self.source_name = demuxer.source().name();
        Ok(())
    }

    fn send_packet(&mut self, packet: &Packet) -> Result<()> {
        self.finish_if_retired()?;
        let discard = packet.is_discard();
        if !self.timestamps {
            self.discards.push_back(discard);
        }
        let ts = if discard && self.timestamps {
            Some(DISCARD_TS)
        } else {
            packet.pts().or(packet.dts())
        };
        let r = match ts {
            Some(pts) => self.session.decode(packet.data(), pts, true),
            None => self.session.decode_untimed(packet.data(), true),
        };
        r.map_err(|e| self.corrupt(e))
    }

    fn send_eof(&mut self) -> Result<()> {
        self.finish_if_retired()?;
        self.input_complete = true;
        self.session.flush().map_err(|e| self.corrupt(e))
    }

    fn receive(&mut self) -> Result<Option<Option<i64>>> {
        if let Some(through) = self.release_through.filter(|_| self.input_complete) {
            self.session.release_decoded(through);
        }
        loop {
            if !self.input_complete && self.session.queued_frames() <= self.hold {
                self.current = None;
                return Ok(None);
            }
            self.current = self.session.next_frame();
            let Some(frame) = &self.current else {
                return Ok(None);
            };
            let dropped = if self.timestamps {
                frame.timestamp == DISCARD_TS
            } else {
                self.discards.pop_front().unwrap_or(false)
            };
            if !dropped {
                return Ok(Some(self.timestamps.then_some(frame.timestamp)));
            }
        }
    }

    fn current_size(&self) -> Option<(u32, u32)> {
        // The session's format is that of the last sequence header; a picture decoded before a change of size
        // that is still queued reports the new size.
        self.current.as_ref()?;
        self.session.format().map(|f| (f.width(), f.height()))
    }

    fn write_current(&mut self, color: ColorType, sink: FrameSink<'_>) -> Result<()> {
        let FrameSink::Device { slot, transform } = sink else {
            return Err(Error::InvalidArgument(
                "the NVDEC decoder writes CUDA tensors; host output goes through a device batch"
                    .into(),
            ));
        };
        // The previous write first: one picture mapped at a time.
        self.finish_pending()?;
        let frame = self
            .current
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("no decoded frame to write".into()))?;
        let epoch = frame.epoch;
        let mapped = self.session.map(frame, &self.stream)?;
        let src = mapped.source()?;
        let yuv = YuvToRgb::new(self.matrix, self.range, src.bit_depth());
        write_surface(src, color, &yuv, slot, transform, &self.stream)?;
        // Complete once `finish_writes` (or the next write) returns.
        self.pending = Some((mapped.defer(), epoch));
        Ok(())
    }

    fn finish_writes(&mut self) -> Result<()> {
        self.finish_pending()
    }

    fn flush(&mut self) {
        // A failed wait shows up as a broken context on the next call.
        let _ = self.finish_pending();
        self.current = None;
        self.input_complete = false;
        self.release_through = None;
        self.discards.clear();
        // A failed reset leaves a broken session; the next decode call reports it.
        let _ = self.session.reset();
    }

    fn set_input_complete(&mut self, complete: bool, last_pts: Option<i64>) {
        self.input_complete = complete;
        // Only stamps the decoder hands out identify pictures (not those of codecs numbered by counting).
        self.release_through = last_pts.filter(|_| complete && self.timestamps);
    }
}
