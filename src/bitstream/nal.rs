//! Just enough H.264 / HEVC NAL syntax to tell a non-reference picture from a reference one in an Annex-B packet,
//! so that pictures nobody asked for, and no other picture needs, can be dropped before they reach the decoder.

/// Which NAL header syntax a stream uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NalCodec {
    /// H.264: `nal_ref_idc` (2 bits) says whether a picture is a reference.
    H264,
    /// HEVC: the even VCL NAL unit types below 16 are sub-layer non-reference pictures.
    Hevc,
}

/// How NAL units are delimited in a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NalFraming {
    /// `00 00 01` start codes (Annex-B: MPEG-TS, raw streams, and what NVDEC is fed).
    AnnexB,
    /// Each unit preceded by its big-endian length in this many bytes (MP4/Matroska `avcC` / `hvcC`).
    LengthPrefixed(usize),
}

impl NalFraming {
    /// The framing of packets whose codec extradata is `extradata`: length-prefixed when it is an `avcC` /
    /// `hvcC` record (first byte 1; the length size is in byte 4 or 21), Annex-B otherwise.
    pub(crate) fn from_extradata(codec: NalCodec, extradata: &[u8]) -> NalFraming {
        let at = match codec {
            NalCodec::H264 => 4,
            NalCodec::Hevc => 21,
        };
        match (extradata.first(), extradata.get(at)) {
            (Some(1), Some(b)) => NalFraming::LengthPrefixed(usize::from(b & 3) + 1),
            _ => NalFraming::AnnexB,
        }
    }
}

/// The first byte of each NAL unit of a packet; `Err` for a unit whose length runs past the packet.
fn nal_headers(framing: NalFraming, data: &[u8]) -> impl Iterator<Item = Result<u8, ()>> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || match framing {
        NalFraming::AnnexB => {
            while i + 3 < data.len() {
                if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
                    i += 3;
                    return Some(Ok(data[i]));
                }
                i += 1;
            }
            None
        }
        NalFraming::LengthPrefixed(n) => {
            if i + n >= data.len() {
                return None;
            }
            let len = data[i..i + n]
                .iter()
                .fold(0usize, |a, &b| (a << 8) | usize::from(b));
            let header = data[i + n];
            i = i.saturating_add(n).saturating_add(len);
            Some(if len == 0 || i > data.len() {
                Err(())
            } else {
                Ok(header)
            })
        }
    })
}

/// Whether the packet has at least one slice NAL unit of `codec` and `slice_ok` holds for every slice's header
/// byte. A unit that runs past the packet makes it `false`.
fn every_slice(
    codec: NalCodec,
    framing: NalFraming,
    data: &[u8],
    slice_ok: impl Fn(u8) -> bool,
) -> bool {
    let mut slices = 0;
    for h in nal_headers(framing, data) {
        let Ok(h) = h else { return false };
        let is_slice = match codec {
            NalCodec::H264 => matches!(h & 0x1f, 1 | 5),
            NalCodec::Hevc => (h >> 1) & 0x3f < 32,
        };
        if is_slice {
            if !slice_ok(h) {
                return false;
            }
            slices += 1;
        }
    }
    slices > 0
}

/// Whether the packet's picture is a non-reference picture: it has at least one slice NAL unit and every slice is
/// marked non-reference. Anything unrecognised counts as a reference (never dropped).
pub(crate) fn is_disposable(codec: NalCodec, framing: NalFraming, data: &[u8]) -> bool {
    every_slice(codec, framing, data, |h| match codec {
        // nal_ref_idc 0.
        NalCodec::H264 => h & 0x60 == 0,
        // Sub-layer non-reference types: the even ones up to 14.
        NalCodec::Hevc => {
            let kind = (h >> 1) & 0x3f;
            kind <= 14 && kind % 2 == 0
        }
    })
}

/// Whether the packet holds an HEVC RASL picture (random access skipped leading: every slice NAL unit is of type
/// RASL_N or RASL_R). A RASL picture associated with the IRAP picture decoding starts from refers to pictures
/// before it, so decoders drop it.
pub(crate) fn is_hevc_rasl(framing: NalFraming, data: &[u8]) -> bool {
    every_slice(NalCodec::Hevc, framing, data, |h| {
        matches!((h >> 1) & 0x3f, 8 | 9)
    })
}

/// The NAL units of an Annex-B byte stream, without their start codes (trailing zero bytes of a unit belong to
/// the next start code and are dropped).
pub(crate) fn annexb_units(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 2 < data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut units = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(data.len(), |&n| n - 3);
        while end > s && data[end - 1] == 0 && k + 1 < starts.len() {
            end -= 1;
        }
        if end > s {
            units.push(&data[s..end]);
        }
    }
    units
}

/// The NAL units of a packet in `framing`, each starting with its header byte; a length-prefixed unit that runs
/// past the packet ends the list.
pub(crate) fn units(framing: NalFraming, data: &[u8]) -> Vec<&[u8]> {
    match framing {
        NalFraming::AnnexB => annexb_units(data),
        NalFraming::LengthPrefixed(n) => {
            let mut out = Vec::new();
            let mut i = 0;
            while i + n < data.len() {
                let len = data[i..i + n]
                    .iter()
                    .fold(0usize, |a, &b| (a << 8) | usize::from(b));
                let Some(end) = (i + n).checked_add(len).filter(|&e| e <= data.len()) else {
                    break;
                };
                if len > 0 {
                    out.push(&data[i + n..end]);
                }
                i = end;
            }
            out
        }
    }
}

/// Whether a NAL unit (first byte = its header) is a parameter set: H.264 SPS / PPS, HEVC VPS / SPS / PPS.
pub(crate) fn is_parameter_set(codec: NalCodec, unit: &[u8]) -> bool {
    let Some(&h) = unit.first() else { return false };
    match codec {
        NalCodec::H264 => matches!(h & 0x1f, 7 | 8),
        NalCodec::Hevc => matches!((h >> 1) & 0x3f, 32..=34),
    }
}

/// The parameter sets of an Annex-B packet, each behind a 4-byte start code, in stream order (empty when it has
/// none).
pub(crate) fn annexb_parameter_sets(codec: NalCodec, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for unit in annexb_units(data) {
        if is_parameter_set(codec, unit) {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(unit);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h264_ref_idc_decides() {
        // SPS, PPS, then a non-reference slice (nal_ref_idc 0, type 1).
        let nonref = [
            0, 0, 0, 1, 0x67, 0x42, 0, 0, 1, 0x68, 0xce, 0, 0, 1, 0x01, 0x9a,
        ];
        assert!(is_disposable(NalCodec::H264, NalFraming::AnnexB, &nonref));
        // A reference B/P slice (nal_ref_idc 2, type 1) and an IDR (type 5).
        assert!(!is_disposable(
            NalCodec::H264,
            NalFraming::AnnexB,
            &[0, 0, 1, 0x41, 0x9a]
        ));
        assert!(!is_disposable(
            NalCodec::H264,
            NalFraming::AnnexB,
            &[0, 0, 1, 0x65, 0x88]
        ));
        // No slice at all: keep.
        assert!(!is_disposable(
            NalCodec::H264,
            NalFraming::AnnexB,
            &[0, 0, 1, 0x06, 0x05]
        ));
    }

    #[test]
    fn hevc_sub_layer_non_reference_types() {
        // TRAIL_N (type 0): header bytes 0x00 0x01.
        assert!(is_disposable(
            NalCodec::Hevc,
            NalFraming::AnnexB,
            &[0, 0, 1, 0x00, 0x01, 0xaf]
        ));
        // TRAIL_R (type 1) and IDR_W_RADL (type 19).
        assert!(!is_disposable(
            NalCodec::Hevc,
            NalFraming::AnnexB,
            &[0, 0, 1, 0x02, 0x01, 0xaf]
        ));
        assert!(!is_disposable(
            NalCodec::Hevc,
            NalFraming::AnnexB,
            &[0, 0, 1, 0x26, 0x01, 0xaf]
        ));
        // RASL_N (type 8) after a prefix SEI (type 39).
        assert!(is_disposable(
            NalCodec::Hevc,
            NalFraming::AnnexB,
            &[0, 0, 1, 0x4e, 0x01, 5, 0, 0, 1, 0x10, 0x01, 0xaf]
        ));
    }

    #[test]
    fn parameter_sets_of_an_annexb_packet() {
        let packet = [
            0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x68, 0xce, 0, 0, 1, 0x65, 0x88, 0x80, 0,
        ];
        let units = annexb_units(&packet);
        assert_eq!(
            units,
            vec![
                &[0x67, 0x42][..],
                &[0x68, 0xce][..],
                &[0x65, 0x88, 0x80, 0][..]
            ]
        );
        assert_eq!(
            annexb_parameter_sets(NalCodec::H264, &packet),
            vec![0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x68, 0xce]
        );
        assert!(annexb_parameter_sets(NalCodec::H264, &packet[15..]).is_empty());
    }

    #[test]
    fn units_in_both_framings() {
        let annexb = [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3];
        assert_eq!(
            units(NalFraming::AnnexB, &annexb),
            vec![&[0x67, 1, 2][..], &[0x68, 3][..]]
        );
        let prefixed = [0, 3, 0x67, 1, 2, 0, 2, 0x68, 3, 0, 9, 0x65];
        assert_eq!(
            units(NalFraming::LengthPrefixed(2), &prefixed),
            vec![&[0x67, 1, 2][..], &[0x68, 3][..]],
            "the unit that runs past the end is left out"
        );
    }

    #[test]
    fn hevc_rasl_pictures() {
        // NAL header byte 0 is type << 1: RASL_N (8), RASL_R (9), CRA (21), TRAIL_R (1).
        let unit = |t: u8| vec![0, 0, 1, t << 1, 1, 0xaa];
        assert!(is_hevc_rasl(NalFraming::AnnexB, &unit(8)));
        assert!(is_hevc_rasl(
            NalFraming::AnnexB,
            &[unit(9), unit(9)].concat()
        ));
        assert!(!is_hevc_rasl(NalFraming::AnnexB, &unit(21)));
        assert!(!is_hevc_rasl(
            NalFraming::AnnexB,
            &[unit(8), unit(1)].concat()
        ));
        assert!(!is_hevc_rasl(NalFraming::AnnexB, &unit(35)), "no slice");
    }

    #[test]
    fn length_prefixed_packets() {
        // avcC with 4-byte lengths: a 2-byte SEI, then a non-reference slice.
        let avcc = [1u8, 0x64, 0, 0x1f, 0xff, 0xe1];
        let framing = NalFraming::from_extradata(NalCodec::H264, &avcc);
        assert_eq!(framing, NalFraming::LengthPrefixed(4));
        let pkt = [0, 0, 0, 2, 0x06, 0x05, 0, 0, 0, 3, 0x01, 0x9a, 0x00];
        assert!(is_disposable(NalCodec::H264, framing, &pkt));
        let pkt = [0, 0, 0, 3, 0x41, 0x9a, 0x00];
        assert!(!is_disposable(NalCodec::H264, framing, &pkt));
        // Truncated or garbage input never panics and is kept.
        assert!(!is_disposable(NalCodec::H264, framing, &[0, 0, 0, 9, 0x01]));
        assert!(!is_disposable(
            NalCodec::Hevc,
            NalFraming::LengthPrefixed(2),
            &[0xff]
        ));
        assert_eq!(
            NalFraming::from_extradata(NalCodec::Hevc, &[]),
            NalFraming::AnnexB
        );
    }
}
