//! The Kinesis sink (`type: kinesis`): one record per row (a JSON object, or a CSV line without
//! header), its partition key from the `partition_key` expression, written with PutRecords.
//!
//! - Rows are sent in batches of at most [`MAX_RECORDS_PER_CALL`] records and
//!   [`MAX_BYTES_PER_CALL`] bytes (data and keys), the service's limits.
//! - A partial failure (some entries throttled by their shard's write limit of 1 MB/s and
//!   1000 records/s, or failed inside Kinesis) sends only the failed entries again, in their
//!   order, after a backoff with jitter that grows while nothing gets through; a call that
//!   fails as a whole is retried the same way.
//! - Everything buffered is written before a checkpoint completes (`prepare`) and at the end
//!   of the run, so a completed checkpoint never covers a row that is not in the stream.
//!   Delivery is at-least-once: Kinesis has no transactions, so rows written after the last
//!   completed checkpoint are written again after a crash. A partial failure retried can put
//!   an entry behind later entries of the same key (PutRecords does not order across calls).

use std::sync::Arc;
use std::time::Duration;

use super::messages::MessageEncoder;
use crate::aws::AwsSettings;
use crate::aws::kinesis::Kinesis;
use crate::data::{Batch, DataType};
use crate::expr::Expr;
use crate::format::encode::Projection;
use crate::plan::connectors::KinesisSink as Settings;
use crate::runtime::{ConnectorError, Metrics, Sink, SinkSnapshot, SinkStart};

/// PutRecords takes at most 500 records per call…
pub const MAX_RECORDS_PER_CALL: usize = 500;
/// …and at most 5 MiB of data and partition keys.
pub const MAX_BYTES_PER_CALL: usize = 5 << 20;
/// One record's data and key may be at most 1 MiB.
const MAX_RECORD_BYTES: usize = 1 << 20;
/// Partition keys are 1 to 256 characters.
const MAX_KEY_CHARS: usize = 256;
/// Consecutive calls without progress before the sink gives up (about five minutes).
const MAX_STALLED_CALLS: u32 = 40;

pub struct KinesisSink {
    settings: Settings,
    projection: Projection,
    key: Expr,
    client: Option<Kinesis>,
    encoder: Option<MessageEncoder>,
    /// Encoded rows waiting to be sent: (data, partition key).
    buffer: Vec<(Vec<u8>, String)>,
    buffered_bytes: usize,
    metrics: Arc<Metrics>,
}

impl KinesisSink {
    pub fn new(
        settings: &Settings,
        projection: &Projection,
        key: Expr,
        metrics: Arc<Metrics>,
    ) -> KinesisSink {
        KinesisSink {
            settings: settings.clone(),
            projection: projection.clone(),
            key,
            client: None,
            encoder: None,
            buffer: Vec::new(),
            buffered_bytes: 0,
            metrics,
        }
    }

    /// Sends everything buffered.
    fn flush(&mut self) -> Result<(), ConnectorError> {
        let Some(client) = &self.client else {
            return Err(ConnectorError::internal(
                "Kinesis sink used before it started",
            ));
        };
        let entries = std::mem::take(&mut self.buffer);
        self.buffered_bytes = 0;
        if entries.is_empty() {
            return Ok(());
        }
        let rows = entries.len() as u64;
        let bytes: u64 = entries.iter().map(|(d, _)| d.len() as u64).sum();
        client.block_on(put_all(client, entries))?;
        self.metrics.rows_published(rows, bytes, 0);
        Ok(())
    }
}

/// Writes `entries`, sending failed entries again until every one is in, or nothing has got
/// through for [`MAX_STALLED_CALLS`] calls.
async fn put_all(
    client: &Kinesis,
    mut pending: Vec<(Vec<u8>, String)>,
) -> Result<(), ConnectorError> {
    let policy = crate::aws::RetryPolicy::default();
    let mut stalled = 0u32;
    while !pending.is_empty() {
        let rejected = client.put_records(&pending).await?;
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
                    "writing to stream `{}`: {} records were refused {stalled} times in a row \
                     ({}: {})",
                    client.stream().name,
                    rejected.len(),
                    first.code,
                    first.message
                ),
                true,
            ));
        }
        let failed: std::collections::HashSet<usize> = rejected.iter().map(|r| r.index).collect();
        pending = pending
            .into_iter()
            .enumerate()
            .filter(|(i, _)| failed.contains(i))
            .map(|(_, entry)| entry)
            .collect();
        tokio::time::sleep(
            policy
                .backoff(stalled.max(1))
                .max(Duration::from_millis(50)),
        )
        .await;
    }
    Ok(())
}

impl Sink for KinesisSink {
    fn start(&mut self, _start: &SinkStart) -> Result<(), ConnectorError> {
        let aws = AwsSettings {
            region: self.settings.region.clone(),
            endpoint: self.settings.endpoint.clone(),
        };
        let client = Kinesis::connect(&aws, &self.settings.stream)?;
        client.check_stream()?;
        self.client = Some(client);
        self.encoder = Some(MessageEncoder::new(
            &self.settings.encoding,
            &self.projection,
        )?);
        Ok(())
    }

    fn write(&mut self, batch: Batch) -> Result<(), ConnectorError> {
        let mut errors = Vec::new();
        let keys = crate::expr::eval_column(&self.key, &DataType::String, &batch, &mut errors);
        if let Some(e) = errors.first() {
            return Err(ConnectorError::user(format!(
                "evaluating `partition_key`: {}",
                e.message
            )));
        }
        for row in 0..batch.num_rows {
            let data = self
                .encoder
                .as_mut()
                .ok_or_else(|| ConnectorError::internal("Kinesis sink used before it started"))?
                .encode(&batch, row)?;
            let key = match keys.value(row) {
                crate::data::Value::Null => String::new(),
                v => v.to_string(),
            };
            if key.is_empty() || key.chars().count() > MAX_KEY_CHARS {
                return Err(ConnectorError::user(format!(
                    "`partition_key` of stream `{}` must give 1 to {MAX_KEY_CHARS} characters, \
                     got {} for the record {}",
                    self.settings.stream,
                    if key.is_empty() {
                        "NULL or ''".to_string()
                    } else {
                        format!("{} characters", key.chars().count())
                    },
                    String::from_utf8_lossy(&data[..data.len().min(200)])
                )));
            }
            let size = data.len() + key.len();
            if size > MAX_RECORD_BYTES {
                return Err(ConnectorError::user(format!(
                    "a record for stream `{}` is {size} bytes with its key; Kinesis takes at \
                     most 1 MiB (write fewer `fields`)",
                    self.settings.stream
                )));
            }
            if self.buffer.len() == MAX_RECORDS_PER_CALL
                || self.buffered_bytes + size > MAX_BYTES_PER_CALL
            {
                self.flush()?;
            }
            self.buffered_bytes += size;
            self.buffer.push((data, key));
        }
        self.metrics.rows_written(batch.num_rows as u64);
        Ok(())
    }

    fn prepare(&mut self, _epoch: u64, _end: bool) -> Result<SinkSnapshot, ConnectorError> {
        self.flush()?;
        Ok(SinkSnapshot::default())
    }

    fn commit(&mut self, _epoch: u64) -> Result<(), ConnectorError> {
        Ok(())
    }

    fn finish(&mut self) -> Result<(), ConnectorError> {
        self.flush()
    }

    fn abort(&mut self) {
        // Records written cannot be taken back; buffered ones are dropped (a restart from the
        // last checkpoint writes them again).
        self.buffer.clear();
        self.buffered_bytes = 0;
    }
}
