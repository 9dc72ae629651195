//! A pipeline as an Amazon EMR step: what goes to the S3 staging prefix and the step that
//! runs it (`command-runner.jar` with a short bash program). Building both is pure; the
//! command stages with [`crate::aws::s3`] and adds the step with [`crate::aws::emr`].
//!
//! **Flink (the default engine).** The step downloads the Flink SQL script (and the connector
//! jars staged or named with `--jar`) and runs it with Flink's SQL client,
//! `/usr/lib/flink/bin/sql-client.sh -f`, which EMR 7.x ships with Flink 1.20 (7.7 and later
//! also link it as `flink-sql-client`). The SQL client is the one Flink tool that runs a SQL
//! script as it is; `flink run` takes only jars and Python programs, and PyFlink (what
//! `--target yarn` uses) is not on EMR's nodes. The script starts with the `SET`s that choose
//! where the job runs: YARN per-job mode (a YARN application of its own; EMR's Flink is
//! configured for YARN), or a running Flink YARN session with `--yarn-session`. With
//! `table.dml-sync` on, the SQL client waits for the job, so the step's state is the job's:
//! a failed job fails the step, cancelling the step stops the job, and `--wait` follows the
//! job to its end. `--detached` turns that off: the step ends once the job is submitted (for
//! jobs that run for ever, so the cluster's step queue is not held).
//!
//! **Embedded.** The step downloads the streamctl binary (Linux x86-64), the pipeline file
//! and the values of the `${VAR}`s it uses, and runs `streamctl run` on the primary node.
//!
//! Anything secret (settings in the SQL script, variable values) goes only into staged
//! objects, never into the step's arguments, which EMR shows to anyone who can list steps.

use crate::aws::emr::NewStep;
use crate::aws::s3::{S3Url, url};
use crate::flink::sql;

use super::shell_quote;

/// What runs the pipeline on the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// The Flink SQL script, through Flink's SQL client.
    Flink,
    /// `streamctl run` on the primary node.
    Embedded,
}

/// The program `command-runner.jar` runs (`bash -c`), for a step of `$0 ARGS…`.
const PROGRAM_NAME: &str = "streamctl-step";

/// Where Flink lives on EMR's nodes.
pub const EMR_SQL_CLIENT: &str = "/usr/lib/flink/bin/sql-client.sh";

/// `bash -c` program of a Flink step: `$1` is the staged script, the rest are jars (`s3://`
/// ones are downloaded first; other paths are on the node already).
const FLINK_PROGRAM: &str = r#"set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
aws s3 cp --only-show-errors "$1" "$work/job.sql"
shift
jars=()
for jar in "$@"; do
  case "$jar" in
    s3://*) aws s3 cp --only-show-errors "$jar" "$work/"; jars+=(--jar "$work/${jar##*/}") ;;
    *) jars+=(--jar "$jar") ;;
  esac
done
SQL_CLIENT embedded "${jars[@]}" -f "$work/job.sql"
"#;

/// `bash -c` program of an embedded step: `$1` the binary, `$2` the pipeline, `$3` the
/// variables; the rest go to `streamctl run`.
const EMBEDDED_PROGRAM: &str = r#"set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
aws s3 cp --only-show-errors "$1" "$work/streamctl"
aws s3 cp --only-show-errors "$2" "$work/pipeline.yaml"
aws s3 cp --only-show-errors "$3" "$work/variables.env"
chmod 700 "$work/streamctl"
set -a
. "$work/variables.env"
set +a
shift 3
"$work/streamctl" run "$work/pipeline.yaml" --progress log "$@"
"#;

/// Where a Flink job runs on the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlinkPlacement {
    /// A running Flink YARN session (`application_…`), else a YARN application per job.
    pub yarn_session: Option<String>,
    /// The step ends once the job is submitted, instead of when the job ends.
    pub detached: bool,
    pub parallelism: Option<u32>,
}

/// The script a Flink step runs: the `SET`s that place the job, then the translated script.
pub fn flink_step_script(script: &str, placement: &FlinkPlacement) -> String {
    let mut out = String::from(
        "-- Submitted by streamctl as an Amazon EMR step, run by Flink's SQL client.\n",
    );
    let mut set = |key: &str, value: &str| {
        out.push_str(&format!("SET {};\n", sql::option(key, value)));
    };
    match &placement.yarn_session {
        None => set("execution.target", "yarn-per-job"),
        Some(application) => {
            set("execution.target", "yarn-session");
            set("yarn.application.id", application);
        }
    }
    // The SQL client waits for each INSERT: the step lasts as long as the job.
    set(
        "table.dml-sync",
        if placement.detached { "false" } else { "true" },
    );
    if let Some(p) = placement.parallelism {
        set("parallelism.default", &p.to_string());
    }
    out.push('\n');
    out.push_str(script);
    out
}

/// One object to put under the staging prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub key: String,
    /// What it is, for messages: `Flink SQL script`.
    pub what: String,
    pub body: UploadBody,
    /// It holds secrets: its content is never printed.
    pub secret: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadBody {
    Text(String),
    /// A local file, read when it is uploaded.
    File(std::path::PathBuf),
}

/// A step and what it needs staged first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedStep {
    pub bucket: String,
    /// The key prefix everything is staged under.
    pub prefix: String,
    pub uploads: Vec<Upload>,
    pub step: NewStep,
}

impl StagedStep {
    /// `s3://bucket/key` of an upload.
    pub fn url(&self, upload: &Upload) -> String {
        url(&self.bucket, &upload.key)
    }
}

/// The prefix one submission stages under: `<base>/<pipeline>/<run id>/`.
pub fn staging_prefix(base: &S3Url, pipeline: &str, run_id: &str) -> String {
    let name: String = pipeline
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}{name}/{run_id}/", base.prefix())
}

/// Common settings of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepSettings {
    pub name: String,
    pub action_on_failure: String,
    /// `s3://bucket/` and the prefix from [`staging_prefix`].
    pub bucket: String,
    pub prefix: String,
}

/// A jar the Flink job needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Jar {
    /// Already in S3 (`s3://…`), or a path on the cluster's nodes.
    Remote(String),
    /// A file on this machine, staged with the script.
    Local(std::path::PathBuf),
}

/// The Flink SQL step: stages `script` (which holds secrets) and local jars.
pub fn flink_step(settings: &StepSettings, script: String, jars: &[Jar]) -> StagedStep {
    let script_key = format!("{}job.sql", settings.prefix);
    let mut uploads = vec![Upload {
        key: script_key.clone(),
        what: "Flink SQL script".to_string(),
        body: UploadBody::Text(script),
        secret: true,
    }];
    let mut jar_args = Vec::new();
    for jar in jars {
        match jar {
            Jar::Remote(uri) => jar_args.push(uri.clone()),
            Jar::Local(path) => {
                let file = path
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "connector.jar".to_string());
                let key = format!("{}jars/{file}", settings.prefix);
                jar_args.push(url(&settings.bucket, &key));
                uploads.push(Upload {
                    key,
                    what: format!("jar {}", path.display()),
                    body: UploadBody::File(path.clone()),
                    secret: false,
                });
            }
        }
    }
    let program = FLINK_PROGRAM.replace("SQL_CLIENT", EMR_SQL_CLIENT);
    let mut args = vec![
        "bash".to_string(),
        "-c".to_string(),
        program,
        PROGRAM_NAME.to_string(),
        url(&settings.bucket, &script_key),
    ];
    args.extend(jar_args);
    StagedStep {
        bucket: settings.bucket.clone(),
        prefix: settings.prefix.clone(),
        uploads,
        step: command_runner(settings, args),
    }
}

/// The embedded step: stages the binary, the pipeline file as written and the values of the
/// variables it uses; `run_args` go to `streamctl run` on the cluster.
pub fn embedded_step(
    settings: &StepSettings,
    binary: std::path::PathBuf,
    pipeline: String,
    variables: &[(String, String)],
    run_args: &[String],
) -> StagedStep {
    let binary_key = format!("{}streamctl", settings.prefix);
    let pipeline_key = format!("{}pipeline.yaml", settings.prefix);
    let variables_key = format!("{}variables.env", settings.prefix);
    let uploads = vec![
        Upload {
            key: binary_key.clone(),
            what: format!("streamctl binary {}", binary.display()),
            body: UploadBody::File(binary),
            secret: false,
        },
        Upload {
            key: pipeline_key.clone(),
            what: "pipeline".to_string(),
            body: UploadBody::Text(pipeline),
            secret: false,
        },
        Upload {
            key: variables_key.clone(),
            what: format!(
                "values of {} variable{} the pipeline uses",
                variables.len(),
                if variables.len() == 1 { "" } else { "s" }
            ),
            body: UploadBody::Text(variables_file(variables)),
            secret: true,
        },
    ];
    let mut args = vec![
        "bash".to_string(),
        "-c".to_string(),
        EMBEDDED_PROGRAM.to_string(),
        PROGRAM_NAME.to_string(),
        url(&settings.bucket, &binary_key),
        url(&settings.bucket, &pipeline_key),
        url(&settings.bucket, &variables_key),
    ];
    args.extend(run_args.iter().cloned());
    StagedStep {
        bucket: settings.bucket.clone(),
        prefix: settings.prefix.clone(),
        uploads,
        step: command_runner(settings, args),
    }
}

fn command_runner(settings: &StepSettings, args: Vec<String>) -> NewStep {
    NewStep {
        name: settings.name.clone(),
        action_on_failure: settings.action_on_failure.clone(),
        jar: "command-runner.jar".to_string(),
        args,
    }
}

/// `KEY='value'` lines a shell reads with `set -a; . FILE`.
fn variables_file(variables: &[(String, String)]) -> String {
    let mut out = String::from("# ${VAR} values for the pipeline, staged by streamctl submit\n");
    for (k, v) in variables {
        out.push_str(&format!("{k}={}\n", shell_quote(v)));
    }
    out
}

/// Whether `bytes` start like a Linux x86-64 executable (ELF, 64-bit, little-endian,
/// machine x86-64), what an EMR node runs.
pub fn is_linux_x86_64_elf(bytes: &[u8]) -> bool {
    bytes.len() >= 20
        && bytes[..4] == *b"\x7fELF"
        && bytes[4] == 2
        && bytes[5] == 1
        && u16::from_le_bytes([bytes[18], bytes[19]]) == 62
}

/// The step's definition as JSON, in the shape `aws emr add-steps --steps file://…` reads.
pub fn step_json(step: &NewStep) -> String {
    let value = serde_json::json!([{
        "Name": step.name,
        "ActionOnFailure": step.action_on_failure,
        "HadoopJarStep": { "Jar": step.jar, "Args": step.args },
    }]);
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> StepSettings {
        let base = S3Url::parse("s3://stage/streamctl").unwrap();
        StepSettings {
            name: "streamctl: movie-impressions".into(),
            action_on_failure: "CONTINUE".into(),
            bucket: base.bucket.clone(),
            prefix: staging_prefix(&base, "movie impressions", "20261202-113000-7"),
        }
    }

    #[test]
    fn a_flink_step_stages_the_script_and_local_jars_and_names_only_urls() {
        let staged = flink_step(
            &settings(),
            "INSERT INTO x SELECT 1;\n".into(),
            &[
                Jar::Remote("s3://jars/kafka.jar".into()),
                Jar::Local("/tmp/kinesis.jar".into()),
                Jar::Remote("/usr/lib/flink/opt/x.jar".into()),
            ],
        );
        let prefix = "streamctl/movie_impressions/20261202-113000-7/";
        assert_eq!(staged.uploads[0].key, format!("{prefix}job.sql"));
        assert!(staged.uploads[0].secret);
        assert_eq!(staged.uploads[1].key, format!("{prefix}jars/kinesis.jar"));
        let args = &staged.step.args;
        assert_eq!(staged.step.jar, "command-runner.jar");
        assert_eq!(&args[..2], ["bash", "-c"]);
        assert!(args[2].contains("/usr/lib/flink/bin/sql-client.sh embedded"));
        assert_eq!(
            &args[3..],
            [
                "streamctl-step".to_string(),
                format!("s3://stage/{prefix}job.sql"),
                "s3://jars/kafka.jar".to_string(),
                format!("s3://stage/{prefix}jars/kinesis.jar"),
                "/usr/lib/flink/opt/x.jar".to_string(),
            ]
        );
    }

    #[test]
    fn the_flink_script_places_the_job_and_waits_for_it_unless_detached() {
        let attached = flink_step_script(
            "SELECT 1;\n",
            &FlinkPlacement {
                yarn_session: None,
                detached: false,
                parallelism: Some(4),
            },
        );
        assert!(attached.contains("SET 'execution.target' = 'yarn-per-job';\n"));
        assert!(attached.contains("SET 'table.dml-sync' = 'true';\n"));
        assert!(attached.contains("SET 'parallelism.default' = '4';\n"));
        assert!(attached.ends_with("\nSELECT 1;\n"));
        let session = flink_step_script(
            "SELECT 1;\n",
            &FlinkPlacement {
                yarn_session: Some("application_1_0002".into()),
                detached: true,
                parallelism: None,
            },
        );
        assert!(session.contains("SET 'execution.target' = 'yarn-session';\n"));
        assert!(session.contains("SET 'yarn.application.id' = 'application_1_0002';\n"));
        assert!(session.contains("SET 'table.dml-sync' = 'false';\n"));
    }

    #[test]
    fn an_embedded_step_keeps_variable_values_out_of_its_arguments() {
        let staged = embedded_step(
            &settings(),
            "/bin/streamctl".into(),
            "name: x\n".into(),
            &[("KAFKA_PASSWORD".into(), "it's secret".into())],
            &["--bounded".into()],
        );
        let env = &staged.uploads[2];
        assert!(env.secret);
        assert_eq!(
            env.body,
            UploadBody::Text(
                "# ${VAR} values for the pipeline, staged by streamctl submit\n\
                 KAFKA_PASSWORD='it'\\''s secret'\n"
                    .into()
            )
        );
        assert!(staged.step.args.iter().all(|a| !a.contains("secret")));
        assert_eq!(staged.step.args.last().unwrap(), "--bounded");
        assert!(staged.step.args[2].contains("\"$work/streamctl\" run \"$work/pipeline.yaml\""));
    }

    #[test]
    fn only_linux_x86_64_executables_pass() {
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[18] = 62;
        assert!(is_linux_x86_64_elf(&elf));
        elf[18] = 183; // aarch64
        assert!(!is_linux_x86_64_elf(&elf));
        assert!(!is_linux_x86_64_elf(b"#!/bin/sh\n"));
    }
}
