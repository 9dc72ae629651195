//! The Kinesis sink (`type: kinesis`): one record per row (a JSON object, or a CSV line without
//! header), its partition key from the `partition_key` expression, written with PutRecords.
//!
//! - Rows are sent in batches of at most 500 records and 5 MiB (data and keys), the
//!   service's limits ([`PutBatch`], shared with `streamctl replay --to kinesis://`).
//! - A partial failure (some entries throttled by their shard's write limit of 1 MB/s and
//!   1000 records/s, or failed inside Kinesis) sends only the failed entries again, in their
//!   order, after a backoff with jitter that grows while nothing gets through; a call that
//!   fails as a whole is retried the same way ([`Kinesis::put_all`]).
//! - Everything buffered is written before a checkpoint completes (`prepare`) and at the end
//!   of the run, so a completed checkpoint never covers a row that is not in the stream.
//!   Delivery is at-least-once: Kinesis has no transactions, so rows written after the last
//!   completed checkpoint are written again after a crash. A partial failure retried can put
//!   an entry behind later entries of the same key (PutRecords does not order across calls).

use std::sync::Arc;

use super::messages::MessageEncoder;
use crate::aws::AwsSettings;
use crate::aws::kinesis::{Kinesis, MAX_KEY_CHARS, MAX_RECORD_BYTES, PutBatch};
use crate::data::{Batch, DataType};
use crate::expr::Expr;
use crate::format::encode::Projection;
use crate::plan::connectors::KinesisSink as Settings;
use crate::runtime::{ConnectorError, Metrics, Sink, SinkSnapshot, SinkStart};

pub struct KinesisSink {
    settings: Settings,
    projection: Projection,
    key: Expr,
    client: Option<Kinesis>,
    encoder: Option<MessageEncoder>,
    /// Encoded rows waiting to be sent.
    buffer: PutBatch,
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
            buffer: PutBatch::default(),
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
        let entries = self.buffer.take();
        if entries.is_empty() {
            return Ok(());
        }
        let rows = entries.len() as u64;
        let bytes: u64 = entries.iter().map(|(d, _)| d.len() as u64).sum();
        client.block_on(client.put_all(entries))?;
        self.metrics.rows_published(rows, bytes, 0);
        Ok(())
    }
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
            if self.buffer.is_full_for(size) {
                self.flush()?;
            }
            self.buffer.push(data, key);
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
        self.buffer.take();
    }
}
