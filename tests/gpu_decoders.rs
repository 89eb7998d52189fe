//! The decoders on NVDEC, on a GPU: every fixture bit-exact against the ffmpeg CLI (native planes) and within one
//! level of the reference conversion (RGB), parallel sessions and host output equal to one session, fused
//! crop/resize/normalize equal to the CPU path within a stated tolerance, decoder reuse across files through the
//! pool, the threaded decoder, memory that stays flat over 1,000 batches, the CLI with `--gpu`, and every path
//! told GPU 0 staying on GPU 0 (no context on another GPU; a missing GPU a typed error).
//!
//! Where there is no NVDEC GPU (or torch has no CUDA) every test prints "skipped: ..." and passes.

mod common;

use common::exact::{check_fixture, check_sparse_requests};
use common::*;
use tch::{Device, Kind, Tensor};
use vidloader::cuda::GpuContext;
use vidloader::{
    Backend, ColorType, CropRect, DecoderOptions, DecoderPool, FrameTransform, Normalize,
    SimpleDecoder, ThreadedDecoder, ThreadedOptions,
};

const NV: Backend = Backend::Nvdec(0);

/// Streams NVDEC may legitimately refuse (the H100 has no H.264 4:4:4 profile decode on every driver, and MPEG-4
/// part 2 support varies), and the file of several edits, which vidloader sends to the CPU (random access into
/// its last edit was not exact on NVDEC); every other fixture must decode.
const MAY_BE_UNSUPPORTED: &[&str] = &[
    "h264_444.mkv",
    "mpeg4.avi",
    "mpeg4_b.mp4",
    "mpeg2_b.ts",
    "edit_three_edits.mp4",
    "h264_laced_untimed.mkv",
];

fn check_on_nvdec(name: &str) {
    let Some(_gpu) = gpu() else { return };
    if !check_fixture(name, NV) {
        assert!(
            MAY_BE_UNSUPPORTED.contains(&name),
            "{name}: NVDEC must decode this stream"
        );
    }
}

macro_rules! nvdec_fixture_tests {
    ($($test:ident => $name:expr),* $(,)?) => { $( #[test] fn $test() { check_on_nvdec($name); } )* };
}

nvdec_fixture_tests! {
    nvdec_h264_without_b_frames_gop30 => "h264_nob_gop30.mp4",
    nvdec_h264_with_b_frames_gop30 => "h264_b3_gop30.mp4",
    nvdec_h264_gop1_mkv => "h264_gop1.mkv",
    nvdec_h264_gop250 => "h264_gop250.mp4",
    nvdec_h264_open_gop => "h264_opengop.mkv",
    nvdec_h264_odd_size_ntsc_rate => "h264_odd_642x362.mp4",
    nvdec_h264_in_avi => "h264_b_in.avi",
    nvdec_h264_full_range_bt709 => "h264_full_bt709.mp4",
    nvdec_h264_yuv444 => "h264_444.mkv",
    nvdec_h264_mpegts => "h264_ts.ts",
    nvdec_h264_variable_frame_rate => "h264_vfr.mp4",
    nvdec_hevc_8bit_b_frames => "hevc8_b.mp4",
    nvdec_hevc_10bit_bt2020 => "hevc10.mkv",
    nvdec_vp9_odd_size_webm => "vp9_odd_321x241.webm",
    nvdec_mpeg4_part2_avi => "mpeg4.avi",
    nvdec_mpeg4_part2_b_frames_mp4 => "mpeg4_b.mp4",
    nvdec_mov_edit_list_hides_leading_frames => "edit_hidden_lead.mov",
    nvdec_mp4_hevc_edit_list_hides_leading_frames => "edit_hidden_lead_hevc.mp4",
    nvdec_mp4_empty_edit_delays_start => "edit_empty_delay.mp4",
    nvdec_mp4_negative_composition_offsets => "ctts_v1.mp4",
    nvdec_mp4_three_edits => "edit_three_edits.mp4",
    nvdec_mpegts_33_bit_time_stamps_wrap => "h264_ts_wrap.ts",
    nvdec_hevc_starting_at_a_cra_drops_its_rasl_pictures => "hevc_cra_start.ts",
    nvdec_h264_mpegts_cut_inside_a_keyframe_group => "h264_ts_cut.ts",
    nvdec_h264_intra_refresh_recovery_points => "h264_intra_refresh.ts",
    nvdec_h264_intra_refresh_with_b_frames => "h264_intra_refresh_b.mkv",
    nvdec_h264_intra_refresh_mpegts_cut_at_a_recovery_point => "h264_intra_refresh_cut.ts",
    nvdec_h264_gaps_in_frame_num => "h264_frame_num_gaps.mp4",
    nvdec_h264_veryfast_one_reference => "h264_veryfast_gop120.mp4",
    nvdec_h264_strict_pyramid_four_references => "h264_pyramid_strict_ref4.mp4",
    nvdec_h264_cavlc_four_slices => "h264_cavlc_slices.mkv",
    nvdec_matroska_laced_blocks_without_time_stamps => "h264_laced_untimed.mkv",
    nvdec_mp4_two_video_tracks_takes_ffmpegs_choice => "two_video_tracks.mp4",
    nvdec_vp8_webm => "vp8.webm",
    nvdec_mpeg2_b_frames_in_mpegts => "mpeg2_b.ts",
}

/// Native reference frames of a 4:2:0 8-bit fixture.
fn reference_420(name: &str) -> (std::path::PathBuf, Vec<Vec<u8>>, usize) {
    let path = fixture(name);
    let dec = SimpleDecoder::open(&path, DecoderOptions::default().backend(Backend::Cpu)).unwrap();
    let info = dec.stream_metadata();
    let fb = planar_frame_bytes(info.width as usize, info.height as usize, 1, 1, 1);
    let reference = reference_frames(&path, &info.pixel_format, fb);
    (path, reference, fb)
}

fn assert_frames(name: &str, batch: &vidloader::FrameBatch, reference: &[Vec<u8>], fb: usize) {
    let bytes = tensor_bytes(&batch.frames);
    for (k, &i) in batch.indices.iter().enumerate() {
        assert!(
            bytes[k * fb..(k + 1) * fb] == reference[i][..],
            "{name}: frame {i} (slot {k}) differs from ffmpeg"
        );
    }
}

#[test]
fn auto_picks_nvdec_and_frames_stay_on_the_gpu() {
    let Some(_gpu) = gpu() else { return };
    let path = fixture("h264_b3_gop30.mp4");
    let mut dec = SimpleDecoder::open(&path, DecoderOptions::default()).unwrap();
    assert_eq!(dec.backend(), NV);
    let batch = dec.get_batch_frames(4).unwrap();
    assert_eq!(batch.frames.device(), Device::Cuda(0));
    assert_eq!(batch.frames.size(), vec![4, 3, 240, 320]);
}

/// Sequential reading in batches of every size, on B-frame streams: each batch exact, each batch starts where the
/// last one stopped (one restart in all), and no request decodes past the packet of its last frame to get it out of
/// the parser when it starts afresh (the pictures the parser holds back for display order are handed out once
/// decoded); one that continues from the last decodes at most the few pictures display order holds back.
#[test]
fn sequential_batches_decode_no_picture_past_their_last_frame() {
    let Some(_gpu) = gpu() else { return };
    for name in [
        "h264_b3_gop30.mp4",
        "h264_gop250.mp4",
        "hevc8_b.mp4",
        "h264_opengop.mkv",
    ] {
        let (path, reference, fb) = reference_420(name);
        let opts = DecoderOptions::default()
            .backend(NV)
            .color(ColorType::Native)
            .sessions(1);
        for batch_size in [1, 3, 4, 7, 16] {
            let mut dec = SimpleDecoder::open(&path, opts.clone()).unwrap();
            let index = dec.scanned_stream_metadata().clone();
            let mut next = 0;
            while next < reference.len() {
                let batch = dec.get_batch_frames(batch_size).unwrap();
                assert!(!batch.indices.is_empty(), "{name}: stopped at {next}");
                assert_eq!(batch.indices[0], next, "{name}: batches in a row");
                assert_frames(name, &batch, &reference, fb);
                next += batch.indices.len();
                let last = next - 1;
                let needed = (0..=last).map(|f| index.packet_of(f)).max().unwrap() + 1;
                let work = dec.decode_work();
                assert_eq!(
                    work.restarts, 1,
                    "{name}, batches of {batch_size}: one start"
                );
                // The first batch (a fresh start) decodes only what it needs; later ones, which continue from the
                // last, leave the pictures that display order holds back to the next (at most 4 in these files).
                let ahead = if next == batch.indices.len() { 0 } else { 4 };
                assert!(
                    work.packets_decoded as usize <= needed + ahead,
                    "{name}, batches of {batch_size}: {} packets decoded to give frames 0..={last}, which need {needed}",
                    work.packets_decoded
                );
            }
        }
    }
}

#[test]
fn parallel_sessions_and_host_output_equal_one_session() {
    let Some(_gpu) = gpu() else { return };
    for name in ["h264_b3_gop30.mp4", "hevc8_b.mp4", "h264_opengop.mkv"] {
        let (path, reference, fb) = reference_420(name);
        let n = reference.len() as i64;
        let mut wanted: Vec<i64> = (0..n).rev().step_by(3).collect();
        wanted.extend([0, n / 2, n - 1, n / 2, 1]);
        for (sessions, device_memory) in [(1, true), (8, true), (3, false), (0, true)] {
            let opts = DecoderOptions::default()
                .backend(NV)
                .color(ColorType::Native)
                .sessions(sessions)
                .use_device_memory(device_memory);
            let mut dec = SimpleDecoder::open(&path, opts).unwrap();
            let batch = dec.get_batch_frames_by_index(&wanted).unwrap();
            let want_device = if device_memory {
                Device::Cuda(0)
            } else {
                Device::Cpu
            };
            assert_eq!(batch.frames.device(), want_device);
            assert_frames(name, &batch, &reference, fb);
            // The same decoder again, in another order: lanes continue or restart correctly.
            let again: Vec<i64> = wanted.iter().rev().copied().collect();
            let batch = dec.get_batch_frames_by_index(&again).unwrap();
            assert_frames(name, &batch, &reference, fb);
        }
    }
}

#[test]
fn fused_crop_resize_normalize_matches_the_cpu_path() {
    let Some(_gpu) = gpu() else { return };
    let path = fixture("h264_b3_gop30.mp4");
    let indices = [0usize, 17, 44, 17, 74];
    let transform = FrameTransform {
        crop: Some(CropRect::centered(320, 240, 1, 1)),
        normalize: Some(Normalize::imagenet()),
    };
    for kind in [Kind::Float, Kind::Half, Kind::BFloat16] {
        let mut outs = Vec::new();
        for (backend, device) in [(Backend::Cpu, Device::Cpu), (NV, Device::Cuda(0))] {
            let mut dec =
                SimpleDecoder::open(&path, DecoderOptions::default().backend(backend)).unwrap();
            let mut out = Tensor::zeros([5, 3, 112, 112], (kind, device));
            dec.decode_frames_into(&indices, &mut out, &transform)
                .unwrap();
            outs.push(out.to_device(Device::Cpu).to_kind(Kind::Float));
        }
        // Tolerance: the kernel interpolates unrounded RGB and CPU decoding interpolates 8-bit RGB, so one level
        // (1/255) over the smallest std (0.224), plus the output type's rounding.
        let diff = (&outs[0] - &outs[1]).abs().max().double_value(&[]);
        let tol = match kind {
            Kind::Float => 0.025,
            Kind::Half => 0.03,
            _ => 0.05,
        };
        assert!(diff <= tol, "{kind:?}: GPU and CPU differ by {diff}");
    }
    // uint8 interleaved output at another size, into a host tensor (decoded on the GPU, copied at the end).
    let mut outs = Vec::new();
    for backend in [Backend::Cpu, NV] {
        let mut dec = SimpleDecoder::open(
            &path,
            DecoderOptions::default()
                .backend(backend)
                .color(ColorType::Rgb),
        )
        .unwrap();
        let mut out = Tensor::zeros([5, 90, 160, 3], (Kind::Uint8, Device::Cpu));
        dec.decode_frames_into(&indices, &mut out, &FrameTransform::identity())
            .unwrap();
        outs.push(out);
    }
    let d = max_abs_diff(&tensor_bytes(&outs[0]), &tensor_bytes(&outs[1]));
    assert!(d <= 2, "u8 resize: GPU and CPU differ by {d} levels");
}

#[test]
fn pool_reconfigures_one_session_across_files() {
    let Some(_gpu) = gpu() else { return };
    let files = ["h264_nob_gop30.mp4", "h264_odd_642x362.mp4", "h264_ts.ts"];
    let refs: Vec<_> = files.iter().map(|f| reference_420(f)).collect();
    let pool = DecoderPool::new(2);
    let opts = DecoderOptions::default()
        .backend(NV)
        .color(ColorType::Native)
        .sessions(1)
        .max_size(1920, 1080);
    let mut dec = SimpleDecoder::open_with_pool(&refs[0].0, opts, pool.clone()).unwrap();
    for round in 0..3 {
        for (k, (path, reference, fb)) in refs.iter().enumerate() {
            if round > 0 || k > 0 {
                dec.reconfigure(path).unwrap();
            }
            let n = reference.len() as i64;
            let batch = dec.get_batch_frames_by_index(&[n - 1, 0, n / 2]).unwrap();
            assert_frames(files[k], &batch, reference, *fb);
        }
    }
    let stats = pool.stats();
    assert_eq!(stats.misses, 1, "one session made, then reused: {stats:?}");
    assert!(stats.hits >= 8, "{stats:?}");
}

#[test]
fn threaded_decoder_runs_end_to_end() {
    let Some(_gpu) = gpu() else { return };
    let (path, reference, fb) = reference_420("h264_b3_gop30.mp4");
    let opts = ThreadedOptions {
        buffer_size: 16,
        batch_size: 8,
        decoder: DecoderOptions::default()
            .backend(NV)
            .color(ColorType::Native),
    };
    let mut dec = ThreadedDecoder::open(&path, opts, 0).unwrap();
    let mut seen = 0;
    loop {
        let batch = dec.get_batch_frames(5).unwrap();
        if batch.is_empty() {
            break;
        }
        assert_eq!(batch.frames.device(), Device::Cuda(0));
        assert_eq!(batch.indices[0], seen);
        assert_frames("threaded", &batch, &reference, fb);
        seen += batch.len();
    }
    assert_eq!(seen, reference.len());
}

/// GPU memory in use (device-wide), in MiB.
fn used_mib(ctx: &GpuContext) -> i64 {
    let (free, total) = ctx.memory_info().unwrap();
    ((total - free) >> 20) as i64
}

/// 1,000 batches of 4 random frames (restarts, seeks, parallel lanes): device memory after the first 100 and
/// after all of them must be the same within 8 MiB.
#[test]
fn gpu_memory_stays_flat_over_1000_batches() {
    let Some(_gpu) = gpu() else { return };
    let ctx = GpuContext::shared(0).unwrap();
    let path = fixture("h264_nob_gop30.mp4");
    for sessions in [1, 0] {
        let mut dec = SimpleDecoder::open(
            &path,
            DecoderOptions::default().backend(NV).sessions(sessions),
        )
        .unwrap();
        let n = dec.len() as i64;
        let mut used = Vec::new();
        let mut x: u64 = 7;
        for b in 0..1000 {
            let idx: Vec<i64> = (0..4)
                .map(|_| next_below(&mut x, n as u64) as i64)
                .collect();
            let batch = dec.get_batch_frames_by_index(&idx).unwrap();
            assert_eq!(batch.len(), 4);
            drop(batch);
            if b % 100 == 99 {
                used.push(used_mib(&ctx));
            }
        }
        eprintln!("sessions {sessions}: GPU memory in use every 100 batches (MiB): {used:?}");
        let growth = used[9] - used[0];
        assert!(
            growth < 8,
            "sessions {sessions}: GPU memory grew by {growth} MiB between batch 100 and 1000"
        );
    }
}

#[test]
fn cli_extract_and_info_take_gpu() {
    let Some(_gpu) = gpu() else { return };
    let path = fixture("h264_b3_gop30.mp4");
    let scratch = fixture_dir().join("scratch").join("gpu_cli");
    let _ = std::fs::remove_dir_all(&scratch);
    for color in ["native", "rgb"] {
        let mut dirs = Vec::new();
        for gpu in [None, Some("0")] {
            let dir = scratch.join(format!("{color}-{}", gpu.unwrap_or("cpu")));
            let mut cmd = cli();
            cmd.arg("extract")
                .arg(&path)
                .args(["--indices", "40,3,40,74", "--color", color, "--out"])
                .arg(&dir);
            if let Some(g) = gpu {
                cmd.args(["--gpu", g]);
            }
            run(&mut cmd);
            dirs.push(dir);
        }
        for i in [3, 40, 74] {
            let ext = if color == "native" { "yuv" } else { "ppm" };
            let a = std::fs::read(dirs[0].join(format!("{i}.{ext}"))).unwrap();
            let b = std::fs::read(dirs[1].join(format!("{i}.{ext}"))).unwrap();
            assert_eq!(a.len(), b.len());
            let d = max_abs_diff(&a, &b);
            let tol = if color == "native" { 0 } else { 1 };
            assert!(
                d <= tol,
                "extract {color} frame {i}: --gpu differs from the CPU by {d}"
            );
        }
    }
    let stdout = run(cli().arg("info").arg(&path).args(["--json", "--gpu", "0"]));
    let v: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    assert_eq!(v["num_frames"], 75);
    assert_eq!(v["backend"]["Nvdec"], 0);
}

/// Hybrid decoding: CPU workers beside one NVDEC worker give batches bit-identical to NVDEC alone (the CPU's
/// decoded planes go through the same conversion kernel), and they do take part.
#[test]
fn hybrid_loader_batches_equal_nvdec_only_batches() {
    let Some(_gpu) = gpu() else { return };
    use vidloader::synth::{write_dataset, SynthSpec};
    use vidloader::{DataLoader, Resize, UniformSampler, VideoDataset};
    let dir = fixture_dir().join("scratch/gpu_hybrid");
    let spec = SynthSpec {
        width: 160,
        height: 120,
        frames: 48,
        fps: 24,
        gop: 12,
        b_frames: 2,
    };
    write_dataset(&dir, &spec, 6).unwrap();
    let run = |cpu_workers: usize| {
        let ds = VideoDataset::from_manifest(dir.join("labels.csv")).unwrap();
        let loader = DataLoader::builder(ds)
            .device(Device::Cuda(0))
            .sampler(UniformSampler::new(4))
            .resize_mode(Resize::ShorterSideCrop {
                shorter: 56,
                width: 48,
                height: 48,
                random: true,
            })
            .dtype(Kind::Half)
            .normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
            .batch_size(4)
            .workers(1)
            .cpu_workers(cpu_workers)
            .warnings(false)
            .build()
            .unwrap();
        assert_eq!(loader.cpu_workers(), cpu_workers);
        let batches: Vec<Tensor> = loader
            .epoch(0)
            .map(|b| b.unwrap().frames.to_device(Device::Cpu))
            .collect();
        (batches, loader.summary())
    };
    let (nvdec_only, s0) = run(0);
    let (hybrid, s1) = run(4);
    assert_eq!(s0.cpu_samples, 0);
    assert!(s1.cpu_samples > 0, "the CPU workers decoded nothing: {s1}");
    assert_eq!(nvdec_only.len(), hybrid.len());
    for (k, (a, b)) in nvdec_only.iter().zip(&hybrid).enumerate() {
        assert!(
            a.equal(b),
            "batch {k}: hybrid differs from NVDEC only (max {})",
            (a.to_kind(Kind::Float) - b.to_kind(Kind::Float))
                .abs()
                .max()
                .double_value(&[])
        );
    }
}

/// What NVDEC cannot decode (AV1 on GPUs without AV1 NVDEC, MJPEG, MPEG-1) opens under `Auto` on the CPU of the
/// GPU build and decodes exactly: the GPU bundle's FFmpeg has these decoders.
#[test]
fn auto_decodes_on_the_cpu_the_files_whose_index_nvdec_cannot_follow() {
    let Some(_gpu) = gpu() else { return };
    for name in ["edit_three_edits.mp4", "h264_laced_untimed.mkv"] {
        let dec = SimpleDecoder::open(fixture(name), DecoderOptions::default()).unwrap();
        assert_eq!(
            dec.backend(),
            Backend::Cpu,
            "{name} must decode on the CPU under Auto"
        );
        match SimpleDecoder::open(fixture(name), DecoderOptions::default().backend(NV)) {
            Err(vidloader::Error::Unsupported(_)) => {}
            other => panic!(
                "{name}: Backend::Nvdec must refuse it, got {:?}",
                other.map(|d| d.backend())
            ),
        }
    }
}

#[test]
fn auto_decodes_what_nvdec_lacks_on_the_cpu() {
    let Some(_gpu) = gpu() else { return };
    for name in ["av1.mkv", "mjpeg.avi", "mpeg1_b.mpg"] {
        let dec = SimpleDecoder::open(fixture(name), DecoderOptions::default()).unwrap();
        if dec.backend() == NV {
            // A GPU with AV1 NVDEC takes AV1: then it must be exact there. (MPEG-1 and MJPEG stay on the CPU under
            // Auto: their inverse DCT is not specified bit for bit.)
            assert_eq!(name, "av1.mkv", "{name} must decode on the CPU under Auto");
            assert!(check_fixture(name, NV), "{name}: NVDEC must decode it");
        } else {
            assert_eq!(dec.backend(), Backend::Cpu, "{name}");
            assert!(check_fixture(name, Backend::Cpu), "{name}");
        }
    }
}

/// The devices whose primary context is inactive now: the ones a test must leave inactive.
fn idle_other_gpus(used: usize) -> Vec<usize> {
    (0..vidloader::cuda::device_count())
        .filter(|&d| d != used)
        .filter(|&d| matches!(vidloader::cuda::primary_context_active(d), Ok(false)))
        .collect()
}

/// Every path told `Device::Cuda(0)` / `Backend::Nvdec(0)` works on GPU 0 alone: `SimpleDecoder` (on a fresh
/// thread too, which binds GPU 0's context and no other), `PacketDecoder`, the `DataLoader` with hybrid CPU workers
/// (pinned staging on GPU 0), and encoding CUDA tensors. Tensors, streams and contexts all report device 0; on a
/// machine of several GPUs, no other GPU's primary context becomes active. A GPU that does not exist is a typed
/// error from every entry point, and asking for it activates no context on GPU 0.
#[test]
fn every_path_told_gpu_0_stays_on_gpu_0_and_a_missing_gpu_is_a_typed_error() {
    let Some(_gpu) = gpu() else { return };
    use vidloader::cuda::{current_device, primary_context_active, GpuContext};
    use vidloader::synth::{write_dataset, SynthSpec};
    use vidloader::{
        Codec, DataLoader, Demuxer, Encoder, EncoderBackend, EncoderOptions, Error, InputFormat,
        PacketDecoder, PacketDecoderOptions, PicFlags, Resize, UniformSampler, VideoDataset,
    };
    let count = vidloader::cuda::device_count();
    assert!(count >= 1);
    let others = idle_other_gpus(0);
    let gpu0_was_active = primary_context_active(0).unwrap();
    let path = fixture("h264_b3_gop30.mp4");

    // A GPU this machine lacks: typed errors, no panic, and no context on GPU 0 for it.
    let missing = count.max(7);
    let unavailable = |r: Result<(), Error>, what: &str| match r {
        Err(Error::GpuUnavailable(_)) => {}
        other => panic!("{what} on missing GPU {missing}: expected GpuUnavailable, got {other:?}"),
    };
    unavailable(
        GpuContext::shared(missing).map(|_| ()),
        "GpuContext::shared",
    );
    unavailable(
        primary_context_active(missing).map(|_| ()),
        "primary_context_active",
    );
    unavailable(
        SimpleDecoder::open(
            &path,
            DecoderOptions::default().backend(Backend::Nvdec(missing)),
        )
        .map(|_| ()),
        "SimpleDecoder",
    );
    let mut demuxer = Demuxer::open(&path).unwrap();
    let opts = PacketDecoderOptions {
        gpu: missing,
        ..Default::default()
    };
    unavailable(
        PacketDecoder::new(&mut demuxer, opts).map(|_| ()),
        "PacketDecoder",
    );
    let dir = fixture_dir().join("scratch/gpu_devices");
    let spec = SynthSpec {
        width: 160,
        height: 120,
        frames: 24,
        fps: 24,
        gop: 12,
        b_frames: 2,
    };
    write_dataset(&dir, &spec, 6).unwrap();
    let ds = VideoDataset::from_manifest(dir.join("labels.csv")).unwrap();
    unavailable(
        DataLoader::builder(ds)
            .device(Device::Cuda(missing))
            .warnings(false)
            .build()
            .map(|_| ()),
        "DataLoader",
    );
    if !gpu0_was_active {
        assert!(
            matches!(primary_context_active(0), Ok(false)),
            "asking for missing GPU {missing} made a context on GPU 0"
        );
    }

    // SimpleDecoder, on this thread and on a fresh one.
    let gpu0 = GpuContext::shared(0).unwrap();
    let mut dec = SimpleDecoder::open(&path, DecoderOptions::default().backend(NV)).unwrap();
    assert_eq!(dec.backend(), NV);
    assert_eq!(dec.device(), Device::Cuda(0));
    let batch = dec.get_batch_frames(4).unwrap();
    assert_eq!(batch.frames.device(), Device::Cuda(0));
    assert_eq!(current_device(), Some(0));
    let p = path.clone();
    let on_thread = std::thread::spawn(move || {
        assert_eq!(current_device(), None, "a fresh thread has no context");
        let mut dec = SimpleDecoder::open(&p, DecoderOptions::default().backend(NV)).unwrap();
        let frames = dec.get_batch_frames(2).unwrap().frames;
        (frames.device(), current_device())
    })
    .join()
    .unwrap();
    assert_eq!(on_thread, (Device::Cuda(0), Some(0)));

    // PacketDecoder.
    let mut demuxer = Demuxer::open(&path).unwrap();
    let mut pd = PacketDecoder::new(&mut demuxer, PacketDecoderOptions::default()).unwrap();
    assert_eq!(pd.gpu().ordinal(), 0);
    assert_eq!(pd.gpu().cu_context(), gpu0.cu_context());
    let mut decoded = Vec::new();
    while let Some(pkt) = demuxer.read_packet().unwrap() {
        decoded.extend(pd.decode(&pkt).unwrap());
        if decoded.len() >= 4 {
            break;
        }
    }
    assert!(!decoded.is_empty());
    assert!(decoded.iter().all(|f| f.frame.device() == Device::Cuda(0)));

    // DataLoader with hybrid CPU workers (their pinned staging buffers and streams are GPU 0's).
    let ds = VideoDataset::from_manifest(dir.join("labels.csv")).unwrap();
    let loader = DataLoader::builder(ds)
        .device(Device::Cuda(0))
        .sampler(UniformSampler::new(4))
        .resize_mode(Resize::Fixed {
            width: 64,
            height: 48,
        })
        .batch_size(2)
        .workers(1)
        .cpu_workers(2)
        .warnings(false)
        .build()
        .unwrap();
    assert_eq!(loader.device(), Device::Cuda(0));
    for b in loader.epoch(0) {
        let b = b.unwrap();
        assert_eq!(b.frames.device(), Device::Cuda(0));
        assert_eq!(b.labels.device(), Device::Cuda(0));
    }

    // Encoding CUDA tensors: NVENC on GPU 0 where it opens, else the software encoder (CUDA input either way).
    let rgb = SimpleDecoder::open(
        &path,
        DecoderOptions::default().backend(NV).color(ColorType::Rgb),
    )
    .unwrap()
    .get_batch_frames(3)
    .unwrap()
    .frames;
    assert_eq!(rgb.device(), Device::Cuda(0));
    let (h, w) = (rgb.size()[1] as u32, rgb.size()[2] as u32);
    let nvenc = EncoderOptions {
        codec: Codec::H264,
        backend: EncoderBackend::Nvenc(0),
        ..Default::default()
    };
    let mut enc = Encoder::new(w, h, InputFormat::Rgb, nvenc)
        .or_else(|_| {
            let sw = EncoderOptions {
                codec: Codec::H264,
                backend: EncoderBackend::Software,
                ..Default::default()
            };
            Encoder::new(w, h, InputFormat::Rgb, sw)
        })
        .unwrap();
    let mut bytes = 0;
    for i in 0..3 {
        let flags = PicFlags {
            eos: i == 2,
            ..Default::default()
        };
        for p in enc.encode(&rgb.get(i), flags, &[]).unwrap() {
            bytes += p.data.len();
        }
    }
    assert!(bytes > 0, "{}: no packets", enc.backend_note());

    // Nothing above touched another GPU.
    let woke: Vec<usize> = others
        .into_iter()
        .filter(|&d| !matches!(primary_context_active(d), Ok(false)))
        .collect();
    assert!(
        woke.is_empty(),
        "work on GPU 0 activated the primary context of GPU(s) {woke:?}"
    );
}

/// Sparse requests on NVDEC: the H.264 reference pictures no wanted frame depends on go to the parser as skip
/// pictures, and every frame still equals ffmpeg's.
#[test]
fn nvdec_unneeded_reference_pictures_are_skipped_and_frames_stay_exact() {
    let Some(_gpu) = gpu() else { return };
    let substituted = check_sparse_requests(NV);
    assert!(
        substituted > 50,
        "the veryfast stream's unneeded reference pictures were decoded ({substituted} skipped)"
    );
}
