//! `streamctl schema`: prints the JSON Schema of pipeline files.

use std::path::PathBuf;

use anyhow::Context;

use super::exit;

/// Print the JSON Schema of pipeline files (for editors and `schemas/`).
///
/// Editors with the YAML language server complete and check pipelines that start with
/// `# yaml-language-server: $schema=../schemas/pipeline.schema.json`, and test files
/// (`--tests`) that start with `# yaml-language-server:
/// $schema=../schemas/pipeline-test.schema.json`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write to this file instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// The schema of test files (`*.test.yaml`, see `streamctl test --help`) instead.
    #[arg(long)]
    tests: bool,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let schema = if args.tests {
        streamctl::testing::config::json_schema()
    } else {
        streamctl::config::json_schema()
    };
    let text = serde_json::to_string_pretty(&schema)? + "\n";
    match args.output {
        Some(path) => {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{text}"),
    }
    Ok(exit::OK)
}
