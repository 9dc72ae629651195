//! A blocking Amazon EMR client for `streamctl submit --emr-cluster` and `streamctl steps`:
//! the cluster's state, adding a step, following, listing and cancelling steps. Answers come
//! back as plain values ([`ClusterInfo`], [`StepInfo`]) so the commands never touch SDK types;
//! failures are [`ConnectorError`]s that say whose problem it is (a missing cluster or step,
//! credentials, permissions) and never carry a secret.

use aws_sdk_emr::Client;
use aws_sdk_emr::types::{ActionOnFailure, HadoopJarStepConfig, StepConfig, StepState};

use super::{Aws, AwsSettings, Failure, RetryPolicy, Service, retry};
use crate::runtime::ConnectorError;

/// What a step does: `command-runner.jar` (or another jar) with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStep {
    pub name: String,
    /// `CONTINUE`, `CANCEL_AND_WAIT`, `TERMINATE_CLUSTER`.
    pub action_on_failure: String,
    pub jar: String,
    pub args: Vec<String>,
}

/// A cluster as EMR describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    pub id: String,
    pub name: String,
    /// `STARTING`, `BOOTSTRAPPING`, `RUNNING`, `WAITING`, `TERMINATING`, `TERMINATED`,
    /// `TERMINATED_WITH_ERRORS`.
    pub state: String,
    pub state_reason: Option<String>,
    pub release_label: Option<String>,
}

impl ClusterInfo {
    /// Whether the cluster is shutting down or has ended (it takes no new step).
    pub fn is_terminated(&self) -> bool {
        self.state.starts_with("TERMINAT")
    }

    /// Whether the cluster has ended (TERMINATED, TERMINATED_WITH_ERRORS): none of its steps
    /// changes state again.
    pub fn has_ended(&self) -> bool {
        self.state.starts_with("TERMINATED")
    }
}

/// Why a step failed, as EMR says it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepFailure {
    pub reason: Option<String>,
    pub message: Option<String>,
    pub log_file: Option<String>,
}

/// A step as EMR describes it. Times are seconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepInfo {
    pub id: String,
    pub name: String,
    /// `PENDING`, `CANCEL_PENDING`, `RUNNING`, `COMPLETED`, `CANCELLED`, `FAILED`,
    /// `INTERRUPTED`.
    pub state: String,
    pub state_reason: Option<String>,
    pub action_on_failure: Option<String>,
    pub jar: Option<String>,
    pub args: Vec<String>,
    pub created: Option<i64>,
    pub started: Option<i64>,
    pub ended: Option<i64>,
    pub failure: Option<StepFailure>,
}

impl StepInfo {
    /// Whether the step has ended (it will not change state again).
    pub fn is_finished(&self) -> bool {
        matches!(
            self.state.as_str(),
            "COMPLETED" | "CANCELLED" | "FAILED" | "INTERRUPTED"
        )
    }

    pub fn succeeded(&self) -> bool {
        self.state == "COMPLETED"
    }
}

/// How a cancellation request went for one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancellation {
    /// EMR accepted it; the step becomes CANCELLED (or stays, if it ends first).
    Submitted,
    /// EMR refused, saying why (a step that has ended, an unknown step).
    Refused(String),
}

/// An EMR client with its own runtime; cheap to clone.
#[derive(Clone)]
pub struct Emr {
    aws: Aws,
    client: Client,
    policy: RetryPolicy,
}

impl Emr {
    /// A client for `settings` (region and endpoint; `AWS_ENDPOINT_URL_EMR` /
    /// `AWS_ENDPOINT_URL` as in the other AWS SDKs).
    ///
    /// # Errors
    /// As [`Aws::connect`], and when no credentials can be found.
    pub fn connect(settings: &AwsSettings) -> Result<Emr, ConnectorError> {
        let aws = Aws::connect(Service::Emr, settings)?;
        aws.check_credentials()?;
        let mut config = aws_sdk_emr::config::Builder::from(&aws.config);
        if let Some(endpoint) = &aws.endpoint {
            config = config.endpoint_url(endpoint.clone());
        }
        Ok(Emr {
            client: Client::from_conf(config.build()),
            aws,
            policy: RetryPolicy::default(),
        })
    }

    /// The error for an EMR failure while doing `what` on `cluster`.
    fn fail<E>(
        &self,
        e: &aws_sdk_emr::error::SdkError<E, aws_sdk_emr::config::http::HttpResponse>,
        what: &str,
        cluster: &str,
    ) -> ConnectorError
    where
        E: aws_sdk_emr::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        let f = Failure::of(e);
        let said = f.message.clone().unwrap_or_default();
        // EMR answers an unknown cluster or step with InvalidRequestException ("Cluster id
        // 'j-…' is not valid.").
        if f.code.as_deref() == Some("InvalidRequestException") {
            let lower = said.to_ascii_lowercase();
            if lower.contains("cluster")
                && (lower.contains("not valid") || lower.contains("not found"))
            {
                return ConnectorError::user(format!(
                    "{what}: there is no cluster {cluster} at {}: check the id (`aws emr \
                     list-clusters --active`) and the region (AWS_REGION / --region)",
                    self.aws.describe_endpoint()
                ));
            }
            return ConnectorError::user(format!("{what}: EMR refused the request: {said}"));
        }
        if f.code.as_deref() == Some("AccessDeniedException") {
            return ConnectorError::user(format!(
                "{what}: access denied to cluster {cluster}: the credentials in use need \
                 elasticmapreduce:DescribeCluster, AddJobFlowSteps, ListSteps, DescribeStep and \
                 CancelSteps on it ({said})"
            ));
        }
        f.to_error(what, cluster, &self.aws)
    }

    /// The cluster `id`.
    ///
    /// # Errors
    /// An unknown cluster, credentials, permissions, the endpoint.
    pub fn cluster(&self, id: &str) -> Result<ClusterInfo, ConnectorError> {
        let what = &format!("describing cluster {id}");
        let out = self.aws.block_on(retry(&self.policy, || async move {
            self.client
                .describe_cluster()
                .cluster_id(id)
                .send()
                .await
                .map_err(|e| self.fail(&e, what, id))
        }))?;
        let Some(c) = out.cluster() else {
            return Err(ConnectorError::user(format!(
                "{what}: there is no cluster {id} at {}",
                self.aws.describe_endpoint()
            )));
        };
        let status = c.status();
        Ok(ClusterInfo {
            id: c.id().unwrap_or(id).to_string(),
            name: c.name().unwrap_or_default().to_string(),
            state: status
                .and_then(|s| s.state())
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|| "UNKNOWN".to_string()),
            state_reason: status
                .and_then(|s| s.state_change_reason())
                .and_then(|r| r.message())
                .filter(|m| !m.is_empty())
                .map(str::to_string),
            release_label: c.release_label().map(str::to_string),
        })
    }

    /// Adds `step` to the cluster; returns its id. Not retried: a retry after a lost answer
    /// would add the step twice.
    ///
    /// # Errors
    /// An unknown cluster, a refused step, credentials, permissions.
    pub fn add_step(&self, cluster: &str, step: &NewStep) -> Result<String, ConnectorError> {
        let what = &format!("adding a step to cluster {cluster}");
        let jar_step = HadoopJarStepConfig::builder()
            .jar(&step.jar)
            .set_args(Some(step.args.clone()))
            .build();
        let config = StepConfig::builder()
            .name(&step.name)
            .action_on_failure(ActionOnFailure::from(step.action_on_failure.as_str()))
            .hadoop_jar_step(jar_step)
            .build();
        let out = self
            .aws
            .block_on(
                self.client
                    .add_job_flow_steps()
                    .job_flow_id(cluster)
                    .steps(config)
                    .send(),
            )
            .map_err(|e| self.fail(&e, what, cluster))?;
        out.step_ids().first().cloned().ok_or_else(|| {
            ConnectorError::external(format!("{what}: EMR returned no step id"), false)
        })
    }

    /// The step `step` of `cluster`.
    ///
    /// # Errors
    /// An unknown cluster or step, credentials, the endpoint.
    pub fn step(&self, cluster: &str, step: &str) -> Result<StepInfo, ConnectorError> {
        let what = &format!("describing step {step} of cluster {cluster}");
        let out = self.aws.block_on(retry(&self.policy, || async move {
            self.client
                .describe_step()
                .cluster_id(cluster)
                .step_id(step)
                .send()
                .await
                .map_err(|e| self.fail(&e, what, cluster))
        }))?;
        let found = out.step().and_then(|s| {
            let config = s.config();
            step_info(
                s.id(),
                s.name(),
                s.status(),
                s.action_on_failure(),
                config.and_then(|c| c.jar()),
                config.map(|c| c.args()).unwrap_or_default(),
            )
        });
        found.ok_or_else(|| {
            ConnectorError::user(format!(
                "{what}: cluster {cluster} has no step {step} (`streamctl steps list \
                 --emr-cluster {cluster}` shows its steps)"
            ))
        })
    }

    /// The cluster's steps, newest first; at most `limit`.
    ///
    /// # Errors
    /// An unknown cluster, credentials, the endpoint.
    pub fn steps(&self, cluster: &str, limit: usize) -> Result<Vec<StepInfo>, ConnectorError> {
        let what = &format!("listing the steps of cluster {cluster}");
        let mut steps = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let current = &marker;
            let page = self.aws.block_on(retry(&self.policy, || async move {
                self.client
                    .list_steps()
                    .cluster_id(cluster)
                    .set_marker(current.clone())
                    .send()
                    .await
                    .map_err(|e| self.fail(&e, what, cluster))
            }))?;
            for s in page.steps() {
                let config = s.config();
                if let Some(info) = step_info(
                    s.id(),
                    s.name(),
                    s.status(),
                    s.action_on_failure(),
                    config.and_then(|c| c.jar()),
                    config.map(|c| c.args()).unwrap_or_default(),
                ) {
                    steps.push(info);
                }
            }
            if steps.len() >= limit {
                steps.truncate(limit);
                break;
            }
            match page.marker() {
                Some(m) if !m.is_empty() && current.as_deref() != Some(m) => {
                    marker = Some(m.to_string());
                }
                _ => break,
            }
        }
        Ok(steps)
    }

    /// Asks EMR to cancel `step` (pending, or running on EMR 5.28 and later).
    ///
    /// # Errors
    /// An unknown cluster, credentials, permissions.
    pub fn cancel(&self, cluster: &str, step: &str) -> Result<Cancellation, ConnectorError> {
        let what = &format!("cancelling step {step} of cluster {cluster}");
        let out = self.aws.block_on(retry(&self.policy, || async move {
            self.client
                .cancel_steps()
                .cluster_id(cluster)
                .step_ids(step)
                .send()
                .await
                .map_err(|e| self.fail(&e, what, cluster))
        }))?;
        let info = out
            .cancel_steps_info_list()
            .iter()
            .find(|i| i.step_id() == Some(step));
        Ok(match info {
            Some(i) if i.status().is_some_and(|s| s.as_str() == "SUBMITTED") => {
                Cancellation::Submitted
            }
            Some(i) => Cancellation::Refused(
                i.reason()
                    .filter(|r| !r.is_empty())
                    .unwrap_or("EMR gave no reason")
                    .to_string(),
            ),
            None => Cancellation::Refused("EMR did not answer for this step".to_string()),
        })
    }
}

fn seconds(t: Option<&aws_smithy_types::DateTime>) -> Option<i64> {
    t.map(aws_smithy_types::DateTime::secs)
}

fn step_info(
    id: Option<&str>,
    name: Option<&str>,
    status: Option<&aws_sdk_emr::types::StepStatus>,
    action_on_failure: Option<&ActionOnFailure>,
    jar: Option<&str>,
    args: &[String],
) -> Option<StepInfo> {
    let timeline = status.and_then(|s| s.timeline());
    Some(StepInfo {
        id: id?.to_string(),
        name: name.unwrap_or_default().to_string(),
        state: status
            .and_then(|s| s.state())
            .map(StepState::as_str)
            .unwrap_or("UNKNOWN")
            .to_string(),
        state_reason: status
            .and_then(|s| s.state_change_reason())
            .and_then(|r| r.message())
            .filter(|m| !m.is_empty())
            .map(str::to_string),
        action_on_failure: action_on_failure.map(|a| a.as_str().to_string()),
        jar: jar.map(str::to_string),
        args: args.to_vec(),
        created: seconds(timeline.and_then(|t| t.creation_date_time())),
        started: seconds(timeline.and_then(|t| t.start_date_time())),
        ended: seconds(timeline.and_then(|t| t.end_date_time())),
        failure: status
            .and_then(|s| s.failure_details())
            .map(|f| StepFailure {
                reason: f.reason().map(str::to_string),
                message: f.message().map(str::to_string),
                log_file: f.log_file().map(str::to_string),
            }),
    })
}
