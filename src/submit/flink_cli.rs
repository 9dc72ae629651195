//! `bin/flink run` for a Flink SQL script.
//!
//! Flink 1.20's `flink run` takes a jar or a Python program, not an SQL file (the SQL client
//! needs a SQL gateway), so the script goes with a small PyFlink program,
//! `src/flink/sql_runner.py`, that executes it statement by statement the way the SQL client
//! does. The program runs in the client (`-py`, with `-pyclientexec` naming a Python that has
//! PyFlink): the client plans the job and submits the job graph, so the cluster needs no
//! Python.
//!
//! On YARN the mode that fits a SQL script is per-job (`-t yarn-per-job`, detached): the
//! script is planned on the submitting machine and the job gets a YARN application of its
//! own, which ends with it. (Application mode would plan the job inside YARN, which needs
//! PyFlink on every node.) With a YARN session already running (`yarn-session.sh`), the job
//! can go into it instead (`-t yarn-session -Dyarn.application.id=…`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::shell_quote;

/// The PyFlink program that runs a script (see the module docs).
pub const SQL_RUNNER: &str = include_str!("../flink/sql_runner.py");

/// Where the job runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A Flink inside the client process (`-t local`); the client waits for the job.
    Local,
    /// A YARN cluster: a new application per job, or the session `application_id`.
    Yarn { session: Option<String> },
}

/// One `bin/flink run` invocation.
#[derive(Debug, Clone)]
pub struct FlinkRun {
    pub flink_home: PathBuf,
    /// A Python that can `import pyflink`, for the client.
    pub python: PathBuf,
    pub target: Target,
    /// Return once the job is submitted (always on YARN per-job).
    pub detached: bool,
    pub parallelism: Option<u32>,
    /// Connector jars (Kafka, Kinesis, Parquet…) the job needs.
    pub jars: Vec<String>,
    /// The staged script and runner.
    pub script: PathBuf,
    pub runner: PathBuf,
}

impl FlinkRun {
    /// `$FLINK_HOME/bin/flink`.
    pub fn program(&self) -> PathBuf {
        self.flink_home.join("bin").join("flink")
    }

    /// The arguments of `bin/flink`.
    pub fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["run".into()];
        let mut push = |a: &str| args.push(a.into());
        match &self.target {
            Target::Local => {
                push("--target");
                push("local");
            }
            Target::Yarn { session: None } => {
                push("--target");
                push("yarn-per-job");
            }
            Target::Yarn {
                session: Some(application),
            } => {
                push("--target");
                push("yarn-session");
                push(&format!("-Dyarn.application.id={application}"));
            }
        }
        let detached = self.detached || self.target == (Target::Yarn { session: None });
        if detached {
            push("--detached");
        }
        if let Some(p) = self.parallelism {
            push("--parallelism");
            push(&p.to_string());
        }
        if !self.jars.is_empty() {
            let uris: Vec<String> = self.jars.iter().map(|j| jar_uri(j)).collect();
            push(&format!("-Dpipeline.jars={}", uris.join(";")));
        }
        args.push("-pyclientexec".into());
        args.push(self.python.clone().into_os_string());
        args.push("-py".into());
        args.push(self.runner.clone().into_os_string());
        args.push(self.script.clone().into_os_string());
        if detached {
            args.push("--detached".into());
        }
        args
    }

    /// The command line, for `--dry-run` and error messages.
    pub fn display(&self) -> String {
        std::iter::once(self.program().into_os_string())
            .chain(self.args())
            .map(|a| shell_quote(&a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A jar as a URI (`pipeline.jars` takes URIs; `s3://…` and `hdfs://…` pass through).
fn jar_uri(jar: &str) -> String {
    if jar.contains("://") {
        jar.to_string()
    } else {
        format!("file://{jar}")
    }
}

/// The Python for the client: the venv a PyPI Flink lives in (`…/lib/pythonX/site-packages/
/// pyflink` → `…/bin/python`), else `python3`.
pub fn default_python(flink_home: &Path) -> PathBuf {
    if flink_home.file_name().is_some_and(|n| n == "pyflink")
        && let Some(venv) = flink_home.ancestors().nth(4)
    {
        let python = venv.join("bin").join("python");
        if python.exists() {
            return python;
        }
    }
    PathBuf::from("python3")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(target: Target) -> FlinkRun {
        FlinkRun {
            flink_home: PathBuf::from("/opt/flink"),
            python: PathBuf::from("python3"),
            target,
            detached: false,
            parallelism: Some(2),
            jars: vec!["/jars/kafka.jar".into(), "s3://b/kinesis.jar".into()],
            script: PathBuf::from("/tmp/s/job.sql"),
            runner: PathBuf::from("/tmp/s/sql_runner.py"),
        }
    }

    #[test]
    fn yarn_per_job_is_detached_with_the_script_and_jars() {
        assert_eq!(
            run(Target::Yarn { session: None }).display(),
            "/opt/flink/bin/flink run --target yarn-per-job --detached --parallelism 2 \
             '-Dpipeline.jars=file:///jars/kafka.jar;s3://b/kinesis.jar' -pyclientexec python3 \
             -py /tmp/s/sql_runner.py /tmp/s/job.sql --detached"
        );
        let session = run(Target::Yarn {
            session: Some("application_1_0001".into()),
        })
        .display();
        assert!(
            session.contains("--target yarn-session -Dyarn.application.id=application_1_0001"),
            "{session}"
        );
        assert!(!session.contains("--detached"), "{session}");
        let local = run(Target::Local).display();
        assert!(
            local.starts_with("/opt/flink/bin/flink run --target local "),
            "{local}"
        );
    }

    #[test]
    fn a_pypi_flink_brings_its_python() {
        let dir = std::env::temp_dir().join(format!("streamctl-py-{}", std::process::id()));
        let home = dir.join("lib/python3.11/site-packages/pyflink");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(dir.join("bin/python"), "").unwrap();
        assert_eq!(default_python(&home), dir.join("bin/python"));
        assert_eq!(
            default_python(Path::new("/opt/flink")),
            PathBuf::from("python3")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
