//! Every frame the CPU decoders return equals what the ffmpeg CLI decodes: bit-exact for native planes, within
//! one level for RGB against an independent reference conversion. Random access equals sequential decoding.

mod common;

use common::exact::{check_fixture, check_sparse_requests};
use vidloader::{Backend, Demuxer, FrameIndex, ProbeMode};

macro_rules! fixture_tests {
    ($($test:ident => $name:expr),* $(,)?) => { $( #[test] fn $test() { assert!(check_fixture($name, Backend::Cpu)); } )* };
}

fixture_tests! {
    h264_without_b_frames_gop30 => "h264_nob_gop30.mp4",
    h264_with_b_frames_gop30 => "h264_b3_gop30.mp4",
    h264_gop1_mkv => "h264_gop1.mkv",
    h264_gop250 => "h264_gop250.mp4",
    h264_open_gop => "h264_opengop.mkv",
    h264_odd_size_ntsc_rate => "h264_odd_642x362.mp4",
    h264_in_avi => "h264_b_in.avi",
    h264_full_range_bt709 => "h264_full_bt709.mp4",
    h264_yuv444 => "h264_444.mkv",
    h264_mpegts => "h264_ts.ts",
    h264_variable_frame_rate => "h264_vfr.mp4",
    hevc_8bit_b_frames => "hevc8_b.mp4",
    hevc_10bit_bt2020 => "hevc10.mkv",
    vp9_odd_size_webm => "vp9_odd_321x241.webm",
    mpeg4_part2_avi => "mpeg4.avi",
    mpeg4_part2_b_frames_avi_without_pts => "mpeg4_b.avi",
    mpeg4_part2_b_frames_mp4 => "mpeg4_b.mp4",
    mov_edit_list_hides_leading_frames => "edit_hidden_lead.mov",
    mp4_hevc_edit_list_hides_leading_frames => "edit_hidden_lead_hevc.mp4",
    mp4_empty_edit_delays_start => "edit_empty_delay.mp4",
    mp4_negative_composition_offsets => "ctts_v1.mp4",
    mp4_three_edits => "edit_three_edits.mp4",
    mpegts_33_bit_time_stamps_wrap => "h264_ts_wrap.ts",
    hevc_starting_at_a_cra_drops_its_rasl_pictures => "hevc_cra_start.ts",
    h264_mpegts_cut_inside_a_keyframe_group => "h264_ts_cut.ts",
    h264_intra_refresh_recovery_points => "h264_intra_refresh.ts",
    h264_intra_refresh_with_b_frames => "h264_intra_refresh_b.mkv",
    h264_intra_refresh_mpegts_cut_at_a_recovery_point => "h264_intra_refresh_cut.ts",
    mpeg2_mpegts_cut_inside_an_open_group => "mpeg2_ts_cut.ts",
    hevc_mpegts_cut_inside_an_open_group => "hevc_ts_cut.ts",
    h264_gaps_in_frame_num => "h264_frame_num_gaps.mp4",
    h264_veryfast_one_reference => "h264_veryfast_gop120.mp4",
    h264_strict_pyramid_four_references => "h264_pyramid_strict_ref4.mp4",
    h264_cavlc_four_slices => "h264_cavlc_slices.mkv",
    matroska_laced_blocks_without_time_stamps => "h264_laced_untimed.mkv",
    mp4_two_video_tracks_takes_ffmpegs_choice => "two_video_tracks.mp4",
    matroska_still_image_track_before_the_video => "still_track_first.mkv",
    vp8_webm => "vp8.webm",
    mpeg2_b_frames_in_mpegts => "mpeg2_b.ts",
    mpeg2_b_frames_in_a_vob_some_without_time_stamps => "mpeg2_b.vob",
    h264_high10_422 => "h264_high10_422.mkv",
    h264_interlaced => "h264_interlaced.mp4",
    h264_baseline_with_aspect_ratio => "h264_baseline_sar.mp4",
    hevc_444_full_range_scaling_lists => "hevc444_full_scaling.mkv",
    hevc_temporal_layers_with_aspect_ratio => "hevc_temporal_sar.mp4",
}

/// The decoder a fixture needs where a minimal FFmpeg build (the GPU bundle's static one) may lack it: `Some(name)`
/// when this build has none.
fn missing_decoder(fixture: &str) -> Option<&'static str> {
    let needs: &[&str] = match fixture {
        "mpeg1_b.mpg" | "mpeg1_b_untimed.mpg" => &["mpeg1video"],
        "mjpeg.avi" => &["mjpeg"],
        "av1.mkv" => &["libdav1d", "libaom-av1"],
        _ => return None,
    };
    needs
        .iter()
        .all(|d| ffmpeg_next::decoder::find_by_name(d).is_none())
        .then_some(needs[0])
}

/// Fixtures of codecs a minimal FFmpeg build may lack: there the test says "skipped: ...".
macro_rules! optional_decoder_tests {
    ($($test:ident => $name:expr),* $(,)?) => { $( #[test] fn $test() {
        ffmpeg_next::init().unwrap();
        if let Some(d) = missing_decoder($name) {
            eprintln!("skipped: this FFmpeg build has no {d} decoder");
            return;
        }
        assert!(check_fixture($name, Backend::Cpu));
    } )* };
}

optional_decoder_tests! {
    mpeg1_b_frames_in_mpeg_ps => "mpeg1_b.mpg",
    mpeg1_b_frames_in_mpeg_ps_some_without_time_stamps => "mpeg1_b_untimed.mpg",
    mjpeg_avi => "mjpeg.avi",
    av1_mkv => "av1.mkv",
}

/// The headers-only stream probe (no picture decoded) describes every fixture exactly as FFmpeg's full probe does,
/// and is the one used for H.264 in MP4 and Matroska; interlaced H.264, H.264 without an `avcC` record and other
/// codecs fall back to the full probe.
#[test]
fn headers_probe_equals_full_probe() {
    ffmpeg_next::init().unwrap();
    for f in common::FIXTURES {
        if missing_decoder(f.name).is_some() {
            continue;
        }
        let path = common::fixture(f.name);
        let fast = Demuxer::open_with_probe(&path, ProbeMode::Headers).unwrap();
        let full = Demuxer::open_with_probe(&path, ProbeMode::Full).unwrap();
        assert_eq!(full.probe(), ProbeMode::Full);
        assert_eq!(
            serde_json::to_value(fast.info()).unwrap(),
            serde_json::to_value(full.info()).unwrap(),
            "{}",
            f.name
        );
        // H.264 in MP4 and Matroska, except the interlaced one and the all-intra one (x264 leaves the reorder
        // depth out of an intra-only stream's SPS).
        let headers = [
            "h264_nob_gop30.mp4",
            "h264_b3_gop30.mp4",
            "h264_gop250.mp4",
            "h264_opengop.mkv",
            "h264_odd_642x362.mp4",
            "h264_full_bt709.mp4",
            "h264_444.mkv",
            "h264_vfr.mp4",
            "h264_high10_422.mkv",
            "h264_baseline_sar.mp4",
            "h264_b2_gop60_10s.mp4",
            "h264_veryfast_gop120.mp4",
            "h264_pyramid_strict_ref4.mp4",
            "h264_cavlc_slices.mkv",
            "h264_intra_refresh_b.mkv",
        ];
        let expected = if headers.contains(&f.name) {
            ProbeMode::Headers
        } else {
            ProbeMode::Full
        };
        assert_eq!(fast.probe(), expected, "{}", f.name);
    }
}

/// A file whose name and first bytes say it is MP4/MOV is opened with FFmpeg's MOV demuxer without running the
/// format probe; every fixture, under a name that allows that (`.mp4`, `.mov`) and under one that does not (`.bin`:
/// FFmpeg's full format probe), gives the same container, stream description and frame index: MP4 with edit lists
/// (hidden leading frames, empty edits, three edits), B-frames, negative composition offsets, MOV, and the other
/// containers (Matroska, AVI, MPEG-TS, WebM), which a `.mp4` or `.mov` name does not fool. A file cut short after
/// its first bytes fails in the same way under either name.
#[test]
fn container_named_by_its_first_bytes_equals_the_probed_one() {
    ffmpeg_next::init().unwrap();
    let dir = common::fixture_dir().join("named");
    std::fs::create_dir_all(&dir).unwrap();
    let names = common::FIXTURES
        .iter()
        .map(|f| f.name)
        .chain(common::containers::DERIVED.iter().map(|d| d.name))
        .filter(|n| missing_decoder(n).is_none());
    // A fixture that cannot be opened (one without parameter sets) must fail the same way under either name.
    type Described = Result<(serde_json::Value, serde_json::Value), String>;
    let describe = |path: &std::path::Path| -> Described {
        let mut demuxer = Demuxer::open(path).map_err(|e| format!("{e:?}"))?;
        let info = serde_json::to_value(demuxer.info()).unwrap();
        let index = FrameIndex::scan_demuxer(&mut demuxer).unwrap();
        Ok((info, serde_json::to_value(&index).unwrap()))
    };
    let mut mp4 = 0;
    for name in names {
        let src = common::fixture(name);
        let link = |ext: &str| {
            let path = dir.join(format!("{name}.{ext}"));
            let _ = std::fs::remove_file(&path);
            std::fs::hard_link(&src, &path).unwrap();
            path
        };
        let probed = describe(&link("bin"));
        for ext in ["mp4", "mov"] {
            let named = describe(&link(ext)).map_err(|e| e.replace(&format!(".{ext}\""), ".bin\""));
            assert_eq!(named, probed, "{name} as .{ext}");
        }
        let Ok(probed) = probed else { continue };
        if probed.0["container"]
            .as_str()
            .is_some_and(|c| c.starts_with("mov,"))
        {
            mp4 += 1;
            // Cut short: the first boxes, then nothing.
            let bytes = std::fs::read(&src).unwrap();
            let cut = &bytes[..bytes.len().min(600)];
            let error = |ext: &str| {
                let path = dir.join(format!("cut-{name}.{ext}"));
                std::fs::write(&path, cut).unwrap();
                let e = Demuxer::open(&path)
                    .and_then(|mut d| FrameIndex::scan_demuxer(&mut d).map(|_| ()));
                std::mem::discriminant(&e.unwrap_err())
            };
            assert_eq!(error("mp4"), error("bin"), "{name} cut short");
        }
    }
    assert!(mp4 >= 10, "{mp4} MP4/MOV fixtures");
}

/// A change of picture size mid-stream (two transport streams of different sizes, concatenated): `info` names the
/// frame where it happens, frames before it decode exactly, and asking for one after it is an `Unsupported` error
/// that names the frame (ffmpeg would scale them to the first size; we do not pretend to).
#[test]
fn size_change_mid_stream_is_an_error_that_names_the_frame() {
    let path = common::fixture("size_change.ts");
    let out = common::run(common::cli().args(["info", "--json"]).arg(&path));
    let info: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(info["num_frames"], 90);
    assert_eq!(
        info["segments"], 2,
        "the clock restarts at the second stream"
    );
    assert_eq!(
        info["size_change"],
        serde_json::json!({"frame": 45, "width": 160, "height": 120})
    );
    let opts = vidloader::DecoderOptions::default()
        .backend(Backend::Cpu)
        .color(vidloader::ColorType::Native);
    let mut dec = vidloader::SimpleDecoder::open(&path, opts).unwrap();
    let fb = common::planar_frame_bytes(192, 108, 1, 1, 1);
    let reference = common::reference_frames(&path, "yuv420p", fb);
    let batch = dec.get_batch_frames_by_index(&[0, 30, 44]).unwrap();
    let bytes = common::tensor_bytes(&batch.frames);
    for (k, i) in [0, 30, 44].into_iter().enumerate() {
        assert!(bytes[k * fb..(k + 1) * fb] == reference[i][..], "frame {i}");
    }
    let err = dec.get_batch_frames_by_index(&[46]).unwrap_err();
    assert!(
        matches!(&err, vidloader::Error::Unsupported(m) if m.contains("frame 46 is 160x120")),
        "{err}"
    );
    // The same error after two frames went to a writer thread (two decoding threads), and the decoder still
    // reads the frames before the change afterwards.
    let opts = vidloader::DecoderOptions::default()
        .backend(Backend::Cpu)
        .threads(2)
        .color(vidloader::ColorType::Native);
    let mut dec = vidloader::SimpleDecoder::open(&path, opts).unwrap();
    let err = dec.get_batch_frames_by_index(&[43, 44, 46]).unwrap_err();
    assert!(
        matches!(&err, vidloader::Error::Unsupported(m) if m.contains("frame 46 is 160x120")),
        "{err}"
    );
    let batch = dec.get_batch_frames_by_index(&[44, 0]).unwrap();
    let bytes = common::tensor_bytes(&batch.frames);
    assert!(bytes[..fb] == reference[44][..] && bytes[fb..] == reference[0][..]);
}

/// Sparse requests (a few frames out of long groups of pictures) replace the H.264 reference pictures no wanted
/// frame depends on by skip pictures, and every frame still equals ffmpeg's.
#[test]
fn unneeded_reference_pictures_are_skipped_and_frames_stay_exact() {
    let substituted = check_sparse_requests(Backend::Cpu);
    assert!(
        substituted > 50,
        "the veryfast stream's unneeded reference pictures were decoded ({substituted} skipped)"
    );
}
