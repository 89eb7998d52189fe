//! The H.264 sequence parameter set (ITU-T H.264 7.3.2.1.1 and Annex E.1.1), read up to the reorder depth in its
//! VUI.

use super::{rbsp, Bits, Sps};

/// The first SPS of an `avcC` record (ISO/IEC 14496-15 `AVCDecoderConfigurationRecord`: the extradata of H.264
/// in MP4, MOV and Matroska), parsed; `None` for other extradata or an SPS this reader does not understand.
pub(crate) fn sps_from_avcc(extradata: &[u8]) -> Option<Sps> {
    if extradata.len() < 8 || extradata[0] != 1 || extradata[5] & 0x1f == 0 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([extradata[6], extradata[7]]));
    let nal = extradata.get(8..8 + len)?;
    parse_nal(nal)
}

/// FFmpeg's profile number of an H.264 SPS (`ff_h264_get_profile`): `profile_idc`, with the constrained
/// (baseline + constraint_set1) and intra (High 10/4:2:2/4:4:4 + constraint_set3) bits.
fn ffmpeg_profile(profile_idc: u8, constraint_flags: u8) -> i32 {
    let set = |i: u32| constraint_flags & (0x80 >> i) != 0;
    let mut profile = i32::from(profile_idc);
    match profile_idc {
        66 if set(1) => profile |= 1 << 9,
        110 | 122 | 244 if set(3) => profile |= 1 << 11,
        _ => {}
    }
    profile
}

/// Profiles whose SPS carries chroma format, bit depths and scaling matrices.
fn high_profile(profile_idc: u8) -> bool {
    matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

fn skip_scaling_list(b: &mut Bits<'_>, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            next = (last + b.se()? + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

fn skip_hrd_parameters(b: &mut Bits<'_>) -> Option<()> {
    let cpb_cnt = b.ue()?.checked_add(1)?;
    if cpb_cnt > 32 {
        return None;
    }
    b.bits(8)?; // bit_rate_scale, cpb_size_scale
    for _ in 0..cpb_cnt {
        b.ue()?;
        b.ue()?;
        b.flag()?;
    }
    b.bits(20)?; // four 5-bit delay lengths
    Some(())
}

/// Parses an SPS NAL unit (header byte included).
pub(crate) fn parse_nal(nal: &[u8]) -> Option<Sps> {
    if nal.first()? & 0x1f != 7 {
        return None;
    }
    let data = rbsp(&nal[1..]);
    let mut b = Bits::new(&data);
    let profile_idc = b.bits(8)? as u8;
    let constraint_flags = b.bits(8)? as u8;
    let level_idc = b.bits(8)? as u8;
    let sps_id = b.ue()?;
    if sps_id > 31 {
        return None;
    }
    let (mut chroma_format_idc, mut separate_colour_plane) = (1, false);
    let (mut bit_depth_luma, mut bit_depth_chroma) = (8, 8);
    if high_profile(profile_idc) {
        chroma_format_idc = b.ue()?;
        if chroma_format_idc > 3 {
            return None;
        }
        if chroma_format_idc == 3 {
            separate_colour_plane = b.flag()?;
        }
        bit_depth_luma = b.ue()?.checked_add(8)?;
        bit_depth_chroma = b.ue()?.checked_add(8)?;
        if bit_depth_luma > 14 || bit_depth_chroma > 14 {
            return None;
        }
        b.flag()?; // qpprime_y_zero_transform_bypass_flag
        if b.flag()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if b.flag()? {
                    skip_scaling_list(&mut b, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    let frame_num_bits = b.ue()?.checked_add(4).filter(|&n| n <= 16)?;
    let poc_type = b.ue()?;
    let mut poc_lsb_bits = 0;
    match poc_type {
        0 => {
            poc_lsb_bits = b.ue()?.checked_add(4).filter(|&n| n <= 16)?;
        }
        1 => {
            b.flag()?;
            b.se()?;
            b.se()?;
            let cycle = b.ue()?;
            if cycle > 255 {
                return None;
            }
            for _ in 0..cycle {
                b.se()?;
            }
        }
        2 => {}
        _ => return None,
    }
    let max_num_ref_frames = b.ue()?.min(16);
    let gaps_in_frame_num_allowed = b.flag()?;
    let width_mbs = b.ue()?.checked_add(1)?;
    let height_map_units = b.ue()?.checked_add(1)?;
    let frame_mbs_only = b.flag()?;
    if !frame_mbs_only {
        b.flag()?; // mb_adaptive_frame_field_flag
    }
    b.flag()?; // direct_8x8_inference_flag
    let height_mbs = height_map_units.checked_mul(if frame_mbs_only { 1 } else { 2 })?;
    let (mut width, mut height) = (width_mbs.checked_mul(16)?, height_mbs.checked_mul(16)?);
    if b.flag()? {
        let (l, r, t, bo) = (b.ue()?, b.ue()?, b.ue()?, b.ue()?);
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let crop_x = if matches!(chroma_array_type, 1 | 2) {
            2
        } else {
            1
        };
        let crop_y =
            (if chroma_array_type == 1 { 2 } else { 1 }) * if frame_mbs_only { 1 } else { 2 };
        width = width.checked_sub(l.checked_add(r)?.checked_mul(crop_x)?)?;
        height = height.checked_sub(t.checked_add(bo)?.checked_mul(crop_y)?)?;
    }
    let mut sps = Sps {
        profile: ffmpeg_profile(profile_idc, constraint_flags),
        level: i32::from(level_idc),
        chroma_format_idc,
        separate_colour_plane,
        bit_depth_luma,
        bit_depth_chroma,
        width,
        height,
        progressive: frame_mbs_only,
        sample_aspect_ratio: None,
        full_range: None,
        colour: None,
        chroma_location: None,
        reorder_frames: None,
        sps_id,
        frame_num_bits,
        poc_type,
        poc_lsb_bits,
        max_num_ref_frames,
        gaps_in_frame_num_allowed,
        frame_size_mbs: width_mbs.checked_mul(height_mbs)?,
    };
    if b.flag()? {
        read_vui(&mut b, &mut sps)?;
    }
    Some(sps)
}

/// Sample aspect ratios of `aspect_ratio_idc` 1..=16 (Table E-1).
const SAR_TABLE: [(u32, u32); 16] = [
    (1, 1),
    (12, 11),
    (10, 11),
    (16, 11),
    (40, 33),
    (24, 11),
    (20, 11),
    (32, 11),
    (80, 33),
    (18, 11),
    (15, 11),
    (64, 33),
    (160, 99),
    (4, 3),
    (3, 2),
    (2, 1),
];

fn read_vui(b: &mut Bits<'_>, sps: &mut Sps) -> Option<()> {
    if b.flag()? {
        let idc = b.bits(8)?;
        sps.sample_aspect_ratio = match idc {
            255 => Some((b.bits(16)?, b.bits(16)?)).filter(|&(w, h)| w > 0 && h > 0),
            1..=16 => Some(SAR_TABLE[idc as usize - 1]),
            _ => None,
        };
    }
    if b.flag()? {
        b.flag()?; // overscan_appropriate_flag
    }
    if b.flag()? {
        b.bits(3)?; // video_format
        sps.full_range = Some(b.flag()?);
        if b.flag()? {
            sps.colour = Some((b.bits(8)? as u8, b.bits(8)? as u8, b.bits(8)? as u8));
        }
    }
    if b.flag()? {
        let top = b.ue()?;
        b.ue()?;
        if top > 5 {
            return None;
        }
        sps.chroma_location = Some(top);
    }
    if b.flag()? {
        b.bits(32)?;
        b.bits(32)?;
        b.flag()?;
    }
    let nal_hrd = b.flag()?;
    if nal_hrd {
        skip_hrd_parameters(b)?;
    }
    let vcl_hrd = b.flag()?;
    if vcl_hrd {
        skip_hrd_parameters(b)?;
    }
    if nal_hrd || vcl_hrd {
        b.flag()?; // low_delay_hrd_flag
    }
    b.flag()?; // pic_struct_present_flag
    if b.flag()? {
        b.flag()?; // motion_vectors_over_pic_boundaries_flag
        b.ue()?;
        b.ue()?;
        b.ue()?;
        b.ue()?;
        let reorder = b.ue()?;
        let dpb = b.ue()?;
        if reorder > 16 || dpb > 16 {
            return None;
        }
        sps.reorder_frames = Some(reorder);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_or_foreign_data_is_refused() {
        assert_eq!(sps_from_avcc(&[]), None);
        assert_eq!(sps_from_avcc(&[0, 0, 0, 1, 0x67, 0x64, 0, 0x1f]), None);
        assert_eq!(parse_nal(&[0x67, 0x64, 0x00]), None);
        assert_eq!(parse_nal(&[0x68, 0xee, 0x3c, 0x80]), None);
    }

    /// An SPS NAL unit from a list of fields: `(value, None)` is an Exp-Golomb `ue(v)`, `(value, Some(n))` an
    /// `n`-bit field.
    fn sps_nal(fields: &[(u64, Option<u32>)]) -> Vec<u8> {
        let mut bits: Vec<bool> = Vec::new();
        for &(v, width) in fields {
            match width {
                Some(n) => bits.extend((0..n).rev().map(|i| (v >> i) & 1 == 1)),
                None => {
                    let n = 64 - (v + 1).leading_zeros() - 1;
                    bits.extend(std::iter::repeat_n(false, n as usize));
                    bits.extend((0..=n).rev().map(|i| ((v + 1) >> i) & 1 == 1));
                }
            }
        }
        bits.push(true); // rbsp stop bit
        let mut out = vec![0x67];
        out.extend(bits.chunks(8).map(|c| {
            c.iter()
                .enumerate()
                .fold(0u8, |a, (i, &b)| a | (u8::from(b) << (7 - i)))
        }));
        out
    }

    #[test]
    fn values_that_overflow_are_refused_not_panics() {
        // The largest ue(v) the reader accepts.
        let huge = (1u64 << 32) - 2;
        // A baseline SPS of one macroblock column and `height_minus1 + 1` map units, then the frame_mbs_only,
        // direct_8x8, cropping and VUI flags.
        let baseline = |height_minus1: u64, frame_mbs_only: u64| {
            let mut fields = vec![(66, Some(8)), (0, Some(8)), (30, Some(8))];
            fields.extend([(0, None), (0, None), (2, None), (0, None), (0, Some(1))]);
            fields.extend([(0, None), (height_minus1, None), (frame_mbs_only, Some(1))]);
            if frame_mbs_only == 0 {
                fields.push((0, Some(1))); // mb_adaptive_frame_field_flag
            }
            fields.extend([(1, Some(1)), (0, Some(1)), (0, Some(1))]);
            sps_nal(&fields)
        };
        // Field-coded with huge + 1 map units: the height in macroblocks overflows.
        assert_eq!(parse_nal(&baseline(huge, 0)), None);
        // High profile with a luma bit depth of huge + 8.
        let deep = sps_nal(&[
            (100, Some(8)),
            (0, Some(8)),
            (30, Some(8)),
            (0, None),
            (1, None),
            (huge, None),
        ]);
        assert_eq!(parse_nal(&deep), None);
        // A sane one of the same shape parses: 16x32, frame-coded.
        let sps = parse_nal(&baseline(1, 1)).expect("a valid SPS");
        assert_eq!((sps.width, sps.height), (16, 32));
    }
}
