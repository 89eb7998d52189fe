//! The HEVC sequence parameter set (ITU-T H.265 7.3.2.2 and Annex E.2.1), read up to the field and frame flags
//! of its VUI.

use super::{rbsp, read_vui_head, Bits, Sps};

/// NAL unit type of a sequence parameter set.
const SPS_NUT: u8 = 33;

/// The first SPS of an `hvcC` record (ISO/IEC 14496-15 `HEVCDecoderConfigurationRecord`: the extradata of HEVC
/// in MP4, MOV and Matroska), parsed; `None` for other extradata or an SPS this reader does not understand.
pub(crate) fn sps_from_hvcc(extradata: &[u8]) -> Option<Sps> {
    if extradata.len() < 23 || extradata[0] != 1 {
        return None;
    }
    let arrays = extradata[22];
    let mut pos = 23;
    for _ in 0..arrays {
        let nal_type = extradata.get(pos)? & 0x3f;
        let count = u16::from_be_bytes([*extradata.get(pos + 1)?, *extradata.get(pos + 2)?]);
        pos += 3;
        for _ in 0..count {
            let len = usize::from(u16::from_be_bytes([
                *extradata.get(pos)?,
                *extradata.get(pos + 1)?,
            ]));
            let nal = extradata.get(pos + 2..pos + 2 + len)?;
            if nal_type == SPS_NUT {
                return parse_nal(nal);
            }
            pos += 2 + len;
        }
    }
    None
}

/// Reads `profile_tier_level(1, max_sub_layers_minus1)`; FFmpeg's profile number and `general_level_idc`.
fn profile_tier_level(b: &mut Bits<'_>, max_sub_layers_minus1: u32) -> Option<(i32, i32)> {
    b.bits(2)?; // general_profile_space
    b.flag()?; // general_tier_flag
    let mut profile = b.bits(5)? as i32;
    for i in 0..32 {
        // As FFmpeg: a stream that leaves general_profile_idc 0 gets the last compatible profile.
        if b.flag()? && profile == 0 && i > 0 {
            profile = i;
        }
    }
    b.skip(4 + 43 + 1)?; // source and constraint flags
    let level = b.bits(8)? as i32;
    let mut present = Vec::new();
    for _ in 0..max_sub_layers_minus1 {
        present.push((b.flag()?, b.flag()?));
    }
    if max_sub_layers_minus1 > 0 {
        b.skip(2 * (8 - max_sub_layers_minus1 as usize))?;
    }
    for (profile_present, level_present) in present {
        if profile_present {
            b.skip(88)?;
        }
        if level_present {
            b.skip(8)?;
        }
    }
    Some((profile, level))
}

fn skip_scaling_list_data(b: &mut Bits<'_>) -> Option<()> {
    for size_id in 0..4 {
        let step = if size_id == 3 { 3 } else { 1 };
        for _ in (0..6).step_by(step) {
            if !b.flag()? {
                b.ue()?; // scaling_list_pred_matrix_id_delta
            } else {
                let coefs = 64.min(1 << (4 + (size_id << 1)));
                if size_id > 1 {
                    b.se()?; // scaling_list_dc_coef_minus8
                }
                for _ in 0..coefs {
                    b.se()?;
                }
            }
        }
    }
    Some(())
}

/// One short-term reference picture set: the POC deltas of its negative and positive pictures.
#[derive(Clone, Default)]
struct ShortTermRps {
    negative: Vec<i64>,
    positive: Vec<i64>,
}

impl ShortTermRps {
    fn len(&self) -> usize {
        self.negative.len() + self.positive.len()
    }
}

/// Reads `st_ref_pic_set(idx)` of the SPS (7.3.7, derivation 7.4.8), given the sets before it.
fn short_term_rps(b: &mut Bits<'_>, earlier: &[ShortTermRps]) -> Option<ShortTermRps> {
    let predicted = !earlier.is_empty() && b.flag()?;
    if !predicted {
        let negatives = b.ue()?;
        let positives = b.ue()?;
        if negatives > 16 || positives > 16 {
            return None;
        }
        let mut rps = ShortTermRps::default();
        let mut poc = 0i64;
        for _ in 0..negatives {
            poc -= i64::from(b.ue()?) + 1;
            b.flag()?; // used_by_curr_pic_s0_flag
            rps.negative.push(poc);
        }
        poc = 0;
        for _ in 0..positives {
            poc += i64::from(b.ue()?) + 1;
            b.flag()?; // used_by_curr_pic_s1_flag
            rps.positive.push(poc);
        }
        return Some(rps);
    }
    // In an SPS the reference set is always the previous one (delta_idx_minus1 is only in slice headers).
    let reference = earlier.last()?;
    let sign = b.flag()?;
    let abs = i64::from(b.ue()?) + 1;
    let delta = if sign { -abs } else { abs };
    let mut use_delta = Vec::with_capacity(reference.len() + 1);
    for _ in 0..=reference.len() {
        let used = b.flag()?;
        use_delta.push(used || b.flag()?);
    }
    let nneg = reference.negative.len();
    let mut rps = ShortTermRps::default();
    for (j, &d) in reference.positive.iter().enumerate().rev() {
        let poc = d + delta;
        if poc < 0 && use_delta[nneg + j] {
            rps.negative.push(poc);
        }
    }
    if delta < 0 && use_delta[reference.len()] {
        rps.negative.push(delta);
    }
    for (j, &d) in reference.negative.iter().enumerate() {
        let poc = d + delta;
        if poc < 0 && use_delta[j] {
            rps.negative.push(poc);
        }
    }
    for (j, &d) in reference.negative.iter().enumerate().rev() {
        let poc = d + delta;
        if poc > 0 && use_delta[j] {
            rps.positive.push(poc);
        }
    }
    if delta > 0 && use_delta[reference.len()] {
        rps.positive.push(delta);
    }
    for (j, &d) in reference.positive.iter().enumerate() {
        let poc = d + delta;
        if poc > 0 && use_delta[nneg + j] {
            rps.positive.push(poc);
        }
    }
    if rps.negative.len() > 16 || rps.positive.len() > 16 {
        return None;
    }
    Some(rps)
}

/// Parses an SPS NAL unit (its two header bytes included).
pub(crate) fn parse_nal(nal: &[u8]) -> Option<Sps> {
    if (nal.first()? >> 1) & 0x3f != SPS_NUT || nal.len() < 3 {
        return None;
    }
    let data = rbsp(&nal[2..]);
    let mut b = Bits::new(&data);
    b.bits(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = b.bits(3)?;
    if max_sub_layers_minus1 > 6 {
        return None;
    }
    b.flag()?; // sps_temporal_id_nesting_flag
    let (profile, level) = profile_tier_level(&mut b, max_sub_layers_minus1)?;
    b.ue()?; // sps_seq_parameter_set_id
    let chroma_format_idc = b.ue()?;
    if chroma_format_idc > 3 {
        return None;
    }
    let separate_colour_plane = chroma_format_idc == 3 && b.flag()?;
    let mut width = b.ue()?;
    let mut height = b.ue()?;
    if b.flag()? {
        let (l, r, t, bo) = (b.ue()?, b.ue()?, b.ue()?, b.ue()?);
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let sub_w = if matches!(chroma_array_type, 1 | 2) {
            2
        } else {
            1
        };
        let sub_h = if chroma_array_type == 1 { 2 } else { 1 };
        width = width.checked_sub(l.checked_add(r)?.checked_mul(sub_w)?)?;
        height = height.checked_sub(t.checked_add(bo)?.checked_mul(sub_h)?)?;
    }
    let bit_depth_luma = b.ue()? + 8;
    let bit_depth_chroma = b.ue()? + 8;
    if bit_depth_luma > 16 || bit_depth_chroma > 16 {
        return None;
    }
    let log2_max_poc_lsb = b.ue()? + 4;
    if log2_max_poc_lsb > 16 {
        return None;
    }
    let all_sub_layers = b.flag()?;
    let first = if all_sub_layers {
        0
    } else {
        max_sub_layers_minus1
    };
    let mut reorder = 0;
    for _ in first..=max_sub_layers_minus1 {
        b.ue()?; // sps_max_dec_pic_buffering_minus1
        reorder = b.ue()?;
        b.ue()?; // sps_max_latency_increase_plus1
    }
    for _ in 0..6 {
        b.ue()?; // block sizes and transform hierarchy depths
    }
    if b.flag()? && b.flag()? {
        skip_scaling_list_data(&mut b)?;
    }
    b.flag()?; // amp_enabled_flag
    b.flag()?; // sample_adaptive_offset_enabled_flag
    if b.flag()? {
        b.bits(8)?; // PCM sample bit depths
        b.ue()?;
        b.ue()?;
        b.flag()?;
    }
    let sets = b.ue()?;
    if sets > 64 {
        return None;
    }
    let mut rps = Vec::with_capacity(sets as usize);
    for _ in 0..sets {
        let next = short_term_rps(&mut b, &rps)?;
        rps.push(next);
    }
    if b.flag()? {
        let long_term = b.ue()?;
        if long_term > 32 {
            return None;
        }
        for _ in 0..long_term {
            b.bits(log2_max_poc_lsb)?;
            b.flag()?;
        }
    }
    b.flag()?; // sps_temporal_mvp_enabled_flag
    b.flag()?; // strong_intra_smoothing_enabled_flag
    let mut sps = Sps {
        profile,
        level,
        chroma_format_idc,
        separate_colour_plane,
        bit_depth_luma,
        bit_depth_chroma,
        width,
        height,
        progressive: true,
        sample_aspect_ratio: None,
        full_range: None,
        colour: None,
        chroma_location: None,
        reorder_frames: Some(reorder),
    };
    if b.flag()? {
        read_vui_head(&mut b, &mut sps)?;
        b.flag()?; // neutral_chroma_indication_flag
        sps.progressive = !b.flag()?; // field_seq_flag
    }
    Some(sps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_or_foreign_data_is_refused() {
        assert_eq!(sps_from_hvcc(&[]), None);
        assert_eq!(sps_from_hvcc(&[1; 22]), None);
        assert_eq!(parse_nal(&[0x42, 0x01, 0x01]), None);
        assert_eq!(parse_nal(&[0x40, 0x01, 0x0c]), None);
    }

    #[test]
    fn predicted_reference_picture_sets_follow_the_derivation() {
        // Reference set {-1, -2 | +1}; predicted with deltaRps = -1 and every picture kept: {-1, -2, -3 | } (the
        // +1 picture moves to 0 and is dropped).
        let reference = ShortTermRps {
            negative: vec![-1, -2],
            positive: vec![1],
        };
        // inter_ref_pic_set_prediction_flag 1, delta_rps_sign 1, abs_delta_rps_minus1 0 (ue "1"), then
        // used_by_curr_pic_flag 1 for each of the 4 entries: 1 1 1 1111.
        let data = [0b1111_1110];
        let mut b = Bits::new(&data);
        let rps = short_term_rps(&mut b, std::slice::from_ref(&reference)).unwrap();
        assert_eq!(rps.negative, vec![-1, -2, -3]);
        assert!(rps.positive.is_empty());
    }
}
