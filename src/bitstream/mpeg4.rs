//! MPEG-4 Part 2 (`mpeg4`, DivX/Xvid style) picture headers: the coding type of each picture in a packet, which
//! is all the frame index needs to put pictures of containers that store decode times only in display order.

/// MPEG-4 Part 2 picture coding types (`vop_coding_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VopType {
    I,
    P,
    B,
    S,
}

/// What an MPEG-4 Part 2 packet holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Vop {
    /// One picture of this type.
    Single(VopType),
    /// Several pictures in one packet ("packed bitstream", DivX style).
    Packed,
}

/// The picture(s) of an MPEG-4 Part 2 packet: the two bits after each VOP start code `00 00 01 B6`.
pub(crate) fn mpeg4_vop(data: &[u8]) -> Option<Vop> {
    let mut found = None;
    let mut count = 0;
    let mut i = 0;
    while i + 4 < data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 && data[i + 3] == 0xB6 {
            count += 1;
            found = Some(match data[i + 4] >> 6 {
                0 => VopType::I,
                1 => VopType::P,
                2 => VopType::B,
                _ => VopType::S,
            });
            i += 4;
        } else {
            i += 1;
        }
    }
    match count {
        0 => None,
        1 => found.map(Vop::Single),
        _ => Some(Vop::Packed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpeg4_vop_types_are_read_after_the_start_code() {
        assert_eq!(
            mpeg4_vop(&[0, 0, 1, 0xB0, 1, 0, 0, 1, 0xB6, 0b1000_0000]),
            Some(Vop::Single(VopType::B))
        );
        assert_eq!(
            mpeg4_vop(&[0, 0, 1, 0xB6, 0x40, 7]),
            Some(Vop::Single(VopType::P))
        );
        assert_eq!(
            mpeg4_vop(&[0, 0, 1, 0xB6, 0x40, 0, 0, 1, 0xB6, 0x80, 0]),
            Some(Vop::Packed)
        );
        assert_eq!(mpeg4_vop(&[0, 0, 1, 0xB3, 0]), None);
    }
}
