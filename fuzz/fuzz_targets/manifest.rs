//! The manifest parsers (CSV, JSON lines), sampler descriptions and metadata cache entries.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = vidloader::fuzzing::manifest(data);
});
