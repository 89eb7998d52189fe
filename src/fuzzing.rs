//! The entry points of the fuzz targets (`fuzz/`, libFuzzer through cargo-fuzz) and of the stable-toolchain smoke
//! test (`tests/fuzz_smoke.rs`): each takes arbitrary bytes, drives one family of parsers the way the library
//! does, and returns what it got as far as; an `Err` is a fine outcome, a panic, hang or unbounded allocation is
//! a bug. Not part of the supported API (hidden from the docs); see `RELIABILITY.md`.
//!
//! Budgets, after FFmpeg's own demuxer fuzzer (`tools/target_dem_fuzzer.c`): inputs over
//! [`MAX_INPUT`](crate::fuzzing::MAX_INPUT) bytes are ignored, streams whose headers claim more than
//! [`MAX_SIDE`](crate::fuzzing::MAX_SIDE) pixels on a side or [`MAX_PIXELS`](crate::fuzzing::MAX_PIXELS) per
//! picture are refused before anything is decoded, at most [`MAX_DECODED`](crate::fuzzing::MAX_DECODED) frames are
//! asked for, and the last frame only when the stream has at most [`MAX_FRAMES`](crate::fuzzing::MAX_FRAMES) frames
//! (decoding it may mean decoding every frame).

use std::path::Path;

use crate::backend::Backend;
use crate::bitstream::nal::{self, NalCodec, NalFraming};
use crate::bitstream::poc::H264Poc;
use crate::bitstream::references::RefModel;
use crate::bitstream::skip_picture::skip_picture;
use crate::bitstream::{mpeg4, recovery, sps};
use crate::data::cache::{read_entry, record_of_json};
use crate::data::dataset::VideoDataset;
use crate::data::sampler::{
    parse_sampler, SampleRng, Sampled, Sampler, ShortVideoPolicy, TimeRange, Timeline, VideoView,
};
use crate::decode::options::DecoderOptions;
use crate::decode::simple::SimpleDecoder;
use crate::error::{Error, Result};
use crate::frame::color::ColorType;
use crate::io::demux::Demuxer;
use crate::io::index::FrameIndex;
use crate::io::source::Source;

/// Largest input the targets look at, in bytes.
pub const MAX_INPUT: usize = 1 << 20;
/// Largest picture side the decode target decodes.
pub const MAX_SIDE: u32 = 4096;
/// Largest picture (width x height) the decode target decodes.
pub const MAX_PIXELS: u64 = 4096 * 4096;
/// Most frames one decode-target input asks for.
pub const MAX_DECODED: usize = 4;
/// The decode target asks for the last frame only of streams with at most this many frames.
pub const MAX_FRAMES: usize = 256;

/// How far [`decode`] got with an input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeOutcome {
    /// Frames in the index (0 when the input did not open or index).
    pub frames: usize,
    /// Frames decoded.
    pub decoded: usize,
}

/// Target (a): bytes as a file in memory -> demuxer -> [`FrameIndex`] -> CPU decode of up to [`MAX_DECODED`]
/// frames (the first ones and the last), in a colour type picked from the input's length.
pub fn decode(data: &[u8]) -> Result<DecodeOutcome> {
    if data.len() > MAX_INPUT {
        return Ok(DecodeOutcome::default());
    }
    let source = Source::from_bytes(data.to_vec(), "fuzz-input");
    let mut demuxer = Demuxer::open(source.clone())?;
    let info = demuxer.info().clone();
    if info.width > MAX_SIDE
        || info.height > MAX_SIDE
        || u64::from(info.width) * u64::from(info.height) > MAX_PIXELS
    {
        return Err(Error::Unsupported(format!(
            "{}x{} is over the fuzzing budget",
            info.width, info.height
        )));
    }
    let index = FrameIndex::scan_demuxer(&mut demuxer)?;
    if let Err(why) = index.validate() {
        panic!("a scanned index is inconsistent: {why}");
    }
    check_index(&index);
    let color = [ColorType::Rgbp, ColorType::Rgb, ColorType::Native][data.len() % 3];
    let opts = DecoderOptions::default()
        .backend(Backend::Cpu)
        .threads(1)
        .color(color);
    let mut decoder = SimpleDecoder::open(source, opts)?;
    let n = decoder.len();
    let mut wanted: Vec<i64> = (0..n.min(MAX_DECODED - 1) as i64).collect();
    if n <= MAX_FRAMES && n > wanted.len() {
        wanted.push(n as i64 - 1);
    }
    let batch = decoder.get_batch_frames_by_index(&wanted)?;
    Ok(DecodeOutcome {
        frames: n,
        decoded: batch.indices.len(),
    })
}

/// What the index promises its users (the decoders, the samplers): every call in range answers without a panic,
/// frames are in presentation order (times increase; time stamps increase within a decode segment) and each decodes
/// from a keyframe packet at or before its own.
fn check_index(index: &FrameIndex) {
    let n = index.len();
    for i in 0..n {
        assert!(index.start_packet_of(i) <= index.packet_of(i));
        assert!(index.packet_of(i) < index.packets().len());
        assert!(index.packets()[index.start_packet_of(i)].key);
        if i > 0 {
            assert!(index.time_of(i - 1) <= index.time_of(i));
            if index.segment_count() == 1 {
                assert!(index.pts(i - 1) <= index.pts(i));
            }
        }
        let _ = index.frame_of_pts(index.pts(i));
        assert_eq!(
            index
                .frame_of_pts_from(index.pts(i), i)
                .map(|f| index.pts(f)),
            Some(index.pts(i))
        );
    }
    if n > 0 {
        let _ = (index.end_time(), index.measured_fps(), index.is_vfr());
        let _ = index.index_from_time(index.time_of(n / 2).max(0.0));
    }
    assert!(index.keyframes().iter().all(|&k| (k as usize) < n));
}

/// Target (b): the H.264 SPS reader (as a NAL unit and as an `avcC` record), the H.264 / HEVC NAL helpers in every
/// framing, the H.264 slice header reader with the reference model and the skip picture writer, and the MPEG-4
/// Part 2 picture-type reader. Returns the SPS's size when one parsed.
pub fn bitstream(data: &[u8]) -> Option<(u32, u32)> {
    if data.len() > MAX_INPUT {
        return None;
    }
    let _ = sps::rbsp(data);
    let _ = sps::h264::sps_from_avcc(data);
    let parsed = sps::h264::parse_nal(data);
    for codec in [NalCodec::H264, NalCodec::Hevc] {
        let framings = [
            NalFraming::AnnexB,
            NalFraming::LengthPrefixed(1),
            NalFraming::LengthPrefixed(2),
            NalFraming::LengthPrefixed(4),
            NalFraming::from_extradata(codec, data),
        ];
        for framing in framings {
            let _ = nal::is_disposable(codec, framing, data);
        }
        let units = nal::annexb_units(data);
        let sets = nal::annexb_parameter_sets(codec, data);
        let kept = units
            .iter()
            .filter(|u| nal::is_parameter_set(codec, u))
            .count();
        assert!(sets.len() >= 5 * kept);
    }
    // The recovery point SEI reader.
    for framing in [NalFraming::AnnexB, NalFraming::LengthPrefixed(4)] {
        let _ = recovery::recovery_frame_cnt(framing, data);
    }
    // The H.264 slice header reader, the reference model and the skip picture writer, on the bytes as a packet
    // (twice: the second time with the parameter sets the first carried).
    for framing in [NalFraming::AnnexB, NalFraming::LengthPrefixed(4)] {
        let mut poc = H264Poc::new(data);
        let mut model = RefModel::default();
        for _ in 0..2 {
            let (key, slices) = poc.picture(framing, data);
            model.push(poc.param_sets(), slices.as_deref(), key);
        }
        if let Some(graph) = model.finish(poc.param_sets()) {
            assert!(graph.is_consistent(2));
            let _ = graph.picture(1);
            let id = graph.free_pps_id().unwrap_or(255);
            let _ = skip_picture(graph.param_sets(), id, framing, data);
        }
    }
    let _ = mpeg4::mpeg4_vop(data);
    parsed.map(|s| (s.width, s.height))
}

/// Target (c): the manifest parsers (CSV and JSON lines), the sampler descriptions (every line of the input, run
/// on indexes of a few shapes, with the manifest's time ranges), and the metadata cache's entries. Returns how many
/// samplers parsed.
pub fn manifest(data: &[u8]) -> usize {
    if data.len() > MAX_INPUT {
        return 0;
    }
    let text = String::from_utf8_lossy(data);
    let mut ranges = vec![TimeRange::ALL];
    // The constant-rate timelines of rows that give their metadata (planned without a file).
    let mut given = Vec::new();
    for format in ["csv", "jsonl"] {
        if let Ok(set) = VideoDataset::from_manifest_text(&text, format, Path::new("/data")) {
            ranges.extend(
                set.entries()
                    .iter()
                    .take(4)
                    .map(|e| TimeRange::new(e.start, e.end)),
            );
            given.extend(set.entries().iter().filter_map(|e| e.meta).take(4));
        }
    }
    // A cache entry whole (header and JSON), and its JSON alone (the hash would stop most inputs).
    for rec in [read_entry(data), record_of_json(data)]
        .into_iter()
        .flatten()
    {
        check_index(&rec.index);
    }
    let indexes: Vec<FrameIndex> = [1usize, 7, 250]
        .iter()
        .filter_map(|&n| {
            let raw: Vec<_> = (0..n as i64)
                .map(|i| (Some(i * 512), Some(i * 512), i % 50 == 0, false, 512))
                .collect();
            FrameIndex::from_packets(&raw, (1, 12800)).ok()
        })
        .collect();
    let mut parsed = 0;
    let policies = [
        ShortVideoPolicy::Skip,
        ShortVideoPolicy::Wrap,
        ShortVideoPolicy::RepeatLast,
    ];
    for (n, line) in text.lines().take(16).enumerate() {
        let range = ranges[n % ranges.len()];
        let Ok(sampler) = parse_sampler(line, policies[n % policies.len()], range) else {
            continue;
        };
        parsed += 1;
        let timelines = indexes
            .iter()
            .map(Timeline::from)
            .chain(given.iter().map(|m| Timeline::Constant {
                frames: m.num_frames as usize,
                fps: m.fps,
            }));
        for timeline in timelines {
            let view = VideoView {
                path: Path::new("fuzz"),
                timeline,
                range,
            };
            let mut rng = <SampleRng as rand::SeedableRng>::seed_from_u64(n as u64);
            if let Ok(Sampled::Frames(frames)) = sampler.sample(&view, &mut rng) {
                assert_eq!(frames.len(), sampler.frames_per_sample());
                assert!(frames.iter().all(|&f| f < timeline.len()));
            }
        }
    }
    parsed
}
