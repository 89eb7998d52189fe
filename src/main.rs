//! The `vidloader` command line: `info`, `extract`, `synth`, `bench`, `plan`, and the default demo job.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vidloader: error: {e}");
            ExitCode::FAILURE
        }
    }
}
