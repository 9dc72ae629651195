//! `streamctl submit --emr-cluster`: stage what the step needs in S3, add the step, follow it.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use bytes::Bytes;
use streamctl::aws::AwsSettings;
use streamctl::aws::emr::Emr;
use streamctl::aws::s3::{S3, S3Url};
use streamctl::clock::{Clock, SystemClock};
use streamctl::submit::emr::{
    FlinkPlacement, Jar, StagedStep, StepSettings, UploadBody, embedded_step, flink_step,
    flink_step_script, is_linux_x86_64_elf, staging_prefix, step_json,
};

use super::{Args, EngineArg};
use crate::cli::steps::{ended, follow_step};
use crate::cli::validate::{self, flink_options, load_plan_for, load_plan_with_variables};
use crate::cli::{exit, progress};

pub fn run(args: &Args) -> anyhow::Result<u8> {
    let Some(cluster) = args.emr_cluster.as_deref() else {
        bail!("--target emr needs the cluster: --emr-cluster j-…");
    };
    if args.target.is_some_and(|t| t != super::SubmitTarget::Emr) {
        bail!("--emr-cluster is for --target emr");
    }
    if args.flink_home.is_some() || args.python.is_some() {
        bail!(
            "--flink-home and --python are for --target yarn|local: on EMR the step uses the cluster's Flink"
        );
    }
    let Some(staging) = args.staging.as_deref() else {
        bail!(
            "EMR steps read what they run from S3: give a staging prefix the cluster can read, \
             --staging s3://bucket/prefix/ (or STREAMCTL_EMR_STAGING)"
        );
    };
    let Some(base) = S3Url::parse(staging) else {
        bail!("--staging must be an s3://bucket/prefix/ URL, not `{staging}`");
    };
    let engine = args.engine;
    let (staged, pipeline_name) = match engine {
        EngineArg::Flink => {
            if !args.run_args.is_empty() || args.binary.is_some() {
                bail!("--binary and arguments after `--` are for --engine embedded");
            }
            let Some(plan) = load_plan_for(&args.pipeline, &args.env, validate::Target::Flink)?
            else {
                return Ok(exit::INVALID);
            };
            let mut options = flink_options(&args.pipeline)?;
            // Staged privately for the cluster, which needs the secret settings.
            options.include_secrets = true;
            let script = streamctl::flink::translate(&plan, &options);
            let placement = FlinkPlacement {
                yarn_session: args.yarn_session.clone(),
                detached: args.detached,
                parallelism: args.parallelism,
            };
            let settings = step_settings(args, &base, &plan.name, "flink");
            let jars = args
                .jars
                .iter()
                .map(|j| jar(j))
                .collect::<Result<Vec<_>, _>>()?;
            let step = flink_step(&settings, flink_step_script(&script.sql, &placement), &jars);
            (step, plan.name)
        }
        EngineArg::Embedded => {
            if !args.jars.is_empty()
                || args.yarn_session.is_some()
                || args.detached
                || args.parallelism.is_some()
            {
                bail!("--jar, --yarn-session, --detached and --parallelism are for --engine flink");
            }
            let (plan, variables) =
                load_plan_with_variables(&args.pipeline, &args.env, validate::Target::Embedded)?;
            let Some(plan) = plan else {
                return Ok(exit::INVALID);
            };
            let binary = linux_binary(args.binary.as_deref())?;
            let text = std::fs::read_to_string(&args.pipeline)
                .with_context(|| format!("reading {}", args.pipeline.display()))?;
            let settings = step_settings(args, &base, &plan.name, "embedded");
            let step = embedded_step(&settings, binary, text, &variables, &args.run_args);
            (step, plan.name)
        }
    };

    if args.dry_run {
        println!("{}", step_json(&staged.step));
        for u in &staged.uploads {
            eprintln!(
                "would upload {} ({}{})",
                staged.url(u),
                u.what,
                size_note(&u.body, u.secret)
            );
        }
        eprintln!(
            "dry run: nothing was uploaded and no step was added to {cluster} (the step is above, \
             in the form `aws emr add-steps --steps file://…` reads)"
        );
        return Ok(exit::OK);
    }

    let settings = AwsSettings {
        region: args.region.clone(),
        endpoint: None,
    };
    let emr = Emr::connect(&settings)?;
    let info = emr.cluster(cluster)?;
    if info.is_terminated() {
        bail!(
            "cluster {cluster} ({}) is {}{}: steps run only on a cluster that is starting, running \
             or waiting",
            info.name,
            info.state,
            info.state_reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
    }
    stage(&settings, &staged)?;
    let step_id = emr.add_step(cluster, &staged.step)?;
    println!("{step_id}");
    eprintln!(
        "added step {step_id} `{}` to cluster {cluster} ({}, {}); staged under {}",
        staged.step.name,
        info.name,
        info.state,
        streamctl::aws::s3::url(&staged.bucket, &staged.prefix)
    );
    if !args.wait {
        eprintln!(
            "follow it: streamctl steps status {step_id} --emr-cluster {cluster} --wait \
             (or submit with --wait)"
        );
        return Ok(exit::OK);
    }
    let end = follow_step(&emr, cluster, &step_id, args.poll_every)?;
    if end.succeeded() {
        eprintln!("step {step_id} ({pipeline_name}) COMPLETED");
    }
    Ok(ended(&end))
}

fn step_settings(args: &Args, base: &S3Url, pipeline: &str, engine: &str) -> StepSettings {
    let now = SystemClock.now_ms();
    let stamp = streamctl::data::time::format_strftime(now, "%Y%m%dT%H%M%SZ");
    let run_id = format!("{stamp}-{}", std::process::id());
    StepSettings {
        name: args
            .step_name
            .clone()
            .unwrap_or_else(|| format!("streamctl {engine}: {pipeline}")),
        action_on_failure: args.action_on_failure.emr_name().to_string(),
        bucket: base.bucket.clone(),
        prefix: staging_prefix(base, pipeline, &run_id),
    }
}

/// A `--jar` for an EMR step: in S3, a file here (staged), or a path on the cluster.
fn jar(spec: &str) -> anyhow::Result<Jar> {
    if spec.starts_with("s3://") {
        return Ok(Jar::Remote(spec.to_string()));
    }
    if spec.contains("://") {
        bail!(
            "--jar {spec}: an EMR step reads jars from s3://, from this machine (staged) or from \
             an absolute path on the cluster's nodes"
        );
    }
    let path = Path::new(spec);
    if path.is_file() {
        return Ok(Jar::Local(path.to_path_buf()));
    }
    if path.is_absolute() {
        return Ok(Jar::Remote(spec.to_string()));
    }
    bail!(
        "--jar {spec}: no such file here (a path on the cluster's nodes must be absolute, e.g. \
         /usr/lib/flink/opt/…)"
    )
}

/// The streamctl binary to stage for `--engine embedded`: a Linux x86-64 executable.
fn linux_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe().context("finding this streamctl binary")?,
    };
    let mut head = [0u8; 20];
    let ok = std::fs::File::open(&path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok();
    if !ok || !is_linux_x86_64_elf(&head) {
        let hint = if given.is_some() {
            "--binary must be a Linux x86-64 streamctl (e.g. `cargo build --release --target \
             x86_64-unknown-linux-gnu`)"
        } else {
            "EMR nodes run Linux x86-64 and this streamctl is not built for it: pass a Linux \
             x86-64 build with --binary"
        };
        bail!(
            "{} is not a Linux x86-64 executable: {hint}",
            path.display()
        );
    }
    Ok(path)
}

fn size_note(body: &UploadBody, secret: bool) -> String {
    let size = match body {
        UploadBody::Text(t) => Some(t.len() as u64),
        UploadBody::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
    };
    let mut note = size
        .map(|n| format!(", {}", progress::bytes(n)))
        .unwrap_or_default();
    if secret {
        note.push_str(", holds secrets: not shown");
    }
    note
}

/// Uploads every object the step needs (after checking the bucket, so a wrong bucket or
/// credentials fail before anything is written).
fn stage(settings: &AwsSettings, staged: &StagedStep) -> anyhow::Result<()> {
    let s3 = S3::connect(settings, None)?;
    s3.check_bucket(&staged.bucket)
        .context("checking the --staging bucket")?;
    for u in &staged.uploads {
        let body = match &u.body {
            UploadBody::Text(t) => Bytes::from(t.clone()),
            UploadBody::File(p) => Bytes::from(
                std::fs::read(p)
                    .with_context(|| format!("reading {} ({})", p.display(), u.what))?,
            ),
        };
        s3.put(&staged.bucket, &u.key, body)
            .with_context(|| format!("staging the {}", u.what))?;
    }
    Ok(())
}
