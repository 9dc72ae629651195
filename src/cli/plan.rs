//! `streamctl plan`: validates a pipeline and prints the resolved stages.

use std::path::PathBuf;

use super::{EnvArgs, exit, validate};

/// Show what a pipeline will run: stages, their schemas, windows and outputs.
///
/// The pipeline is validated first; if it is invalid, the diagnostics are printed instead
/// and the exit code is 1.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pipeline file.
    pipeline: PathBuf,
    #[command(flatten)]
    env: EnvArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let Some(plan) = validate::load_plan(&args.pipeline, &args.env)? else {
        return Ok(exit::INVALID);
    };
    print!("{plan}");
    Ok(exit::OK)
}
