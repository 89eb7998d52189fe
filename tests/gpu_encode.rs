//! The encode half on a GPU: frames that live on the GPU (NV12 bytes, and the NVDEC decoder's own RGB batches)
//! encoded by the software encoders and decoded back on NVDEC within a PSNR floor; SEI written by the encoder read
//! back by NVDEC's parser through `PacketDecoder`, the same messages as `read_sei` finds on the CPU; NVENC asked
//! for on a GPU without it refused in one typed line, and `EncoderBackend::Auto` falling back to libx264 with a
//! note that says why; the transcoder decoding on NVDEC.
//!
//! Where there is no NVDEC GPU (or torch has no CUDA) every test prints "skipped: ..." and passes, unless
//! `VIDLOADER_REQUIRE_GPU=1` is set: then it fails.

mod common;

use std::path::{Path, PathBuf};

use common::encode::software;
use common::*;
use tch::{Device, Kind, Tensor};
use vidloader::nvdec::SeiMessage;
use vidloader::{
    read_sei, Backend, Codec, ColorType, DecoderOptions, Demuxer, Encoder, EncoderBackend,
    EncoderOptions, Error, InputFormat, PacketDecoder, PacketDecoderOptions, PicFlags, Sei,
    SimpleDecoder, TranscodeOptions, Transcoder, VideoWriter,
};

const NV: Backend = Backend::Nvdec(0);
const CUDA: Device = Device::Cuda(0);
/// The source: 320x240 testsrc2, H.264 without B-frames, 75 frames.
const SOURCE: &str = "h264_nob_gop30.mp4";
const W: i64 = 320;
const H: i64 = 240;
/// Frames encoded per round trip.
const N: i64 = 30;
/// The UUID x265 puts in front of every user-data-unregistered SEI it writes.
const X265_UUID: [u8; 16] = common::encode::X265_UUID;

/// Output files of these tests (under the fixture folder's scratch space, which is writable on the GPU machine).
fn out_dir() -> PathBuf {
    let d = fixture_dir().join("scratch").join("gpu_encode");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// PSNR of two byte vectors of equal length (99 dB when equal).
fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mse = a
        .iter()
        .zip(b)
        .map(|(x, y)| {
            let d = f64::from(*x) - f64::from(*y);
            d * d
        })
        .sum::<f64>()
        / a.len() as f64;
    if mse == 0.0 {
        99.0
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

/// The first `N` frames of the source decoded on NVDEC as `color`, a CUDA batch.
fn source_on_gpu(color: ColorType) -> Tensor {
    let mut d = SimpleDecoder::open(
        fixture(SOURCE),
        DecoderOptions::default().color(color).backend(NV),
    )
    .unwrap();
    let batch = d.get_range(0, N as usize, 1).unwrap();
    assert_eq!(batch.frames.device(), CUDA, "NVDEC batches stay on the GPU");
    batch.frames
}

/// Every frame of `path` decoded on NVDEC as `color`, a CUDA batch.
fn decode_on_nvdec(path: &Path, color: ColorType) -> Tensor {
    let mut d = SimpleDecoder::open(path, DecoderOptions::default().color(color).backend(NV))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let n = d.len();
    let batch = d.get_range(0, n, 1).unwrap();
    assert_eq!(batch.frames.device(), CUDA);
    batch.frames
}

/// yuv420p frame bytes (a CUDA tensor) as NV12 bytes, on the GPU: the Y plane, then U and V interleaved.
fn nv12_of_i420(f: &Tensor) -> Tensor {
    let (y, c) = (W * H, (W / 2) * (H / 2));
    let u = f.narrow(0, y, c);
    let v = f.narrow(0, y + c, c);
    let uv = Tensor::stack(&[u, v], 1).reshape([-1]);
    Tensor::cat(&[f.narrow(0, 0, y), uv], 0)
}

/// Luma PSNR per frame between two `[N, bytes]` yuv420p batches (any device); returns the lowest.
fn min_luma_psnr(what: &str, a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "{what}: batch shapes");
    let (a, b) = (tensor_bytes(a), tensor_bytes(b));
    let fb = a.len() / N as usize;
    let y = (W * H) as usize;
    let worst = (0..N as usize)
        .map(|i| psnr(&a[i * fb..i * fb + y], &b[i * fb..i * fb + y]))
        .fold(f64::INFINITY, f64::min);
    eprintln!("{what}: lowest luma PSNR {worst:.2} dB over {N} frames");
    worst
}

#[test]
fn cuda_nv12_and_rgb_frames_encode_and_decode_back_on_nvdec() {
    let Some(_gpu) = gpu() else { return };
    let i420 = source_on_gpu(ColorType::Native);
    assert_eq!(i420.size(), [N, W * H * 3 / 2]);

    // NV12 bytes on the GPU into the raw-stream Encoder (H.264, no B-frames), read back through PacketDecoder.
    let path = out_dir().join("nv12_cuda.h264");
    let mut enc = Encoder::new(
        W as u32,
        H as u32,
        InputFormat::Nv12,
        EncoderOptions {
            bf: Some(0),
            ..software(Codec::H264)
        },
    )
    .unwrap();
    let mut stream = Vec::new();
    for i in 0..N {
        let nv12 = nv12_of_i420(&i420.get(i));
        assert_eq!(nv12.device(), CUDA);
        let flags = PicFlags {
            eos: i == N - 1,
            ..Default::default()
        };
        for p in enc.encode(&nv12, flags, &[]).unwrap() {
            stream.extend_from_slice(&p.data);
        }
    }
    std::fs::write(&path, &stream).unwrap();
    let mut demuxer = Demuxer::open(&path).unwrap();
    let mut dec = PacketDecoder::new(
        &mut demuxer,
        PacketDecoderOptions {
            color: ColorType::Native,
            ..Default::default()
        },
    )
    .unwrap();
    let mut frames = Vec::new();
    while let Some(p) = demuxer.read_packet().unwrap() {
        frames.extend(dec.decode(&p).unwrap());
    }
    frames.extend(dec.flush().unwrap());
    assert_eq!(
        frames.len(),
        N as usize,
        "frames decoded from the raw stream"
    );
    let back = Tensor::stack(
        &frames
            .iter()
            .map(|f| f.frame.shallow_clone())
            .collect::<Vec<_>>(),
        0,
    );
    assert!(min_luma_psnr("NV12 (CUDA) -> libx264 raw -> NVDEC", &i420, &back) > 35.0);

    // NV12 on the GPU into a VideoWriter (HEVC in Matroska), decoded back by SimpleDecoder on NVDEC.
    let path = out_dir().join("nv12_cuda_hevc.mkv");
    let mut w = VideoWriter::create(
        &path,
        W as u32,
        H as u32,
        InputFormat::Nv12,
        software(Codec::Hevc),
    )
    .unwrap();
    for i in 0..N {
        w.write(&nv12_of_i420(&i420.get(i))).unwrap();
    }
    assert_eq!(w.finish().unwrap().frames, N as u64);
    let back = decode_on_nvdec(&path, ColorType::Native);
    assert!(min_luma_psnr("NV12 (CUDA) -> libx265 mkv -> NVDEC", &i420, &back) > 35.0);

    // The decoder's own RGB batch, [H, W, 3] uint8 on the GPU, into a VideoWriter (H.264 in MP4), decoded back to
    // RGB on NVDEC. RGB -> 4:2:0 -> RGB loses chroma detail: the floor is lower than for luma.
    let rgb = source_on_gpu(ColorType::Rgb);
    assert_eq!(rgb.size(), [N, H, W, 3]);
    let path = out_dir().join("rgb_cuda.mp4");
    let mut w = VideoWriter::create(
        &path,
        W as u32,
        H as u32,
        InputFormat::Rgb,
        software(Codec::H264),
    )
    .unwrap();
    for i in 0..N {
        let f = rgb.get(i);
        assert_eq!((f.device(), f.kind()), (CUDA, Kind::Uint8));
        w.write(&f).unwrap();
    }
    assert_eq!(w.finish().unwrap().frames, N as u64);
    let back = decode_on_nvdec(&path, ColorType::Rgb);
    assert_eq!(back.size(), rgb.size());
    let (a, b) = (tensor_bytes(&rgb), tensor_bytes(&back));
    let fb = (W * H * 3) as usize;
    let worst = (0..N as usize)
        .map(|i| psnr(&a[i * fb..(i + 1) * fb], &b[i * fb..(i + 1) * fb]))
        .fold(f64::INFINITY, f64::min);
    eprintln!("RGB (CUDA) -> libx264 mp4 -> NVDEC RGB: lowest PSNR {worst:.2} dB over {N} frames");
    assert!(worst > 28.0, "RGB round trip: {worst:.2} dB");
}

/// The type-5 messages of each frame that carry `want` (our UUID and text), as NVDEC's parser reports them.
fn nvdec_sei(path: &Path) -> Vec<Vec<SeiMessage>> {
    let mut demuxer = Demuxer::open(path).unwrap();
    let mut dec = PacketDecoder::new(
        &mut demuxer,
        PacketDecoderOptions {
            extract_sei: true,
            ..Default::default()
        },
    )
    .unwrap();
    let mut frames = Vec::new();
    while let Some(p) = demuxer.read_packet().unwrap() {
        frames.extend(dec.decode(&p).unwrap());
    }
    frames.extend(dec.flush().unwrap());
    frames.into_iter().map(|f| f.sei).collect()
}

#[test]
fn sei_written_by_the_encoder_is_read_back_by_nvdec_as_by_read_sei() {
    let Some(_gpu) = gpu() else { return };
    let i420 = source_on_gpu(ColorType::Native);
    let uuid = *b"vidloader-gpu-01";
    for (codec, ext) in [(Codec::H264, "mkv"), (Codec::Hevc, "mp4")] {
        let path = out_dir().join(format!("sei_{}.{ext}", codec.name()));
        let mut w = VideoWriter::create(
            &path,
            W as u32,
            H as u32,
            InputFormat::Yuv420,
            EncoderOptions {
                bf: Some(2),
                ..software(codec)
            },
        )
        .unwrap();
        for i in 0..20 {
            let sei = if i % 5 == 0 {
                vec![Sei::unregistered(uuid, format!("frame {i}")).unwrap()]
            } else {
                vec![]
            };
            w.write_with(&i420.get(i), PicFlags::default(), &sei)
                .unwrap();
        }
        w.finish().unwrap();

        let gpu = nvdec_sei(&path);
        assert_eq!(gpu.len(), 20, "{codec:?}: frames from NVDEC");
        let cpu = read_sei(path.as_path()).unwrap();
        let ours = |msgs: &[SeiMessage], i: usize| -> Vec<SeiMessage> {
            let mut want = uuid.to_vec();
            want.extend_from_slice(format!("frame {i}").as_bytes());
            msgs.iter()
                .filter(|m| m.payload.windows(want.len()).any(|w| w == want.as_slice()))
                .cloned()
                .collect()
        };
        let with_ours: Vec<usize> = (0..20).filter(|&i| !ours(&gpu[i], i).is_empty()).collect();
        assert_eq!(
            with_ours,
            vec![0, 5, 10, 15],
            "{codec:?}: frames with our SEI on NVDEC"
        );
        for f in &cpu {
            let g = ours(&gpu[f.index], f.index);
            assert_eq!(
                g.len(),
                1,
                "{codec:?} frame {}: {:?}",
                f.index,
                gpu[f.index]
            );
            assert_eq!(g[0].sei_type, 5);
            let mut want = uuid.to_vec();
            want.extend_from_slice(format!("frame {}", f.index).as_bytes());
            if codec == Codec::H264 {
                assert_eq!(g[0].payload, want);
            } else {
                // x265 writes its own UUID in front of the message it is given.
                assert_eq!(&g[0].payload[..16], &X265_UUID);
                assert_eq!(&g[0].payload[16..], &want[..]);
            }
            // The same messages as the CPU reader, byte for byte.
            assert_eq!(g, ours(&f.messages, f.index), "{codec:?} frame {}", f.index);
        }
        let cpu_indices: Vec<usize> = cpu.iter().map(|f| f.index).collect();
        assert_eq!(cpu_indices, with_ours, "{codec:?}: read_sei frames");
        eprintln!("{codec:?}: SEI on frames {with_ours:?}, NVDEC and read_sei agree");
    }
}

#[test]
fn nvenc_without_nvenc_is_one_typed_line_and_auto_falls_back_with_a_reason() {
    let Some(_gpu) = gpu() else { return };
    let frame = Tensor::zeros([W * H * 3 / 2], (Kind::Uint8, CUDA));
    for codec in [Codec::H264, Codec::Hevc] {
        let opts = EncoderOptions {
            codec,
            backend: EncoderBackend::Nvenc(0),
            ..Default::default()
        };
        match Encoder::new(W as u32, H as u32, InputFormat::Nv12, opts) {
            Ok(mut enc) => {
                // A GPU with NVENC: then it must encode.
                eprintln!("{codec:?}: this GPU has NVENC: {}", enc.backend_note());
                assert!(enc.is_nvenc());
                let eos = PicFlags {
                    eos: true,
                    ..Default::default()
                };
                let packets = enc.encode(&frame, eos, &[]).unwrap();
                assert!(!packets.is_empty() && packets[0].keyframe);
            }
            Err(e) => {
                let msg = e.to_string();
                eprintln!("{codec:?}: Nvenc(0) refused: {msg}");
                assert!(
                    matches!(e, Error::GpuUnavailable(_) | Error::Unsupported(_)),
                    "{codec:?}: {e:?}"
                );
                assert!(!msg.contains('\n'), "one line: {msg:?}");
                assert!(msg.contains("NVENC") || msg.contains("nvenc"), "{msg}");
            }
        }
    }
    let mut auto = Encoder::new(
        W as u32,
        H as u32,
        InputFormat::Nv12,
        EncoderOptions::new(Codec::H264),
    )
    .unwrap();
    let note = auto.backend_note().to_string();
    eprintln!("Auto: {} ({note})", auto.encoder_name());
    if !auto.is_nvenc() {
        assert_eq!(auto.encoder_name(), "libx264");
        assert!(
            note.contains("software") && note.contains("nvenc"),
            "{note}"
        );
        assert!(!note.contains('\n'), "{note:?}");
    }
    let eos = PicFlags {
        eos: true,
        ..Default::default()
    };
    assert!(!auto.encode(&frame, eos, &[]).unwrap().is_empty());
}

#[test]
fn transcoder_decoding_on_nvdec() {
    let Some(_gpu) = gpu() else { return };
    let input = fixture("h264_b3_gop30.mp4");
    let out = out_dir().join("transcoded_nvdec.mp4");
    let mut t = Transcoder::new(
        &input,
        &out,
        TranscodeOptions {
            decoder: NV,
            encoder: software(Codec::H264),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(t.len(), 75);
    let stats = t.transcode_with_mux().unwrap();
    eprintln!("transcode on NVDEC: {stats:?}");
    assert_eq!(stats.frames, 75);
    assert_eq!(stats.decoder, NV);
    // Frame count and first frame, read on the CPU.
    let cpu = |p: &Path| {
        SimpleDecoder::open(
            p,
            DecoderOptions::default()
                .color(ColorType::Native)
                .backend(Backend::Cpu),
        )
        .unwrap()
    };
    let mut back = cpu(&stats.output);
    assert_eq!(back.len(), 75, "frames in the output");
    let a = tensor_bytes(&cpu(&input).get_range(0, 1, 1).unwrap().frames);
    let b = tensor_bytes(&back.get_range(0, 1, 1).unwrap().frames);
    let y = (W * H) as usize;
    let p = psnr(&a[..y], &b[..y]);
    eprintln!("transcode on NVDEC: first-frame luma PSNR {p:.2} dB");
    assert!(p > 35.0, "first frame: {p:.2} dB");
}
