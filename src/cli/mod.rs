//! Command-line front end: argument parsing and one function per subcommand.

mod extract;
mod info;

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
    /// Print a video's stream metadata and exact frame count.
    Info {
        /// The video file.
        path: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Use this GPU's NVDEC (informational; metadata comes from the container).
        #[arg(long)]
        gpu: Option<usize>,
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
        /// Decode on this GPU with NVDEC instead of the CPU.
        #[arg(long)]
        gpu: Option<usize>,
    },
}

fn backend_for(gpu: Option<usize>) -> Backend {
    gpu.map_or(Backend::Cpu, Backend::Nvdec)
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Some(Command::Info { path, json, gpu }) => info::run(&path, json, backend_for(gpu)),
        Some(Command::Extract { path, indices, color, out, gpu }) => {
            extract::run(&path, &indices, &color, &out, backend_for(gpu))
        }
        None => {
            println!("{}", <Cli as clap::CommandFactory>::command().render_help());
            Ok(())
        }
    }
}
