//! A stand-in for an H.264 reference picture that no wanted frame depends on: a picture of skipped macroblocks
//! (a P slice that copies its first reference, deblocking off) with the original's `frame_num`, order count and
//! reference marking, behind a picture parameter set of its own (CAVLC, one reference, no weighted prediction,
//! under an id the stream never uses).
//!
//! Decoding it costs a copy of the picture instead of a full decode, and the decoder's reference buffer, picture
//! numbering and order counts stay exactly those of the original stream: every later picture builds the same
//! reference lists. Only the stand-in's own pixels differ, which is why only pictures that nothing wanted
//! refers to (see [`super::references`]) are replaced.

use super::nal::{units, NalFraming};
use super::slice_header::{parse_slice, Marking, Mmco, ParamSets};
use super::sps::BitWriter;

/// The stand-in for the reference picture in `data` (one access unit in `framing`), in the same framing: the
/// parameter sets the packet carries, then the stand-in's PPS (id `pps_id`) and slice. `None` when its slice
/// header does not parse against `sets` or is not a non-IDR reference frame picture this writer can copy.
pub(crate) fn skip_picture(
    sets: &ParamSets,
    pps_id: u32,
    framing: NalFraming,
    data: &[u8],
) -> Option<Vec<u8>> {
    let all = units(framing, data);
    let first = all
        .iter()
        .find(|u| u.first().is_some_and(|h| matches!(h & 0x1f, 1 | 5)))?;
    let slice = parse_slice(first, sets)?;
    let Some((_, Some(marking))) = &slice.refs else {
        return None;
    };
    let pps = sets.pps.get(&slice.pps_id)?;
    let sps = sets.sps.get(&pps.sps_id)?;
    if slice.idr
        || slice.nal_ref_idc == 0
        || !sps.progressive
        || sps.separate_colour_plane
        || sps.poc_type == 1
        || sets.pps.contains_key(&pps_id)
    {
        return None;
    }

    let mut w = BitWriter::default();
    w.ue(pps_id);
    w.ue(pps.sps_id);
    w.bit(false); // entropy_coding_mode_flag: CAVLC
    w.bit(pps.bottom_field_pic_order_in_frame_present);
    w.ue(0); // num_slice_groups_minus1
    w.ue(0); // num_ref_idx_l0_default_active_minus1
    w.ue(0); // num_ref_idx_l1_default_active_minus1
    w.bit(false); // weighted_pred_flag
    w.u(2, 0); // weighted_bipred_idc
    w.se(0); // pic_init_qp_minus26
    w.se(0); // pic_init_qs_minus26
    w.se(0); // chroma_qp_index_offset
    w.bit(true); // deblocking_filter_control_present_flag
    w.bit(false); // constrained_intra_pred_flag
    w.bit(false); // redundant_pic_cnt_present_flag
    let pps_unit = w.nal(0x68);

    let mut w = BitWriter::default();
    w.ue(0); // first_mb_in_slice
    w.ue(0); // slice_type: P
    w.ue(pps_id);
    w.u(sps.frame_num_bits, slice.frame_num);
    if sps.poc_type == 0 {
        w.u(sps.poc_lsb_bits, slice.poc_lsb);
        if pps.bottom_field_pic_order_in_frame_present {
            w.se(slice.delta_poc_bottom);
        }
    }
    w.bit(false); // num_ref_idx_active_override_flag
    w.bit(false); // ref_pic_list_modification_flag_l0
    match marking {
        Marking::Idr { .. } => return None,
        Marking::SlidingWindow => w.bit(false),
        Marking::Adaptive(ops) => {
            w.bit(true);
            for op in ops {
                match *op {
                    Mmco::ForgetShort { difference_minus1 } => {
                        w.ue(1);
                        w.ue(difference_minus1);
                    }
                    Mmco::ForgetLong { long_term_pic_num } => {
                        w.ue(2);
                        w.ue(long_term_pic_num);
                    }
                    Mmco::ShortToLong {
                        difference_minus1,
                        long_term_frame_idx,
                    } => {
                        w.ue(3);
                        w.ue(difference_minus1);
                        w.ue(long_term_frame_idx);
                    }
                    Mmco::MaxLongTermIdx { max_plus1 } => {
                        w.ue(4);
                        w.ue(max_plus1);
                    }
                    Mmco::ForgetAll => w.ue(5),
                    Mmco::CurrentToLong {
                        long_term_frame_idx,
                    } => {
                        w.ue(6);
                        w.ue(long_term_frame_idx);
                    }
                }
            }
            w.ue(0);
        }
    }
    w.se(0); // slice_qp_delta
    w.ue(1); // disable_deblocking_filter_idc: off
    w.ue(sps.frame_size_mbs); // mb_skip_run: every macroblock
    let slice_unit = w.nal((slice.nal_ref_idc << 5) | 1);

    let mut out = Vec::with_capacity(64);
    let parameter_sets = all
        .iter()
        .filter(|u| u.first().is_some_and(|h| matches!(h & 0x1f, 7 | 8)))
        .copied();
    for unit in parameter_sets.chain([pps_unit.as_slice(), slice_unit.as_slice()]) {
        match framing {
            NalFraming::AnnexB => out.extend_from_slice(&[0, 0, 0, 1]),
            NalFraming::LengthPrefixed(n) => {
                let len = u32::try_from(unit.len()).ok()?;
                if n < 4 && len >> (8 * n) != 0 {
                    return None;
                }
                out.extend_from_slice(&len.to_be_bytes()[4 - n..]);
            }
        }
        out.extend_from_slice(unit);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitstream::slice_header::{parse_pps, SliceType};

    /// Writes `units` as one access unit in `framing`.
    fn packet(framing: NalFraming, units: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for u in units {
            match framing {
                NalFraming::AnnexB => out.extend([0, 0, 0, 1]),
                NalFraming::LengthPrefixed(n) => {
                    out.extend(&(u.len() as u32).to_be_bytes()[4 - n..])
                }
            }
            out.extend(u);
        }
        out
    }

    /// SPS 0: 64x48 (4x3 macroblocks), 4-bit frame_num, order count type 0 with 6-bit lsb, 2 references.
    fn sps() -> Vec<u8> {
        let mut w = BitWriter::default();
        w.u(8, 77); // Main
        w.u(8, 0);
        w.u(8, 30);
        w.ue(0); // sps id
        w.ue(0); // log2_max_frame_num_minus4
        w.ue(0); // poc type 0
        w.ue(2); // log2_max_pic_order_cnt_lsb_minus4
        w.ue(2); // max_num_ref_frames
        w.bit(false);
        w.ue(3); // width in mbs - 1
        w.ue(2); // height in map units - 1
        w.bit(true); // frame_mbs_only
        w.bit(true); // direct_8x8
        w.bit(false); // cropping
        w.bit(false); // vui
        w.nal(0x67)
    }

    /// PPS 0: CABAC, weighted P prediction, defaults of 2 and 1 references.
    fn pps() -> Vec<u8> {
        let mut w = BitWriter::default();
        w.ue(0);
        w.ue(0);
        w.bit(true); // CABAC
        w.bit(false);
        w.ue(0);
        w.ue(1);
        w.ue(0);
        w.bit(true); // weighted_pred_flag
        w.u(2, 2);
        w.se(0);
        w.se(0);
        w.se(-2);
        w.bit(true);
        w.bit(false);
        w.bit(false);
        w.nal(0x68)
    }

    /// A referenced B slice (frame_num 5, lsb 9) that drops two pictures by operation, then some slice data.
    fn b_slice() -> Vec<u8> {
        let mut w = BitWriter::default();
        w.ue(0);
        w.ue(6); // B, all slices
        w.ue(0);
        w.u(4, 5);
        w.u(6, 9);
        w.bit(true); // direct_spatial_mv_pred_flag
        w.bit(false); // no override
        w.bit(false);
        w.bit(false); // no modifications
        w.bit(true); // adaptive marking
        w.ue(1);
        w.ue(3);
        w.ue(1);
        w.ue(1);
        w.ue(0);
        w.ue(0); // cabac_init_idc
        w.se(3);
        w.u(32, 0xdead_beef);
        w.nal(0x41)
    }

    #[test]
    fn the_stand_in_keeps_numbering_order_count_and_marking() {
        for framing in [NalFraming::AnnexB, NalFraming::LengthPrefixed(4)] {
            let sets = ParamSets::from_extradata(&packet(NalFraming::AnnexB, &[sps(), pps()]));
            let original = parse_slice(&b_slice(), &sets).unwrap();
            let data = packet(framing, &[vec![0x09, 0x10], b_slice()]);
            let out = skip_picture(&sets, 7, framing, &data).unwrap();
            let units = units(framing, &out);
            assert_eq!(units.len(), 2, "the delimiter is left out");
            let (id, pps) = parse_pps(units[0]).unwrap();
            assert_eq!(id, 7);
            assert!(!pps.cabac && !pps.weighted_pred && pps.num_ref_idx_default == [1, 1]);
            let mut with_pps = sets.clone();
            with_pps.take(units[0]);
            let stand_in = parse_slice(units[1], &with_pps).unwrap();
            assert_eq!(stand_in.slice_type, SliceType::P);
            assert_eq!(stand_in.pps_id, 7);
            assert_eq!(
                (stand_in.nal_ref_idc, stand_in.frame_num, stand_in.poc_lsb),
                (original.nal_ref_idc, original.frame_num, original.poc_lsb)
            );
            assert_eq!(stand_in.refs.as_ref().unwrap().1, original.refs.unwrap().1);
            // Every macroblock skipped: mb_skip_run = 12 after the deblocking switch.
            assert_eq!(stand_in.refs.unwrap().0.active, [1, 0]);
        }
    }

    #[test]
    fn only_non_idr_reference_pictures_get_a_stand_in() {
        let sets = ParamSets::from_extradata(&packet(NalFraming::AnnexB, &[sps(), pps()]));
        let mut non_ref = b_slice();
        non_ref[0] = 0x01;
        assert!(skip_picture(
            &sets,
            7,
            NalFraming::AnnexB,
            &packet(NalFraming::AnnexB, &[non_ref])
        )
        .is_none());
        // An id the stream uses is refused.
        let data = packet(NalFraming::AnnexB, &[b_slice()]);
        assert!(skip_picture(&sets, 0, NalFraming::AnnexB, &data).is_none());
        // Unknown parameter sets: nothing.
        assert!(skip_picture(&ParamSets::default(), 7, NalFraming::AnnexB, &data).is_none());
    }

    #[test]
    fn emulation_prevention_bytes_are_inserted() {
        let mut w = BitWriter::default();
        w.u(32, 0);
        w.u(8, 1);
        assert_eq!(w.nal(0x41), vec![0x41, 0, 0, 3, 0, 0, 3, 1, 0x80]);
    }
}
