//! The Kafka sink (`type: kafka`): one message per row, JSON or CSV (no header), keyed by an
//! expression, with headers from expressions, through librdkafka's idempotent producer.
//!
//! Delivery is at-least-once: `prepare` (a checkpoint) and `finish` (the end of a run
//! without checkpoints) flush and wait until the brokers acknowledged every message
//! (`acks=all`), so a completed checkpoint never covers a record that is not in Kafka. Rows
//! written after the last completed checkpoint are written again after a crash: Kafka
//! transactions would make that exactly-once, but streamctl does not use them (the test
//! broker has none). The idempotent producer retries through broker restarts and leader
//! changes without duplicating or reordering within a run. A delivery that fails for good
//! fails the run, naming the record (its key and the start of its value) and where it was
//! going.

use std::sync::{Arc, Mutex};

use rdkafka::message::{Header, OwnedHeaders};

use crate::data::{Batch, DataType};
use crate::expr::Expr;
use crate::format::encode::{EncodeOptions, Projection, RowWriter, row_writer};
use crate::kafka;
use crate::plan::connectors::KafkaSink as Settings;
use crate::runtime::{ConnectorError, Metrics, Sink, SinkSnapshot, SinkStart};

/// A buffer the row writer encodes into; rows are cut from it one at a time.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub struct KafkaSink {
    settings: Settings,
    projection: Projection,
    key: Option<Expr>,
    producer: Option<kafka::Producer>,
    encoder: Option<Box<dyn RowWriter<Shared>>>,
    encoded: Shared,
    metrics: Arc<Metrics>,
}

impl KafkaSink {
    pub fn new(
        settings: &Settings,
        projection: &Projection,
        key: Option<Expr>,
        metrics: Arc<Metrics>,
    ) -> KafkaSink {
        KafkaSink {
            settings: settings.clone(),
            projection: projection.clone(),
            key,
            producer: None,
            encoder: None,
            encoded: Shared::default(),
            metrics,
        }
    }

    fn producer(&mut self) -> Result<&mut kafka::Producer, ConnectorError> {
        self.producer
            .as_mut()
            .ok_or_else(|| ConnectorError::internal("Kafka sink used before it started"))
    }

    /// Waits until every message sent is acknowledged (or failed).
    fn flush(&mut self) -> Result<(), ConnectorError> {
        let rows = self.producer()?.flush()?;
        self.metrics.rows_published(rows, 0, 0);
        Ok(())
    }
}

/// A value as message key or header text (NULL: none).
fn text(value: &crate::data::Value<'_>) -> Option<String> {
    match value {
        crate::data::Value::Null => None,
        v => Some(v.to_string()),
    }
}

impl Sink for KafkaSink {
    fn start(&mut self, _start: &SinkStart) -> Result<(), ConnectorError> {
        self.producer = Some(kafka::Producer::connect(
            &self.settings.brokers,
            &self.settings.topic,
            &self.settings.properties,
        )?);
        let mut encoding: EncodeOptions = self.settings.encoding.clone();
        encoding.csv.header = false;
        self.encoder = Some(
            row_writer(&encoding, &self.projection, self.encoded.clone())
                .map_err(|e| ConnectorError::user(e.to_string()))?,
        );
        Ok(())
    }

    fn write(&mut self, batch: Batch) -> Result<(), ConnectorError> {
        let mut errors = Vec::new();
        let keys = self
            .key
            .as_ref()
            .map(|k| crate::expr::eval_column(k, &DataType::String, &batch, &mut errors));
        let headers: Vec<(String, crate::data::Column)> = self
            .settings
            .headers
            .iter()
            .map(|(name, e)| {
                (
                    name.clone(),
                    crate::expr::eval_column(e, &DataType::String, &batch, &mut errors),
                )
            })
            .collect();
        if let Some(e) = errors.first() {
            return Err(ConnectorError::user(format!(
                "evaluating the key or a header: {}",
                e.message
            )));
        }
        let Some(mut encoder) = self.encoder.take() else {
            return Err(ConnectorError::internal(
                "Kafka sink used before it started",
            ));
        };
        let result: Result<(), ConnectorError> = (|| {
            for row in 0..batch.num_rows {
                encoder
                    .write_rows(&batch, &[row as u32])
                    .and_then(|()| encoder.flush())
                    .map_err(|e| ConnectorError::internal(format!("encoding a record: {e}")))?;
                let mut value =
                    std::mem::take(&mut *self.encoded.0.lock().unwrap_or_else(|e| e.into_inner()));
                if value.last() == Some(&b'\n') {
                    value.pop();
                }
                let key = keys
                    .as_ref()
                    .and_then(|k| text(&k.value(row)))
                    .map(String::into_bytes);
                let mut owned = None;
                for (name, column) in &headers {
                    if let Some(v) = text(&column.value(row)) {
                        owned = Some(owned.unwrap_or_else(OwnedHeaders::new).insert(Header {
                            key: name,
                            value: Some(v.as_bytes()),
                        }));
                    }
                }
                self.producer()?.send(&value, key.as_deref(), owned)?;
            }
            Ok(())
        })();
        self.encoder = Some(encoder);
        result?;
        self.metrics.rows_written(batch.num_rows as u64);
        self.producer()?.poll()
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
        // Records sent cannot be taken back; the ones still queued are dropped with the
        // producer (a restart writes them again).
        self.producer = None;
    }
}
