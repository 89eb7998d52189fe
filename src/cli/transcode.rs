//! `vidloader transcode IN OUT [...]` and `vidloader clips MANIFEST OUTDIR [...]`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use clap::Args;
use vidloader::{
    parse_bitrate, Backend, Codec, EncoderOptions, Error, Preset, RateControl, Result,
    TranscodeOptions, Transcoder, Tuning, VideoDataset,
};

/// Encoder settings shared by `transcode` and `clips`.
#[derive(Args, Debug, Clone)]
pub struct EncodeArgs {
    /// h264, hevc or av1.
    #[arg(long, default_value = "h264")]
    codec: String,
    /// p1 (fastest) .. p7 (best).
    #[arg(long, default_value = "p4")]
    preset: String,
    /// high_quality, low_latency, ultra_low_latency or lossless.
    #[arg(long, default_value = "high_quality")]
    tuning: String,
    /// cbr, vbr or constqp.
    #[arg(long, default_value = "vbr")]
    rc: String,
    /// Target bit rate, e.g. 4M or 800k.
    #[arg(long)]
    bitrate: Option<String>,
    /// Peak bit rate (vbr).
    #[arg(long)]
    maxbitrate: Option<String>,
    /// Quantiser of rc constqp.
    #[arg(long)]
    constqp: Option<u32>,
    /// Distance between keyframes.
    #[arg(long)]
    gop: Option<u32>,
    /// B-frames between references.
    #[arg(long)]
    bframes: Option<u32>,
    /// Encoder threads (0: automatic).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Decode on this GPU (NVDEC where the GPU decodes the stream exactly, the CPU otherwise).
    #[arg(long)]
    gpu: Option<usize>,
}

impl EncodeArgs {
    fn options(&self) -> Result<EncoderOptions> {
        let codec: Codec = self.codec.parse()?;
        let preset: Preset = self.preset.parse()?;
        let tuning_info: Tuning = self.tuning.parse()?;
        let rc: RateControl = self.rc.parse()?;
        Ok(EncoderOptions {
            codec,
            preset,
            tuning_info,
            rc,
            bitrate: self.bitrate.as_deref().map(parse_bitrate).transpose()?,
            maxbitrate: self.maxbitrate.as_deref().map(parse_bitrate).transpose()?,
            constqp: self.constqp,
            gop: self.gop,
            bf: self.bframes,
            threads: self.threads,
            ..Default::default()
        })
    }

    fn decoder(&self) -> Backend {
        self.gpu.map_or(Backend::Cpu, Backend::AutoOn)
    }
}

/// `vidloader transcode`.
#[derive(Args, Debug)]
pub struct TranscodeArgs {
    /// The input video.
    input: PathBuf,
    /// The output file (container by extension: .mp4, .mkv, .mov, .h264, .hevc ...); with --segments, the stem
    /// of the segment files.
    output: PathBuf,
    #[command(flatten)]
    encode: EncodeArgs,
    /// Time segments START:END in seconds from the first frame, comma-separated: each is written to
    /// <stem>_<start>_<end>.<ext>.
    #[arg(long)]
    segments: Option<String>,
    /// Put TEXT into a user-data-unregistered SEI on every keyframe.
    #[arg(long)]
    sei_text: Option<String>,
    /// Do not copy the audio.
    #[arg(long)]
    no_audio: bool,
}

fn parse_segments(s: &str) -> Result<Vec<(f64, f64)>> {
    s.split(',')
        .map(|part| {
            let (a, b) = part.split_once(':').ok_or_else(|| {
                Error::InvalidArgument(format!("segment {part:?}: expected START:END in seconds"))
            })?;
            let num = |v: &str| {
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| {
                        Error::InvalidArgument(format!("segment {part:?}: {v:?} is not a number"))
                    })
            };
            Ok((num(a)?, num(b)?))
        })
        .collect()
}

/// Runs `vidloader transcode`.
pub fn run(args: &TranscodeArgs) -> Result<()> {
    let opts = TranscodeOptions {
        encoder: args.encode.options()?,
        decoder: args.encode.decoder(),
        copy_audio: !args.no_audio,
        sei_text: args.sei_text.clone(),
        ..Default::default()
    };
    let segments = args.segments.as_deref().map(parse_segments).transpose()?;
    let mut t = Transcoder::new(&args.input, &args.output, opts)?;
    let runs = match &segments {
        None => vec![t.transcode_with_mux()?],
        Some(list) => list
            .iter()
            .map(|&(a, b)| t.segmented_transcode(a, b))
            .collect::<Result<Vec<_>>>()?,
    };
    for s in &runs {
        println!(
            "{}: {} frames, {} bytes, {:.2} s ({:.0} fps), decoder {:?}, encoder {}{}",
            s.output.display(),
            s.frames,
            s.bytes,
            s.seconds,
            s.frames as f64 / s.seconds.max(1e-9),
            s.decoder,
            s.encoder,
            if s.audio_packets > 0 {
                format!(", {} audio packets copied", s.audio_packets)
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

/// `vidloader clips`.
#[derive(Args, Debug)]
pub struct ClipsArgs {
    /// CSV or JSONL manifest with path,label,start,end rows (start/end in seconds; empty = whole video).
    manifest: PathBuf,
    /// Where the clips and their labels.csv are written.
    outdir: PathBuf,
    #[command(flatten)]
    encode: EncodeArgs,
    /// Parallel transcoders.
    #[arg(long, default_value_t = 0)]
    workers: usize,
    /// Report bad rows and go on instead of stopping at the first.
    #[arg(long)]
    skip_errors: bool,
    /// Keep the audio of the clips.
    #[arg(long)]
    audio: bool,
}

/// Runs `vidloader clips`: every manifest row cut into a clip with a short fixed GOP (16 by default) for fast
/// random access, in parallel, and a labels.csv that `VideoDataset::open` reads.
pub fn run_clips(args: &ClipsArgs) -> Result<()> {
    let dataset = VideoDataset::from_manifest(&args.manifest)?;
    std::fs::create_dir_all(&args.outdir)
        .map_err(|e| Error::io(format!("creating {}", args.outdir.display()), e))?;
    let mut eopts = args.encode.options()?;
    if eopts.gop.is_none() {
        eopts.gop = Some(16);
    }
    let entries = dataset.entries().to_vec();
    let workers = match args.workers {
        0 => std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .min(entries.len().max(1)),
        n => n,
    };
    let threads_each =
        (std::thread::available_parallelism().map_or(2, |n| n.get()) / workers).max(1);
    if eopts.threads == 0 {
        eopts.threads = threads_each;
    }
    let opts = TranscodeOptions {
        encoder: eopts,
        decoder: args.encode.decoder(),
        copy_audio: args.audio,
        ..Default::default()
    };
    let bar = indicatif::ProgressBar::new(entries.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} clips {elapsed_precise} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<PathBuf>)>> = Mutex::new(Vec::new());
    let started = std::time::Instant::now();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                let mut transcoder: Option<Transcoder> = None;
                loop {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(e) = entries.get(i) else { return };
                    let r = cut_one(&mut transcoder, e, &args.outdir, &opts);
                    if r.is_err() && !args.skip_errors {
                        stop.store(true, Ordering::Relaxed);
                    }
                    results
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((i, r));
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|(i, _)| *i);
    let mut manifest = String::from("path,label\n");
    let (mut ok, mut bad) = (0, 0);
    for (i, r) in &results {
        let e = &entries[*i];
        match r {
            Ok(p) => {
                ok += 1;
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let label = e.class.clone().unwrap_or_else(|| e.label.to_string());
                manifest.push_str(&format!("{name},{label}\n"));
            }
            Err(err) => {
                bad += 1;
                eprintln!("row {} ({}): {err}", i + 1, e.path.display());
                if !args.skip_errors {
                    return Err(Error::InvalidArgument(format!(
                        "row {} ({}): {err} (--skip-errors goes on past bad rows)",
                        i + 1,
                        e.path.display()
                    )));
                }
            }
        }
    }
    let labels = args.outdir.join("labels.csv");
    std::fs::write(&labels, manifest)
        .map_err(|e| Error::io(format!("writing {}", labels.display()), e))?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{ok} clips written to {} ({bad} failed) in {secs:.2} s: {:.1} clips/s, {workers} workers; labels in {}",
        args.outdir.display(),
        ok as f64 / secs.max(1e-9),
        labels.display()
    );
    Ok(())
}

/// Cuts one manifest row; the worker's transcoder is reused from row to row.
fn cut_one(
    transcoder: &mut Option<Transcoder>,
    e: &vidloader::VideoEntry,
    outdir: &Path,
    opts: &TranscodeOptions,
) -> Result<PathBuf> {
    let stem = e
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = outdir.join(format!("{stem}.mp4"));
    match transcoder.as_mut() {
        Some(t) => t.set_files(&e.path, &base)?,
        None => *transcoder = Some(Transcoder::new(&e.path, &base, opts.clone())?),
    }
    let t = transcoder
        .as_mut()
        .ok_or_else(|| Error::Worker("no transcoder".into()))?;
    let start = e.start.unwrap_or(0.0);
    let stats = match e.end {
        Some(end) => t.segmented_transcode(start, end)?,
        None if start > 0.0 => t.segmented_transcode(start, f64::MAX)?,
        None => t.transcode_with_mux()?,
    };
    Ok(stats.output)
}
