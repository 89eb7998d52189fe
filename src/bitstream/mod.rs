//! Readers of raw bitstream syntax, with no FFmpeg: NAL unit headers (H.264/HEVC), H.264 sequence parameter sets,
//! picture order counts and recovery points, MPEG-4 Part 2 and MPEG-1/2 picture headers. Everything here reads
//! bytes and returns plain values.

pub(crate) mod mpeg12;
pub(crate) mod mpeg4;
pub(crate) mod nal;
pub(crate) mod poc;
pub(crate) mod recovery;
pub(crate) mod references;
pub(crate) mod skip_picture;
pub(crate) mod slice_header;
pub(crate) mod sps;
