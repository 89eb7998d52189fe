//! The GOP engine: a lane is one demuxer and one decoder over the current stream; it decodes keyframe groups of a
//! request (frames sorted and grouped by the keyframe packet they decode from) forward from their keyframe,
//! reading ahead or seeking as needed, and writes the wanted frames into their slots. The packet helpers it needs
//! (time stamp to frame, locating a packet after a seek, reading a packet checked against the index, which
//! packets may be dropped) live here too.

use std::collections::BTreeMap;
use std::time::Instant;

use tch::Tensor;

use crate::backend::{Backend, FrameDecoder, FrameSink};
use crate::bitstream::nal::{self, NalCodec, NalFraming};
use crate::decode::host_writer::{self, DetachedSlots, HostSlot};
use crate::decode::picture_plan::{substitute, GroupPlan};
use crate::decode::stats::DecodeWork;
use crate::error::{Error, Result};
use crate::frame::color::ColorType;
use crate::frame::transform::{FrameTransform, ResizeTarget};
use crate::io::demux::{Demuxer, Packet};
use crate::io::index::FrameIndex;

/// Packets a restart may read and drop (instead of seeking) to reach a keyframe ahead.
const SKIP_READ_LIMIT: usize = 64;
/// Packets a running decoder may decode through to reach a keyframe ahead (instead of flushing and restarting).
const CONTINUE_LIMIT: usize = 4;

/// Where a lane's demuxer and decoder stand.
#[derive(Default)]
pub(crate) struct Position {
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
    /// Decoding restarted at a keyframe and no other keyframe has been sent since: HEVC RASL pictures read now
    /// belong to the keyframe decoding started from and are not sent (see `Lane::decode_group`).
    skip_rasl: bool,
}

/// One demuxer and one decoder over the current stream.
pub(crate) struct Lane {
    pub(crate) demuxer: Demuxer,
    pub(crate) decoder: Box<dyn FrameDecoder>,
    pub(crate) pos: Position,
    /// Work done since the decoder last collected it.
    pub(crate) work: DecodeWork,
}

/// The batch being written: host bytes (CPU decoding), host f32 RGB slots resized on the way (CPU decoding into
/// slots of another size), or a CUDA tensor (NVDEC).
pub(crate) enum Output<'a> {
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
    /// Host slots filled by a writer thread (see [`host_writer`]).
    Detached(DetachedSlots<'a>),
}

impl Output<'_> {
    /// The host slots, one per `Host`/`HostResized` slot, for a writer thread (`None` for other outputs).
    fn host_slots(&mut self) -> Option<Vec<Option<HostSlot<'_>>>> {
        match self {
            Output::Host { bytes, frame_bytes } => Some(
                bytes
                    .chunks_mut((*frame_bytes).max(1))
                    .map(|b| Some(HostSlot::Bytes(b)))
                    .collect(),
            ),
            Output::HostResized { values, target } => {
                let n = (3 * target.width * target.height).max(1);
                let target: &ResizeTarget = target;
                Some(
                    values
                        .chunks_mut(n)
                        .map(|values| Some(HostSlot::Resized { values, target }))
                        .collect(),
                )
            }
            Output::Device { .. } | Output::Detached(_) => None,
        }
    }

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
            Output::Detached(slots) => slots.write(decoder, slot),
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
pub(crate) type Slots = BTreeMap<usize, Vec<usize>>;
/// Frames grouped by the keyframe packet they decode from: `(packet, sorted frames)`, in decode order.
pub(crate) type Groups = Vec<(usize, Vec<usize>)>;

/// What a lane needs to know about the request it serves.
pub(crate) struct Request<'a> {
    pub(crate) index: &'a FrameIndex,
    pub(crate) color: ColorType,
    /// Frame -> the slots that want it (the first is decoded into).
    pub(crate) slots: &'a Slots,
    /// Keyframe groups in the whole request (over all lanes).
    pub(crate) groups: usize,
    /// Whether a group may end with a flush. Only on NVDEC: libavcodec's H.264 decoder, drained right after the
    /// last needed packet while unneeded B-pictures were dropped, withheld a P-picture that it had decoded.
    pub(crate) flush_groups: bool,
    /// Drop packets of non-reference H.264/HEVC pictures that no slot wants.
    pub(crate) skip_codec: Option<(NalCodec, NalFraming)>,
}

impl Lane {
    /// Decodes the frames of one group (all decodable from keyframe packet `start`; sorted) into their slots (the
    /// last write may still be in flight: [`Lane::decode_groups`] waits for it).
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
        // Frames are found by their stamps only in an index of one decode segment that keeps the container's. A
        // request that continues sequential reading does not release: the pictures display order holds back are
        // the next request's first ones, and taking them out early left NVDEC idle between requests (seq100_b5 on
        // the H200: 689 fps against 705 without). A group that would end with a flush does: with its frames out,
        // the flush is not needed and decoding can go on from here (a sequential batch across a keyframe).
        let release_through = ((!continuing || flush_after)
            && !req.index.counted_order()
            && !req.index.poc_order()
            && req.index.segment_count() == 1)
            .then(|| req.index.pts(last_frame));
        // H.264 reference pictures no wanted frame depends on go in as skip pictures (see `GroupPlan`).
        let plan = (req.skip_codec.is_some_and(|(c, _)| c == NalCodec::H264)
            && !req.index.counted_order())
        .then(|| {
            GroupPlan::new(
                req.index,
                req.slots,
                self.pos.read_pos..=last_packet,
                last_frame,
            )
        })
        .flatten();
        let mut remaining = frames.len();
        loop {
            // Past the last packet a wanted frame needs, a decoder's look-ahead has nothing left to wait for, and
            // pictures decoded up to the last wanted frame may leave before display order would let them.
            self.decoder
                .set_input_complete(self.pos.read_pos > last_packet, release_through);
            loop {
                let t = Instant::now();
                let next = self.next_frame(req)?;
                self.work.times.receive += t.elapsed();
                let Some(f) = next else { break };
                // Released pictures can come out ahead of display order: the furthest frame given out counts.
                self.pos.last_out = Some(self.pos.last_out.map_or(f, |l| l.max(f)));
                if frames.binary_search(&f).is_ok() {
                    self.check_size(f)?;
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
            self.feed_one(req, last_frame, plan.as_ref())?;
        }
    }

    /// Reads the next packet and sends it to the decoder (or the end of the stream), unless it is one that is never
    /// decoded: a non-reference picture before `last_frame` that no slot wants, or a RASL picture of the keyframe
    /// decoding started from; where `plan` says so, a skip picture goes in its place.
    fn feed_one(
        &mut self,
        req: &Request<'_>,
        last_frame: usize,
        plan: Option<&GroupPlan>,
    ) -> Result<()> {
        let t = Instant::now();
        let packet = next_packet(&mut self.demuxer, req.index, &mut self.pos)?;
        self.work.times.demux += t.elapsed();
        let t = Instant::now();
        match packet {
            Some(p) => {
                let at = self.pos.read_pos - 1;
                if p.is_key() && self.pos.decoding_from != Some(at) {
                    self.pos.skip_rasl = false;
                }
                // The RASL pictures of the CRA picture decoding started from refer to pictures before it: no
                // decoder can make them, libavcodec drops them, and NVDEC's parser drops them too but then
                // hands out the CRA picture with a RASL picture's time stamp. So they are never sent.
                let skipped_rasl = self.pos.skip_rasl
                    && req.skip_codec.is_some_and(|(c, framing)| {
                        c == NalCodec::Hevc && nal::is_hevc_rasl(framing, p.data())
                    });
                // A non-reference picture before the last wanted frame that nobody wants is never decoded
                // (frames after it are kept, so a later request that continues from here still finds them).
                // Not where frames are numbered by counting the decoder's output: every picture must come out.
                let shows = req.index.packets()[at].frame;
                let droppable = !req.index.counted_order()
                    && req.skip_codec.is_some_and(|(c, framing)| {
                        shows.is_some_and(|f| {
                            (f as usize) < last_frame && !req.slots.contains_key(&(f as usize))
                        }) && nal::is_disposable(c, framing, p.data())
                    });
                if droppable || skipped_rasl {
                    self.work.packets_dropped += 1;
                } else if let Some(stand_in) = plan
                    .filter(|plan| plan.substitutes(at))
                    .and_then(|_| substitute(req.index.references()?, req.skip_codec?.1, &p))
                {
                    self.decoder.send_packet(&stand_in)?;
                    self.work.packets_substituted += 1;
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
        Ok(())
    }

    /// Fails on a picture whose size differs from the stream's: a change of size mid-stream (a new H.264/HEVC
    /// sequence header, concatenated streams) is not decoded; ffmpeg scales such pictures to the first size.
    fn check_size(&self, frame: usize) -> Result<()> {
        let info = self.demuxer.info();
        match self.decoder.current_size() {
            Some((w, h)) if (w, h) != (info.width, info.height) => Err(Error::Unsupported(format!(
                "{}: frame {frame} is {w}x{h} but the stream is {}x{}: a change of picture size mid-stream is \
                 not decoded (ffmpeg would scale it to the first size); split the file where the size changes \
                 (ffmpeg -i IN -c copy -f segment ...) or re-encode it at one size \
                 (ffmpeg -i IN -vf scale={}:{} OUT.mp4)",
                self.demuxer.source().name(),
                info.width,
                info.height,
                info.width,
                info.height
            ))),
            _ => Ok(()),
        }
    }

    /// The frame index of the decoder's next picture (`None` when it needs more input or is drained); pictures
    /// whose time stamp is not in the index are skipped.
    fn next_frame(&mut self, req: &Request<'_>) -> Result<Option<usize>> {
        while let Some(ts) = self.decoder.receive()? {
            // Time stamps the index made itself (from picture types) are not the decoder's: count instead.
            let ts = ts.filter(|_| !req.index.counted_order());
            let frame = match ts {
                // Where frames share a stamp (decode segments), the one after the last shown is meant.
                Some(pts) => req.index.frame_of_pts_from(
                    pts,
                    self.pos.last_out.map_or_else(
                        || {
                            self.pos
                                .decoding_from
                                .map_or(0, |p| req.index.segment_first_frame_of_packet(p))
                        },
                        |l| l + 1,
                    ),
                ),
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
        // A stream that begins inside a group of pictures is decoded from its first packet as a new decoder
        // would (the ffmpeg CLI's pictures there come from a decoder that has seen nothing before).
        if start == 0 && index.starts_mid_group() {
            self.decoder.reset()?;
        } else {
            self.decoder.flush();
        }
        self.pos.decoding_from = Some(start);
        // The first frame decoding from here can show: the first of the packet's decode segment (counting from the
        // frame of the keyframe itself is right for the codecs numbered by counting, which do not reorder and whose
        // edit-list pre-roll pictures the decoder drops).
        self.pos.count_from = Some(
            index.packets()[start..]
                .iter()
                .find_map(|p| p.frame)
                .map_or(index.segment_first_frame_of_packet(start), |f| f as usize)
                .min(index.len() - 1),
        );
        self.pos.last_out = None;
        self.pos.eof_sent = false;
        self.pos.skip_rasl = true;
        Ok(())
    }

    /// Seeks to at or before packet `start` and finds out where the demuxer landed.
    fn seek_near(&mut self, index: &FrameIndex, start: usize) -> Result<()> {
        let entry = index.packets()[start];
        self.pos.pending = None;
        if index.segment_count() > 1 {
            // Several decode segments (an edit list that replays media): packets of different segments can carry
            // the same time stamps, so neither a seek by time stamp nor `locate` can be trusted. Read from the
            // start instead (such files are rare and demuxing is cheap).
            self.demuxer.rewind()?;
            self.pos.read_pos = 0;
            return Ok(());
        }
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

    /// Decodes `groups` (in decode order) into `out`'s slots. Host slots of a request for several frames go
    /// through a writer thread where the decoder hands its pictures out ([`FrameDecoder::writes_off_thread`]).
    pub(crate) fn decode_groups(
        &mut self,
        req: &Request<'_>,
        groups: &[(usize, Vec<usize>)],
        out: &mut Output<'_>,
    ) -> Result<()> {
        if req.slots.len() > 1 && self.decoder.writes_off_thread() {
            if let Some(slots) = out.host_slots() {
                let (writing, result) = host_writer::with_writer(req.color, slots, |detached| {
                    self.decode_groups_in_turn(req, groups, &mut Output::Detached(detached))
                });
                self.work.times.write += writing;
                return result;
            }
        }
        self.decode_groups_in_turn(req, groups, out)
    }

    /// Decodes `groups` (in decode order) one after the other; each group's slots are complete before the next
    /// group starts (the decoder's writes still in flight are waited for, also after an error), except slots
    /// handed to a writer thread, which are complete when [`Lane::decode_groups`] returns.
    fn decode_groups_in_turn(
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
            let decoded = self.decode_group(req, *start, frames, flush_after, out);
            let t = Instant::now();
            let finished = self.decoder.finish_writes();
            self.work.times.write += t.elapsed();
            decoded.and(finished)?;
        }
        Ok(())
    }
}

/// The NAL syntax to look into for dropping unneeded non-reference pictures (H.264 and HEVC; Annex-B on NVDEC,
/// the container's framing on the CPU).
pub(crate) fn skip_codec(backend: Backend, demuxer: &Demuxer) -> Option<(NalCodec, NalFraming)> {
    let codec = match demuxer.info().codec.as_str() {
        "h264" => NalCodec::H264,
        "hevc" => NalCodec::Hevc,
        _ => return None,
    };
    let framing = match backend {
        Backend::Nvdec(_) => NalFraming::AnnexB,
        Backend::Cpu | Backend::Auto | Backend::AutoOn(_) => {
            NalFraming::from_extradata(codec, &demuxer.extradata())
        }
    };
    Some((codec, framing))
}

/// Copies the slot each frame was decoded into (the first of its slots) into its other slots; a slot is `len`
/// elements of `buf`.
pub(crate) fn copy_duplicate_slots<T: Copy>(buf: &mut [T], slots: &Slots, len: usize) {
    for dests in slots.values() {
        let first = dests[0];
        for &d in &dests[1..] {
            buf.copy_within(first * len..(first + 1) * len, d * len);
        }
    }
}

/// `items` cut into `n` contiguous runs whose lengths differ by at most one (fewer when there are fewer items).
pub(crate) fn split_even<T>(items: &[T], n: usize) -> Vec<&[T]> {
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

/// The decode-order position (at or before `limit`) of packet `p`, found by its time stamps.
fn locate(index: &FrameIndex, p: &Packet, limit: usize) -> Option<usize> {
    let packets = index.packets();
    let range = (0..=limit.min(packets.len().saturating_sub(1))).rev();
    if index.poc_order() {
        // The container's pts identify a packet (packets without one are not recognised).
        let pts = p.pts()?;
        return range.into_iter().find(|&i| packets[i].pts == pts);
    }
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
    let (ts, expected) = if index.poc_order() {
        (
            packet.pts(),
            index.packets().get(pos.read_pos).map(|e| e.pts),
        )
    } else if index.counted_order() {
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
