//! H.264 picture order count (ITU-T H.264 8.2.1), read from slice headers: the display order of a stream whose
//! container stores no presentation time stamp for some packets (Matroska lacing without durations, AVI).
//!
//! Covers `pic_order_cnt_type` 0 and 2 on frame pictures. Type 1 (rare; no common encoder writes it) and field
//! pictures (PAFF) give `None`, and so does a slice whose parameter sets were never seen: the caller then refuses
//! the stream rather than guess. A `memory_management_control_operation` 5 (which resets the count without an
//! IDR picture; x264 and x265 never write it) is not followed.

use std::collections::HashMap;

use super::nal::NalFraming;
use super::sps::{h264, rbsp, Bits, Sps};

/// Where a picture sits in display order: the pictures of one `period` (from one IDR picture to the next) show
/// in order of `poc`, and periods one after the other. Pictures before the first IDR picture are period 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct DisplayKey {
    /// IDR pictures seen so far, this one included.
    pub period: u32,
    /// The picture's order count within its period.
    pub poc: i64,
}

/// What a slice header needs from a picture parameter set.
#[derive(Clone, Copy, Debug)]
struct Pps {
    sps_id: u32,
    bottom_field_pic_order_in_frame_present: bool,
}

/// Follows the picture order count of an H.264 stream, access unit by access unit in decode order.
#[derive(Default)]
pub(crate) struct H264Poc {
    sps: HashMap<u32, Sps>,
    pps: HashMap<u32, Pps>,
    period: u32,
    prev_msb: i64,
    prev_lsb: i64,
    prev_frame_num: u32,
    frame_num_offset: i64,
}

/// Bytes of a slice NAL unit that hold every slice header field read here.
const SLICE_HEADER_BYTES: usize = 48;

impl H264Poc {
    /// A reader that knows the parameter sets of the codec extradata (`avcC` record or Annex-B).
    pub(crate) fn new(extradata: &[u8]) -> Self {
        let mut poc = H264Poc::default();
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
                        return poc;
                    };
                    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                    let Some(unit) = extradata.get(at + 2..at + 2 + len) else {
                        return poc;
                    };
                    poc.parameter_set(unit);
                    at += 2 + len;
                }
            }
        } else {
            for unit in super::nal::annexb_units(extradata) {
                poc.parameter_set(unit);
            }
        }
        poc
    }

    /// Takes an SPS or PPS NAL unit (header byte included); other units are ignored.
    fn parameter_set(&mut self, unit: &[u8]) {
        match unit.first().map(|h| h & 0x1f) {
            Some(7) => {
                if let Some(sps) = h264::parse_nal(unit) {
                    self.sps.insert(sps.sps_id, sps);
                }
            }
            Some(8) => {
                let data = rbsp(&unit[1..]);
                let mut b = Bits::new(&data);
                let mut read = || -> Option<(u32, Pps)> {
                    let pps_id = b.ue().filter(|&id| id <= 255)?;
                    let sps_id = b.ue().filter(|&id| id <= 31)?;
                    b.flag()?; // entropy_coding_mode_flag
                    let bottom = b.flag()?;
                    Some((
                        pps_id,
                        Pps {
                            sps_id,
                            bottom_field_pic_order_in_frame_present: bottom,
                        },
                    ))
                };
                if let Some((id, pps)) = read() {
                    self.pps.insert(id, pps);
                }
            }
            _ => {}
        }
    }

    /// The display key of the picture in `data` (one access unit in `framing`), taking the parameter sets it
    /// carries first; `None` when it has no slice or its slice header is not one this reader follows.
    pub(crate) fn packet(&mut self, framing: NalFraming, data: &[u8]) -> Option<DisplayKey> {
        match framing {
            NalFraming::AnnexB => {
                let mut i = 0;
                while let Some(s) = start_code_end(data, i) {
                    let kind = data.get(s)? & 0x1f;
                    if matches!(kind, 1 | 5) {
                        let end = (s + SLICE_HEADER_BYTES).min(data.len());
                        let end = start_code_end(&data[..end], s).map_or(end, |e| e - 3);
                        return self.slice(&data[s..end]);
                    }
                    let end = start_code_end(data, s).map_or(data.len(), |e| e - 3);
                    self.parameter_set(&data[s..end]);
                    i = end;
                }
                None
            }
            NalFraming::LengthPrefixed(n) => {
                let mut i = 0;
                while i + n < data.len() {
                    let len = data[i..i + n]
                        .iter()
                        .fold(0usize, |a, &b| (a << 8) | usize::from(b));
                    let end = (i + n).checked_add(len).filter(|&e| e <= data.len())?;
                    let unit = &data[i + n..end];
                    if unit.first().is_some_and(|h| matches!(h & 0x1f, 1 | 5)) {
                        return self.slice(&unit[..unit.len().min(SLICE_HEADER_BYTES)]);
                    }
                    self.parameter_set(unit);
                    i = end;
                }
                None
            }
        }
    }

    /// The display key of a picture from the start of its first slice NAL unit (header byte included).
    fn slice(&mut self, unit: &[u8]) -> Option<DisplayKey> {
        let (nal_ref_idc, idr) = ((unit[0] >> 5) & 3, unit[0] & 0x1f == 5);
        let data = rbsp(&unit[1..]);
        let mut b = Bits::new(&data);
        b.ue()?; // first_mb_in_slice
        b.ue()?; // slice_type
        let pps = *self.pps.get(&b.ue()?)?;
        let sps = self.sps.get(&pps.sps_id)?;
        if sps.separate_colour_plane {
            b.bits(2)?; // colour_plane_id
        }
        let frame_num = b.bits(sps.frame_num_bits)?;
        if !sps.progressive && b.flag()? {
            return None; // field_pic_flag: a field picture
        }
        if idr {
            b.ue()?; // idr_pic_id
            self.period = self.period.checked_add(1)?;
        }
        let poc = match sps.poc_type {
            0 => {
                let lsb = i64::from(b.bits(sps.poc_lsb_bits)?);
                let delta_bottom = if pps.bottom_field_pic_order_in_frame_present {
                    b.se()?
                } else {
                    0
                };
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
                top.min(top + delta_bottom)
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

/// The position just after the first `00 00 01` start code at or after `from`.
fn start_code_end(data: &[u8], from: usize) -> Option<usize> {
    data.get(from..)?
        .windows(3)
        .position(|w| w == [0, 0, 1])
        .map(|p| from + p + 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes bits MSB first (test streams).
    #[derive(Default)]
    struct Writer {
        bytes: Vec<u8>,
        bits: usize,
    }

    impl Writer {
        fn bit(&mut self, v: u32) {
            if self.bits % 8 == 0 {
                self.bytes.push(0);
            }
            if v != 0 {
                *self.bytes.last_mut().unwrap() |= 0x80 >> (self.bits % 8);
            }
            self.bits += 1;
        }
        fn u(&mut self, n: u32, v: u32) {
            for i in (0..n).rev() {
                self.bit((v >> i) & 1);
            }
        }
        fn ue(&mut self, v: u32) {
            let x = v + 1;
            let len = 32 - x.leading_zeros();
            self.u(len - 1, 0);
            self.u(len, x);
        }
        fn nal(mut self, header: u8) -> Vec<u8> {
            self.bit(1); // rbsp_stop_one_bit
            let mut out = vec![header];
            out.extend(self.bytes);
            out
        }
    }

    /// A baseline SPS (id 0, 4-bit frame_num, POC type `poc_type` with 4-bit lsb), 16x16, frame pictures.
    fn sps(poc_type: u32) -> Vec<u8> {
        let mut w = Writer::default();
        w.u(8, 66);
        w.u(16, 30);
        w.ue(0); // sps id
        w.ue(0); // log2_max_frame_num_minus4
        w.ue(poc_type);
        if poc_type == 0 {
            w.ue(0); // log2_max_pic_order_cnt_lsb_minus4
        }
        w.ue(1); // max_num_ref_frames
        w.bit(0); // gaps
        w.ue(0); // width in mbs - 1
        w.ue(0); // height in map units - 1
        w.bit(1); // frame_mbs_only
        w.bit(1); // direct_8x8
        w.bit(0); // cropping
        w.bit(0); // vui
        w.nal(0x67)
    }

    fn pps() -> Vec<u8> {
        let mut w = Writer::default();
        w.ue(0);
        w.ue(0);
        w.bit(0);
        w.bit(0);
        w.nal(0x68)
    }

    /// A slice header: (IDR, reference, frame_num, pic_order_cnt_lsb).
    fn slice(idr: bool, reference: bool, frame_num: u32, lsb: u32) -> Vec<u8> {
        let mut w = Writer::default();
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
