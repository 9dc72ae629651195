//! A Kinesis Data Streams client for connectors: shard discovery, shard iterators, reading
//! records and writing batches, with errors that say whose problem they are. Calls are async
//! so a source can keep one request in flight per shard on its own runtime
//! ([`crate::aws::Aws`]); one-off calls go through [`Kinesis::block_on`].
//!
//! Sequence numbers are 128-bit decimal strings and stay strings here: they are only ever
//! handed back to Kinesis (AFTER_SEQUENCE_NUMBER) or shown.

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::{Blob, DateTime};
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType, StreamStatus};

use super::{Aws, AwsSettings, Failure, RetryPolicy, Service, retry};
use crate::runtime::ConnectorError;

/// One shard as ListShards describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    pub id: String,
    /// The shard(s) it was split or merged from: read them to their end first.
    pub parents: Vec<String>,
    /// Closed by a split or merge: it has an ending sequence number and no new records.
    pub closed: bool,
}

/// Where a shard iterator starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IteratorStart {
    TrimHorizon,
    /// Records that arrive from now on.
    Latest,
    /// Records that arrived at or after this instant (epoch milliseconds).
    AtTimestamp(i64),
    /// Just after this sequence number (a restart, or an expired iterator renewed).
    AfterSequenceNumber(String),
}

/// One record as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub data: Vec<u8>,
    pub partition_key: String,
    pub sequence_number: String,
    /// When Kinesis accepted it (epoch milliseconds).
    pub arrival_ms: Option<i64>,
}

/// What one GetRecords call returned.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub records: Vec<Record>,
    /// `None`: the shard is closed and everything in it has been read.
    pub next_iterator: Option<String>,
    /// How far the shard's newest record is ahead of this page (0: at the tip).
    pub millis_behind: Option<i64>,
}

/// Why a GetRecords call failed.
#[derive(Debug)]
pub enum ReadFailure {
    /// The iterator is older than five minutes: get a new one from the last sequence number.
    ExpiredIterator,
    /// The shard's read limits (5 calls/s, 2 MB/s) were exceeded: wait and try again.
    Throttled,
    Failed(ConnectorError),
}

/// A stream named by `stream:` (a name, or an ARN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRef {
    /// The stream's name (the last part of an ARN).
    pub name: String,
    pub arn: Option<String>,
}

impl StreamRef {
    pub fn parse(stream: &str) -> StreamRef {
        let stream = stream.trim();
        if stream.starts_with("arn:") {
            let name = stream.rsplit_once("stream/").map_or(stream, |(_, n)| n);
            StreamRef {
                name: name.to_string(),
                arn: Some(stream.to_string()),
            }
        } else {
            StreamRef {
                name: stream.to_string(),
                arn: None,
            }
        }
    }
}

/// PutRecords takes at most 500 records per call…
pub const MAX_RECORDS_PER_CALL: usize = 500;
/// …and at most 5 MiB of data and partition keys.
pub const MAX_BYTES_PER_CALL: usize = 5 << 20;
/// One record's data and key may be at most 1 MiB.
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// Partition keys are 1 to 256 characters.
pub const MAX_KEY_CHARS: usize = 256;
/// Consecutive PutRecords calls without progress before a writer gives up (about five
/// minutes of backoff).
const MAX_STALLED_CALLS: u32 = 40;

/// Records waiting to be written, at most one PutRecords call's worth: (data, partition key).
/// The Kinesis sink and `streamctl replay --to kinesis://` fill one and write it with
/// [`Kinesis::put_all`] when the next record would not fit.
#[derive(Debug, Default)]
pub struct PutBatch {
    entries: Vec<(Vec<u8>, String)>,
    /// Data and key bytes of `entries`.
    bytes: usize,
}

impl PutBatch {
    /// Whether a record of `size` bytes (data and key) would take the batch past a call's
    /// limits: write the batch first.
    pub fn is_full_for(&self, size: usize) -> bool {
        self.entries.len() >= MAX_RECORDS_PER_CALL || self.bytes + size > MAX_BYTES_PER_CALL
    }

    /// Adds a record (the caller checked [`PutBatch::is_full_for`] and the record's limits).
    pub fn push(&mut self, data: Vec<u8>, key: String) {
        self.bytes += data.len() + key.len();
        self.entries.push((data, key));
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The records, leaving the batch empty.
    pub fn take(&mut self) -> Vec<(Vec<u8>, String)> {
        self.bytes = 0;
        std::mem::take(&mut self.entries)
    }
}

/// One entry of a PutRecords call that Kinesis did not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub index: usize,
    pub code: String,
    pub message: String,
}

/// A Kinesis client for one stream, with its own runtime; cheap to clone.
#[derive(Clone)]
pub struct Kinesis {
    aws: Aws,
    client: Client,
    stream: StreamRef,
    policy: RetryPolicy,
}

impl Kinesis {
    /// A client for `stream` (region and endpoint from `settings`, else the AWS environment:
    /// `AWS_REGION`, `AWS_ENDPOINT_URL_KINESIS`, `AWS_ENDPOINT_URL`).
    ///
    /// # Errors
    /// As [`Aws::connect`].
    pub fn connect(settings: &AwsSettings, stream: &str) -> Result<Kinesis, ConnectorError> {
        let aws = Aws::connect(Service::Kinesis, settings)?;
        let mut config = aws_sdk_kinesis::config::Builder::from(&aws.config);
        if let Some(endpoint) = &aws.endpoint {
            config = config.endpoint_url(endpoint.clone());
        }
        let client = Client::from_conf(config.build());
        Ok(Kinesis {
            aws,
            client,
            stream: StreamRef::parse(stream),
            policy: RetryPolicy::default(),
        })
    }

    pub fn stream(&self) -> &StreamRef {
        &self.stream
    }

    pub fn aws(&self) -> &Aws {
        &self.aws
    }

    /// Runs `future` on this client's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.aws.block_on(future)
    }

    fn fail<E>(
        &self,
        e: &aws_smithy_runtime_api::client::result::SdkError<
            E,
            aws_smithy_runtime_api::client::orchestrator::HttpResponse,
        >,
        what: &str,
    ) -> ConnectorError
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    {
        let failure = Failure::of(e);
        // Control-plane calls (ListShards, DescribeStreamSummary) say they are throttled this way.
        if failure.code.as_deref() == Some("LimitExceededException") {
            return ConnectorError::external(
                format!(
                    "{what}: {} is throttling requests",
                    self.aws.describe_endpoint()
                ),
                true,
            );
        }
        failure.to_error(what, &self.stream.name, &self.aws)
    }

    /// Checks credentials and that the stream exists, waiting (up to a minute) while it is
    /// being created or updated.
    ///
    /// # Errors
    /// Missing credentials, a missing stream (with what to do), a stream being deleted.
    pub fn check_stream(&self) -> Result<(), ConnectorError> {
        self.aws.check_credentials()?;
        let what = &format!("reading stream `{}`", self.stream.name);
        for _ in 0..600 {
            let status = self.block_on(retry(&self.policy, || async move {
                let out = self
                    .client
                    .describe_stream_summary()
                    .set_stream_name(self.stream.arn.is_none().then(|| self.stream.name.clone()))
                    .set_stream_arn(self.stream.arn.clone())
                    .send()
                    .await
                    .map_err(|e| self.fail(&e, what))?;
                Ok(out
                    .stream_description_summary()
                    .map(|s| s.stream_status().clone()))
            }))?;
            match status {
                Some(StreamStatus::Creating | StreamStatus::Updating) => {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Some(StreamStatus::Deleting) => {
                    return Err(ConnectorError::user(format!(
                        "{what}: the stream is being deleted"
                    )));
                }
                _ => return Ok(()),
            }
        }
        Err(ConnectorError::external(
            format!("{what}: the stream did not become ACTIVE within a minute"),
            true,
        ))
    }

    /// Every shard of the stream that is still retained, open or closed.
    ///
    /// # Errors
    /// A missing stream, access denied, the service failing past retries.
    pub async fn list_shards(&self) -> Result<Vec<ShardInfo>, ConnectorError> {
        let what = &format!("listing the shards of stream `{}`", self.stream.name);
        let mut shards = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let token_now = token.clone();
            let out = retry(&self.policy, || {
                let token = token_now.clone();
                async move {
                    let request = self.client.list_shards();
                    // A continuation names the stream through its token only.
                    let request = match token {
                        Some(t) => request.next_token(t),
                        None => request
                            .set_stream_name(
                                self.stream.arn.is_none().then(|| self.stream.name.clone()),
                            )
                            .set_stream_arn(self.stream.arn.clone()),
                    };
                    request.send().await.map_err(|e| self.fail(&e, what))
                }
            })
            .await?;
            for s in out.shards() {
                let parents = [s.parent_shard_id(), s.adjacent_parent_shard_id()]
                    .into_iter()
                    .flatten()
                    .map(str::to_string)
                    .collect();
                shards.push(ShardInfo {
                    id: s.shard_id().to_string(),
                    parents,
                    closed: s
                        .sequence_number_range()
                        .and_then(|r| r.ending_sequence_number())
                        .is_some(),
                });
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(shards)
    }

    /// An iterator for `shard` starting at `start`.
    ///
    /// # Errors
    /// A missing stream or shard, access denied, the service failing past retries.
    pub async fn shard_iterator(
        &self,
        shard: &str,
        start: &IteratorStart,
    ) -> Result<String, ConnectorError> {
        let what = &format!("starting to read {}/{shard}", self.stream.name);
        retry(&self.policy, || async move {
            let mut request = self
                .client
                .get_shard_iterator()
                .set_stream_name(self.stream.arn.is_none().then(|| self.stream.name.clone()))
                .set_stream_arn(self.stream.arn.clone())
                .shard_id(shard);
            request = match start {
                IteratorStart::TrimHorizon => {
                    request.shard_iterator_type(ShardIteratorType::TrimHorizon)
                }
                IteratorStart::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
                IteratorStart::AtTimestamp(ms) => request
                    .shard_iterator_type(ShardIteratorType::AtTimestamp)
                    .timestamp(DateTime::from_millis(*ms)),
                IteratorStart::AfterSequenceNumber(seq) => request
                    .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                    .starting_sequence_number(seq),
            };
            let out = request.send().await.map_err(|e| self.fail(&e, what))?;
            out.shard_iterator().map(str::to_string).ok_or_else(|| {
                ConnectorError::external(format!("{what}: Kinesis returned no iterator"), true)
            })
        })
        .await
    }

    /// One GetRecords call (no retries: the caller paces and retries per shard).
    ///
    /// # Errors
    /// An expired iterator, throttling, or another failure.
    pub async fn get_records(
        &self,
        shard: &str,
        iterator: &str,
        limit: i32,
    ) -> Result<Page, ReadFailure> {
        let out = match self
            .client
            .get_records()
            .shard_iterator(iterator)
            .limit(limit)
            .set_stream_arn(self.stream.arn.clone())
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                let failure = Failure::of(&e);
                return Err(match failure.code.as_deref() {
                    Some("ExpiredIteratorException") => ReadFailure::ExpiredIterator,
                    Some("ProvisionedThroughputExceededException")
                    | Some("KMSThrottlingException") => ReadFailure::Throttled,
                    _ => ReadFailure::Failed(
                        self.fail(&e, &format!("reading {}/{shard}", self.stream.name)),
                    ),
                });
            }
        };
        let millis_behind = out.millis_behind_latest();
        let next_iterator = out.next_shard_iterator().map(str::to_string);
        let records = out
            .records
            .into_iter()
            .map(|r| Record {
                arrival_ms: r
                    .approximate_arrival_timestamp
                    .and_then(|t| t.to_millis().ok()),
                data: r.data.into_inner(),
                partition_key: r.partition_key.unwrap_or_default(),
                sequence_number: r.sequence_number,
            })
            .collect();
        Ok(Page {
            records,
            next_iterator,
            millis_behind,
        })
    }

    /// One PutRecords call with `entries` (data, partition key): the entries Kinesis did not
    /// take (throttled shards, internal failures), for the caller to send again.
    ///
    /// # Errors
    /// When the call as a whole fails (after retries).
    pub async fn put_records(
        &self,
        entries: &[(Vec<u8>, String)],
    ) -> Result<Vec<Rejected>, ConnectorError> {
        let what = &format!("writing to stream `{}`", self.stream.name);
        let request_entries: Vec<PutRecordsRequestEntry> = entries
            .iter()
            .map(|(data, key)| {
                PutRecordsRequestEntry::builder()
                    .data(Blob::new(data.clone()))
                    .partition_key(key)
                    .build()
                    .map_err(|e| ConnectorError::internal(format!("{what}: {e}")))
            })
            .collect::<Result<_, _>>()?;
        let request_entries = &request_entries;
        let out = retry(&self.policy, || async move {
            self.client
                .put_records()
                .set_stream_name(self.stream.arn.is_none().then(|| self.stream.name.clone()))
                .set_stream_arn(self.stream.arn.clone())
                .set_records(Some(request_entries.clone()))
                .send()
                .await
                .map_err(|e| self.fail(&e, what))
        })
        .await?;
        Ok(out
            .records()
            .iter()
            .enumerate()
            .filter_map(|(index, r)| {
                r.error_code().map(|code| Rejected {
                    index,
                    code: code.to_string(),
                    message: r.error_message().unwrap_or_default().to_string(),
                })
            })
            .collect())
    }

    /// Writes `entries` (at most one call's worth, see [`PutBatch`]), sending the entries of a
    /// partial failure again, in their order, after a backoff with jitter that grows while
    /// nothing gets through, until every one is in or nothing has got through for
    /// [`MAX_STALLED_CALLS`] calls.
    ///
    /// # Errors
    /// A call failing as a whole past retries; entries refused too many times in a row.
    pub async fn put_all(&self, mut pending: Vec<(Vec<u8>, String)>) -> Result<(), ConnectorError> {
        let mut stalled = 0u32;
        while !pending.is_empty() {
            let rejected = self.put_records(&pending).await?;
            if rejected.is_empty() {
                return Ok(());
            }
            if rejected.len() < pending.len() {
                stalled = 0;
            } else {
                stalled += 1;
            }
            if stalled >= MAX_STALLED_CALLS {
                let first = &rejected[0];
                return Err(ConnectorError::external(
                    format!(
                        "writing to stream `{}`: {} records were refused {stalled} times in a \
                         row ({}: {})",
                        self.stream.name,
                        rejected.len(),
                        first.code,
                        first.message
                    ),
                    true,
                ));
            }
            let failed: std::collections::HashSet<usize> =
                rejected.iter().map(|r| r.index).collect();
            pending = pending
                .into_iter()
                .enumerate()
                .filter(|(i, _)| failed.contains(i))
                .map(|(_, entry)| entry)
                .collect();
            tokio::time::sleep(
                self.policy
                    .backoff(stalled.max(1))
                    .max(std::time::Duration::from_millis(50)),
            )
            .await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_named_by_name_or_arn() {
        assert_eq!(
            StreamRef::parse("impressions"),
            StreamRef {
                name: "impressions".into(),
                arn: None
            }
        );
        let arn = "arn:aws:kinesis:us-east-1:123456789012:stream/impressions";
        assert_eq!(
            StreamRef::parse(arn),
            StreamRef {
                name: "impressions".into(),
                arn: Some(arn.into())
            }
        );
    }

    #[test]
    fn a_put_batch_stays_within_one_call() {
        let mut batch = PutBatch::default();
        for _ in 0..MAX_RECORDS_PER_CALL {
            assert!(!batch.is_full_for(10));
            batch.push(vec![b'x'; 9], "k".into());
        }
        assert!(batch.is_full_for(10), "500 records");
        assert_eq!(batch.take().len(), MAX_RECORDS_PER_CALL);
        assert!(batch.is_empty() && !batch.is_full_for(10));
        for _ in 0..5 {
            batch.push(vec![b'x'; MAX_RECORD_BYTES - 1], "k".into());
        }
        assert!(!batch.is_full_for(0), "exactly 5 MiB fits");
        assert!(batch.is_full_for(1), "past 5 MiB");
    }
}
