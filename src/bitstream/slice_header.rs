//! H.264 picture parameter sets and slice headers (ITU-T H.264 7.3.2.2 and 7.3.3), read as far as the decoded
//! picture buffer needs: picture numbering and order count, the active reference list sizes and their
//! modification, and the reference marking.
//!
//! Parameter sets are kept per id as they arrive ([`ParamSets`]); a slice is read against them. Field pictures,
//! slice groups and MVC extensions are outside what is read: their headers give `None`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::nal::{annexb_units, units, NalFraming};
use super::sps::{h264, rbsp, Bits, Sps};

/// What a slice header reader needs from a picture parameter set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pps {
    pub sps_id: u32,
    /// `entropy_coding_mode_flag` (CABAC).
    pub cabac: bool,
    pub bottom_field_pic_order_in_frame_present: bool,
    /// `num_slice_groups_minus1 + 1`.
    pub slice_groups: u32,
    /// `num_ref_idx_l0/l1_default_active_minus1 + 1`.
    pub num_ref_idx_default: [u32; 2],
    pub weighted_pred: bool,
    pub weighted_bipred_idc: u32,
    pub deblocking_filter_control_present: bool,
    pub redundant_pic_cnt_present: bool,
}

/// Parses a PPS NAL unit (header byte included): `(pps_id, Pps)`.
pub(crate) fn parse_pps(unit: &[u8]) -> Option<(u32, Pps)> {
    if unit.first()? & 0x1f != 8 {
        return None;
    }
    let data = rbsp(&unit[1..]);
    let mut b = Bits::new(&data);
    let pps_id = b.ue().filter(|&id| id <= 255)?;
    let sps_id = b.ue().filter(|&id| id <= 31)?;
    let cabac = b.flag()?;
    let bottom = b.flag()?;
    let slice_groups = b.ue()?.checked_add(1).filter(|&n| n <= 8)?;
    let mut pps = Pps {
        sps_id,
        cabac,
        bottom_field_pic_order_in_frame_present: bottom,
        slice_groups,
        num_ref_idx_default: [1, 1],
        weighted_pred: false,
        weighted_bipred_idc: 0,
        deblocking_filter_control_present: false,
        redundant_pic_cnt_present: false,
    };
    if slice_groups > 1 {
        // Slice group maps are not read: the fields after them are unknown.
        return Some((pps_id, pps));
    }
    let l0 = b.ue()?.checked_add(1).filter(|&n| n <= 32)?;
    let l1 = b.ue()?.checked_add(1).filter(|&n| n <= 32)?;
    pps.num_ref_idx_default = [l0, l1];
    pps.weighted_pred = b.flag()?;
    pps.weighted_bipred_idc = b.bits(2)?;
    b.se()?; // pic_init_qp_minus26
    b.se()?; // pic_init_qs_minus26
    b.se()?; // chroma_qp_index_offset
    pps.deblocking_filter_control_present = b.flag()?;
    b.flag()?; // constrained_intra_pred_flag
    pps.redundant_pic_cnt_present = b.flag()?;
    Some((pps_id, pps))
}

/// The sequence and picture parameter sets of a stream, by id, as last seen.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ParamSets {
    pub sps: HashMap<u32, Sps>,
    pub pps: HashMap<u32, Pps>,
    /// An id was given a second, different parameter set (the stream changes them mid-way).
    pub redefined: bool,
}

impl ParamSets {
    /// The parameter sets of codec extradata: an `avcC` record or Annex-B units.
    pub(crate) fn from_extradata(extradata: &[u8]) -> Self {
        let mut sets = ParamSets::default();
        if extradata.first() == Some(&1) && extradata.len() > 6 {
            // avcC: SPS count in byte 5, then (u16 length, unit) each; then a PPS count and the PPSs.
            let mut at = 6;
            let mut lists = [usize::from(extradata[5] & 0x1f), 0];
            for list in 0..2 {
                if list == 1 {
                    let Some(&n) = extradata.get(at) else { break };
                    lists[1] = usize::from(n);
                    at += 1;
                }
                for _ in 0..lists[list] {
                    let Some(len) = extradata.get(at..at + 2) else {
                        return sets;
                    };
                    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                    let Some(unit) = extradata.get(at + 2..at + 2 + len) else {
                        return sets;
                    };
                    sets.take(unit);
                    at += 2 + len;
                }
            }
        } else {
            for unit in annexb_units(extradata) {
                sets.take(unit);
            }
        }
        sets
    }

    /// Takes an SPS or PPS NAL unit (header byte included); other units are ignored.
    pub(crate) fn take(&mut self, unit: &[u8]) {
        match unit.first().map(|h| h & 0x1f) {
            Some(7) => {
                if let Some(sps) = h264::parse_nal(unit) {
                    let id = sps.sps_id;
                    if let Some(old) = self.sps.insert(id, sps) {
                        self.redefined |= old != self.sps[&id];
                    }
                }
            }
            Some(8) => {
                if let Some((id, pps)) = parse_pps(unit) {
                    if let Some(old) = self.pps.insert(id, pps) {
                        self.redefined |= old != pps;
                    }
                }
            }
            _ => {}
        }
    }

    /// The slice NAL units of a packet (types 1 and 5), taking the parameter sets it carries on the way.
    pub(crate) fn slices_of<'a>(&mut self, framing: NalFraming, data: &'a [u8]) -> Vec<&'a [u8]> {
        let mut slices = Vec::new();
        for unit in units(framing, data) {
            match unit.first().map(|h| h & 0x1f) {
                Some(1 | 5) => slices.push(unit),
                Some(7 | 8) => self.take(unit),
                _ => {}
            }
        }
        slices
    }
}

/// Slice types (`slice_type % 5`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SliceType {
    P,
    B,
    I,
    Sp,
    Si,
}

/// One memory management control operation (`memory_management_control_operation` with its values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mmco {
    /// 1: a short-term picture (`difference_of_pic_nums_minus1`) is no longer a reference.
    ForgetShort { difference_minus1: u32 },
    /// 2: a long-term picture (`long_term_pic_num`) is no longer a reference.
    ForgetLong { long_term_pic_num: u32 },
    /// 3: a short-term picture becomes long-term with this index.
    ShortToLong {
        difference_minus1: u32,
        long_term_frame_idx: u32,
    },
    /// 4: long-term indices from `max_plus1` up are dropped.
    MaxLongTermIdx { max_plus1: u32 },
    /// 5: every reference is dropped and numbering restarts.
    ForgetAll,
    /// 6: the current picture becomes long-term with this index.
    CurrentToLong { long_term_frame_idx: u32 },
}

/// How a reference picture marks the decoded picture buffer after it is decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Marking {
    /// An IDR picture: every reference is dropped; the picture itself is long-term (index 0) or short-term.
    Idr { long_term: bool },
    /// The sliding window: the oldest short-term picture leaves when the buffer is full.
    SlidingWindow,
    /// Explicit operations, in order.
    Adaptive(Vec<Mmco>),
}

/// The reference syntax of a P, SP or B slice: active list sizes and list modifications.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RefLists {
    /// `num_ref_idx_l0/l1_active_minus1 + 1` (list 1: B slices only).
    pub active: [u32; 2],
    /// `(modification_of_pic_nums_idc, abs_diff_pic_num_minus1 or long_term_pic_num)` per list.
    pub modifications: [Vec<(u32, u32)>; 2],
}

/// A slice header as far as it is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SliceHeader {
    pub nal_ref_idc: u8,
    pub idr: bool,
    pub slice_type: SliceType,
    pub pps_id: u32,
    pub frame_num: u32,
    /// `pic_order_cnt_lsb` (order count type 0).
    pub poc_lsb: u32,
    /// `delta_pic_order_cnt_bottom` (order count type 0, when the PPS has it).
    pub delta_poc_bottom: i64,
    /// The reference syntax after the order count: `None` where it could not be read (a truncated unit, a
    /// stream outside what is read here); the fields before it are still right.
    pub refs: Option<(RefLists, Option<Marking>)>,
}

/// Reads the slice header of a slice NAL unit (header byte included) against `sets`; `None` when its
/// parameter sets are unknown or it is a field picture or of order count type 1.
pub(crate) fn parse_slice(unit: &[u8], sets: &ParamSets) -> Option<SliceHeader> {
    let header = *unit.first()?;
    let (nal_ref_idc, idr) = ((header >> 5) & 3, header & 0x1f == 5);
    // Slice headers are short: a few hundred bytes hold the longest weight tables.
    let data = rbsp(&unit[1..unit.len().min(1024)]);
    let mut b = Bits::new(&data);
    b.ue()?; // first_mb_in_slice
    let slice_type = match b.ue()? % 5 {
        0 => SliceType::P,
        1 => SliceType::B,
        2 => SliceType::I,
        3 => SliceType::Sp,
        _ => SliceType::Si,
    };
    let pps_id = b.ue()?;
    let pps = *sets.pps.get(&pps_id)?;
    let sps = sets.sps.get(&pps.sps_id)?;
    if sps.poc_type == 1 {
        return None;
    }
    if sps.separate_colour_plane {
        b.bits(2)?; // colour_plane_id
    }
    let frame_num = b.bits(sps.frame_num_bits)?;
    if !sps.progressive && b.flag()? {
        return None; // field_pic_flag: a field picture
    }
    if idr {
        b.ue()?; // idr_pic_id
    }
    let (mut poc_lsb, mut delta_poc_bottom) = (0, 0);
    if sps.poc_type == 0 {
        poc_lsb = b.bits(sps.poc_lsb_bits)?;
        if pps.bottom_field_pic_order_in_frame_present {
            delta_poc_bottom = b.se()?;
        }
    }
    let mut slice = SliceHeader {
        nal_ref_idc,
        idr,
        slice_type,
        pps_id,
        frame_num,
        poc_lsb,
        delta_poc_bottom,
        refs: None,
    };
    if pps.slice_groups == 1 {
        slice.refs = read_ref_syntax(&mut b, &slice, &pps, sps);
    }
    Some(slice)
}

/// The slice header from `redundant_pic_cnt` to the end of `dec_ref_pic_marking`.
fn read_ref_syntax(
    b: &mut Bits<'_>,
    slice: &SliceHeader,
    pps: &Pps,
    sps: &Sps,
) -> Option<(RefLists, Option<Marking>)> {
    if pps.redundant_pic_cnt_present {
        b.ue()?;
    }
    let (p, bi) = (
        matches!(slice.slice_type, SliceType::P | SliceType::Sp),
        slice.slice_type == SliceType::B,
    );
    if bi {
        b.flag()?; // direct_spatial_mv_pred_flag
    }
    let mut lists = RefLists {
        active: [0, 0],
        modifications: [Vec::new(), Vec::new()],
    };
    if p || bi {
        lists.active = [pps.num_ref_idx_default[0], 0];
        if bi {
            lists.active[1] = pps.num_ref_idx_default[1];
        }
        if b.flag()? {
            lists.active[0] = b.ue()?.checked_add(1).filter(|&n| n <= 32)?;
            if bi {
                lists.active[1] = b.ue()?.checked_add(1).filter(|&n| n <= 32)?;
            }
        }
        for list in 0..(if bi { 2 } else { 1 }) {
            if b.flag()? {
                loop {
                    let idc = b.ue()?;
                    match idc {
                        0..=2 => lists.modifications[list].push((idc, b.ue()?)),
                        3 => break,
                        _ => return None,
                    }
                    if lists.modifications[list].len() > 33 {
                        return None;
                    }
                }
            }
        }
    }
    if (pps.weighted_pred && p) || (pps.weighted_bipred_idc == 1 && bi) {
        skip_pred_weight_table(b, sps, &lists.active, bi)?;
    }
    let marking = if slice.nal_ref_idc == 0 {
        None
    } else if slice.idr {
        b.flag()?; // no_output_of_prior_pics_flag
        Some(Marking::Idr {
            long_term: b.flag()?,
        })
    } else if b.flag()? {
        let mut ops = Vec::new();
        loop {
            let op = match b.ue()? {
                0 => break,
                1 => Mmco::ForgetShort {
                    difference_minus1: b.ue()?,
                },
                2 => Mmco::ForgetLong {
                    long_term_pic_num: b.ue()?,
                },
                3 => Mmco::ShortToLong {
                    difference_minus1: b.ue()?,
                    long_term_frame_idx: b.ue()?,
                },
                4 => Mmco::MaxLongTermIdx { max_plus1: b.ue()? },
                5 => Mmco::ForgetAll,
                6 => Mmco::CurrentToLong {
                    long_term_frame_idx: b.ue()?,
                },
                _ => return None,
            };
            ops.push(op);
            if ops.len() > 66 {
                return None;
            }
        }
        Some(Marking::Adaptive(ops))
    } else {
        Some(Marking::SlidingWindow)
    };
    Some((lists, marking))
}

/// Reads past `pred_weight_table()`.
fn skip_pred_weight_table(b: &mut Bits<'_>, sps: &Sps, active: &[u32; 2], bi: bool) -> Option<()> {
    b.ue()?; // luma_log2_weight_denom
    let chroma = sps.chroma_format_idc != 0;
    if chroma {
        b.ue()?; // chroma_log2_weight_denom
    }
    for &n in &active[..if bi { 2 } else { 1 }] {
        for _ in 0..n {
            if b.flag()? {
                b.se()?;
                b.se()?;
            }
            if chroma && b.flag()? {
                for _ in 0..4 {
                    b.se()?;
                }
            }
        }
    }
    Some(())
}
