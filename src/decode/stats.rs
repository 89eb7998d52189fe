//! What decoding cost: [`DecodeWork`] (packets decoded and dropped, frames written, keyframe restarts) and
//! [`DecodeTimes`] (where the time went, summed over lanes).

use std::time::Duration;

/// How much decoding the requests took: packets sent to the decoder, packets dropped before it (non-reference
/// pictures nobody wanted), frames written into batch slots, and where the time went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeWork {
    /// Packets (pictures) sent to the decoder.
    pub packets_decoded: u64,
    /// Packets of unneeded non-reference pictures that never reached the decoder.
    pub packets_dropped: u64,
    /// Packets of H.264 reference pictures no wanted frame depended on, sent as skip pictures instead (a copy
    /// of a reference for the decoder, not a decode).
    pub packets_substituted: u64,
    /// Frames converted into batch slots (duplicates copied, not counted).
    pub frames_written: u64,
    /// Keyframe restarts (a seek or a read-ahead to a keyframe, then a decoder reset).
    pub restarts: u64,
    /// Time spent, summed over the lanes that ran at once (so it can exceed the wall time of a request).
    pub times: DecodeTimes,
}

/// Where a decoder's time went, summed over its lanes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeTimes {
    /// Reading packets from the demuxer.
    pub demux: Duration,
    /// Sending packets (and end of stream) to the decoder: parsing, and on NVDEC waiting for a free decode
    /// surface; on the CPU the decoding itself.
    pub decode: Duration,
    /// Taking decoded pictures out of the decoder (on the CPU, part of decoding happens here).
    pub receive: Duration,
    /// Converting wanted pictures into their slots, waiting for the GPU to finish each (NVDEC: map, kernel,
    /// synchronise, unmap). A CPU decoder with frame threads writes on a thread of its own while decoding goes
    /// on: its writing time is counted here as well as the time the lane waited to hand pictures over.
    pub write: Duration,
    /// Seeking and resetting the decoder for a keyframe restart.
    pub restart: Duration,
    /// Opening videos: the container and its stream probe, and the packet scan that builds the frame index
    /// (zero when the index came from the cache).
    pub open: Duration,
    /// Getting a decoder ready for a video: creating one, or taking one from the pool or the previous video and
    /// reconfiguring it (parallel lanes included).
    pub setup: Duration,
}

impl DecodeTimes {
    fn add(&mut self, o: DecodeTimes) {
        self.demux += o.demux;
        self.decode += o.decode;
        self.receive += o.receive;
        self.write += o.write;
        self.restart += o.restart;
        self.open += o.open;
        self.setup += o.setup;
    }

    fn since(&self, before: &DecodeTimes) -> DecodeTimes {
        DecodeTimes {
            demux: self.demux.saturating_sub(before.demux),
            decode: self.decode.saturating_sub(before.decode),
            receive: self.receive.saturating_sub(before.receive),
            write: self.write.saturating_sub(before.write),
            restart: self.restart.saturating_sub(before.restart),
            open: self.open.saturating_sub(before.open),
            setup: self.setup.saturating_sub(before.setup),
        }
    }
}

impl std::ops::AddAssign for DecodeWork {
    /// Adds another decoder's (or lane's) work: counts and times are summed.
    fn add_assign(&mut self, o: DecodeWork) {
        self.packets_decoded += o.packets_decoded;
        self.packets_dropped += o.packets_dropped;
        self.packets_substituted += o.packets_substituted;
        self.frames_written += o.frames_written;
        self.restarts += o.restarts;
        self.times.add(o.times);
    }
}

impl DecodeWork {
    /// The work done between `before` (an earlier reading of the same decoder) and `self`.
    pub fn since(&self, before: &DecodeWork) -> DecodeWork {
        DecodeWork {
            packets_decoded: self.packets_decoded.saturating_sub(before.packets_decoded),
            packets_dropped: self.packets_dropped.saturating_sub(before.packets_dropped),
            packets_substituted: self
                .packets_substituted
                .saturating_sub(before.packets_substituted),
            frames_written: self.frames_written.saturating_sub(before.frames_written),
            restarts: self.restarts.saturating_sub(before.restarts),
            times: self.times.since(&before.times),
        }
    }
}
