//! `streamctl generate`: writes generator output as JSON lines (test data, benchmarks).

use super::exit;

/// Write synthetic records as JSON lines (placeholder until the generator lands).
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("generate is not implemented yet")
}
