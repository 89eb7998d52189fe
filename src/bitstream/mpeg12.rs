//! MPEG-1 and MPEG-2 video picture headers: the picture type of a packet, for the display order of a stream whose
//! container leaves packets without presentation time stamps (an MPEG program stream puts one only on the PES
//! packet where a picture starts, so two small pictures in one PES packet leave the second without).

use super::mpeg4::{Vop, VopType};

/// The picture(s) of an MPEG-1/2 video packet, in the terms of [`Vop`]: the type of its picture (`00 00 01 00`,
/// then 10 bits of temporal reference and 3 of picture coding type; a D picture, MPEG-1's DC-only kind, counts as
/// intra). A packet holding the two field pictures of one frame (MPEG-2 picture structure 1 or 2 in each picture
/// coding extension) is one picture of its first field's type; any other packet with several pictures is
/// [`Vop::Packed`]. `None`: no picture header, or a type out of range.
pub(crate) fn mpeg12_picture(data: &[u8]) -> Option<Vop> {
    let mut first: Option<VopType> = None;
    let mut pictures = 0;
    let mut fields = 0;
    for i in memchr::memmem::find_iter(data, &[0, 0, 1]) {
        if i + 6 > data.len() {
            break;
        }
        match data[i + 3] {
            0x00 => {
                pictures += 1;
                if pictures == 1 {
                    first = match (data[i + 5] >> 3) & 7 {
                        1 | 4 => Some(VopType::I),
                        2 => Some(VopType::P),
                        3 => Some(VopType::B),
                        _ => return None,
                    };
                }
            }
            // Picture coding extension (extension id 8): picture_structure is the low two bits of its third byte
            // after the identifier.
            0xB5 if data[i + 4] >> 4 == 8 && i + 7 <= data.len() => {
                if matches!(data[i + 6] & 3, 1 | 2) {
                    fields += 1;
                }
            }
            _ => {}
        }
    }
    match pictures {
        0 => None,
        1 => first.map(Vop::Single),
        2 if fields == 2 => first.map(Vop::Single),
        _ => Some(Vop::Packed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A picture header of coding type `t` (temporal reference 5).
    fn picture(t: u8) -> Vec<u8> {
        vec![0, 0, 1, 0, 0x01, 0x40 | (t << 3), 0xFF, 0xF8]
    }

    /// A picture coding extension with picture structure `s`.
    fn coding_extension(s: u8) -> Vec<u8> {
        vec![0, 0, 1, 0xB5, 0x81, 0x11, 0xF0 | s, 0x80]
    }

    #[test]
    fn picture_types_are_read_from_the_picture_header() {
        let seq = [0u8, 0, 1, 0xB3, 0x14, 0x00, 0xF0, 0x13];
        for (t, want) in [
            (1, VopType::I),
            (2, VopType::P),
            (3, VopType::B),
            (4, VopType::I),
        ] {
            let mut data = seq.to_vec();
            data.extend(picture(t));
            data.extend([0, 0, 1, 1, 0x12, 0x34]);
            assert_eq!(mpeg12_picture(&data), Some(Vop::Single(want)), "type {t}");
        }
        assert_eq!(mpeg12_picture(&picture(0)), None);
        assert_eq!(mpeg12_picture(&picture(5)), None);
        assert_eq!(mpeg12_picture(&seq), None);
    }

    #[test]
    fn two_field_pictures_are_one_frame_and_two_frames_are_packed() {
        let mut fields = picture(1);
        fields.extend(coding_extension(1));
        fields.extend([0, 0, 1, 1, 0]);
        fields.extend(picture(2));
        fields.extend(coding_extension(2));
        fields.extend([0, 0, 1, 1, 0]);
        assert_eq!(mpeg12_picture(&fields), Some(Vop::Single(VopType::I)));

        let mut frames = picture(2);
        frames.extend(coding_extension(3));
        frames.extend(picture(3));
        frames.extend(coding_extension(3));
        assert_eq!(mpeg12_picture(&frames), Some(Vop::Packed));
    }
}
