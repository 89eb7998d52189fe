//! H.264 picture order count (ITU-T H.264 8.2.1), read from slice headers: the display order of a stream whose
//! container stores no presentation time stamp for some packets (Matroska lacing without durations, AVI).
//!
//! Covers `pic_order_cnt_type` 0 and 2 on frame pictures. Type 1 (rare; no common encoder writes it) and field
//! pictures (PAFF) give `None`, and so does a slice whose parameter sets were never seen: the caller then refuses
//! the stream rather than guess. A `memory_management_control_operation` 5 (which resets the count without an
//! IDR picture; x264 and x265 never write it) is not followed.

use super::nal::NalFraming;
use super::slice_header::{parse_slice, ParamSets, SliceHeader};

/// Where a picture sits in display order: the pictures of one `period` (from one IDR picture to the next) show
/// in order of `poc`, and periods one after the other. Pictures before the first IDR picture are period 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct DisplayKey {
    /// IDR pictures seen so far, this one included.
    pub period: u32,
    /// The picture's order count within its period.
    pub poc: i64,
}

/// Follows the picture order count of an H.264 stream, access unit by access unit in decode order.
#[derive(Default)]
pub(crate) struct H264Poc {
    sets: ParamSets,
    period: u32,
    prev_msb: i64,
    prev_lsb: i64,
    prev_frame_num: u32,
    frame_num_offset: i64,
}

impl H264Poc {
    /// A reader that knows the parameter sets of the codec extradata (`avcC` record or Annex-B).
    pub(crate) fn new(extradata: &[u8]) -> Self {
        H264Poc {
            sets: ParamSets::from_extradata(extradata),
            ..H264Poc::default()
        }
    }

    /// The parameter sets seen so far (the extradata's and those the packets carried).
    pub(crate) fn param_sets(&self) -> &ParamSets {
        &self.sets
    }

    /// The display key of the picture in `data` (one access unit in `framing`), taking the parameter sets it
    /// carries first; `None` when it has no slice or its slice header is not one this reader follows.
    #[cfg(test)]
    pub(crate) fn packet(&mut self, framing: NalFraming, data: &[u8]) -> Option<DisplayKey> {
        self.picture(framing, data).0
    }

    /// The display key of the picture in `data` (as [`H264Poc::packet`]) and the headers of all its slices
    /// (`None` when one does not parse; empty when the packet holds no slice).
    pub(crate) fn picture(
        &mut self,
        framing: NalFraming,
        data: &[u8],
    ) -> (Option<DisplayKey>, Option<Vec<SliceHeader>>) {
        let units = self.sets.slices_of(framing, data);
        let slices: Option<Vec<SliceHeader>> =
            units.iter().map(|u| parse_slice(u, &self.sets)).collect();
        let key = slices
            .as_ref()
            .and_then(|s| s.first().cloned())
            .or_else(|| parse_slice(units.first()?, &self.sets))
            .and_then(|first| self.key(&first));
        (key, slices)
    }

    /// The display key of a picture from its first slice header.
    fn key(&mut self, slice: &SliceHeader) -> Option<DisplayKey> {
        let sps = &self.sets.sps[&self.sets.pps[&slice.pps_id].sps_id];
        let (nal_ref_idc, idr, frame_num) = (slice.nal_ref_idc, slice.idr, slice.frame_num);
        if idr {
            self.period = self.period.checked_add(1)?;
        }
        let poc = match sps.poc_type {
            0 => {
                let lsb = i64::from(slice.poc_lsb);
                if idr {
                    (self.prev_msb, self.prev_lsb) = (0, 0);
                }
                let max = 1i64 << sps.poc_lsb_bits;
                let msb = if lsb < self.prev_lsb && self.prev_lsb - lsb >= max / 2 {
                    self.prev_msb + max
                } else if lsb > self.prev_lsb && lsb - self.prev_lsb > max / 2 {
                    self.prev_msb - max
                } else {
                    self.prev_msb
                };
                if nal_ref_idc != 0 {
                    (self.prev_msb, self.prev_lsb) = (msb, lsb);
                }
                let top = msb + lsb;
                top.min(top + slice.delta_poc_bottom)
            }
            2 => {
                if idr {
                    self.frame_num_offset = 0;
                } else if self.prev_frame_num > frame_num {
                    self.frame_num_offset += 1i64 << sps.frame_num_bits;
                }
                self.prev_frame_num = frame_num;
                2 * (self.frame_num_offset + i64::from(frame_num)) - i64::from(nal_ref_idc == 0)
            }
            _ => return None,
        };
        Some(DisplayKey {
            period: self.period,
            poc,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitstream::sps::BitWriter;

    /// A baseline SPS (id 0, 4-bit frame_num, POC type `poc_type` with 4-bit lsb), 16x16, frame pictures.
    fn sps(poc_type: u32) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.u(8, 66);
        w.u(16, 30);
        w.ue(0); // sps id
        w.ue(0); // log2_max_frame_num_minus4
        w.ue(poc_type);
        if poc_type == 0 {
            w.ue(0); // log2_max_pic_order_cnt_lsb_minus4
        }
        w.ue(1); // max_num_ref_frames
        w.u(1, 0); // gaps
        w.ue(0); // width in mbs - 1
        w.ue(0); // height in map units - 1
        w.u(1, 1); // frame_mbs_only
        w.u(1, 1); // direct_8x8
        w.u(1, 0); // cropping
        w.u(1, 0); // vui
        w.nal(0x67)
    }

    fn pps() -> Vec<u8> {
        let mut w = BitWriter::default();
        w.ue(0); // pps id
        w.ue(0); // sps id
        w.u(1, 0); // CAVLC
        w.u(1, 0); // bottom_field_pic_order_in_frame_present_flag
        w.ue(0); // one slice group
        w.ue(0); // num_ref_idx_l0_default_active_minus1
        w.ue(0); // num_ref_idx_l1_default_active_minus1
        w.u(1, 0); // weighted_pred_flag
        w.u(2, 0); // weighted_bipred_idc
        w.ue(0); // pic_init_qp_minus26 (se 0)
        w.ue(0); // pic_init_qs_minus26
        w.ue(0); // chroma_qp_index_offset
        w.u(1, 1); // deblocking_filter_control_present_flag
        w.u(1, 0); // constrained_intra_pred_flag
        w.u(1, 0); // redundant_pic_cnt_present_flag
        w.nal(0x68)
    }

    /// A slice header: (IDR, reference, frame_num, pic_order_cnt_lsb).
    fn slice(idr: bool, reference: bool, frame_num: u32, lsb: u32) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.ue(0);
        w.ue(if idr { 7 } else { 0 });
        w.ue(0);
        w.u(4, frame_num);
        if idr {
            w.ue(0);
        }
        w.u(4, lsb);
        let header = if idr {
            0x65
        } else if reference {
            0x41
        } else {
            0x01
        };
        w.nal(header)
    }

    fn annexb(units: &[Vec<u8>]) -> Vec<u8> {
        units
            .iter()
            .flat_map(|u| [0, 0, 0, 1].into_iter().chain(u.iter().copied()))
            .collect()
    }

    #[test]
    fn order_counts_follow_lsb_wraps_and_idr_periods() {
        // Decode order I0 P4 b2 P8 b6 P12 b10 P16(lsb 0: wrapped) b14, then IDR.
        let mut poc = H264Poc::new(&annexb(&[sps(0), pps()]));
        let seq = [
            (true, true, 0, 0),
            (false, true, 1, 4),
            (false, false, 2, 2),
            (false, true, 2, 8),
            (false, false, 3, 6),
            (false, true, 3, 12),
            (false, false, 4, 10),
            (false, true, 4, 0),
            (false, false, 5, 14),
            (true, true, 0, 0),
        ];
        let keys: Vec<(u32, i64)> = seq
            .iter()
            .map(|&(idr, r, f, l)| {
                let k = poc
                    .packet(NalFraming::AnnexB, &annexb(&[slice(idr, r, f, l)]))
                    .unwrap();
                (k.period, k.poc)
            })
            .collect();
        assert_eq!(
            keys,
            [
                (1, 0),
                (1, 4),
                (1, 2),
                (1, 8),
                (1, 6),
                (1, 12),
                (1, 10),
                (1, 16),
                (1, 14),
                (2, 0)
            ]
        );
    }

    #[test]
    fn length_prefixed_packets_carry_their_parameter_sets() {
        let mut poc = H264Poc::new(&[]);
        let mut packet = Vec::new();
        for unit in [sps(2), pps(), slice(true, true, 0, 0)] {
            packet.extend((unit.len() as u32).to_be_bytes());
            packet.extend(unit);
        }
        let key = poc.packet(NalFraming::LengthPrefixed(4), &packet).unwrap();
        assert_eq!((key.period, key.poc), (1, 0));
        // Without parameter sets, nothing.
        assert_eq!(
            H264Poc::new(&[]).packet(NalFraming::AnnexB, &annexb(&[slice(false, true, 1, 0)])),
            None
        );
    }
}
