//! `streamctl submit`: runs a pipeline on Flink, through the `flink` command-line client.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use streamctl::submit::flink_cli::{FlinkRun, SQL_RUNNER, Target, default_python};

use super::validate::{self, flink_options, load_plan_for};
use super::{EnvArgs, exit};

/// Run a pipeline on Apache Flink: on YARN (a self-managed Hadoop cluster) or on a local Flink.
///
/// The pipeline is validated and translated to Flink SQL (as `streamctl plan --target
/// flink-sql` prints it, plus the settings that hold secrets), and the script is run by
/// `$FLINK_HOME/bin/flink run` with a small PyFlink program that executes it statement by
/// statement. What Flink cannot do the way the embedded engine does is printed as warnings
/// first (see `streamctl validate --target flink`).
///
/// `--target yarn` submits in per-job mode (`-t yarn-per-job`, detached): the script is
/// planned on this machine and the job gets its own YARN application; the command returns
/// once the job is submitted and prints its id. With `--yarn-session APPLICATION_ID` the job
/// goes into a running YARN session instead. `--target local` runs the job in a Flink inside
/// the client and waits for it (bounded inputs end; Ctrl-C stops unbounded ones).
///
/// Needs a Flink 1.20 distribution (`FLINK_HOME` or `--flink-home`) and a Python with PyFlink
/// for the client (`--python`; a PyPI Flink brings its own). Connector jars that the
/// distribution lacks (Kafka, Kinesis, Parquet) are added with `--jar`.
///
/// Examples:
///   export FLINK_HOME=$(scripts/flink.sh)     # the project's local Flink 1.20
///   INPUT=in.jsonl OUTPUT=file:///tmp/out/ streamctl submit pipelines/movie-impressions-local.yaml --target local
///   streamctl submit pipelines/movie-impressions.yaml --target yarn \
///     --jar /usr/lib/flink/opt/flink-sql-connector-kafka.jar
///   streamctl submit pipelines/movie-impressions.yaml --target yarn --dry-run
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pipeline file.
    pipeline: PathBuf,
    /// Where the job runs: `yarn` or `local`.
    #[arg(long, value_enum)]
    target: SubmitTarget,
    /// The Flink distribution (default: `$FLINK_HOME`).
    #[arg(long, value_name = "DIR")]
    flink_home: Option<PathBuf>,
    /// A Python with PyFlink for the client (default: `$PYFLINK_CLIENT_EXECUTABLE`, the venv of
    /// a PyPI Flink, else `python3`).
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,
    /// Submit into this running YARN session (`application_…`) instead of a new application.
    #[arg(long, value_name = "APPLICATION_ID")]
    yarn_session: Option<String>,
    /// Return once the job is submitted instead of waiting for it (YARN per-job always does).
    #[arg(long)]
    detached: bool,
    /// Parallelism of the job (default: the cluster's `parallelism.default`).
    #[arg(long, short = 'p')]
    parallelism: Option<u32>,
    /// A connector jar the job needs (a path, or a URI such as `s3://…` or `hdfs://…`);
    /// repeatable.
    #[arg(long = "jar", value_name = "JAR")]
    jars: Vec<String>,
    /// Print the `flink` command and write the script without running anything.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    env: EnvArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SubmitTarget {
    /// A YARN cluster, through `flink run -t yarn-per-job` (or a YARN session).
    Yarn,
    /// A local Flink inside the client, through `flink run -t local`.
    Local,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let Some(plan) = load_plan_for(&args.pipeline, &args.env, validate::Target::Flink)? else {
        return Ok(exit::INVALID);
    };
    let flink_home = match args
        .flink_home
        .clone()
        .or_else(|| std::env::var_os("FLINK_HOME").map(PathBuf::from))
    {
        Some(home) => home,
        None => bail!(
            "FLINK_HOME is not set: point it (or --flink-home) at a Flink 1.20 distribution; for the project's local Flink: export FLINK_HOME=$(scripts/flink.sh)"
        ),
    };
    let program = flink_home.join("bin").join("flink");
    if !program.is_file() {
        bail!(
            "{} does not exist: --flink-home / FLINK_HOME must be a Flink distribution (with bin/flink)",
            program.display()
        );
    }
    let python = args
        .python
        .clone()
        .or_else(|| std::env::var_os("PYFLINK_CLIENT_EXECUTABLE").map(PathBuf::from))
        .unwrap_or_else(|| default_python(&flink_home));
    let target = match args.target {
        SubmitTarget::Local => {
            if args.yarn_session.is_some() {
                bail!("--yarn-session applies to --target yarn");
            }
            Target::Local
        }
        SubmitTarget::Yarn => Target::Yarn {
            session: args.yarn_session.clone(),
        },
    };
    let mut options = flink_options(&args.pipeline)?;
    // The script goes to a private directory: it holds the settings that are secrets.
    options.include_secrets = true;
    let script = streamctl::flink::translate(&plan, &options);
    let dir = private_dir()?;
    let script_path = dir.join(format!("{}.sql", plan.name));
    let runner_path = dir.join("sql_runner.py");
    write_private(&script_path, &script.sql)?;
    write_private(&runner_path, SQL_RUNNER)?;
    let run = FlinkRun {
        flink_home,
        python,
        target,
        detached: args.detached,
        parallelism: args.parallelism,
        jars: args.jars.clone(),
        script: script_path.clone(),
        runner: runner_path,
    };
    if args.dry_run {
        println!("{}", run.display());
        eprintln!(
            "dry run: nothing was submitted; the script (with its secrets) is {}",
            script_path.display()
        );
        return Ok(exit::OK);
    }
    eprintln!(
        "submitting `{}` to {}: {}",
        plan.name,
        target_name(&run.target),
        run.display()
    );
    let status = Command::new(run.program())
        .args(run.args())
        .env("FLINK_HOME", &run.flink_home)
        .status()
        .with_context(|| format!("running {}", run.program().display()));
    // The script holds secrets; the client has read it by now.
    let _ = std::fs::remove_dir_all(&dir);
    let status = status?;
    if !status.success() {
        bail!("the flink client failed ({status}); its output above says why");
    }
    Ok(exit::OK)
}

fn target_name(target: &Target) -> String {
    match target {
        Target::Local => "a local Flink".to_string(),
        Target::Yarn { session: None } => "YARN (a new application)".to_string(),
        Target::Yarn { session: Some(id) } => format!("the YARN session {id}"),
    }
}

/// A new directory only this user can read.
fn private_dir() -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    for attempt in 0..1000 {
        let dir = base.join(format!("streamctl-submit-{}-{attempt}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    bail!("could not create a private directory in {}", base.display())
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
