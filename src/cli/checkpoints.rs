//! `streamctl checkpoints`: what a job's checkpoint directory holds.

use streamctl::checkpoint::{self, Checkpoint, store};

use super::exit;

/// List a job's checkpoints, or show what one holds.
///
/// A checkpoint holds every source's position (per file, Kafka partition or Kinesis shard),
/// every window's open state, and the files each sink prepared and publishes when the
/// checkpoint completes. `streamctl run --checkpoint-dir DIR` resumes from the newest one.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  streamctl checkpoints list /var/lib/streamctl/movie-impressions
  streamctl checkpoints show /var/lib/streamctl/movie-impressions        # the newest
  streamctl checkpoints show /var/lib/streamctl/movie-impressions 41")]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// One line per checkpoint: id, when, size, open windows, pending files.
    List {
        /// The checkpoint directory (or file:// / s3:// URL).
        dir: String,
    },
    /// Everything one checkpoint holds: positions, windows, pending files.
    Show {
        /// The checkpoint directory (or file:// / s3:// URL).
        dir: String,
        /// The checkpoint id (default: the newest).
        id: Option<u64>,
    },
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    match args.command {
        Command::List { dir } => list(&dir),
        Command::Show { dir, id } => show(&dir, id),
    }
}

fn list(dir: &str) -> anyhow::Result<u8> {
    let store = store::open(dir)?;
    let ids = store.list()?;
    if ids.is_empty() {
        println!("no checkpoints in {}", store.describe());
        return Ok(exit::OK);
    }
    println!(
        "{:>8}  {:<23}  {:>10}  {:>12}  {:>13}  state",
        "id", "taken (UTC)", "bytes", "open windows", "pending files"
    );
    for id in ids {
        let size = store.size(id).unwrap_or(0);
        match store.read(id).map(|b| Checkpoint::decode(&b)) {
            Ok(Ok(c)) => {
                let windows: u64 = c.stages.iter().map(|s| s.open_windows).sum();
                let pending: usize = c.sinks.iter().map(|s| s.snapshot.pending.len()).sum();
                let state = if c.finished { "run completed" } else { "ok" };
                println!(
                    "{id:>8}  {:<23}  {size:>10}  {windows:>12}  {pending:>13}  {state}",
                    checkpoint::watermark(c.created_ms)
                );
            }
            Ok(Err(e)) => println!("{id:>8}  {:<23}  {size:>10}  unreadable: {e}", "?"),
            Err(e) => println!("{id:>8}  {:<23}  {size:>10}  unreadable: {e}", "?"),
        }
    }
    Ok(exit::OK)
}

fn show(dir: &str, id: Option<u64>) -> anyhow::Result<u8> {
    let store = store::open(dir)?;
    let Some(id) = id.or(store.list()?.last().copied()) else {
        println!("no checkpoints in {}", store.describe());
        return Ok(exit::OK);
    };
    let bytes = store.read(id)?;
    let c = Checkpoint::decode(&bytes)
        .map_err(|e| anyhow::anyhow!("checkpoint {id} cannot be read: {e}"))?;
    print!("{}", checkpoint::describe(&c, Some(bytes.len() as u64)));
    Ok(exit::OK)
}
