//! Which pictures an H.264 picture may predict from: a model of the decoded picture buffer (ITU-T H.264 8.2.4 and
//! 8.2.5) run over a stream's slice headers in decode order, with no decoding.
//!
//! For every picture it gives the pictures its reference lists hold (every entry a slice's active lists reach,
//! after list modification: a superset of what its macroblocks use), whether it is a reference picture, and at
//! which picture it stops being one. A sampler that wants a few frames of a long group of pictures then knows
//! which reference pictures no wanted frame depends on: those need not be decoded (see
//! [`super::skip_picture`]).
//!
//! Frame pictures only, order count types 0 and 2, short-term references only. Anything outside that (a field
//! picture, order count type 1, a header that does not parse, a long-term reference (no encoder the tests can run
//! writes one), `memory_management_control_operation` 5, a buffer that overflows, a gap in `frame_num` where the
//! stream does not allow one) makes the state unknown until the next IDR picture: those
//! pictures are reported as [`PictureRefs::Unknown`], which callers treat as "depends on everything before".

use serde::{Deserialize, Serialize};

use super::poc::DisplayKey;
use super::slice_header::{Marking, Mmco, ParamSets, RefLists, SliceHeader, SliceType};

/// Flags of a picture in [`RefGraph`].
const KNOWN: u8 = 1;
const REFERENCE: u8 = 2;
const SUBSTITUTABLE: u8 = 4;
/// `live_until` of a picture still a reference at the end of the stream (or when the model lost track).
const FOREVER: u32 = u32::MAX;

/// The reference structure of a whole stream, per packet in decode order (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct RefGraph {
    /// Per packet: (end of its references in `refs`, the packet whose reference marking ends it as a reference
    /// (`u32::MAX`: never, or not known), flags).
    pictures: Vec<(u32, u32, u8)>,
    /// Packets referenced, per picture one after the other.
    refs: Vec<u32>,
    /// The stream's parameter sets (the same throughout: a stream that redefines one has no graph).
    sets: ParamSets,
    /// A picture parameter set id the stream never uses (for substitute pictures).
    free_pps_id: Option<u32>,
}

/// What the graph knows of one picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PictureRefs<'a> {
    /// Outside the model: it may depend on any earlier picture.
    Unknown,
    Known {
        /// Packets (decode order) its reference lists hold.
        refs: &'a [u32],
        /// Whether other pictures may refer to it (`nal_ref_idc` != 0, or a packet that holds no slice).
        reference: bool,
        /// The last packet that may refer to it: its reference marking ends with that packet's decoding.
        /// `None` while it is still a reference at the end of the stream, or where the model lost track.
        live_until: Option<usize>,
        /// A reference picture that a skip picture with its reference marking can stand in for.
        substitutable: bool,
    },
}

impl RefGraph {
    /// What is known of the picture of `packet`.
    pub(crate) fn picture(&self, packet: usize) -> PictureRefs<'_> {
        let Some(&(end, until, flags)) = self.pictures.get(packet) else {
            return PictureRefs::Unknown;
        };
        if flags & KNOWN == 0 {
            return PictureRefs::Unknown;
        }
        let start = packet
            .checked_sub(1)
            .map_or(0, |p| self.pictures[p].0 as usize);
        PictureRefs::Known {
            refs: &self.refs[start..end as usize],
            reference: flags & REFERENCE != 0,
            live_until: (until != FOREVER).then_some(until as usize),
            substitutable: flags & SUBSTITUTABLE != 0 && self.free_pps_id.is_some(),
        }
    }

    /// The stream's parameter sets.
    pub(crate) fn param_sets(&self) -> &ParamSets {
        &self.sets
    }

    /// A picture parameter set id the stream never uses.
    pub(crate) fn free_pps_id(&self) -> Option<u32> {
        self.free_pps_id
    }

    /// Packets in the graph.
    pub(crate) fn len(&self) -> usize {
        self.pictures.len()
    }

    /// Whether the graph is one this model could have made for a stream of `packets` packets (a cache entry is
    /// read back from disk): reference runs in order, every reference earlier than its picture, parameter sets
    /// within the syntax's limits.
    pub(crate) fn is_consistent(&self, packets: usize) -> bool {
        let mut start = 0u32;
        self.pictures.len() == packets
            && self.pictures.iter().enumerate().all(|(p, &(end, _, _))| {
                let ok = end >= start
                    && (end as usize) <= self.refs.len()
                    && self.refs[start as usize..end as usize]
                        .iter()
                        .all(|&r| (r as usize) < p);
                start = end;
                ok
            })
            && self.sets.sps.values().all(|s| {
                (4..=16).contains(&s.frame_num_bits)
                    && s.poc_lsb_bits <= 16
                    && s.max_num_ref_frames <= 16
            })
            && self.free_pps_id.is_none_or(|id| id <= 255)
    }
}

/// A reference frame in the model's buffer.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// Its packet; `None` for a frame the decoder infers for a gap in `frame_num`.
    packet: Option<u32>,
    frame_num: u32,
    /// Picture order count (`None` for inferred frames).
    poc: Option<i64>,
}

/// Builds a [`RefGraph`] from the pictures of a stream, one packet at a time in decode order.
#[derive(Default)]
pub(crate) struct RefModel {
    dpb: Vec<Entry>,
    /// The buffer is known (from the last IDR picture on, while nothing outside the model came).
    known: bool,
    prev_ref_frame_num: u32,
    pictures: Vec<(u32, u32, u8)>,
    refs: Vec<u32>,
}

/// `FrameNumWrap` of a frame with `frame_num` while `current` is decoded.
fn wrap(frame_num: u32, current: u32, max: u32) -> i64 {
    if frame_num > current {
        i64::from(frame_num) - i64::from(max)
    } else {
        i64::from(frame_num)
    }
}

impl RefModel {
    /// Takes the next packet: its slice headers (`None` when one did not parse; empty when it holds no slice)
    /// and its display key.
    pub(crate) fn push(
        &mut self,
        sets: &ParamSets,
        slices: Option<&[SliceHeader]>,
        key: Option<DisplayKey>,
    ) {
        let at = self.pictures.len() as u32;
        match slices.map(|s| self.step(at, sets, s, key)) {
            Some(Some((refs, reference, substitutable))) => {
                self.refs.extend(refs);
                let flags = KNOWN
                    | if reference { REFERENCE } else { 0 }
                    | if substitutable { SUBSTITUTABLE } else { 0 };
                self.pictures.push((self.refs.len() as u32, FOREVER, flags));
            }
            _ => {
                // Out of the model: what the buffer holds is no longer known (its pictures keep "forever").
                self.known = false;
                self.dpb.clear();
                self.pictures.push((self.refs.len() as u32, FOREVER, 0));
            }
        }
    }

    /// The graph of the pictures taken; `None` where the stream redefines a parameter set.
    pub(crate) fn finish(self, sets: &ParamSets) -> Option<RefGraph> {
        if sets.redefined {
            return None;
        }
        Some(RefGraph {
            pictures: self.pictures,
            refs: self.refs,
            free_pps_id: (0..=255).find(|id| !sets.pps.contains_key(id)),
            sets: sets.clone(),
        })
    }

    /// Ends `dpb[k]` as a reference with the marking of packet `at`.
    fn forget(&mut self, k: usize, at: u32) {
        let e = self.dpb.remove(k);
        if let Some(p) = e.packet {
            self.pictures[p as usize].1 = at;
        }
    }

    /// One picture: `(referenced packets, reference, substitutable)`, or `None` where it leaves the model.
    fn step(
        &mut self,
        at: u32,
        sets: &ParamSets,
        slices: &[SliceHeader],
        key: Option<DisplayKey>,
    ) -> Option<(Vec<u32>, bool, bool)> {
        let Some(first) = slices.first() else {
            // No slice (a packet of other NAL units): nothing refers to it, but it is never left out.
            return Some((Vec::new(), true, false));
        };
        let poc = key?.poc;
        if first.idr {
            for k in (0..self.dpb.len()).rev() {
                self.forget(k, at);
            }
            self.known = true;
        }
        if !self.known {
            return None;
        }
        let sps = sets.sps.get(&sets.pps.get(&first.pps_id)?.sps_id)?;
        let max = 1u32 << sps.frame_num_bits;
        let window = sps.max_num_ref_frames.max(1) as usize;
        if slices.iter().any(|s| {
            s.frame_num != first.frame_num
                || (s.nal_ref_idc == 0) != (first.nal_ref_idc == 0)
                || s.idr != first.idr
                || s.refs.is_none()
        }) {
            return None;
        }
        let cur = first.frame_num;
        if !first.idr
            && cur != self.prev_ref_frame_num
            && cur != (self.prev_ref_frame_num + 1) % max
        {
            // A gap in frame_num: the decoder infers the missing frames (each through the sliding window).
            if !sps.gaps_in_frame_num_allowed {
                return None;
            }
            let mut n = (self.prev_ref_frame_num + 1) % max;
            while n != cur {
                self.sliding_window(at, n, max, window);
                self.dpb.push(Entry {
                    packet: None,
                    frame_num: n,
                    poc: None,
                });
                self.prev_ref_frame_num = n;
                n = (n + 1) % max;
            }
        }
        let mut refs = Vec::new();
        for s in slices {
            let (lists, _) = s.refs.as_ref()?;
            let used: &[usize] = match s.slice_type {
                SliceType::I | SliceType::Si => &[],
                SliceType::P | SliceType::Sp => &[0],
                SliceType::B => &[0, 1],
            };
            for &list in used {
                for k in self
                    .list(s.slice_type, list, lists, cur, max, poc)?
                    .into_iter()
                    .flatten()
                {
                    // An inferred frame in a list: nothing a conforming stream predicts from.
                    refs.push(self.dpb[k].packet?);
                }
            }
        }
        refs.sort_unstable();
        refs.dedup();
        let reference = first.nal_ref_idc != 0;
        let substitutable = reference
            && !first.idr
            && !self.dpb.is_empty()
            && sps.progressive
            && !sps.separate_colour_plane;
        if reference {
            let marking = first.refs.as_ref()?.1.as_ref()?;
            if slices
                .iter()
                .any(|s| s.refs.as_ref().and_then(|r| r.1.as_ref()) != Some(marking))
            {
                return None;
            }
            match marking {
                Marking::Idr { long_term: true } => return None,
                Marking::Idr { long_term: false } => {}
                Marking::SlidingWindow => self.sliding_window(at, cur, max, window),
                Marking::Adaptive(ops) => {
                    for op in ops {
                        self.mmco(at, *op, cur, max)?;
                    }
                }
            }
            self.dpb.push(Entry {
                packet: Some(at),
                frame_num: cur,
                poc: Some(poc),
            });
            if self.dpb.len() > window {
                return None;
            }
            self.prev_ref_frame_num = cur;
        }
        Some((refs, reference, substitutable))
    }

    /// The sliding window (8.2.5.3) before frame `current` enters the buffer.
    fn sliding_window(&mut self, at: u32, current: u32, max: u32, window: usize) {
        if self.dpb.len() >= window {
            let oldest =
                (0..self.dpb.len()).min_by_key(|&k| wrap(self.dpb[k].frame_num, current, max));
            if let Some(k) = oldest {
                self.forget(k, at);
            }
        }
    }

    /// The short-term frame whose `PicNum` is `pic_num`.
    fn short_term(&self, pic_num: i64, current: u32, max: u32) -> Option<usize> {
        (0..self.dpb.len()).find(|&k| wrap(self.dpb[k].frame_num, current, max) == pic_num)
    }

    /// Applies one operation (8.2.5.4); `None` for those outside the model (long-term references, 5).
    fn mmco(&mut self, at: u32, op: Mmco, current: u32, max: u32) -> Option<()> {
        match op {
            Mmco::ForgetShort { difference_minus1 } => {
                let pic_num = i64::from(current) - (i64::from(difference_minus1) + 1);
                let k = self.short_term(pic_num, current, max)?;
                self.forget(k, at);
                Some(())
            }
            // With no long-term reference in the buffer, a new maximum index changes nothing.
            Mmco::MaxLongTermIdx { .. } => Some(()),
            Mmco::ForgetLong { .. }
            | Mmco::ShortToLong { .. }
            | Mmco::CurrentToLong { .. }
            | Mmco::ForgetAll => None,
        }
    }

    /// The initial reference list `list` of a slice (8.2.4.2): buffer positions.
    fn initial_list(
        &self,
        slice_type: SliceType,
        list: usize,
        current: u32,
        max: u32,
        poc: i64,
    ) -> Option<Vec<usize>> {
        let mut short: Vec<usize> = (0..self.dpb.len()).collect();
        if slice_type != SliceType::B {
            short.sort_by_key(|&k| std::cmp::Reverse(wrap(self.dpb[k].frame_num, current, max)));
            return Some(short);
        }
        // By order count: earlier pictures nearest first, then later ones (list 1 the other way round).
        let pocs: Vec<(usize, i64)> = short
            .iter()
            .map(|&k| Some((k, self.dpb[k].poc?)))
            .collect::<Option<_>>()?;
        let mut before: Vec<(usize, i64)> = pocs.iter().copied().filter(|p| p.1 < poc).collect();
        let mut after: Vec<(usize, i64)> = pocs.iter().copied().filter(|p| p.1 > poc).collect();
        before.sort_by_key(|p| std::cmp::Reverse(p.1));
        after.sort_by_key(|p| p.1);
        let (a, b) = if list == 0 {
            (before, after)
        } else {
            (after, before)
        };
        Some(a.into_iter().chain(b).map(|p| p.0).collect())
    }

    /// Reference list `list` of a slice (8.2.4.2 and 8.2.4.3): buffer positions, `None` for "no reference
    /// picture" entries.
    fn list(
        &self,
        slice_type: SliceType,
        list: usize,
        lists: &RefLists,
        current: u32,
        max: u32,
        poc: i64,
    ) -> Option<Vec<Option<usize>>> {
        let mut init = self.initial_list(slice_type, list, current, max, poc)?;
        if slice_type == SliceType::B
            && list == 1
            && init.len() > 1
            && self.initial_list(slice_type, 0, current, max, poc)? == init
        {
            init.swap(0, 1);
        }
        let active = lists.active[list] as usize;
        let mut out: Vec<Option<usize>> = init.into_iter().take(active).map(Some).collect();
        out.resize(active, None);
        // Modification: each named picture moves to the next position, its later copy is removed.
        let mut pred = i64::from(current);
        let max64 = i64::from(max);
        for (ref_idx, &(idc, value)) in lists.modifications[list].iter().enumerate() {
            let pic = match idc {
                0 | 1 => {
                    let abs = i64::from(value) + 1;
                    if abs > max64 {
                        return None;
                    }
                    let no_wrap = if idc == 0 {
                        (pred - abs).rem_euclid(max64)
                    } else {
                        (pred + abs).rem_euclid(max64)
                    };
                    pred = no_wrap;
                    let pic_num = if no_wrap > i64::from(current) {
                        no_wrap - max64
                    } else {
                        no_wrap
                    };
                    self.short_term(pic_num, current, max)?
                }
                // A long-term picture: none is ever in the modelled buffer.
                _ => return None,
            };
            if ref_idx >= active {
                return None;
            }
            out.insert(ref_idx, Some(pic));
            let mut k = ref_idx + 1;
            while k < out.len() {
                if out[k] == Some(pic) {
                    out.remove(k);
                } else {
                    k += 1;
                }
            }
            out.truncate(active);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitstream::slice_header::Pps;
    use crate::bitstream::sps::Sps;

    /// Parameter sets: SPS 0 (4-bit frame_num, `refs` reference frames), PPS 0.
    fn sets(refs: u32) -> ParamSets {
        let mut sets = ParamSets::default();
        sets.sps.insert(
            0,
            Sps {
                profile: 100,
                level: 30,
                chroma_format_idc: 1,
                separate_colour_plane: false,
                bit_depth_luma: 8,
                bit_depth_chroma: 8,
                width: 64,
                height: 64,
                progressive: true,
                sample_aspect_ratio: None,
                full_range: None,
                colour: None,
                chroma_location: None,
                reorder_frames: None,
                sps_id: 0,
                frame_num_bits: 4,
                poc_type: 0,
                poc_lsb_bits: 8,
                max_num_ref_frames: refs,
                gaps_in_frame_num_allowed: false,
                frame_size_mbs: 16,
            },
        );
        sets.pps.insert(
            0,
            Pps {
                sps_id: 0,
                cabac: true,
                bottom_field_pic_order_in_frame_present: false,
                slice_groups: 1,
                num_ref_idx_default: [1, 1],
                weighted_pred: false,
                weighted_bipred_idc: 0,
                deblocking_filter_control_present: true,
                redundant_pic_cnt_present: false,
            },
        );
        sets
    }

    /// A slice: type, reference or not, frame_num, modifications of list 0, marking operations (`None`: the
    /// sliding window).
    fn slice(
        slice_type: SliceType,
        reference: bool,
        frame_num: u32,
        l0_mods: &[(u32, u32)],
        ops: Option<Vec<Mmco>>,
    ) -> SliceHeader {
        let idr = slice_type == SliceType::I && frame_num == 0;
        let marking = match (reference, idr, ops) {
            (false, _, _) => None,
            (true, true, _) => Some(Marking::Idr { long_term: false }),
            (true, false, Some(ops)) => Some(Marking::Adaptive(ops)),
            (true, false, None) => Some(Marking::SlidingWindow),
        };
        SliceHeader {
            nal_ref_idc: if reference { 2 } else { 0 },
            idr,
            slice_type,
            pps_id: 0,
            frame_num,
            poc_lsb: 0,
            delta_poc_bottom: 0,
            refs: Some((
                RefLists {
                    active: [1, u32::from(slice_type == SliceType::B)],
                    modifications: [l0_mods.to_vec(), Vec::new()],
                },
                marking,
            )),
        }
    }

    fn run(sets: &ParamSets, pictures: &[(SliceHeader, i64)]) -> RefGraph {
        let mut model = RefModel::default();
        for (s, poc) in pictures {
            let key = DisplayKey {
                period: 1,
                poc: *poc,
            };
            model.push(sets, Some(std::slice::from_ref(s)), Some(key));
        }
        model.finish(sets).unwrap()
    }

    fn known(g: &RefGraph, p: usize) -> (Vec<u32>, bool, Option<usize>) {
        match g.picture(p) {
            PictureRefs::Known {
                refs,
                reference,
                live_until,
                ..
            } => (refs.to_vec(), reference, live_until),
            PictureRefs::Unknown => panic!("picture {p} unknown"),
        }
    }

    #[test]
    fn p_chain_through_a_sliding_window_of_two() {
        let sets = sets(2);
        let g = run(
            &sets,
            &[
                (slice(SliceType::I, true, 0, &[], None), 0),
                (slice(SliceType::P, true, 1, &[], None), 2),
                (slice(SliceType::P, true, 2, &[], None), 4),
                (slice(SliceType::P, true, 3, &[], None), 6),
            ],
        );
        assert_eq!(known(&g, 1), (vec![0], true, Some(3)));
        assert_eq!(known(&g, 2), (vec![1], true, None));
        // The window of two drops the IDR picture when P2 enters.
        assert_eq!(known(&g, 0).2, Some(2));
        assert_eq!(known(&g, 3).0, vec![2]);
        assert_eq!(g.free_pps_id(), Some(1));
    }

    /// x264 `veryfast` order: I0 P3 B1(ref) b2 P6 B4(ref) b5, with the referenced B-picture dropping older ones
    /// by operation and each P-picture choosing the previous P by list modification.
    #[test]
    fn b_pyramid_with_marking_operations_and_list_modification() {
        let sets = sets(4);
        let forget = |d| Mmco::ForgetShort {
            difference_minus1: d,
        };
        let g = run(
            &sets,
            &[
                (slice(SliceType::I, true, 0, &[], None), 0),
                (slice(SliceType::P, true, 1, &[], None), 6),
                (slice(SliceType::B, true, 2, &[], None), 2),
                (slice(SliceType::B, false, 3, &[], None), 4),
                // P(6): frame_num 3; L0 by PicNum is [B1, P3, I0]; modification 0 with abs diff 2 picks PicNum 1.
                (slice(SliceType::P, true, 3, &[(0, 1)], None), 12),
                // B(4): frame_num 4, drops I0 (PicNum 0 = 4 - 4) and B1 (PicNum 2 = 4 - 2).
                (
                    slice(SliceType::B, true, 4, &[], Some(vec![forget(3), forget(1)])),
                    8,
                ),
                (slice(SliceType::B, false, 5, &[], None), 10),
            ],
        );
        // B1 (poc 2): list 0 = nearest earlier = I0, list 1 = nearest later = P3.
        assert_eq!(known(&g, 2).0, vec![0, 1]);
        // b2 (poc 4): B1 and P3.
        assert_eq!(known(&g, 3), (vec![1, 2], false, None));
        // P6 predicts from P3 only, not from B1.
        assert_eq!(known(&g, 4).0, vec![1]);
        // B4 (poc 8): P3 before, P6 after; its operations end I0 and B1.
        assert_eq!(known(&g, 5).0, vec![1, 4]);
        assert_eq!(known(&g, 0).2, Some(5));
        assert_eq!(known(&g, 2).2, Some(5));
        // b5 (poc 10): B4 and P6.
        assert_eq!(known(&g, 6).0, vec![4, 5]);
    }

    #[test]
    fn a_header_outside_the_model_makes_the_state_unknown_until_the_next_idr() {
        let sets = sets(2);
        let mut model = RefModel::default();
        let key = |poc| Some(DisplayKey { period: 1, poc });
        let i0 = slice(SliceType::I, true, 0, &[], None);
        model.push(&sets, Some(std::slice::from_ref(&i0)), key(0));
        model.push(&sets, None, key(2));
        let p = slice(SliceType::P, true, 2, &[], None);
        model.push(&sets, Some(std::slice::from_ref(&p)), key(4));
        model.push(&sets, Some(std::slice::from_ref(&i0)), key(0));
        let g = model.finish(&sets).unwrap();
        assert_eq!(g.picture(1), PictureRefs::Unknown);
        assert_eq!(g.picture(2), PictureRefs::Unknown);
        assert!(matches!(g.picture(3), PictureRefs::Known { .. }));
        // What the lost state held is never taken as ended.
        assert_eq!(known(&g, 0).2, None);
    }

    #[test]
    fn a_long_term_reference_leaves_the_model() {
        let sets = sets(3);
        let g = run(
            &sets,
            &[
                (slice(SliceType::I, true, 0, &[], None), 0),
                (
                    slice(
                        SliceType::P,
                        true,
                        1,
                        &[],
                        Some(vec![Mmco::CurrentToLong {
                            long_term_frame_idx: 0,
                        }]),
                    ),
                    2,
                ),
                (slice(SliceType::P, true, 2, &[], None), 4),
            ],
        );
        assert!(matches!(g.picture(0), PictureRefs::Known { .. }));
        assert_eq!(g.picture(1), PictureRefs::Unknown);
        assert_eq!(g.picture(2), PictureRefs::Unknown);
    }
}
