//! Command-line front end: argument parsing and one function per subcommand.

mod bench;
mod demo;
mod extract;
mod info;
mod loader_args;
mod plan;
mod transcode;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use vidloader::{Backend, Result};

/// Video files to exact, batched tensors.
#[derive(Parser, Debug)]
#[command(name = "vidloader", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The default job: make a small labelled dataset and run the DataLoader over it, printing the batch shape,
    /// labels, frames/s and decoder pool hit rate.
    Demo {
        /// Where the dataset is made (kept for later runs).
        #[arg(long, default_value = "target/demo-dataset")]
        dir: PathBuf,
        /// Videos per class.
        #[arg(long, default_value_t = 16)]
        per_class: usize,
        /// Frames sampled evenly from each video.
        #[arg(long, default_value_t = 8)]
        frames: usize,
        /// Samples per batch.
        #[arg(long, default_value_t = 8)]
        batch: usize,
        /// Decode on this GPU with NVDEC and deliver batches there.
        #[arg(long)]
        gpu: Option<usize>,
    },
    /// Run the DataLoader over a data set and print frames/s (delivered and decoded), batches/s and the decoder
    /// pool hit rate.
    Bench(bench::BenchArgs),
    /// Print the samples the DataLoader would deliver (file, label, frame indices, in batch order) for a seed,
    /// epoch, rank and world size, without decoding anything.
    Plan(plan::PlanArgs),
    /// Write synthetic labelled videos (a square moving right, left, down or up) and a labels.csv manifest.
    Synth {
        /// Output directory.
        dir: PathBuf,
        /// Videos per class.
        #[arg(long, default_value_t = 16)]
        per_class: usize,
        /// Frame width.
        #[arg(long, default_value_t = 128)]
        width: u32,
        /// Frame height.
        #[arg(long, default_value_t = 128)]
        height: u32,
        /// Frames per video.
        #[arg(long, default_value_t = 48)]
        frames: u32,
        /// Frames per second.
        #[arg(long, default_value_t = 24)]
        fps: u32,
        /// Keyframe interval.
        #[arg(long, default_value_t = 24)]
        gop: u32,
    },
    /// Re-encode a video (or time segments of it): decoded by vidloader (NVDEC with --gpu), encoded with NVENC
    /// where the GPU has it, else libx264 / libx265 / SVT-AV1; audio copied.
    Transcode(transcode::TranscodeArgs),
    /// Cut every path,label,start,end row of a manifest into a clip with a short GOP for fast random access, in
    /// parallel, and write OUTDIR/labels.csv for the DataLoader.
    Clips(transcode::ClipsArgs),
    /// Print a video's stream metadata and exact frame count.
    Info {
        /// The video file.
        path: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Use this GPU: its NVDEC where it decodes the stream exactly, the CPU otherwise (metadata comes from the
        /// container either way).
        #[arg(long)]
        gpu: Option<usize>,
        /// `auto` (the default with --gpu), `cpu`, or `nvdec` (NVDEC or an error).
        #[arg(long)]
        backend: Option<String>,
    },
    /// Decode frames by index and write one file per requested index.
    Extract {
        /// The video file.
        path: PathBuf,
        /// Comma-separated frame indices, e.g. 17,0,17.
        #[arg(long, value_delimiter = ',', required = true)]
        indices: Vec<i64>,
        /// `native` (DIR/<i>.yuv, raw planes) or `rgb` (DIR/<i>.ppm).
        #[arg(long, default_value = "rgb")]
        color: String,
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Decode on this GPU: with NVDEC where it decodes the stream exactly, on the CPU otherwise (with a one-line
        /// notice when there is no GPU).
        #[arg(long)]
        gpu: Option<usize>,
        /// `auto` (the default with --gpu), `cpu`, or `nvdec` (insist on NVDEC: an error where it cannot decode the
        /// stream exactly).
        #[arg(long)]
        backend: Option<String>,
    },
}

/// The decoder backend that `--gpu N` and `--backend auto|cpu|nvdec` ask for: the CPU without either, the GPU's
/// NVDEC where it is exact (else the CPU) with `--gpu N`, NVDEC or an error with `--backend nvdec`.
fn backend_for(gpu: Option<usize>, backend: Option<&str>) -> Result<Backend> {
    match (backend.map(str::to_ascii_lowercase).as_deref(), gpu) {
        (None, None) | (Some("cpu"), _) => Ok(Backend::Cpu),
        (None | Some("auto"), Some(n)) => Ok(Backend::AutoOn(n)),
        (Some("auto"), None) => Ok(Backend::Auto),
        (Some("nvdec"), n) => Ok(Backend::Nvdec(n.unwrap_or(0))),
        (Some(other), _) => Err(vidloader::Error::InvalidArgument(format!(
            "unknown backend {other:?} (auto, cpu, nvdec)"
        ))),
    }
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Some(Command::Info {
            path,
            json,
            gpu,
            backend,
        }) => info::run(&path, json, backend_for(gpu, backend.as_deref())?),
        Some(Command::Extract {
            path,
            indices,
            color,
            out,
            gpu,
            backend,
        }) => extract::run(
            &path,
            &indices,
            &color,
            &out,
            backend_for(gpu, backend.as_deref())?,
        ),
        Some(Command::Demo {
            dir,
            per_class,
            frames,
            batch,
            gpu,
        }) => demo::run(&dir, per_class, frames, batch, gpu),
        Some(Command::Bench(args)) => bench::run(&args),
        Some(Command::Plan(args)) => plan::run(&args),
        Some(Command::Transcode(args)) => transcode::run(&args),
        Some(Command::Clips(args)) => transcode::run_clips(&args),
        Some(Command::Synth {
            dir,
            per_class,
            width,
            height,
            frames,
            fps,
            gop,
        }) => {
            let spec = vidloader::synth::SynthSpec {
                width,
                height,
                frames,
                fps,
                gop,
                ..Default::default()
            };
            let videos = vidloader::synth::write_dataset(&dir, &spec, per_class)?;
            println!(
                "wrote {} videos and labels.csv to {}",
                videos.len(),
                dir.display()
            );
            Ok(())
        }
        None => demo::run(std::path::Path::new("target/demo-dataset"), 16, 8, 8, None),
    }
}
