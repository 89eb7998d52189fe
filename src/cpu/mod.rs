//! Decoding on the CPU: libavcodec with frame threads (`decoder.rs`) and the conversion of a decoded frame into a
//! host slot (`convert.rs`: native planes, RGB, or crop + resize + normalisation in one pass).

pub(crate) mod convert;
pub(crate) mod decoder;
pub(crate) mod kernels;
pub(crate) mod rgb8;
