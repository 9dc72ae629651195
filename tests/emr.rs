//! The EMR path end to end, through the binary, against the EMR API endpoint and S3 server
//! started by `scripts/services/emr.sh` (moto on 127.0.0.1, whose steps go PENDING → RUNNING
//! → COMPLETED, or FAILED for a step named `…#fail`, and can be cancelled). A test's own
//! boto3 client (tests/emr_client.py) starts clusters and reads back what streamctl did: the
//! step's arguments, the staged objects. The embedded step's command is run here as EMR's
//! command-runner would run it (with the client standing in for the AWS CLI's `s3 cp`), so
//! the staged binary, pipeline and variables are proven to run the job. Every test uses its
//! own cluster and bucket.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Service, wait_for};

fn emr() -> Service {
    common::service("emr")
}

/// streamctl with the server's standard AWS variables (and nothing from the caller's AWS
/// setup).
fn streamctl(svc: &Service) -> Command {
    let mut c = common::streamctl_with_aws(svc);
    c.env_remove("STREAMCTL_EMR_STAGING").env("NO_COLOR", "1");
    c
}

/// `streamctl submit` of a small local pipeline to `cluster`, staging in `bucket`.
fn submit(svc: &Service, cluster: &str, bucket: &str) -> Command {
    let mut c = streamctl(svc);
    c.args([
        "submit",
        "pipelines/movie-impressions-local.yaml",
        "--emr-cluster",
        cluster,
        "--staging",
        &format!("s3://{bucket}/s/"),
    ]);
    c
}

fn run(svc: &Service, args: &[&str]) -> Output {
    streamctl(svc).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn client_command(svc: &Service) -> Command {
    let mut c = Command::new(svc.get("EMR_PYTHON"));
    c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/emr_client.py"))
        .envs(svc.env());
    c
}

/// The independent client (tests/emr_client.py).
fn client(svc: &Service, args: &[&str]) -> String {
    let o = client_command(svc).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "emr_client.py {args:?}: {}",
        text(&o.stderr)
    );
    text(&o.stdout)
}

fn cluster(svc: &Service) -> String {
    client(svc, &["cluster", &common::unique("streamctl-test")])
        .trim()
        .to_string()
}

fn bucket(svc: &Service) -> String {
    let name = common::unique("streamctl-emr");
    client(svc, &["mkbucket", &name]);
    name
}

fn step(svc: &Service, cluster: &str, step: &str) -> serde_json::Value {
    serde_json::from_str(&client(svc, &["step", cluster, step])).unwrap()
}

fn keys(svc: &Service, bucket: &str) -> Vec<String> {
    client(svc, &["keys", bucket, ""])
        .lines()
        .map(str::to_string)
        .collect()
}

fn get(svc: &Service, bucket: &str, key: &str) -> Vec<u8> {
    client_command(svc)
        .args(["get", bucket, key])
        .output()
        .unwrap()
        .stdout
}

/// The step id a submission printed (its only line on stdout).
fn step_id(o: &Output) -> String {
    let out = text(&o.stdout);
    let id = out.trim();
    assert!(
        id.starts_with("s-") && !id.contains('\n'),
        "stdout: {out}\nstderr: {}",
        text(&o.stderr)
    );
    id.to_string()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(common::unique(name));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A Kafka pipeline whose SASL settings come from a secret variable.
fn secret_pipeline(dir: &Path) -> PathBuf {
    let path = dir.join("secret.yaml");
    let original = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/movie-impressions.yaml"),
    )
    .unwrap();
    let with_secret = original.replacen(
        "    group_id: movie-impressions-agg\n",
        "    group_id: movie-impressions-agg\n    properties:\n      \
         security.protocol: SASL_SSL\n      sasl.jaas.config: ${KAFKA_JAAS}\n",
        1,
    );
    assert_ne!(original, with_secret);
    std::fs::write(&path, with_secret).unwrap();
    path
}

const SECRET: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required \
                      username=\"u\" password=\"hunter2-not-for-logs\";";

#[test]
fn a_flink_step_stages_the_script_and_runs_it_with_the_sql_client() {
    let svc = emr();
    let cluster = cluster(&svc);
    let bucket = bucket(&svc);
    let dir = tmp("emr-flink");
    let pipeline = secret_pipeline(&dir);
    let jar = dir.join("flink-sql-connector-kafka.jar");
    std::fs::write(&jar, b"PK\x03\x04 not really a jar").unwrap();
    let o = streamctl(&svc)
        .args([
            "submit",
            pipeline.to_str().unwrap(),
            "--emr-cluster",
            &cluster,
            "--staging",
            &format!("s3://{bucket}/streamctl/"),
            "--jar",
            "s3://jars/flink-connector-kinesis.jar",
            "--jar",
            jar.to_str().unwrap(),
            "-p",
            "2",
        ])
        .env("KAFKA_JAAS", SECRET)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let id = step_id(&o);
    for out in [&o.stdout, &o.stderr] {
        assert!(!text(out).contains("hunter2"), "a secret was printed");
    }

    // What was staged: the script, and the jar from this machine.
    let staged = keys(&svc, &bucket);
    assert_eq!(staged.len(), 2, "{staged:?}");
    let script_key = staged.iter().find(|k| k.ends_with("/job.sql")).unwrap();
    assert!(
        script_key.starts_with("streamctl/movie-impressions/"),
        "{script_key}"
    );
    let prefix = script_key.strip_suffix("job.sql").unwrap();
    let jar_key = format!("{prefix}jars/flink-sql-connector-kafka.jar");
    assert!(staged.contains(&jar_key), "{staged:?}");
    assert_eq!(get(&svc, &bucket, &jar_key), std::fs::read(&jar).unwrap());

    // The script: how the job is placed, then the translation (with the secret the cluster
    // needs, which `plan` leaves out).
    let script = text(&get(&svc, &bucket, script_key));
    assert!(
        script.contains("SET 'execution.target' = 'yarn-per-job';\n")
            && script.contains("SET 'table.dml-sync' = 'true';\n")
            && script.contains("SET 'parallelism.default' = '2';\n"),
        "{script}"
    );
    assert!(script.contains("hunter2-not-for-logs"), "{script}");
    let plan = streamctl(&svc)
        .args(["plan", pipeline.to_str().unwrap(), "--target", "flink-sql"])
        .env("KAFKA_JAAS", SECRET)
        .output()
        .unwrap();
    let plan = text(&plan.stdout);
    assert!(!plan.contains("hunter2"));
    let statements = |sql: &str| -> Vec<String> {
        sql.lines()
            .filter(|l| {
                l.starts_with("CREATE ") || l.starts_with("INSERT ") || l.contains("FROM TABLE(")
            })
            .map(str::to_string)
            .collect()
    };
    assert!(!statements(&plan).is_empty());
    assert_eq!(statements(&script), statements(&plan));

    // The step, as EMR holds it.
    let s = step(&svc, &cluster, &id);
    assert_eq!(s["Name"], "streamctl flink: movie-impressions");
    assert_eq!(s["ActionOnFailure"], "CONTINUE");
    assert_eq!(s["Jar"], "command-runner.jar");
    let args: Vec<String> = serde_json::from_value(s["Args"].clone()).unwrap();
    assert_eq!(&args[..2], ["bash", "-c"]);
    assert!(
        args[2].contains(
            "/usr/lib/flink/bin/sql-client.sh embedded \"${jars[@]}\" -f \"$work/job.sql\""
        ),
        "{}",
        args[2]
    );
    assert_eq!(
        &args[3..],
        [
            "streamctl-step".to_string(),
            format!("s3://{bucket}/{script_key}"),
            "s3://jars/flink-connector-kinesis.jar".to_string(),
            format!("s3://{bucket}/{jar_key}"),
        ]
    );
    assert!(!args.iter().any(|a| a.contains("hunter2")));
    std::fs::remove_dir_all(dir).unwrap();
}

/// `submit --dry-run` of `pipeline` (its secret variable set) with no credentials and an
/// endpoint nothing listens on, which a dry run needs neither of; its stdout and stderr,
/// neither of which may hold the secret.
fn dry_run(svc: &Service, pipeline: &Path, extra: &[&str]) -> (String, String) {
    let o = streamctl(svc)
        .arg("submit")
        .arg(pipeline)
        .args([
            "--emr-cluster",
            "j-DRYRUN",
            "--staging",
            "s3://nowhere/streamctl",
            "--dry-run",
        ])
        .args(extra)
        .env("KAFKA_JAAS", SECRET)
        .env("AWS_ENDPOINT_URL_EMR", "http://127.0.0.1:9")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{err}");
    assert!(!out.contains("hunter2") && !err.contains("hunter2"));
    (out, err)
}

#[test]
fn dry_run_prints_the_step_and_uploads_without_calling_aws() {
    let svc = emr();
    let dir = tmp("emr-dry");
    let pipeline = secret_pipeline(&dir);
    let (out, err) = dry_run(&svc, &pipeline, &[]);
    let steps: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(steps[0]["HadoopJarStep"]["Jar"], "command-runner.jar");
    assert_eq!(steps[0]["ActionOnFailure"], "CONTINUE");
    assert!(
        err.contains("would upload s3://nowhere/streamctl/movie-impressions/")
            && err.contains("job.sql (Flink SQL script, ")
            && err.contains("holds secrets: not shown"),
        "{err}"
    );
    // The exact step: the program, then the staged script's URL (the one it would upload).
    let args: Vec<String> =
        serde_json::from_value(steps[0]["HadoopJarStep"]["Args"].clone()).unwrap();
    assert_eq!(&args[..2], ["bash", "-c"]);
    assert!(args[2].contains("/usr/lib/flink/bin/sql-client.sh embedded"));
    assert_eq!(args[3], "streamctl-step");
    assert!(
        err.contains(&format!("would upload {} (", args[4])),
        "{}\n{err}",
        args[4]
    );

    // The embedded engine: the binary (this one by default), the pipeline as written, and
    // the variables' values, which are secret.
    let (out, err) = dry_run(
        &svc,
        &pipeline,
        &["--engine", "embedded", "--", "--bounded"],
    );
    let steps: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(steps[0]["Name"], "streamctl embedded: movie-impressions");
    let args: Vec<String> =
        serde_json::from_value(steps[0]["HadoopJarStep"]["Args"].clone()).unwrap();
    assert_eq!(args.last().unwrap(), "--bounded");
    for (url, what) in [
        (
            &args[4],
            format!("streamctl binary {}", env!("CARGO_BIN_EXE_streamctl")),
        ),
        (&args[5], "pipeline".to_string()),
        (
            &args[6],
            "values of 1 variable the pipeline uses".to_string(),
        ),
    ] {
        assert!(
            err.contains(&format!("would upload {url} ({what}, ")),
            "{url} {what}: {err}"
        );
    }
    assert!(
        err.lines()
            .any(|l| l.contains("variables.env") && l.ends_with("holds secrets: not shown)")),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Submits a tiny pipeline with `--wait`; returns the process.
fn submit_waiting(
    svc: &Service,
    cluster: &str,
    bucket: &str,
    step_name: &str,
) -> std::process::Child {
    submit(svc, cluster, bucket)
        .args(["--step-name", step_name, "--wait", "--poll-every", "100ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The id of the step named `name` once EMR shows it in `state` (within 60 s).
fn step_reaching(svc: &Service, cluster: &str, name: &str, state: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let steps = client(svc, &["steps", cluster]);
        let found = steps
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|s| s["Name"] == name && s["State"] == state);
        if let Some(s) = found {
            return s["Id"].as_str().unwrap().to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "step `{name}` was not {state} within 60s: {steps}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn finish(mut child: std::process::Child) -> (i32, String, String) {
    let status = wait_for(&mut child, Duration::from_secs(60)).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("submit --wait did not end within 60s")
    });
    let o = child.wait_with_output().unwrap();
    (status.code().unwrap(), text(&o.stdout), text(&o.stderr))
}

#[test]
fn wait_follows_the_step_to_completed() {
    let svc = emr();
    let (cluster, bucket) = (cluster(&svc), bucket(&svc));
    let (code, out, err) = finish(submit_waiting(&svc, &cluster, &bucket, "impressions"));
    assert_eq!(code, 0, "{err}");
    let id = out.trim();
    for state in ["PENDING", "RUNNING", "COMPLETED"] {
        assert!(
            err.contains(&format!("step {id} {state}")),
            "{state}: {err}"
        );
    }
    assert_eq!(step(&svc, &cluster, id)["State"], "COMPLETED");
}

#[test]
fn wait_reports_a_failed_step_with_its_log_and_exits_4() {
    let svc = emr();
    let (cluster, bucket) = (cluster(&svc), bucket(&svc));
    let (code, out, err) = finish(submit_waiting(&svc, &cluster, &bucket, "impressions #fail"));
    assert_eq!(code, 4, "{err}");
    let id = out.trim();
    assert!(err.contains(&format!("step {id} FAILED")), "{err}");
    assert!(
        err.contains(&format!("its log: s3://logs/steps/{id}/stderr.gz")),
        "{err}"
    );
}

#[test]
fn a_step_cancelled_while_followed_ends_the_wait_with_4() {
    let svc = emr();
    let (cluster, bucket) = (cluster(&svc), bucket(&svc));
    // A step of someone else's first that runs until it is stopped, so ours stays PENDING
    // until we cancel it, however slow this machine is.
    client(&svc, &["add-step", &cluster, "before #hold"]);
    let child = submit_waiting(&svc, &cluster, &bucket, "impressions");
    let id = step_reaching(&svc, &cluster, "impressions", "PENDING");
    let o = run(&svc, &["steps", "cancel", &id, "--emr-cluster", &cluster]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains(&format!("cancellation of step {id}")),
        "{}",
        text(&o.stderr)
    );
    let (code, _, err) = finish(child);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains(&format!("step {id} CANCELLED")), "{err}");
    // Cancelling it again: it has ended.
    let again = run(&svc, &["steps", "cancel", &id, "--emr-cluster", &cluster]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again.stderr).contains("has already ended (CANCELLED)"),
        "{}",
        text(&again.stderr)
    );
}

#[test]
fn a_cluster_terminated_under_a_running_step_ends_the_wait_with_4() {
    let svc = emr();
    let (cluster, bucket) = (cluster(&svc), bucket(&svc));
    // `#hold`: the step runs until something stops it, so it is still RUNNING when the
    // cluster is terminated, however slow this machine is.
    let child = submit_waiting(&svc, &cluster, &bucket, "impressions #hold");
    let id = step_reaching(&svc, &cluster, "impressions #hold", "RUNNING");
    client(&svc, &["terminate", &cluster]);
    // The cluster is TERMINATING for a while with the step still RUNNING (the wait goes on),
    // then TERMINATED with the step INTERRUPTED.
    let (code, _, err) = finish(child);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains(&format!("step {id} INTERRUPTED")), "{err}");
    assert_eq!(step(&svc, &cluster, &id)["State"], "INTERRUPTED");

    // A terminated cluster takes no new step, and the message says so.
    let o = submit(&svc, &cluster, &bucket).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("cluster {cluster}")) && err.contains("is TERMINATED"),
        "{err}"
    );
}

#[test]
fn steps_list_and_status_show_what_emr_holds() {
    let svc = emr();
    let (cluster, bucket) = (cluster(&svc), bucket(&svc));
    let o = submit(&svc, &cluster, &bucket)
        .args(["--action-on-failure", "cancel-and-wait"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let id = step_id(&o);
    let list = run(&svc, &["steps", "list", "--emr-cluster", &cluster]);
    assert!(list.status.success(), "{}", text(&list.stderr));
    let list = text(&list.stdout);
    assert!(list.starts_with("STEP "), "{list}");
    let row = list.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(
        row.ends_with("streamctl flink: movie-impressions-local"),
        "{row}"
    );

    let status = run(
        &svc,
        &[
            "steps",
            "status",
            &id,
            "--emr-cluster",
            &cluster,
            "--format",
            "json",
            "--wait",
            "--poll-every",
            "100ms",
        ],
    );
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stderr));
    let first: serde_json::Value =
        serde_json::from_str(text(&status.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["id"], id.as_str());
    assert_eq!(first["action_on_failure"], "CANCEL_AND_WAIT");
    assert_eq!(first["jar"], "command-runner.jar");
    let human = run(&svc, &["steps", "status", &id, "--emr-cluster", &cluster]);
    let human = text(&human.stdout);
    assert!(
        human.contains("state    COMPLETED")
            && human.contains(
                "command  command-runner.jar bash -c 'set -euo pipefail …' streamctl-step s3://"
            ),
        "{human}"
    );
}

#[test]
fn mistakes_get_clear_errors() {
    let svc = emr();
    let bucket = bucket(&svc);
    let pipeline = "pipelines/movie-impressions-local.yaml";
    let staging = format!("s3://{bucket}/s/");
    let err = |args: &[&str], cmd: &mut Command| -> String {
        let o = cmd.args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        text(&o.stderr)
    };
    let e = err(
        &[
            "submit",
            pipeline,
            "--emr-cluster",
            "j-NOSUCHCLUSTER",
            "--staging",
            &staging,
        ],
        &mut streamctl(&svc),
    );
    assert!(
        e.contains("there is no cluster j-NOSUCHCLUSTER at http://127.0.0.1:"),
        "{e}"
    );
    let e = err(
        &["steps", "list", "--emr-cluster", "j-NOSUCHCLUSTER"],
        &mut streamctl(&svc),
    );
    assert!(e.contains("there is no cluster j-NOSUCHCLUSTER"), "{e}");
    let cluster = cluster(&svc);
    let e = err(
        &["steps", "status", "s-NOSUCHSTEP", "--emr-cluster", &cluster],
        &mut streamctl(&svc),
    );
    assert!(
        e.contains(&format!("cluster {cluster} has no step s-NOSUCHSTEP")),
        "{e}"
    );
    let e = err(
        &["submit", pipeline, "--emr-cluster", &cluster],
        &mut streamctl(&svc),
    );
    assert!(e.contains("--staging s3://bucket/prefix/"), "{e}");
    let e = err(
        &[
            "submit",
            pipeline,
            "--emr-cluster",
            &cluster,
            "--staging",
            "s3://no-such-bucket-here/x/",
        ],
        &mut streamctl(&svc),
    );
    assert!(
        e.contains("bucket `no-such-bucket-here` does not exist"),
        "{e}"
    );
    let mut no_credentials = streamctl(&svc);
    no_credentials
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    let e = err(
        &[
            "submit",
            pipeline,
            "--emr-cluster",
            &cluster,
            "--staging",
            &staging,
        ],
        &mut no_credentials,
    );
    assert!(e.contains("no AWS credentials found"), "{e}");
    let e = err(&["submit", pipeline], &mut streamctl(&svc));
    assert!(
        e.contains("--emr-cluster j-… (an EMR step), --target yarn or --target local"),
        "{e}"
    );
    // Nothing was added to the cluster by any of these.
    assert_eq!(client(&svc, &["steps", &cluster]), "");
}

#[test]
fn the_embedded_engine_runs_as_a_step_from_what_was_staged() {
    let svc = emr();
    let (cluster, bucket) = (cluster(&svc), bucket(&svc));
    let dir = tmp("emr-embedded");
    let input = dir.join("impressions.jsonl");
    let o = streamctl(&svc)
        .args(["generate", "movie_impressions", "--count", "2000", "-o"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let on_cluster = dir.join("cluster-out");
    let here = dir.join("here-out");
    // This test build without its debug info (600 MB → 40 MB): the same program, staged
    // and fetched in a second instead of a minute. (A release build has none to strip.)
    let binary_path = dir.join("streamctl");
    let o = Command::new("strip")
        .arg("-o")
        .arg(&binary_path)
        .arg(env!("CARGO_BIN_EXE_streamctl"))
        .output()
        .expect("running strip (binutils), to make a small copy of the test binary");
    assert!(o.status.success(), "strip: {}", text(&o.stderr));
    let o = submit(&svc, &cluster, &bucket)
        .args([
            "--engine",
            "embedded",
            "--binary",
            binary_path.to_str().unwrap(),
            "--",
            "--bounded",
        ])
        .env("INPUT", &input)
        .env("OUTPUT", format!("file://{}/", on_cluster.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let id = step_id(&o);
    let s = step(&svc, &cluster, &id);
    assert_eq!(s["Name"], "streamctl embedded: movie-impressions-local");
    let args: Vec<String> = serde_json::from_value(s["Args"].clone()).unwrap();
    assert_eq!(args.last().unwrap(), "--bounded");
    assert!(
        !args.iter().any(|a| a.contains(input.to_str().unwrap())),
        "values stay out of the step"
    );

    // The binary staged is the one given, byte for byte.
    let staged = keys(&svc, &bucket);
    let binary_key = staged.iter().find(|k| k.ends_with("/streamctl")).unwrap();
    assert!(get(&svc, &bucket, binary_key) == std::fs::read(&binary_path).unwrap());

    // Run the step's command as command-runner.jar would on the primary node, with `aws s3
    // cp` served by the test client, and without INPUT/OUTPUT in its environment: they come
    // from the staged variables file.
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let aws = bin.join("aws");
    std::fs::write(
        &aws,
        format!(
            "#!/bin/sh\nexec {} {} \"$@\"\n",
            svc.get("EMR_PYTHON"),
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/emr_client.py")
                .display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&aws, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let o = Command::new(&args[0])
        .args(&args[1..])
        .envs(svc.env())
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env_remove("INPUT")
        .env_remove("OUTPUT")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "the step's command failed: {}",
        text(&o.stderr)
    );

    // The same run here gives the same files.
    let o = streamctl(&svc)
        .args([
            "run",
            "pipelines/movie-impressions-local.yaml",
            "--bounded",
            "--progress",
            "off",
        ])
        .env("INPUT", &input)
        .env("OUTPUT", format!("file://{}/", here.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    // Rows per directory (part file names differ between runs).
    let rows = |root: &Path| -> std::collections::BTreeMap<String, Vec<String>> {
        let mut out = std::collections::BTreeMap::<String, Vec<String>>::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = d.strip_prefix(root).unwrap().display().to_string();
                    let content = std::fs::read_to_string(&p).unwrap();
                    out.entry(rel)
                        .or_default()
                        .extend(content.lines().map(str::to_string));
                }
            }
        }
        out.values_mut().for_each(|v| v.sort());
        out
    };
    let (a, b) = (rows(&on_cluster), rows(&here));
    assert!(!a.is_empty());
    assert_eq!(a, b);
    std::fs::remove_dir_all(dir).unwrap();
}
