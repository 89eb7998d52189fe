//! The H.264 SPS reader, the H.264 / HEVC NAL helpers and the MPEG-4 Part 2 picture-type reader.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = vidloader::fuzzing::bitstream(data);
});
