//! H.264 recovery points (ITU-T H.264 D.1.8 / D.2.8): where a decoder that starts at a picture other than an IDR
//! picture has whole pictures again. Streams encoded with intra refresh (x264 `--intra-refresh`, low-latency
//! encoders) have no IDR picture after the first: their "keyframes" are P-pictures carrying a recovery point SEI
//! message that says the pictures become correct `recovery_frame_cnt` frames later. libavcodec, after a start or a
//! seek, shows no picture until that recovery picture (its `recovery_frame` / `frame_recovered` logic), so a frame
//! inside a refresh period can only be had by starting at an earlier recovery point.

use super::nal::{units, NalFraming};
use super::slice_header::{SliceHeader, SliceType};
use super::sps::{rbsp, Bits};

/// What following recovery points needs of one H.264 access unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecoveryUnit {
    /// An IDR picture.
    pub idr: bool,
    /// A reference picture (`nal_ref_idc` != 0).
    pub reference: bool,
    /// Every slice is an I slice.
    pub intra: bool,
    /// `frame_num` of the picture and its width in bits (`log2_max_frame_num`).
    pub frame_num: u32,
    pub frame_num_bits: u32,
    /// `recovery_frame_cnt` of a recovery point SEI message in the access unit.
    pub recovery_frame_cnt: Option<u32>,
}

impl RecoveryUnit {
    /// The unit of an access unit from its slice headers (`None` without any) and `frame_num_bits` of their SPS.
    pub(crate) fn new(
        slices: &[SliceHeader],
        frame_num_bits: u32,
        recovery_frame_cnt: Option<u32>,
    ) -> Option<Self> {
        let first = slices.first()?;
        Some(RecoveryUnit {
            idr: first.idr,
            reference: first.nal_ref_idc != 0,
            intra: slices.iter().all(|s| s.slice_type == SliceType::I),
            frame_num: first.frame_num,
            frame_num_bits,
            recovery_frame_cnt,
        })
    }
}

/// `recovery_frame_cnt` of the first recovery point SEI message (payload type 6) in the SEI NAL units of one
/// access unit; `None` when there is none (or it does not parse).
pub(crate) fn recovery_frame_cnt(framing: NalFraming, data: &[u8]) -> Option<u32> {
    units(framing, data)
        .into_iter()
        .filter(|u| u.first().is_some_and(|h| h & 0x1f == 6))
        .find_map(|u| sei_recovery_point(&rbsp(&u[1..])))
}

/// The recovery point message of an SEI RBSP: `(payloadType, payloadSize)` coded as runs of 0xFF plus a last byte.
fn sei_recovery_point(rbsp: &[u8]) -> Option<u32> {
    let mut at = 0;
    let read_value = |at: &mut usize| -> Option<usize> {
        let mut v = 0usize;
        loop {
            let b = *rbsp.get(*at)?;
            *at += 1;
            v = v.checked_add(usize::from(b))?;
            if b != 0xff {
                return Some(v);
            }
        }
    };
    // Messages until the trailing bits (0x80) or the end.
    while at < rbsp.len() && rbsp[at] != 0x80 {
        let kind = read_value(&mut at)?;
        let size = read_value(&mut at)?;
        let payload = rbsp.get(at..at.checked_add(size)?)?;
        if kind == 6 {
            return Bits::new(payload).ue();
        }
        at += size;
    }
    None
}

/// For a decoder that starts at access unit `start` (flushed, or new) and is then given every unit after it in
/// decode order: the first unit whose picture libavcodec counts as recovered, after which it shows every picture
/// from that one's on in display order. `start` itself where it is an IDR picture, where it carries no recovery
/// point (a keyframe the container flags for another reason decodes from itself, as before), or where its
/// recovery count is 0; `None` when the recovery picture never comes (the stream ends first). Units whose slices
/// could not be read (`None`) are passed over. Each unit looked at takes one from `budget`; once it is spent the
/// answer is `start` (decoding from the keyframe itself, the behaviour without recovery points), so that a
/// damaged stream that flags every packet as a recovery point with a count never met cannot make the scan
/// quadratic.
///
/// As libavcodec's `h264_field_start`: a recovery point SEI sets the frame number to wait for, `(frame_num +
/// recovery_frame_cnt) mod MaxFrameNum` (or the picture's own, for the I-picture whose count equals its frame number
/// that some encoders write before any other recovery point); the first reference picture with that frame
/// number, or an IDR picture, is recovered. Its heuristic for I-pictures without a recovery point is not followed.
pub(crate) fn recovery_unit(
    units: &[Option<RecoveryUnit>],
    start: usize,
    budget: &mut usize,
) -> Option<usize> {
    let Some(first) = units.get(start).copied().flatten() else {
        return Some(start);
    };
    if first.idr || first.recovery_frame_cnt.is_none() {
        return Some(start);
    }
    let mut waiting_for: Option<u32> = None;
    let mut valid_point = false;
    let mut references = 0u64;
    for (at, unit) in units.iter().enumerate().skip(start) {
        if *budget == 0 {
            return Some(start);
        }
        *budget -= 1;
        let Some(u) = unit else { continue };
        if u.idr {
            return Some(at);
        }
        let max = 1u64 << u.frame_num_bits.min(16);
        if let Some(count) = u.recovery_frame_cnt {
            if u.frame_num != count || !u.intra {
                valid_point = true;
            }
            let distance = |target: u32| (u64::from(target) + max - u64::from(u.frame_num)) % max;
            if waiting_for.is_none_or(|t| distance(t) > u64::from(count)) {
                waiting_for = Some(if valid_point {
                    ((u64::from(u.frame_num) + u64::from(count)) % max) as u32
                } else {
                    u.frame_num
                });
            }
        }
        if u.reference {
            if waiting_for == Some(u.frame_num) {
                return Some(at);
            }
            // frame_num counts reference pictures: past a whole cycle of them the number waited for went by.
            references += 1;
            if references > max + 1 {
                return None;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ru(units: &[Option<RecoveryUnit>], start: usize) -> Option<usize> {
        let mut budget = usize::MAX;
        recovery_unit(units, start, &mut budget)
    }

    fn unit(frame_num: u32, cnt: Option<u32>) -> Option<RecoveryUnit> {
        Some(RecoveryUnit {
            idr: false,
            reference: true,
            intra: false,
            frame_num,
            frame_num_bits: 5,
            recovery_frame_cnt: cnt,
        })
    }

    #[test]
    fn an_intra_refresh_point_recovers_count_frames_later_across_the_frame_num_wrap() {
        // frame_num 18 with a count of 18 and 5-bit frame numbers: recovered at frame_num 4 (the 18th picture on).
        let units: Vec<_> = (0..40u32)
            .map(|i| unit((18 + i) % 32, (i % 25 == 0).then_some(18)))
            .collect();
        assert_eq!(ru(&units, 0), Some(18));
        assert_eq!(ru(&units, 25), None, "the stream ends first");
        // A unit without a recovery point, or an IDR picture, decodes from itself.
        assert_eq!(ru(&units, 3), Some(3));
        let mut idr = units.clone();
        idr[10] = idr[10].map(|u| RecoveryUnit { idr: true, ..u });
        assert_eq!(ru(&idr, 0), Some(10));
        // Non-reference pictures do not count, even with the frame number waited for.
        let mut b = units.clone();
        b[18] = b[18].map(|u| RecoveryUnit {
            reference: false,
            ..u
        });
        b[19] = unit(4, None);
        assert_eq!(ru(&b, 0), Some(19));
    }

    #[test]
    fn a_spent_budget_answers_the_keyframe_itself() {
        let units: Vec<_> = (0..40u32)
            .map(|i| unit((18 + i) % 32, (i == 0).then_some(18)))
            .collect();
        let mut budget = 10;
        assert_eq!(recovery_unit(&units, 0, &mut budget), Some(0));
        assert_eq!(budget, 0);
        let mut budget = 19;
        assert_eq!(recovery_unit(&units, 0, &mut budget), Some(18));
    }

    #[test]
    fn a_recovery_count_of_zero_is_the_picture_itself_and_unreadable_units_are_passed_over() {
        let units = vec![unit(7, Some(0)), None, unit(8, None)];
        assert_eq!(ru(&units, 0), Some(0));
        let units = vec![unit(7, Some(2)), None, unit(8, None), unit(9, None)];
        assert_eq!(ru(&units, 0), Some(3));
        assert_eq!(ru(&units, 1), Some(1));
    }

    #[test]
    fn the_recovery_point_message_is_found_among_other_sei_messages() {
        // An SEI unit: user data unregistered (type 5, 3 bytes), then a recovery point with recovery_frame_cnt 18
        // (ue: 000010011), exact_match 1, broken_link 0, changing_slice_group_idc 00, then the trailing bits.
        let mut w = crate::bitstream::sps::BitWriter::default();
        w.ue(18);
        w.u(4, 0b1000);
        let unit = w.nal(0); // header byte 0 (dropped below), then the payload bits
        let payload = &unit[1..];
        let mut sei = vec![0x06, 5, 3, 0xaa, 0xbb, 0xcc, 6, payload.len() as u8];
        sei.extend_from_slice(payload);
        sei.push(0x80);
        let mut annexb = vec![0, 0, 0, 1];
        annexb.extend_from_slice(&sei);
        annexb.extend_from_slice(&[0, 0, 1, 0x41, 0x9a]);
        assert_eq!(recovery_frame_cnt(NalFraming::AnnexB, &annexb), Some(18));
        assert_eq!(
            recovery_frame_cnt(NalFraming::AnnexB, &[0, 0, 1, 0x41, 0x9a]),
            None
        );
        // A payload size running past the unit.
        assert_eq!(
            recovery_frame_cnt(NalFraming::AnnexB, &[0, 0, 1, 0x06, 6, 40, 0x84]),
            None
        );
    }
}
