//! Bytes as a video file in memory -> demuxer -> frame index -> CPU decode of a few frames, under size budgets.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = vidloader::fuzzing::decode(data);
});
