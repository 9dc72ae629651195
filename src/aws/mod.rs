//! AWS client setup shared by everything that talks to AWS (S3, Kinesis and EMR steps): the
//! standard credential chain and region from `aws-config`, endpoint overrides, a tokio runtime
//! owned by the connector, error domains for SDK errors, and retries.
//!
//! The engine is synchronous: a connector owns an [`Aws`] (with its own current-thread tokio
//! runtime) and calls [`Aws::block_on`] from its own thread.
//!
//! Endpoints, in order: the pipeline's `endpoint:`, `AWS_ENDPOINT_URL_<SERVICE>` (e.g.
//! `AWS_ENDPOINT_URL_S3`), `AWS_ENDPOINT_URL` (both ignored when
//! `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`, as in the AWS SDKs). Nothing here prints, and no
//! message carries credentials or an endpoint's user info.

pub mod emr;
pub mod kinesis;
pub mod s3;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::runtime::ConnectorError;

/// Which AWS service a client is for (names its endpoint variable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    S3,
    Kinesis,
    Emr,
}

impl Service {
    /// The suffix of its `AWS_ENDPOINT_URL_<SERVICE>` variable.
    fn env_suffix(self) -> &'static str {
        match self {
            Service::S3 => "S3",
            Service::Kinesis => "KINESIS",
            Service::Emr => "EMR",
        }
    }
}

/// What a pipeline says about reaching AWS (each `None` falls back to the AWS environment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsSettings {
    pub region: Option<String>,
    pub endpoint: Option<String>,
}

/// Shared AWS configuration and the runtime that drives its clients.
#[derive(Clone)]
pub struct Aws {
    runtime: Arc<tokio::runtime::Runtime>,
    pub config: SdkConfig,
    /// A custom endpoint (a local or S3-compatible server), when one is configured.
    pub endpoint: Option<String>,
    /// The region requests are signed for.
    pub region: String,
    /// The service the client is for (names the permissions an access-denied error needs).
    pub service: Service,
}

/// The region used with a custom endpoint when none is configured: S3-compatible servers
/// accept any, and the SDK needs one to sign.
const DEFAULT_CUSTOM_ENDPOINT_REGION: &str = "us-east-1";

/// Reads an environment variable, treating empty as unset.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The endpoint for `service`: the pipeline's, else the standard variables.
pub fn endpoint(service: Service, configured: Option<&str>) -> Option<String> {
    if let Some(e) = configured.filter(|e| !e.trim().is_empty()) {
        return Some(e.trim().to_string());
    }
    let ignore = env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v == "true");
    if ignore {
        return None;
    }
    env(&format!("AWS_ENDPOINT_URL_{}", service.env_suffix())).or_else(|| env("AWS_ENDPOINT_URL"))
}

/// A URL without user info (`http://user:secret@host/` → `http://host/`), for messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

impl Aws {
    /// Loads the shared configuration for `service`: credentials chain (environment, profile,
    /// SSO, web identity, container and instance roles), region, endpoint.
    ///
    /// # Errors
    /// When the runtime cannot start, or no region is configured for AWS itself.
    pub fn connect(service: Service, settings: &AwsSettings) -> Result<Aws, ConnectorError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ConnectorError::internal(format!("starting the AWS client: {e}")))?;
        let endpoint = endpoint(service, settings.endpoint.as_deref());
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        // Retries are ours ([`retry`]): the SDK's token bucket would stop retrying during a
        // long stretch of throttling, and ours see every failure the same way.
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_attempt_timeout(Duration::from_secs(120))
                    .build(),
            );
        if let Some(region) = settings.region.as_ref().filter(|r| !r.trim().is_empty()) {
            loader = loader.region(Region::new(region.trim().to_string()));
        }
        let mut config = runtime.block_on(loader.load());
        let region = match config.region() {
            Some(r) => r.to_string(),
            None if endpoint.is_some() => {
                config = config
                    .into_builder()
                    .region(Region::new(DEFAULT_CUSTOM_ENDPOINT_REGION))
                    .build();
                DEFAULT_CUSTOM_ENDPOINT_REGION.to_string()
            }
            None => {
                return Err(ConnectorError::user(
                    "no AWS region is configured: set `region:` on the connector, or AWS_REGION \
                     (or a region in your AWS profile)",
                ));
            }
        };
        Ok(Aws {
            runtime: Arc::new(runtime),
            config,
            endpoint,
            region,
            service,
        })
    }

    /// Runs `future` to completion on this connector's runtime.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Checks that credentials can be found, so a missing setup fails at start-up with what
    /// to do rather than on the first request.
    ///
    /// # Errors
    /// When no credential source provides credentials.
    pub fn check_credentials(&self) -> Result<(), ConnectorError> {
        let Some(provider) = self.config.credentials_provider() else {
            return Err(no_credentials(""));
        };
        match self.block_on(provider.provide_credentials()) {
            Ok(_) => Ok(()),
            Err(CredentialsError::CredentialsNotLoaded(_)) => Err(no_credentials("")),
            Err(e) => Err(no_credentials(&format!(
                " ({})",
                DisplayErrorContext(&e).to_string().replace('\n', " ")
            ))),
        }
    }

    /// Where requests go, for messages.
    pub fn describe_endpoint(&self) -> String {
        match &self.endpoint {
            Some(e) => redact_url(e),
            None => format!("AWS region {}", self.region),
        }
    }
}

fn no_credentials(detail: &str) -> ConnectorError {
    ConnectorError::user(format!(
        "no AWS credentials found{detail}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or \
         AWS_PROFILE (a profile in ~/.aws/config, e.g. after `aws sso login`), or run where a \
         web identity token, container or instance role provides them"
    ))
}

/// How an S3-like service answered, reduced to what decides whose problem it is.
#[derive(Debug, Clone, Default)]
pub struct Failure {
    pub status: Option<u16>,
    pub code: Option<String>,
    pub message: Option<String>,
    /// `x-amz-bucket-region` of the response (where a bucket really is).
    pub bucket_region: Option<String>,
    /// Not an answer: the request failed on the way (connection, timeout, unreadable reply).
    pub transport: Option<TransportFailure>,
    /// The SDK's full explanation.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportFailure {
    /// Connection refused or reset, a timeout, a truncated reply: trying again may work.
    Transient,
    /// The request could not be built or sent (bad endpoint, missing credentials).
    Setup,
}

impl Failure {
    /// Reads an SDK error.
    pub fn of<E>(e: &SdkError<E, HttpResponse>) -> Failure
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let detail = DisplayErrorContext(e).to_string();
        let mut f = Failure {
            detail,
            ..Failure::default()
        };
        if let Some(raw) = e.raw_response() {
            f.status = Some(raw.status().as_u16());
            f.bucket_region = raw.headers().get("x-amz-bucket-region").map(str::to_string);
        }
        match e {
            SdkError::ServiceError(s) => {
                f.code = s.err().code().map(str::to_string);
                f.message = s.err().message().map(str::to_string);
            }
            SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
                f.transport = Some(TransportFailure::Transient);
            }
            SdkError::DispatchFailure(d) => {
                f.transport = Some(if d.is_io() || d.is_timeout() || d.is_other() {
                    TransportFailure::Transient
                } else {
                    TransportFailure::Setup
                });
            }
            _ => f.transport = Some(TransportFailure::Setup),
        }
        f
    }

    fn code_is(&self, codes: &[&str]) -> bool {
        self.code.as_deref().is_some_and(|c| codes.contains(&c))
    }

    /// Whether the service asked us to slow down or failed on its side.
    pub fn is_retryable(&self) -> bool {
        matches!(self.transport, Some(TransportFailure::Transient))
            || self
                .status
                .is_some_and(|s| s >= 500 || s == 429 || s == 408)
            || self.code_is(&[
                "SlowDown",
                "Throttling",
                "ThrottlingException",
                "RequestTimeout",
                "RequestTimeoutException",
                "InternalError",
                "ServiceUnavailable",
                "RequestLimitExceeded",
                "TooManyRequestsException",
                "ProvisionedThroughputExceededException",
            ])
    }

    /// The error a connector reports: `what` says what was being done (`writing
    /// s3://bucket/key`), `resource` names the bucket (or stream) for the user's fixes.
    pub fn to_error(&self, what: &str, resource: &str, aws: &Aws) -> ConnectorError {
        let said = match (&self.code, &self.message) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.clone(),
            (None, Some(m)) => m.clone(),
            (None, None) => match self.status {
                Some(s) => format!("HTTP {s}"),
                None => self.detail.replace('\n', " "),
            },
        };
        if self.detail.contains("no credentials")
            || self.detail.contains("CredentialsNotLoaded")
            || self.detail.contains("failed to load credentials")
        {
            return no_credentials("").context(what);
        }
        let wrong_region = self.status == Some(301)
            || self.code_is(&[
                "PermanentRedirect",
                "AuthorizationHeaderMalformed",
                "IllegalLocationConstraintException",
            ])
            || (self.bucket_region.is_some()
                && self.bucket_region.as_deref() != Some(aws.region.as_str())
                && self.status == Some(400));
        if wrong_region {
            let there = match &self.bucket_region {
                Some(r) => format!("`{resource}` is in region {r}"),
                None => format!("`{resource}` is in another region"),
            };
            let fix = self
                .bucket_region
                .as_deref()
                .unwrap_or("<the bucket's region>");
            return ConnectorError::user(format!(
                "{what}: {there}, but requests were signed for {}: set `region: {fix}` on the \
                 connector or AWS_REGION={fix} ({said})",
                aws.region
            ));
        }
        // HEAD answers have no body: a missing bucket is a bare 404 (`NotFound` to the SDK).
        let bare_404 =
            self.status == Some(404) && (self.code.is_none() || self.code_is(&["NotFound"]));
        if self.code_is(&["NoSuchBucket"]) || bare_404 {
            return ConnectorError::user(format!(
                "{what}: bucket `{resource}` does not exist at {}: create it, or fix the URL (and \
                 the endpoint and region, if the bucket is elsewhere)",
                aws.describe_endpoint()
            ));
        }
        if self.code_is(&["InvalidAccessKeyId", "UnrecognizedClientException"]) {
            return ConnectorError::user(format!(
                "{what}: the AWS access key id is not known to {} (check AWS_ACCESS_KEY_ID or the \
                 profile in use; {said})",
                aws.describe_endpoint()
            ));
        }
        if self.code_is(&["SignatureDoesNotMatch", "InvalidSignatureException"]) {
            return ConnectorError::user(format!(
                "{what}: the request signature does not match: the AWS secret access key does \
                 not belong to the access key id (check AWS_SECRET_ACCESS_KEY or the profile in \
                 use; {said})"
            ));
        }
        if self.code_is(&["ExpiredToken", "ExpiredTokenException", "InvalidToken"]) {
            return ConnectorError::user(format!(
                "{what}: the AWS session token has expired or is invalid: refresh your \
                 credentials (e.g. `aws sso login`) ({said})"
            ));
        }
        if self.code_is(&["AccessDenied", "AllAccessDisabled", "AccessDeniedException"])
            || self.status == Some(403)
        {
            let permissions = match aws.service {
                Service::S3 => {
                    "s3:ListBucket, s3:GetObject, s3:PutObject, s3:DeleteObject, \
                     s3:AbortMultipartUpload, s3:ListBucketMultipartUploads"
                }
                Service::Kinesis => {
                    "kinesis:ListShards, kinesis:GetShardIterator, kinesis:GetRecords, \
                     kinesis:DescribeStreamSummary, kinesis:PutRecords"
                }
                Service::Emr => "elasticmapreduce:*",
            };
            return ConnectorError::user(format!(
                "{what}: access denied to `{resource}`: the credentials in use need permission \
                 for it ({permissions}) ({said})"
            ));
        }
        if aws.service == Service::Kinesis && self.code_is(&["ResourceNotFoundException"]) {
            return ConnectorError::user(format!(
                "{what}: stream `{resource}` does not exist at {}: create it, or fix `stream` \
                 (and the endpoint and region, if the stream is elsewhere) ({said})",
                aws.describe_endpoint()
            ));
        }
        if self.is_retryable() {
            return ConnectorError::external(
                format!("{what}: {} failed: {said}", aws.describe_endpoint()),
                true,
            );
        }
        if matches!(self.transport, Some(TransportFailure::Setup)) {
            return ConnectorError::user(format!(
                "{what}: the request to {} could not be sent: {said}",
                aws.describe_endpoint()
            ));
        }
        ConnectorError::external(format!("{what}: {said}"), false)
    }
}

/// How many times and how patiently to retry retryable failures.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// About a minute of trying (10 attempts, backoff doubling from 100 ms up to 10 s).
    fn default() -> Self {
        RetryPolicy {
            attempts: 10,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The pause before attempt `attempt` (1-based, after a failure): exponential with full
    /// jitter, so many writers hitting a throttled prefix spread out.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .first_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max_backoff);
        let jitter = random_unit();
        // At least half the step, so a retry never comes back at once.
        exp.mul_f64(0.5 + jitter / 2.0)
    }
}

/// A number in [0, 1) from the OS's randomness (per call), for jitter.
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Runs `op` until it succeeds, fails with an error that is not retryable, or the policy's
/// attempts are used up (the last error then says how many were made).
///
/// # Errors
/// The last error.
pub async fn retry<T, F, Fut>(policy: &RetryPolicy, mut op: F) -> Result<T, ConnectorError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ConnectorError>>,
{
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() && attempt < policy.attempts => {
                tokio::time::sleep(policy.backoff(attempt)).await;
                attempt += 1;
            }
            Err(e) if e.is_retryable() => {
                return Err(e.context(format!("gave up after {attempt} attempts")));
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_is_never_shown() {
        assert_eq!(
            redact_url("http://key:secret@127.0.0.1:9000/x"),
            "http://127.0.0.1:9000/x"
        );
        assert_eq!(
            redact_url("https://s3.example.com"),
            "https://s3.example.com"
        );
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let p = RetryPolicy::default();
        for attempt in 1..20 {
            let b = p.backoff(attempt);
            let step = p
                .first_backoff
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(p.max_backoff);
            assert!(b >= step / 2 && b <= step, "attempt {attempt}: {b:?}");
        }
    }

    #[test]
    fn throttling_and_server_errors_are_retryable_and_user_mistakes_are_not() {
        let slow = Failure {
            status: Some(503),
            code: Some("SlowDown".into()),
            ..Failure::default()
        };
        assert!(slow.is_retryable());
        let denied = Failure {
            status: Some(403),
            code: Some("AccessDenied".into()),
            ..Failure::default()
        };
        assert!(!denied.is_retryable());
    }
}
