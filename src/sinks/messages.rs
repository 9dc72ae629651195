//! Rows as messages: sinks that write one record per row (Kinesis) encode each row on its own,
//! as a JSON object or a CSV line without header and without the line end.

use std::sync::{Arc, Mutex};

use crate::data::Batch;
use crate::format::encode::{EncodeOptions, Projection, RowWriter, row_writer};
use crate::runtime::ConnectorError;

/// A buffer the row writer encodes into; each row is taken out of it whole.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Encodes single rows of batches as message payloads.
pub struct MessageEncoder {
    writer: Box<dyn RowWriter<Shared>>,
    encoded: Shared,
}

impl MessageEncoder {
    /// # Errors
    /// When the format cannot encode the projection (checked by validation before).
    pub fn new(
        encoding: &EncodeOptions,
        projection: &Projection,
    ) -> Result<MessageEncoder, ConnectorError> {
        let mut encoding = encoding.clone();
        // A message is one record: no header line.
        encoding.csv.header = false;
        let encoded = Shared::default();
        let writer = row_writer(&encoding, projection, encoded.clone())
            .map_err(|e| ConnectorError::user(e.to_string()))?;
        Ok(MessageEncoder { writer, encoded })
    }

    /// Row `row` of `batch`, encoded.
    ///
    /// # Errors
    /// When the row cannot be encoded.
    pub fn encode(&mut self, batch: &Batch, row: usize) -> Result<Vec<u8>, ConnectorError> {
        self.writer
            .write_rows(batch, &[row as u32])
            .and_then(|()| self.writer.flush())
            .map_err(|e| ConnectorError::internal(format!("encoding a record: {e}")))?;
        let mut value =
            std::mem::take(&mut *self.encoded.0.lock().unwrap_or_else(|e| e.into_inner()));
        if value.last() == Some(&b'\n') {
            value.pop();
        }
        if value.last() == Some(&b'\r') {
            value.pop();
        }
        Ok(value)
    }
}
