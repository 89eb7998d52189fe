//! The frame index: one scan of a stream's packets (no decoding) gives the exact frame count, presentation order,
//! the keyframe each frame must be decoded from, and the mapping between frame indices and time. Cached per file.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::bitstream::mpeg12::mpeg12_picture;
use crate::bitstream::mpeg4::{mpeg4_vop, Vop, VopType};
use crate::bitstream::nal::{is_hevc_rasl, units, NalCodec, NalFraming};
use crate::bitstream::poc::{DisplayKey, H264Poc};
use crate::bitstream::recovery::{recovery_frame_cnt, recovery_unit, RecoveryUnit};
use crate::bitstream::references::{RefGraph, RefModel};
use crate::bitstream::sps;
use crate::error::{Error, Result};
use crate::io::demux::Demuxer;
use crate::io::source::Source;

/// One packet of the stream in decode order.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct PacketEntry {
    /// Presentation time stamp (stream time base); the decode time stamp when the container gives no pts.
    pub pts: i64,
    /// Decode time stamp (stream time base); `pts` when the container gives none.
    pub dts: i64,
    /// Whether the container marks it as a random-access point.
    pub key: bool,
    /// The frame (presentation index) this packet shows, `None` for packets whose frame is discarded.
    pub frame: Option<u32>,
}

/// Exact frame-level layout of a video stream.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FrameIndex {
    /// Packets in decode order.
    packets: Vec<PacketEntry>,
    /// Per frame in presentation order: its packet's decode-order position.
    frame_packet: Vec<u32>,
    /// Per frame: the decode-order position of the keyframe packet decoding must start from.
    frame_start: Vec<u32>,
    /// Presentation indices of keyframes.
    keyframes: Vec<u32>,
    /// Stream time base.
    time_base: (i32, i32),
    /// Typical frame duration in time-base ticks.
    frame_duration: i64,
    /// The presentation time stamps were made by the index from picture types (the container has none): decoders
    /// number their output frames by counting from the keyframe they started at, not by time stamp.
    #[serde(default)]
    counted_order: bool,
    /// The presentation order came from H.264 picture order counts (the container left some packets without a
    /// time stamp): packets are recognised by the container's pts where they have one, never by dts (which
    /// FFmpeg fills in differently after a seek).
    #[serde(default)]
    poc_order: bool,
    /// The decode segments after the first (see [`Segment`]); empty for the usual stream of one.
    #[serde(default)]
    segments: Vec<Segment>,
    /// The first frame whose picture size differs from the stream's, with that size (H.264 sequence parameter
    /// sets in keyframe packets; `None` where none differs or the codec is not read).
    #[serde(default)]
    size_change: Option<(u32, u32, u32)>,
    /// H.264: which pictures each picture may predict from (`None` for other codecs, and for streams that
    /// redefine a parameter set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    references: Option<RefGraph>,
    /// The stream's first packet is not a keyframe although later ones are: it begins inside a group of
    /// pictures (a recording started mid-stream, a file cut by bytes).
    #[serde(default)]
    starts_mid_group: bool,
}

/// A decode segment: from a keyframe at which the time stamps go back (below those of packets already read) to
/// the next such keyframe. The MP4/MOV demuxer makes one per edit of a list of several edits (each edit's
/// pre-roll is read again with time stamps that overlap the previous edit's), and concatenated streams whose
/// clocks restart make them too. Decoders show segment after segment, so frames are in presentation order
/// within a segment and in segment order across them: what `ffmpeg -fps_mode passthrough` outputs.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Segment {
    /// Decode-order position of its first packet (a keyframe).
    first_packet: u32,
    /// Its first frame (presentation index).
    first_frame: u32,
    /// Ticks added to its time stamps to make presentation times increase across segments (0 where they do).
    shift: i64,
}

impl FrameIndex {
    /// Scans `source` (reading packets only) and builds its index.
    pub fn scan(source: &Source) -> Result<Self> {
        let mut demuxer = Demuxer::open(source.clone())?;
        Self::scan_demuxer(&mut demuxer)
    }

    /// Scans the remaining packets of `demuxer` (normally freshly opened) and builds the index.
    pub fn scan_demuxer(demuxer: &mut Demuxer) -> Result<Self> {
        let time_base = demuxer.info().time_base;
        let mpeg4 = demuxer.parameters().id() == ffmpeg_next::codec::Id::MPEG4;
        let mpeg12 = matches!(
            demuxer.parameters().id(),
            ffmpeg_next::codec::Id::MPEG1VIDEO | ffmpeg_next::codec::Id::MPEG2VIDEO
        );
        // HEVC: the RASL pictures of the first keyframe (a stream cut at a CRA, or cut before one) cannot be
        // decoded, and decoders drop them (libavcodec: those of the first CRA it decodes); they are not frames.
        // Pictures before that keyframe stay frames: libavcodec shows them, decoded against missing references,
        // when the parameter sets are known (an MPEG-TS's extradata carries them).
        let hevc_framing = (demuxer.parameters().id() == ffmpeg_next::codec::Id::HEVC)
            .then(|| NalFraming::from_extradata(NalCodec::Hevc, &demuxer.extradata()));
        let mut keys_seen = 0;
        // H.264: sequence parameter sets carried in keyframe packets, for a change of picture size.
        let h264_framing = (demuxer.parameters().id() == ffmpeg_next::codec::Id::H264)
            .then(|| NalFraming::from_extradata(NalCodec::H264, &demuxer.extradata()));
        let size = (demuxer.info().width, demuxer.info().height);
        let mut resized_at: Option<(usize, u32, u32)> = None;
        let mut raw: Vec<RawPacket> = Vec::new();
        // MPEG-4 Part 2 and MPEG-1/2 picture types, read only where the container might lack presentation time
        // stamps.
        let mut vops: Vec<Option<Vop>> = Vec::new();
        // H.264 picture order counts, to find the display order where the container lacks presentation time
        // stamps, and the reference structure (both from the slice headers of each packet: a few bytes).
        let mut h264_poc =
            h264_framing.map(|f| (f, H264Poc::new(&demuxer.extradata()), RefModel::default()));
        let mut pocs: Vec<Option<DisplayKey>> = Vec::new();
        // H.264 recovery points (intra refresh): what each access unit's slice headers say, and the recovery point
        // SEI message of keyframe packets.
        let mut recovery_units: Vec<Option<RecoveryUnit>> = Vec::new();
        while let Some(p) = demuxer.read_packet()? {
            keys_seen += usize::from(p.is_key());
            let skipped_leading = keys_seen == 1
                && !raw.is_empty()
                && hevc_framing.is_some_and(|f| is_hevc_rasl(f, p.data()));
            if let (Some(f), true, None) = (h264_framing, p.is_key(), resized_at) {
                resized_at = units(f, p.data())
                    .into_iter()
                    .filter_map(sps::h264::parse_nal)
                    .find(|s| (s.width, s.height) != size)
                    .map(|s| (raw.len(), s.width, s.height));
            }
            raw.push((
                p.pts(),
                p.dts(),
                p.is_key(),
                p.is_discard() || skipped_leading,
                p.duration(),
            ));
            if mpeg4 {
                vops.push(mpeg4_vop(p.data()));
            } else if mpeg12 {
                vops.push(mpeg12_picture(p.data()));
            }
            if let Some((framing, poc, model)) = h264_poc.as_mut() {
                let (key, slices) = poc.picture(*framing, p.data());
                pocs.push(key);
                let sets = poc.param_sets();
                let frame_num_bits = slices
                    .as_ref()
                    .and_then(|s| s.first())
                    .and_then(|s| sets.pps.get(&s.pps_id))
                    .and_then(|pps| sets.sps.get(&pps.sps_id))
                    .map(|sps| sps.frame_num_bits);
                let recovery_cnt = p
                    .is_key()
                    .then(|| recovery_frame_cnt(*framing, p.data()))
                    .flatten();
                recovery_units.push(
                    slices
                        .as_deref()
                        .zip(frame_num_bits)
                        .and_then(|(s, bits)| RecoveryUnit::new(s, bits, recovery_cnt)),
                );
                model.push(sets, slices.as_deref(), key);
            }
        }
        let name = demuxer.source().name();
        // The first packet the container flags as a keyframe; a later one than the first means the stream begins
        // inside a group of pictures.
        let first_key = raw.iter().position(|r| r.2);
        let starts_mid_group = first_key.is_some_and(|k| k > 0);
        // An H.264 stream cut in the middle of a keyframe group (an MPEG-TS recording that begins mid-stream)
        // starts with pictures whose references are missing. libavcodec shows no picture before the first keyframe
        // (or recovery point), and neither does the ffmpeg CLI, so those pictures are not frames: they are marked
        // like an edit list's pre-roll, sent where decoding starts at the stream's beginning and dropped. (MPEG-1/2
        // below; HEVC decoders show such pictures, decoded against missing references, when they have parameter
        // sets: HEVC streams keep every picture.)
        if let Some(first_key) = first_key.filter(|_| h264_framing.is_some()) {
            for r in &mut raw[..first_key] {
                r.3 = true;
            }
        }
        // Intra-refresh streams: where decoding from each keyframe packet gives whole pictures again (the packet
        // itself for IDR pictures and keyframes without a recovery point SEI message). `None` where no keyframe
        // has a recovery period.
        let recovery = recovery_packets(&raw, &recovery_units);
        // A stream that begins at a recovery point (a capture or cut of an intra-refresh stream): libavcodec shows
        // no picture before the recovery picture in display order, so those are not frames either.
        if let (Some(first_key), Some(recovery)) = (first_key, &recovery) {
            mark_before_recovery(&mut raw, first_key, recovery[first_key]);
        }
        // Packets without a presentation time stamp in a stream that reorders frames (B-frames in AVI, MPEG
        // program streams, laced Matroska blocks): decode order is not display order, and the container does not
        // say what is. The bitstream does: MPEG-4 Part 2 picture types (the XviD / DivX AVIs of many data sets),
        // MPEG-1/2 picture types (.mpg, DVD .vob) and H.264 picture order counts give the order back; elsewhere
        // frame `i` could not be found, so the stream is refused.
        let untimed = raw.iter().skip(1).filter(|r| r.0.is_none() && !r.3).count();
        let reorders = demuxer.reorder_delay() > 0
            || vops
                .iter()
                .any(|v| matches!(v, Some(Vop::Single(VopType::B))));
        let (mut counted_order, mut poc_order) = (false, false);
        if untimed > 0 && reorders {
            let derived = if mpeg4 || mpeg12 {
                display_order_from_vops(&raw, &vops)
            } else if h264_poc.is_some() {
                poc_order = true;
                display_order_from_poc(&raw, &pocs)
            } else {
                None
            };
            match derived {
                Some(timed) => {
                    raw = timed;
                    counted_order = true;
                }
                None => {
                    return Err(Error::Unsupported(format!(
                        "{name}: {untimed} of {} packets carry no presentation time stamp and the stream has \
                         B-frames (display order differs from decode order), so frames cannot be found by \
                         index; re-encode it (ffmpeg -i IN -c:v libx264 OUT.mp4), or for MPEG-4 Part 2 with \
                         packed B-frames unpack them (ffmpeg -i IN -c copy -bsf:v mpeg4_unpack_bframes OUT.avi)",
                        raw.len()
                    )))
                }
            }
        }
        // The same for MPEG-1/2 cut inside a group of pictures, whose decoder also drops the B-pictures that follow
        // the first keyframe but are shown before it (an open group's leading pictures: their earlier reference is
        // gone). Found from the time stamps, so after display order was derived where the container lacked them.
        if let Some(first_key) = first_key.filter(|_| mpeg12) {
            let key_pts = raw[first_key].0;
            for r in &mut raw[..first_key] {
                r.3 = true;
            }
            for (r, v) in raw.iter_mut().zip(&vops).skip(first_key + 1) {
                if *v != Some(Vop::Single(VopType::B)) {
                    break;
                }
                if let (Some(pts), Some(key)) = (r.0, key_pts) {
                    if pts < key {
                        r.3 = true;
                    }
                }
            }
        }
        let mut index = Self::from_packets_recovering(&raw, time_base, recovery.as_deref())
            .map_err(|reason| Error::Corrupt {
                source_name: name,
                reason,
            })?;
        index.counted_order = counted_order;
        index.poc_order = poc_order;
        index.starts_mid_group = starts_mid_group;
        index.references = h264_poc
            .and_then(|(_, poc, model)| model.finish(poc.param_sets()))
            .filter(|g| g.len() == index.packets.len());
        index.size_change = resized_at.and_then(|(pkt, w, h)| {
            let frame = index.packets[pkt..].iter().find_map(|p| p.frame)?;
            Some((frame, w, h))
        });
        Ok(index)
    }

    /// Builds the index from `(pts, dts, key, discard, duration)` per packet in decode order.
    pub(crate) fn from_packets(
        raw: &[RawPacket],
        time_base: (i32, i32),
    ) -> std::result::Result<Self, String> {
        Self::from_packets_recovering(raw, time_base, None)
    }

    /// [`FrameIndex::from_packets`] for a stream whose keyframe packets may need a recovery period: `recovery[k]`
    /// is, for keyframe packet `k`, the packet from whose picture on decoding from `k` gives whole pictures
    /// ([`NEVER_RECOVERS`] where that never happens); a frame shown before it in display order decodes from an
    /// earlier keyframe.
    fn from_packets_recovering(
        raw: &[RawPacket],
        time_base: (i32, i32),
        recovery: Option<&[u32]>,
    ) -> std::result::Result<Self, String> {
        if raw.is_empty() {
            return Err("the video stream has no packets".into());
        }
        // Fill missing time stamps: pts from dts, dts from pts, and otherwise one duration after the previous one.
        // Time stamps come from the file and may be anything: arithmetic on them saturates instead of overflowing.
        let durations: Vec<i64> = raw.iter().map(|r| r.4).filter(|&d| d > 0).collect();
        let typical = median(&durations).unwrap_or(1).max(1);
        let mut packets = Vec::with_capacity(raw.len());
        let mut last: Option<i64> = None;
        for &(pts, dts, key, discard, _) in raw {
            let pts = pts
                .or(dts)
                .unwrap_or_else(|| last.map_or(0, |l| l.saturating_add(typical)));
            let dts = dts.unwrap_or(pts);
            last = Some(last.map_or(pts, |l: i64| l.max(pts)));
            packets.push(PacketEntry {
                pts,
                dts,
                key,
                frame: if discard { None } else { Some(0) },
            });
        }
        if !packets[0].key {
            // Streams that do not flag keyframes (some raw or AVI files): the first packet must start decoding.
            packets[0].key = true;
        }
        // Decode segments: a keyframe below a time stamp already read starts a new one.
        let mut segment_of = vec![0u32; packets.len()];
        let mut segment_first_packets: Vec<u32> = vec![0];
        let mut max_pts = i64::MIN;
        for (i, p) in packets.iter().enumerate() {
            if i > 0 && p.key && p.pts < max_pts {
                segment_first_packets.push(i as u32);
                max_pts = i64::MIN;
            }
            segment_of[i] = segment_first_packets.len() as u32 - 1;
            max_pts = max_pts.max(p.pts);
        }
        // Presentation order: segment by segment, by pts within one, ties by decode order.
        let mut order: Vec<u32> = (0..packets.len() as u32)
            .filter(|&i| packets[i as usize].frame.is_some())
            .collect();
        order.sort_by_key(|&i| (segment_of[i as usize], packets[i as usize].pts, i));
        if order.is_empty() {
            return Err("every packet is marked discard".into());
        }
        for (frame, &pkt) in order.iter().enumerate() {
            packets[pkt as usize].frame = Some(frame as u32);
        }
        let key_packets: Vec<u32> = (0..packets.len() as u32)
            .filter(|&i| packets[i as usize].key)
            .collect();
        // The start of frame f: the last keyframe of its segment at or before its packet in decode order whose pts
        // is not after the frame's pts (leading pictures of an open GOP need the previous GOP); the segment's first
        // packet otherwise.
        let mut frame_start = Vec::with_capacity(order.len());
        for &pkt in &order {
            let pts = packets[pkt as usize].pts;
            let seg_first = segment_first_packets[segment_of[pkt as usize] as usize];
            let mut k = key_packets.partition_point(|&kp| kp <= pkt);
            let mut start = seg_first;
            while k > 0 {
                k -= 1;
                let kp = key_packets[k];
                if kp < seg_first {
                    break;
                }
                let recovered_from = recovery.map_or(kp, |r| r[kp as usize]);
                if recovered_from != NEVER_RECOVERS && packets[recovered_from as usize].pts <= pts {
                    start = kp;
                    break;
                }
            }
            frame_start.push(start);
        }
        // Segments that show frames, after the first, each shifted (where its stamps do not already start after
        // the previous frames') to one typical packet duration after the latest shifted stamp before it.
        let mut segments: Vec<Segment> = Vec::new();
        let mut latest = i64::MIN;
        for (frame, &pkt) in order.iter().enumerate() {
            let seg = segment_of[pkt as usize];
            let pts = packets[pkt as usize].pts;
            if frame > 0 && segment_of[order[frame - 1] as usize] != seg {
                // A shift that does not fit in 64 bits (stamps spread over more than the i64 range) could not keep
                // times increasing: such stamps are corrupt, not a video.
                let shift = if pts <= latest {
                    latest
                        .checked_add(typical)
                        .and_then(|d| d.checked_sub(pts))
                        .ok_or_else(|| {
                            format!(
                                "time stamps out of range: frame {frame} at {pts} after {latest}"
                            )
                        })?
                } else {
                    0
                };
                segments.push(Segment {
                    first_packet: segment_first_packets[seg as usize],
                    first_frame: frame as u32,
                    shift,
                });
            }
            latest = latest.max(pts.saturating_add(segments.last().map_or(0, |s| s.shift)));
        }
        let keyframes = key_packets
            .iter()
            .filter_map(|&kp| packets[kp as usize].frame)
            .collect::<Vec<_>>();
        let mut keyframes = keyframes;
        keyframes.sort_unstable();
        let shifted = |f: usize| {
            let shift = segments
                .iter()
                .take_while(|s| s.first_frame as usize <= f)
                .last()
                .map_or(0, |s| s.shift);
            packets[order[f] as usize].pts.saturating_add(shift)
        };
        let deltas: Vec<i64> = (1..order.len())
            .map(|f| shifted(f).saturating_sub(shifted(f - 1)))
            .collect();
        let frame_duration = median(
            &deltas
                .iter()
                .copied()
                .filter(|&d| d > 0)
                .collect::<Vec<_>>(),
        )
        .unwrap_or(typical);
        Ok(FrameIndex {
            packets,
            frame_packet: order,
            frame_start,
            keyframes,
            time_base,
            frame_duration,
            counted_order: false,
            poc_order: false,
            segments,
            size_change: None,
            references: None,
            starts_mid_group: false,
        })
    }

    /// Checks what every user of an index relies on, for an index that did not come from a scan (the data set's
    /// disk cache): packets and frames exist, each frame's packet shows that frame, frames are in presentation
    /// order, each decodes from a keyframe packet at or before its own, keyframes are frames, the time base and
    /// frame duration are positive. `Err` says what is wrong.
    pub(crate) fn validate(&self) -> std::result::Result<(), String> {
        let n = self.frame_packet.len();
        if self.packets.is_empty() || n == 0 {
            return Err("no packets or no frames".into());
        }
        if self.frame_start.len() != n || self.packets.len() > u32::MAX as usize {
            return Err("per-frame tables of different lengths".into());
        }
        if self.time_base.0 <= 0 || self.time_base.1 <= 0 || self.frame_duration <= 0 {
            return Err("time base or frame duration not positive".into());
        }
        let shown = self.packets.iter().filter(|p| p.frame.is_some()).count();
        if shown != n {
            return Err(format!("{shown} packets show a frame, {n} frames"));
        }
        for i in 0..n {
            let (pkt, start) = (self.frame_packet[i] as usize, self.frame_start[i] as usize);
            let ok = self
                .packets
                .get(pkt)
                .is_some_and(|p| p.frame == Some(i as u32))
                && start <= pkt
                && self.packets[start].key
                && (i == 0 || self.ticks(i - 1) <= self.ticks(i));
            if !ok {
                return Err(format!("frame {i} is inconsistent"));
            }
        }
        let segments_ok =
            self.segments.iter().all(|s| {
                (s.first_frame as usize) < n && (s.first_packet as usize) < self.packets.len()
            }) && self.segments.windows(2).all(|w| {
                w[0].first_frame < w[1].first_frame && w[0].first_packet < w[1].first_packet
            }) && self.size_change.is_none_or(|(f, _, _)| (f as usize) < n);
        if !segments_ok {
            return Err("decode segments or size change out of range".into());
        }
        if self
            .references
            .as_ref()
            .is_some_and(|g| !g.is_consistent(self.packets.len()))
        {
            return Err("reference structure does not fit the packets".into());
        }
        if !self.keyframes.windows(2).all(|w| w[0] < w[1])
            || self.keyframes.last().is_some_and(|&k| k as usize >= n)
        {
            return Err("keyframes out of order or out of range".into());
        }
        Ok(())
    }

    /// H.264: the stream's reference structure, where the model follows it.
    pub(crate) fn references(&self) -> Option<&RefGraph> {
        self.references.as_ref()
    }

    /// Whether the stream's first packet is not a keyframe although later ones are (it begins inside a group of
    /// pictures).
    pub(crate) fn starts_mid_group(&self) -> bool {
        self.starts_mid_group
    }

    /// Whether frames must be numbered by counting decoder output (see the field's note): the presentation time
    /// stamps in this index were derived from picture types because the container stores none.
    pub fn counted_order(&self) -> bool {
        self.counted_order
    }

    /// Whether the presentation order came from H.264 picture order counts (see the field's note): a packet is
    /// recognised by the container's pts, and packets without one are not checked.
    pub(crate) fn poc_order(&self) -> bool {
        self.poc_order
    }

    /// Number of frames (displayed pictures).
    pub fn len(&self) -> usize {
        self.frame_packet.len()
    }

    /// Whether the stream has no frames (never true for an index that was built).
    pub fn is_empty(&self) -> bool {
        self.frame_packet.is_empty()
    }

    /// Packets in decode order.
    pub fn packets(&self) -> &[PacketEntry] {
        &self.packets
    }

    /// Presentation indices of the keyframes.
    pub fn keyframes(&self) -> &[u32] {
        &self.keyframes
    }

    /// Stream time base.
    pub fn time_base(&self) -> (i32, i32) {
        self.time_base
    }

    /// Presentation time stamp of frame `i` (stream time base).
    pub fn pts(&self, i: usize) -> i64 {
        self.packets[self.frame_packet[i] as usize].pts
    }

    /// The first frame whose presentation time stamp is `pts`, if any (a binary search per decode segment: frames
    /// are in pts order within one).
    pub fn frame_of_pts(&self, pts: i64) -> Option<usize> {
        self.frame_of_pts_from(pts, 0)
    }

    /// The frame whose presentation time stamp is `pts`, preferring the first one at or after frame `floor` where
    /// several frames share it (frames of different decode segments can: see the multi-edit note on
    /// [`FrameIndex::segment_count`]); any frame with that stamp otherwise.
    pub fn frame_of_pts_from(&self, pts: i64, floor: usize) -> Option<usize> {
        // Floor's segment (the last one for a floor past the end) from floor on, the segments after it, those
        // before it, then floor's own before floor.
        let k = self
            .segments
            .partition_point(|s| s.first_frame as usize <= floor);
        let own = self.segment_range(k);
        let lo = if own.contains(&floor) {
            floor
        } else {
            own.start
        };
        self.search_pts(lo..own.end, pts)
            .or_else(|| {
                (k + 1..self.segment_count())
                    .chain(0..k)
                    .find_map(|j| self.search_pts(self.segment_range(j), pts))
            })
            .or_else(|| self.search_pts(own.start..lo, pts))
    }

    /// Binary search for `pts` among frames `range` (sorted by pts).
    fn search_pts(&self, range: std::ops::Range<usize>, pts: i64) -> Option<usize> {
        let (mut lo, mut hi) = (range.start, range.end);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.pts(mid) < pts {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo < range.end && self.pts(lo) == pts).then_some(lo)
    }

    /// The frames of decode segment `k` (0 is the first).
    fn segment_range(&self, k: usize) -> std::ops::Range<usize> {
        let start = match k {
            0 => 0,
            _ => self.segments[k - 1].first_frame as usize,
        };
        let end = self
            .segments
            .get(k)
            .map_or(self.len(), |s| s.first_frame as usize);
        start..end
    }

    /// The first frame whose picture size differs from the stream's, and that size: `(frame, width, height)`.
    /// Read from the H.264 sequence parameter sets of keyframe packets (other codecs: `None`). Decoding such a
    /// frame is an [`Error::Unsupported`] that names it, on every backend.
    pub fn size_change(&self) -> Option<(usize, u32, u32)> {
        self.size_change.map(|(f, w, h)| (f as usize, w, h))
    }

    /// Number of decode segments: 1 for the usual stream. More where a keyframe's time stamp goes back below the
    /// stamps already read: an MP4/MOV edit list of several edits (the demuxer replays each edit's pre-roll with
    /// stamps that overlap the previous edit's) or streams concatenated with restarting clocks. Frames are then in
    /// presentation order within a segment and in segment order across them, as decoders show them; two frames
    /// may share a time stamp, and [`FrameIndex::time_of`] shifts later segments so that times keep increasing.
    pub fn segment_count(&self) -> usize {
        1 + self.segments.len()
    }

    /// The first frame the decode segment of packet `packet` (decode-order position) shows.
    pub fn segment_first_frame_of_packet(&self, packet: usize) -> usize {
        let k = self
            .segments
            .partition_point(|s| s.first_packet as usize <= packet);
        if k == 0 {
            0
        } else {
            self.segments[k - 1].first_frame as usize
        }
    }

    /// Presentation time of frame `i` in ticks: its pts, plus its segment's shift.
    fn ticks(&self, i: usize) -> i64 {
        let k = self
            .segments
            .partition_point(|s| s.first_frame as usize <= i);
        let shift = if k == 0 {
            0
        } else {
            self.segments[k - 1].shift
        };
        self.pts(i).saturating_add(shift)
    }

    /// Decode-order position of frame `i`'s packet.
    pub fn packet_of(&self, i: usize) -> usize {
        self.frame_packet[i] as usize
    }

    /// Decode-order position of the keyframe packet that decoding frame `i` must start from.
    pub fn start_packet_of(&self, i: usize) -> usize {
        self.frame_start[i] as usize
    }

    /// Presentation time of frame `i` in seconds (the pts, shifted in later decode segments so that times keep
    /// increasing: see [`FrameIndex::segment_count`]).
    pub fn time_of(&self, i: usize) -> f64 {
        self.ticks(i) as f64 * self.tick()
    }

    /// Typical frame duration in seconds.
    pub fn frame_duration_s(&self) -> f64 {
        self.frame_duration as f64 * self.tick()
    }

    /// Time of the end of the last frame, in seconds.
    pub fn end_time(&self) -> f64 {
        self.time_of(self.len() - 1) + self.frame_duration_s()
    }

    /// Whether frame durations vary (variable frame rate).
    pub fn is_vfr(&self) -> bool {
        (1..self.len()).any(|i| {
            (self.ticks(i).saturating_sub(self.ticks(i - 1)))
                .saturating_sub(self.frame_duration)
                .saturating_abs()
                > 1
        })
    }

    /// Average frame rate measured from the time stamps.
    pub fn measured_fps(&self) -> f64 {
        if self.len() < 2 {
            return 1.0 / self.frame_duration_s().max(f64::MIN_POSITIVE);
        }
        (self.len() - 1) as f64
            / (self.time_of(self.len() - 1) - self.time_of(0)).max(f64::MIN_POSITIVE)
    }

    /// The frame on screen at `seconds` (presentation time): the last frame whose time is not after it.
    /// Times before the first frame give frame 0; times after the end are out of range.
    pub fn index_from_time(&self, seconds: f64) -> Result<usize> {
        if !seconds.is_finite() || seconds < 0.0 {
            return Err(Error::InvalidArgument(format!("time {seconds} s")));
        }
        if seconds >= self.end_time() {
            return Err(Error::OutOfRange {
                index: (seconds * self.measured_fps()) as i64,
                len: self.len(),
            });
        }
        let eps = self.tick() * 0.5;
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.time_of(mid) <= seconds + eps {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo.saturating_sub(1))
    }

    /// Checks that `i` is a frame index.
    pub fn check(&self, i: i64) -> Result<usize> {
        Error::check_index(i, self.len())
    }

    fn tick(&self) -> f64 {
        f64::from(self.time_base.0) / f64::from(self.time_base.1.max(1))
    }
}

fn median(v: &[i64]) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    Some(s[s.len() / 2])
}

/// One scanned packet: pts, dts, key flag, discard flag, duration.
pub(crate) type RawPacket = (Option<i64>, Option<i64>, bool, bool, i64);

/// In [`FrameIndex::from_packets_recovering`]'s list: decoding from this keyframe never gives whole pictures.
const NEVER_RECOVERS: u32 = u32::MAX;

/// For each packet (H.264, in decode order), the packet from whose picture on decoding that starts at it gives
/// whole pictures (see [`recovery_unit`]): itself except for keyframes with a recovery period. `None` when no
/// keyframe has one (the usual stream), or when the units do not match the packets.
fn recovery_packets(raw: &[RawPacket], units: &[Option<RecoveryUnit>]) -> Option<Vec<u32>> {
    if units.len() != raw.len() || raw.len() >= NEVER_RECOVERS as usize {
        return None;
    }
    let mut any = false;
    // Units looked at over all keyframes: a usual stream needs about one per packet (each keyframe's walk ends
    // within its refresh period); a damaged one gets no more than this.
    let mut budget = raw.len().saturating_mul(16).saturating_add(100_000);
    let recovery = (0..raw.len())
        .map(|i| {
            if !raw[i].2 {
                return i as u32;
            }
            let r = recovery_unit(units, i, &mut budget).map_or(NEVER_RECOVERS, |r| r as u32);
            any |= r != i as u32;
            r
        })
        .collect();
    any.then_some(recovery)
}

/// Marks as not frames the packets that a decoder starting at keyframe packet `first_key` does not show: those
/// before the recovery picture (packet `recovered_from`) in display order, up to the next keyframe after it (or
/// every one from `first_key` on where the stream never recovers).
fn mark_before_recovery(raw: &mut [RawPacket], first_key: usize, recovered_from: u32) {
    if recovered_from == NEVER_RECOVERS {
        for r in &mut raw[first_key..] {
            r.3 = true;
        }
        return;
    }
    let recovered_from = recovered_from as usize;
    let Some(shown_from) = raw.get(recovered_from).and_then(|r| r.0) else {
        return;
    };
    for (i, r) in raw.iter_mut().enumerate().skip(first_key) {
        if i > recovered_from && r.2 {
            break;
        }
        if r.0.is_some_and(|pts| pts < shown_from) {
            r.3 = true;
        }
    }
}

/// Presentation time stamps from MPEG-4 Part 2 picture types, for containers that store decode times only: a
/// B-picture is shown when decoded, an I-, P- or S-picture when the next one of those arrives (or at the end).
/// The stamps are the decode time stamps put in that order. `None` when a packet is not one picture.
fn display_order_from_vops(raw: &[RawPacket], vops: &[Option<Vop>]) -> Option<Vec<RawPacket>> {
    if vops.len() != raw.len() || raw.is_empty() {
        return None;
    }
    let mut display = vec![0usize; raw.len()];
    let mut next = 0;
    let mut held: Option<usize> = None;
    for (i, v) in vops.iter().enumerate() {
        match v {
            Some(Vop::Single(VopType::B)) => {
                display[i] = next;
                next += 1;
            }
            Some(Vop::Single(_)) => {
                if let Some(h) = held.replace(i) {
                    display[h] = next;
                    next += 1;
                }
            }
            Some(Vop::Packed) | None => return None,
        }
    }
    if let Some(h) = held {
        display[h] = next;
    }
    // Decode time stamps, filled where missing, in display order.
    let durations: Vec<i64> = raw.iter().map(|r| r.4).filter(|&d| d > 0).collect();
    let step = median(&durations).unwrap_or(1).max(1);
    let mut dts = Vec::with_capacity(raw.len());
    let mut last: Option<i64> = None;
    for r in raw {
        let d = r.1.or(r.0).unwrap_or_else(|| last.map_or(0, |l| l + step));
        let d = last.map_or(d, |l| d.max(l + 1));
        dts.push(d);
        last = Some(d);
    }
    Some(
        raw.iter()
            .enumerate()
            .map(|(i, r)| (Some(dts[display[i]]), Some(dts[i]), r.2, r.3, r.4))
            .collect(),
    )
}

/// Presentation time stamps for an H.264 stream whose container left some packets without one, from the picture
/// order counts `keys` (one per packet, decode order): the container's stamps are kept, the missing ones are
/// spaced between them by the typical frame step. Only IDR pictures stay keyframes (decoding restarts there and
/// decoders number their output by counting, which needs a picture that nothing before it shows after). `None`
/// when a packet's order count is unknown, the container's stamps contradict the order counts, or there is no
/// room between two stamps for the frames the order counts put there. Decode time stamps are dropped: FFmpeg
/// fills them in for untimed packets from its own guesses, which differ after a seek.
fn display_order_from_poc(
    raw: &[RawPacket],
    keys: &[Option<DisplayKey>],
) -> Option<Vec<RawPacket>> {
    if keys.len() != raw.len() || raw.is_empty() {
        return None;
    }
    let keys: Vec<DisplayKey> = keys.iter().copied().collect::<Option<_>>()?;
    let mut order: Vec<usize> = (0..raw.len()).collect();
    order.sort_by_key(|&i| (keys[i], i));
    // (display position, container pts) of the packets that have one: they must increase in display order.
    let known: Vec<(usize, i64)> = order
        .iter()
        .enumerate()
        .filter_map(|(d, &i)| raw[i].0.map(|p| (d, p)))
        .collect();
    if known.windows(2).any(|w| w[1].1 <= w[0].1) {
        return None;
    }
    let gaps: Vec<i64> = known
        .windows(2)
        .map(|w| w[1].1.saturating_sub(w[0].1) / (w[1].0 - w[0].0) as i64)
        .filter(|&g| g > 0)
        .collect();
    let durations: Vec<i64> = raw.iter().map(|r| r.4).filter(|&d| d > 0).collect();
    let step = median(&gaps)
        .or_else(|| median(&durations))
        .unwrap_or(1)
        .max(1);
    let mut times = vec![0i64; raw.len()];
    let mut next_known = 0;
    for d in 0..raw.len() {
        while next_known < known.len() && known[next_known].0 < d {
            next_known += 1;
        }
        times[d] = match known.get(next_known) {
            Some(&(k, t)) if k == d => t,
            Some(&(k, t)) if d == 0 => t.saturating_sub(step.saturating_mul((k - d) as i64)),
            Some(&(k, t)) => {
                let t = times[d - 1]
                    .saturating_add(step)
                    .min(t.saturating_sub((k - d) as i64));
                if t <= times[d - 1] {
                    return None;
                }
                t
            }
            None if d == 0 => 0,
            None => times[d - 1].saturating_add(step),
        };
    }
    let mut display_pos = vec![0usize; raw.len()];
    for (d, &i) in order.iter().enumerate() {
        display_pos[i] = d;
    }
    Some(
        raw.iter()
            .enumerate()
            .map(|(i, r)| {
                let idr = keys[i].period != if i == 0 { 0 } else { keys[i - 1].period };
                (Some(times[display_pos[i]]), None, r.2 && idr, r.3, r.4)
            })
            .collect(),
    )
}

/// Canonical path, size, modification time and, for a range of the file (a tar shard's member), its offset and
/// length.
type CacheKey = (PathBuf, u64, Option<SystemTime>, Option<(u64, u64)>);

fn cache() -> &'static Mutex<lru::LruCache<CacheKey, Arc<FrameIndex>>> {
    static CACHE: OnceLock<Mutex<lru::LruCache<CacheKey, Arc<FrameIndex>>>> = OnceLock::new();
    CACHE.get_or_init(|| {
        Mutex::new(lru::LruCache::new(
            NonZeroUsize::new(4096).expect("non-zero"),
        ))
    })
}

/// The per-process cache key of a source read from a file: the file's canonical path, size and modification
/// time, and the byte range of a range source.
fn cache_key(source: &Source) -> Option<CacheKey> {
    let (path, range) = source.file()?;
    let meta = std::fs::metadata(path).ok()?;
    Some((
        std::fs::canonicalize(path).ok()?,
        meta.len(),
        meta.modified().ok(),
        range,
    ))
}

/// Puts an index built elsewhere (the data set's on-disk cache, or its scan) into the per-process cache, so that
/// decoders opening the source do not scan it again. The source is given by its key: the canonical `path` of its
/// file, the file's `size` and modification time `modified`, and its byte `range` (as
/// [`crate::data::cache::CacheKey`] holds them). The caller vouches that `index` belongs to the source as it is now.
pub(crate) fn remember_key(
    path: PathBuf,
    size: u64,
    modified: Option<SystemTime>,
    range: Option<(u64, u64)>,
    index: Arc<FrameIndex>,
) {
    if let Ok(mut c) = cache().lock() {
        c.put((path, size, modified, range), index);
    }
}

/// The index of `source`, from the per-process cache when the file is unchanged (same path, size and
/// modification time, and the same range of it), otherwise scanned with `demuxer` (a freshly opened demuxer of
/// the same source, which is rewound afterwards) and cached.
pub(crate) fn index_for(source: &Source, demuxer: &mut Demuxer) -> Result<Arc<FrameIndex>> {
    let key = cache_key(source);
    if let Some(k) = &key {
        if let Some(hit) = cache().lock().ok().and_then(|mut c| c.get(k).cloned()) {
            return Ok(hit);
        }
    }
    let index = Arc::new(FrameIndex::scan_demuxer(demuxer)?);
    demuxer.rewind()?;
    if let (Some(k), Ok(mut c)) = (key, cache().lock()) {
        c.put(k, index.clone());
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pts: i64, dts: i64, key: bool) -> RawPacket {
        (Some(pts), Some(dts), key, false, 1)
    }

    #[test]
    fn extreme_time_stamps_saturate_instead_of_overflowing() {
        // Found by the decode fuzz target (tests/data/fuzz/decode/ivf-pts-overflow.ivf): an IVF file whose frame
        // time stamps jump from near i64::MIN to near i64::MAX overflowed the frame-duration subtraction.
        let raw = [
            (Some(i64::MIN + 1), None, true, false, 1),
            (Some(i64::MAX - 1), None, false, false, 1),
            (None, None, false, false, 0),
        ];
        let index = FrameIndex::from_packets(&raw, (1, 1000)).unwrap();
        assert_eq!(index.len(), 3);
        assert!(index.validate().is_ok());
        assert!(index.is_vfr());
        let _ = (
            index.measured_fps(),
            index.end_time(),
            index.frame_duration_s(),
        );
    }

    #[test]
    fn a_decode_segment_that_cannot_be_shifted_is_an_error() {
        // Found by the decode fuzz target (tests/data/fuzz/decode/vp8-segment-shift-overflow.ivf): three VP8
        // keyframes at 0, about 7.2e18 and about -5.9e18. The third starts a decode segment whose shift (to keep times
        // increasing) does not fit in 64 bits; it was saturated and frame times went backwards.
        let raw = [
            (Some(0), None, true, false, 1),
            (Some(7_161_902_291_911_864_173), None, true, false, 1),
            (Some(-5_930_311_065_365_830_444), None, true, false, 1),
        ];
        let err = FrameIndex::from_packets(&raw, (1, 25)).unwrap_err();
        assert!(err.contains("time stamps out of range"), "{err}");
    }

    #[test]
    fn b_frames_are_put_in_presentation_order() {
        // I0 P3 B1 B2 | I4 P5 in decode order.
        let raw = [
            p(0, -1, true),
            p(3, 0, false),
            p(1, 1, false),
            p(2, 2, false),
            p(4, 3, true),
            p(5, 4, false),
        ];
        let ix = FrameIndex::from_packets(&raw, (1, 30)).unwrap();
        assert_eq!(ix.len(), 6);
        assert_eq!(
            (0..6).map(|i| ix.pts(i)).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4, 5]
        );
        assert_eq!(ix.packet_of(1), 2);
        assert_eq!(ix.start_packet_of(3), 0);
        assert_eq!(ix.start_packet_of(5), 4);
        assert_eq!(ix.keyframes(), &[0, 4]);
    }

    #[test]
    fn open_gop_leading_frames_start_at_previous_keyframe() {
        // I0 P2 B1 | I5 (open GOP) B3 B4 P6: B3/B4 are shown before I5 and reference the previous GOP.
        let raw = [
            p(0, 0, true),
            p(2, 1, false),
            p(1, 2, false),
            p(5, 3, true),
            p(3, 4, false),
            p(4, 5, false),
            p(6, 6, false),
        ];
        let ix = FrameIndex::from_packets(&raw, (1, 30)).unwrap();
        assert_eq!(ix.start_packet_of(3), 0, "B3 needs the first GOP");
        assert_eq!(ix.start_packet_of(5), 3, "I5 starts its own GOP");
        assert_eq!(ix.start_packet_of(6), 3);
    }

    #[test]
    fn discarded_packets_are_not_frames() {
        let raw = [
            (Some(-1), Some(-1), true, true, 1),
            p(0, 0, false),
            p(1, 1, false),
        ];
        let ix = FrameIndex::from_packets(&raw, (1, 30)).unwrap();
        assert_eq!(ix.len(), 2);
        assert_eq!(ix.pts(0), 0);
        assert_eq!(ix.start_packet_of(1), 0);
    }

    #[test]
    fn edits_replayed_with_overlapping_stamps_are_decode_segments() {
        // Edit one: I0 P2 B1 and a discarded tail P4; edit two replays from a discarded keyframe I1 with stamps
        // below those already read: P3 B2. Shown: 0 1 2 | 2 3.
        let d = |pts, dts, key| (Some(pts), Some(dts), key, true, 1);
        let raw = [
            p(0, -1, true),
            p(2, 0, false),
            p(1, 1, false),
            d(4, 2, false),
            d(1, 0, true),
            p(3, 1, false),
            p(2, 2, false),
        ];
        let ix = FrameIndex::from_packets(&raw, (1, 30)).unwrap();
        assert_eq!(ix.segment_count(), 2);
        assert_eq!(
            (0..5).map(|i| ix.pts(i)).collect::<Vec<_>>(),
            vec![0, 1, 2, 2, 3]
        );
        assert_eq!(ix.packet_of(3), 6);
        assert_eq!(
            ix.start_packet_of(3),
            4,
            "the second edit starts at its own keyframe"
        );
        assert_eq!(ix.start_packet_of(2), 0);
        assert_eq!(ix.frame_of_pts(2), Some(2));
        assert_eq!(ix.frame_of_pts_from(2, 3), Some(3));
        assert_eq!(ix.frame_of_pts_from(1, 3), Some(1));
        assert_eq!(ix.segment_first_frame_of_packet(5), 3);
        // Times keep increasing: the second segment is shifted one frame past the first.
        let times: Vec<f64> = (0..5).map(|i| ix.time_of(i) * 30.0).collect();
        assert_eq!(times, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        assert!(!ix.is_vfr());
    }

    #[test]
    fn time_maps_to_index() {
        let raw: Vec<_> = (0..10).map(|i| p(i * 512, i * 512, i % 5 == 0)).collect();
        let ix = FrameIndex::from_packets(&raw, (1, 15360)).unwrap();
        assert_eq!(ix.index_from_time(0.0).unwrap(), 0);
        assert_eq!(ix.index_from_time(512.0 / 15360.0).unwrap(), 1);
        assert_eq!(ix.index_from_time(511.0 / 15360.0).unwrap(), 0);
        assert!(matches!(
            ix.index_from_time(100.0),
            Err(Error::OutOfRange { .. })
        ));
        assert!(ix.index_from_time(-1.0).is_err());
        assert!(!ix.is_vfr());
    }

    #[test]
    fn mpeg4_picture_types_give_the_display_order_back() {
        // Decode order I0 P3 B1 B2 I6 B4 B5 P7 (open GOP: B4 and B5 follow I6 but are shown before it).
        let types = [
            VopType::I,
            VopType::P,
            VopType::B,
            VopType::B,
            VopType::I,
            VopType::B,
            VopType::B,
            VopType::P,
        ];
        let raw: Vec<RawPacket> = (0..8)
            .map(|i| (None, Some(i * 10), i == 0 || i == 4, false, 10))
            .collect();
        let vops: Vec<Option<Vop>> = types.iter().map(|&t| Some(Vop::Single(t))).collect();
        let timed = display_order_from_vops(&raw, &vops).unwrap();
        let pts: Vec<i64> = timed.iter().map(|r| r.0.unwrap()).collect();
        assert_eq!(pts, [0, 30, 10, 20, 60, 40, 50, 70]);
        let ix = FrameIndex::from_packets(&timed, (1, 10)).unwrap();
        // Frame 4 (B4, after I6 in decode order) starts from the first keyframe; frame 6 (I6) from itself.
        assert_eq!(ix.start_packet_of(4), 0);
        assert_eq!(ix.start_packet_of(6), 4);
        let mut packed = vops.clone();
        packed[3] = Some(Vop::Packed);
        assert!(display_order_from_vops(&raw, &packed).is_none());
    }
}
