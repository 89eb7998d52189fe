//! Which pictures of a keyframe group reach the decoder as they are, which are left out, and which are replaced
//! by a skip picture: the H.264 reference structure of the index ([`RefGraph`]) says which pictures a wanted
//! frame depends on; the others before the group's last wanted frame need not be decoded.
//!
//! A non-reference picture nobody wants is dropped (by the lane, which drops such pictures with or without a
//! plan; the plan only counts on it). A reference picture that nothing wanted depends on is not
//! dropped (the decoder would then infer a frame for the gap in `frame_num`, and lose the picture's reference
//! marking, so later pictures could build other reference lists): it is replaced by a picture of skipped
//! macroblocks that carries its numbering and marking ([`skip_picture`]), which costs a copy instead of a decode.
//! Only pictures whose time as a reference ends within the group are replaced, so a later request that
//! continues decoding from here never meets a replaced picture in a reference list.

use std::ops::RangeInclusive;

use crate::bitstream::nal::NalFraming;
use crate::bitstream::references::{PictureRefs, RefGraph};
use crate::bitstream::skip_picture::skip_picture;
use crate::io::demux::Packet;
use crate::io::index::FrameIndex;

use super::lanes::Slots;

/// The packets `from..=last` of a group that go to the decoder as skip pictures.
pub(crate) struct GroupPlan {
    from: usize,
    substituted: Vec<bool>,
}

impl GroupPlan {
    /// Whether packet `at` goes to the decoder as a skip picture.
    pub(crate) fn substitutes(&self, at: usize) -> bool {
        at.checked_sub(self.from)
            .and_then(|k| self.substituted.get(k))
            .is_some_and(|&s| s)
    }

    /// Plans packets `packets` (decode order, the group's packets from where decoding stands to the last one a
    /// wanted frame needs). Frames at or after `last_frame`, and frames some slot wants, are decoded; so is every
    /// picture one of those refers to, directly or not. `None` when the index has no reference structure.
    pub(crate) fn new(
        index: &FrameIndex,
        slots: &Slots,
        packets: RangeInclusive<usize>,
        last_frame: usize,
    ) -> Option<GroupPlan> {
        let graph = index.references()?;
        let (from, last) = (*packets.start(), *packets.end());
        if from > last || last >= graph.len() {
            return None;
        }
        let mut substituted = vec![false; last + 1 - from];
        // Referred to by a picture that is decoded.
        let mut needed = vec![false; substituted.len()];
        // A decoded picture outside the model may refer to anything before it.
        let mut all_needed = false;
        for at in packets.rev() {
            let k = at - from;
            let unwanted = index.packets()[at]
                .frame
                .is_some_and(|f| (f as usize) < last_frame && !slots.contains_key(&(f as usize)));
            let candidate = unwanted && !needed[k] && !all_needed;
            match graph.picture(at) {
                // Not decoded: the lane drops a non-reference picture nobody wants before the last wanted frame.
                PictureRefs::Known {
                    reference: false, ..
                } if candidate => {}
                PictureRefs::Known {
                    reference: true,
                    live_until: Some(until),
                    substitutable: true,
                    ..
                } if candidate && until <= last => substituted[k] = true,
                PictureRefs::Known { refs, .. } => {
                    for &r in refs {
                        if let Some(n) = (r as usize).checked_sub(from) {
                            needed[n] = true;
                        }
                    }
                }
                PictureRefs::Unknown => all_needed = true,
            }
        }
        Some(GroupPlan { from, substituted })
    }
}

/// The skip picture that stands in for `packet` (same time stamps), or `None` where one cannot be written.
pub(crate) fn substitute(graph: &RefGraph, framing: NalFraming, packet: &Packet) -> Option<Packet> {
    let data = skip_picture(
        graph.param_sets(),
        graph.free_pps_id()?,
        framing,
        packet.data(),
    )?;
    Some(packet.with_data(&data))
}
