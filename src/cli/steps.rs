//! `streamctl steps`: the steps of an EMR cluster (list, status, cancel), and following a step
//! to its end (also for `submit --wait`).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::bail;
use streamctl::aws::AwsSettings;
use streamctl::aws::emr::{Cancellation, Emr, StepInfo};
use streamctl::data::time::format_sql;

use super::exit;

/// The steps of an Amazon EMR cluster: list them, show one, cancel one.
///
/// Steps that `streamctl submit --emr-cluster` added are named `streamctl flink: PIPELINE` or
/// `streamctl embedded: PIPELINE` unless `--step-name` said otherwise. The endpoint, region
/// and credentials come from the standard AWS settings (`AWS_REGION`, `AWS_PROFILE`,
/// `AWS_ENDPOINT_URL_EMR`…).
///
/// Exit codes: 0; 4 when `--wait` sees the step end FAILED, CANCELLED or INTERRUPTED, or its
/// cluster end before it (`cancel --wait`: 0 when it ends CANCELLED); 2 for errors (an unknown
/// cluster or step, credentials).
///
/// Examples:
///   streamctl steps list --emr-cluster j-2AXXXXXXGAPLF
///   streamctl steps status s-1XXXXXXXXXXXX --emr-cluster j-2AXXXXXXGAPLF --wait
///   streamctl steps cancel s-1XXXXXXXXXXXX --emr-cluster j-2AXXXXXXGAPLF
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: StepsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum StepsCommand {
    /// The cluster's steps, newest first: id, state, name, when it was added.
    List {
        #[command(flatten)]
        cluster: ClusterArgs,
        /// At most this many steps.
        #[arg(long, default_value = "20")]
        limit: usize,
        /// `table` or `json` (one object per step).
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// One step: its state, times, command and, when it failed, why and where its log is.
    Status {
        /// The step id (`s-…`).
        step: String,
        #[command(flatten)]
        cluster: ClusterArgs,
        #[command(flatten)]
        follow: FollowArgs,
        /// `table` or `json`.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Cancel a pending or running step (EMR stops a running one on release 5.28 and later).
    Cancel {
        /// The step id (`s-…`).
        step: String,
        #[command(flatten)]
        cluster: ClusterArgs,
        #[command(flatten)]
        follow: FollowArgs,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// The cluster (`j-…`).
    #[arg(long, value_name = "CLUSTER_ID")]
    pub emr_cluster: String,
    /// The AWS region of the cluster (default: AWS_REGION or the profile's).
    #[arg(long)]
    pub region: Option<String>,
}

impl ClusterArgs {
    pub fn settings(&self) -> AwsSettings {
        AwsSettings {
            region: self.region.clone(),
            endpoint: None,
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct FollowArgs {
    /// Follow the step until it ends (a spinner on a terminal, a line per change otherwise);
    /// exit 4 unless it ends COMPLETED.
    #[arg(long)]
    pub wait: bool,
    /// Time between two looks at the step while waiting, e.g. `10s`, `500ms`.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_interval)]
    pub poll_every: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Table,
    Json,
}

/// A `--poll-every` value: a positive duration such as `10s` or `500ms`.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = streamctl::config::Duration::parse(s)?;
    if d.millis <= 0 {
        return Err(format!("`{s}` is not a positive duration"));
    }
    Ok(Duration::from_millis(d.millis as u64))
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    match args.command {
        StepsCommand::List {
            cluster,
            limit,
            format,
        } => {
            let emr = connect(&cluster)?;
            let steps = emr.steps(&cluster.emr_cluster, limit.max(1))?;
            match format {
                Format::Json => {
                    for s in &steps {
                        println!("{}", step_json(s));
                    }
                }
                Format::Table => {
                    if steps.is_empty() {
                        eprintln!("cluster {} has no steps", cluster.emr_cluster);
                    } else {
                        println!("{:<16} {:<12} {:<19}  NAME", "STEP", "STATE", "ADDED (UTC)");
                        for s in &steps {
                            println!(
                                "{:<16} {:<12} {:<19}  {}",
                                s.id,
                                s.state,
                                s.created.map(time).unwrap_or_default(),
                                s.name
                            );
                        }
                    }
                }
            }
            Ok(exit::OK)
        }
        StepsCommand::Status {
            step,
            cluster,
            follow,
            format,
        } => {
            let emr = connect(&cluster)?;
            let info = emr.step(&cluster.emr_cluster, &step)?;
            match format {
                Format::Json => println!("{}", step_json(&info)),
                Format::Table => print!("{}", describe(&info)),
            }
            if follow.wait && !info.is_finished() {
                let end = follow_step(&emr, &cluster.emr_cluster, &step, follow.poll_every)?;
                return Ok(ended(&end));
            }
            Ok(if follow.wait { ended(&info) } else { exit::OK })
        }
        StepsCommand::Cancel {
            step,
            cluster,
            follow,
        } => {
            let emr = connect(&cluster)?;
            let before = emr.step(&cluster.emr_cluster, &step)?;
            if before.is_finished() {
                bail!(
                    "step {step} has already ended ({}): there is nothing to cancel",
                    before.state
                );
            }
            match emr.cancel(&cluster.emr_cluster, &step)? {
                Cancellation::Submitted => eprintln!(
                    "cancellation of step {step} ({}, {}) requested",
                    before.name, before.state
                ),
                Cancellation::Refused(why) => {
                    bail!("EMR refused to cancel step {step}: {why}")
                }
            }
            if follow.wait {
                let end = follow_step(&emr, &cluster.emr_cluster, &step, follow.poll_every)?;
                // Cancelled as asked is success here.
                return Ok(if end.state == "CANCELLED" {
                    exit::OK
                } else {
                    ended(&end)
                });
            }
            Ok(exit::OK)
        }
    }
}

/// A client, after checking that the cluster exists (so an unknown id is reported as such,
/// whatever the call that follows).
pub fn connect(cluster: &ClusterArgs) -> anyhow::Result<Emr> {
    let emr = Emr::connect(&cluster.settings())?;
    emr.cluster(&cluster.emr_cluster)?;
    Ok(emr)
}

/// The exit code for a step that has ended.
pub fn ended(step: &StepInfo) -> u8 {
    if step.succeeded() {
        exit::OK
    } else {
        exit::STEP_FAILED
    }
}

/// Follows a step until it ends, showing each state it passes through; returns how it ended
/// (not COMPLETED when its cluster ended first).
pub fn follow_step(
    emr: &Emr,
    cluster: &str,
    step: &str,
    every: Duration,
) -> anyhow::Result<StepInfo> {
    let terminal = std::io::stderr().is_terminal();
    let spinner = terminal.then(|| {
        let s = indicatif::ProgressBar::new_spinner();
        s.enable_steady_tick(Duration::from_millis(120));
        s
    });
    let started = Instant::now();
    let mut last_state = String::new();
    let mut cluster_ended = None;
    let result = loop {
        let info = match emr.step(cluster, step) {
            Ok(info) => info,
            Err(e) => {
                break Err(anyhow::anyhow!(
                    "{e} (the step goes on: `streamctl steps status {step} --emr-cluster \
                     {cluster} --wait` follows it again)"
                ));
            }
        };
        if info.state != last_state {
            let line = format!(
                "step {step} {} after {}",
                info.state,
                elapsed(started.elapsed())
            );
            match &spinner {
                Some(s) => s.println(line),
                None => eprintln!("{line}"),
            }
            last_state = info.state.clone();
        }
        if info.is_finished() {
            break Ok(info);
        }
        if let Some(s) = &spinner {
            s.set_message(format!(
                "step {step} {} ({} so far)",
                info.state,
                elapsed(started.elapsed())
            ));
        }
        // While the cluster shuts down (TERMINATING) its running step still runs and EMR ends
        // it on the way, so keep following. Once the cluster has ended, a step that has not
        // ended never will: say so rather than wait for ever.
        let c = emr.cluster(cluster)?;
        if c.has_ended() {
            let again = emr.step(cluster, step)?;
            if !again.is_finished() {
                cluster_ended = Some(format!(
                    "cluster {cluster} ended ({}{}) while step {step} was {}: it will not run \
                     any more\n",
                    c.state,
                    c.state_reason.map(|r| format!(": {r}")).unwrap_or_default(),
                    again.state
                ));
                break Ok(again);
            }
            continue;
        }
        std::thread::sleep(every);
    };
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let info = result?;
    match cluster_ended {
        Some(message) => eprint!("{message}"),
        None if !info.succeeded() => eprint!("{}", failure(&info)),
        None => {}
    }
    Ok(info)
}

fn elapsed(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

fn time(epoch_seconds: i64) -> String {
    let t = format_sql(epoch_seconds * 1000);
    t.trim_end_matches(".000").to_string()
}

/// Why a step did not complete, for stderr.
fn failure(info: &StepInfo) -> String {
    let mut out = format!("step {} ({}) ended {}", info.id, info.name, info.state);
    if let Some(f) = &info.failure {
        for part in [&f.reason, &f.message].into_iter().flatten() {
            out.push_str(&format!(": {part}"));
        }
        if let Some(log) = &f.log_file {
            out.push_str(&format!("\n  its log: {log}"));
        }
    } else if let Some(r) = &info.state_reason {
        out.push_str(&format!(": {r}"));
    }
    out.push('\n');
    out
}

/// A step for people.
fn describe(info: &StepInfo) -> String {
    let mut out = format!(
        "step     {}\nname     {}\nstate    {}\n",
        info.id, info.name, info.state
    );
    for (label, t) in [
        ("added", info.created),
        ("started", info.started),
        ("ended", info.ended),
    ] {
        if let Some(t) = t {
            out.push_str(&format!("{label:<8} {} UTC\n", time(t)));
        }
    }
    if let Some(a) = &info.action_on_failure {
        out.push_str(&format!("on fail  {a}\n"));
    }
    if let Some(jar) = &info.jar {
        // The bash program is long: its first line stands for it.
        let args: Vec<String> = info
            .args
            .iter()
            .map(|a| match a.split_once('\n') {
                Some((first, _)) => format!("'{first} …'"),
                None => streamctl::submit::shell_quote(a),
            })
            .collect();
        out.push_str(&format!("command  {jar} {}\n", args.join(" ")));
    }
    if let Some(f) = &info.failure {
        for (label, v) in [
            ("reason", &f.reason),
            ("message", &f.message),
            ("log", &f.log_file),
        ] {
            if let Some(v) = v {
                out.push_str(&format!("{label:<8} {v}\n"));
            }
        }
    } else if let Some(r) = &info.state_reason {
        out.push_str(&format!("reason   {r}\n"));
    }
    out
}

fn step_json(info: &StepInfo) -> String {
    serde_json::json!({
        "id": info.id,
        "name": info.name,
        "state": info.state,
        "state_reason": info.state_reason,
        "action_on_failure": info.action_on_failure,
        "jar": info.jar,
        "args": info.args,
        "created": info.created,
        "started": info.started,
        "ended": info.ended,
        "failure": info.failure.as_ref().map(|f| serde_json::json!({
            "reason": f.reason,
            "message": f.message,
            "log_file": f.log_file,
        })),
    })
    .to_string()
}
