//! `streamctl submit`: runs a pipeline on a cluster: as an EMR step ([`emr`]), or on Flink
//! through the `flink` command-line client (YARN, local).

mod emr;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use streamctl::submit::flink_cli::{FlinkRun, SQL_RUNNER, Target, default_python};

use super::validate::{self, flink_options, load_plan_for};
use super::{EnvArgs, exit};

/// Run a pipeline on a cluster: as an Amazon EMR step, on YARN (a self-managed Hadoop cluster),
/// or on a local Flink.
///
/// The pipeline is validated and translated to Flink SQL (as `streamctl plan --target
/// flink-sql` prints it, plus the settings that hold secrets). What Flink cannot do the way
/// the embedded engine does is printed as warnings first (see `streamctl validate --target
/// flink`).
///
/// `--emr-cluster j-…` (or `--target emr`) adds an EMR step. The script (and `--jar` files on
/// this machine) are uploaded under `--staging s3://bucket/prefix/`, and the step
/// (`command-runner.jar`) downloads it and runs it with Flink's SQL client on the primary node,
/// in YARN per-job mode (`--yarn-session` for a running Flink session). The step lasts as long
/// as the job (`--detached`: until it is submitted). The command prints the step id;
/// `--wait` follows the step to its end and exits 4 unless it COMPLETED. `--engine embedded`
/// runs the streamctl binary itself as the step (`streamctl run`, for jobs that fit one node
/// but belong on the cluster); arguments after `--` go to that `streamctl run`. Endpoint,
/// region and credentials come from the standard AWS settings (`AWS_REGION`, `AWS_PROFILE`,
/// `AWS_ENDPOINT_URL_EMR`, `AWS_ENDPOINT_URL_S3`…). `streamctl steps` lists, shows and
/// cancels steps.
///
/// `--target yarn` submits with `$FLINK_HOME/bin/flink run` and a small PyFlink program that
/// executes the script statement by statement, in per-job mode (`-t yarn-per-job`,
/// detached): the job gets its own YARN application; the command returns once the job is
/// submitted. `--yarn-session APPLICATION_ID` submits into a running YARN session instead.
/// `--target local` runs the job in a Flink inside the client and waits for it. Both need a
/// Flink 1.20 distribution (`FLINK_HOME` or `--flink-home`) and a Python with PyFlink for the
/// client (`--python`; a PyPI Flink brings its own).
///
/// Connector jars the distribution lacks (Kafka, Kinesis, Parquet) are added with `--jar`.
/// On EMR, put the `flink-sql-connector-kafka` / `flink-sql-connector-kinesis` jar for Flink
/// 1.20 in S3 and pass `--jar s3://…` (the step downloads it before it runs the script).
///
/// Exit codes: 0 submitted (with `--wait`: the step COMPLETED); 1 the pipeline is invalid;
/// 2 usage, I/O or AWS errors (an unknown cluster, a terminated one, a missing staging
/// bucket, credentials); 4 with `--wait`, the step ended FAILED, CANCELLED or INTERRUPTED, or
/// its cluster ended first (EMR's reason and the step's log are printed).
///
/// Examples:
///   streamctl submit pipelines/movie-impressions.yaml --emr-cluster j-2AXXXXXXGAPLF \
///     --staging s3://my-bucket/streamctl/ --jar s3://my-bucket/jars/flink-sql-connector-kafka-3.3.0-1.20.jar --wait
///   streamctl submit pipelines/taxi-trips.yaml --emr-cluster j-2AXXXXXXGAPLF \
///     --staging s3://my-bucket/streamctl/ --engine embedded -- --checkpoint-dir s3://my-bucket/ckpt/taxi/
///   streamctl submit pipelines/movie-impressions.yaml --emr-cluster j-2AXXXXXXGAPLF --staging s3://b/s/ --dry-run
///   export FLINK_HOME=$(scripts/flink.sh)     # the project's local Flink 1.20
///   INPUT=in.jsonl OUTPUT=file:///tmp/out/ streamctl submit pipelines/movie-impressions-local.yaml --target local
///   streamctl submit pipelines/movie-impressions.yaml --target yarn \
///     --jar /usr/lib/flink/opt/flink-sql-connector-kafka.jar
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pipeline file.
    pipeline: PathBuf,
    /// Where the job runs: `emr` (implied by --emr-cluster), `yarn` or `local`.
    #[arg(long, value_enum)]
    target: Option<SubmitTarget>,
    /// EMR: the cluster to add the step to (`j-…`).
    #[arg(long, value_name = "CLUSTER_ID")]
    emr_cluster: Option<String>,
    /// EMR: where to upload what the step needs (`s3://bucket/prefix/`; each submission gets
    /// `PIPELINE/TIME-PID/` below it). The Flink script and the variables file hold the
    /// pipeline's secrets: keep the prefix private to the cluster's role.
    #[arg(long, value_name = "S3_URL", env = "STREAMCTL_EMR_STAGING")]
    staging: Option<String>,
    /// EMR: what runs the pipeline on the cluster: `flink` (its Flink SQL, through Flink's
    /// SQL client) or `embedded` (this streamctl, as `streamctl run` on the primary node).
    #[arg(long, value_enum, default_value = "flink")]
    engine: EngineArg,
    /// EMR: follow the step until it ends; exit 4 unless it COMPLETED.
    #[arg(long)]
    wait: bool,
    /// EMR: time between two looks at the step with --wait, e.g. `10s`, `500ms`.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = super::steps::parse_interval)]
    poll_every: std::time::Duration,
    /// EMR: the step's name (default: `streamctl ENGINE: PIPELINE-NAME`).
    #[arg(long, value_name = "NAME")]
    step_name: Option<String>,
    /// EMR: what the cluster does when the step fails.
    #[arg(long, value_enum, default_value = "continue", value_name = "ACTION")]
    action_on_failure: ActionOnFailureArg,
    /// EMR with --engine embedded: the streamctl to run on the cluster, a Linux x86-64 build
    /// (default: this binary, when it is one).
    #[arg(long, value_name = "PATH")]
    binary: Option<PathBuf>,
    /// EMR: the AWS region of the cluster and the staging bucket (default: AWS_REGION or the
    /// profile's).
    #[arg(long)]
    region: Option<String>,
    /// Arguments for `streamctl run` on the cluster (--engine embedded), after `--`.
    #[arg(last = true, value_name = "RUN_ARGS")]
    run_args: Vec<String>,
    /// YARN / local: the Flink distribution (default: `$FLINK_HOME`).
    #[arg(long, value_name = "DIR")]
    flink_home: Option<PathBuf>,
    /// YARN / local: a Python with PyFlink for the client (default:
    /// `$PYFLINK_CLIENT_EXECUTABLE`, the venv of a PyPI Flink, else `python3`).
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,
    /// Submit into this running Flink YARN session (`application_…`) instead of a new YARN
    /// application per job.
    #[arg(long, value_name = "APPLICATION_ID")]
    yarn_session: Option<String>,
    /// Return once the job is submitted instead of waiting for it (YARN per-job always does;
    /// on EMR the step then ends when the job is submitted).
    #[arg(long)]
    detached: bool,
    /// Parallelism of the job (default: the cluster's `parallelism.default`).
    #[arg(long, short = 'p')]
    parallelism: Option<u32>,
    /// A connector jar the job needs; repeatable. YARN / local: a path, or a URI such as
    /// `s3://…` or `hdfs://…`. EMR: `s3://…` (downloaded by the step), a file on this machine
    /// (staged), or an absolute path on the cluster's nodes.
    #[arg(long = "jar", value_name = "JAR")]
    jars: Vec<String>,
    /// Print what would be done without doing it: the `flink` command (the script is written
    /// to a private directory), or the EMR step as JSON and the objects it would upload
    /// (no AWS call).
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    env: EnvArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SubmitTarget {
    /// An Amazon EMR cluster, as a step (needs --emr-cluster).
    Emr,
    /// A YARN cluster, through `flink run -t yarn-per-job` (or a YARN session).
    Yarn,
    /// A local Flink inside the client, through `flink run -t local`.
    Local,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum EngineArg {
    /// Flink SQL, run by Flink's SQL client on the cluster.
    Flink,
    /// `streamctl run` on the cluster's primary node.
    Embedded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ActionOnFailureArg {
    /// Go on with the next step.
    Continue,
    /// Cancel the steps after it and wait.
    CancelAndWait,
    /// Terminate the cluster.
    TerminateCluster,
}

impl ActionOnFailureArg {
    fn emr_name(self) -> &'static str {
        match self {
            ActionOnFailureArg::Continue => "CONTINUE",
            ActionOnFailureArg::CancelAndWait => "CANCEL_AND_WAIT",
            ActionOnFailureArg::TerminateCluster => "TERMINATE_CLUSTER",
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let target = match (args.target, &args.emr_cluster) {
        (None | Some(SubmitTarget::Emr), Some(_)) => SubmitTarget::Emr,
        (Some(SubmitTarget::Emr), None) => {
            bail!("--target emr needs the cluster: --emr-cluster j-…")
        }
        (Some(t), Some(_)) => bail!(
            "--emr-cluster is for EMR, not --target {}",
            if t == SubmitTarget::Yarn {
                "yarn"
            } else {
                "local"
            }
        ),
        (Some(t), None) => t,
        (None, None) => bail!(
            "say where the job runs: --emr-cluster j-… (an EMR step), --target yarn or --target local"
        ),
    };
    if target == SubmitTarget::Emr {
        return emr::run(&args);
    }
    if args.engine == EngineArg::Embedded {
        bail!("--engine embedded is for EMR steps; on YARN and a local Flink the job is Flink SQL");
    }
    if args.wait || !args.run_args.is_empty() || args.binary.is_some() {
        bail!("--wait, --binary and arguments after `--` are for EMR steps (--emr-cluster)");
    }
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
    let target = match target {
        SubmitTarget::Local => {
            if args.yarn_session.is_some() {
                bail!("--yarn-session applies to --target yarn");
            }
            Target::Local
        }
        SubmitTarget::Yarn | SubmitTarget::Emr => Target::Yarn {
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
