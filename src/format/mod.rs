//! Record encodings: decoding bytes into batches (json, csv) and encoding batches into files
//! (csv, json lines, parquet).
//!
//! Decoders follow Flink's formats where they differ from plain parsing: a STRING field takes
//! any JSON scalar as text, numbers may be quoted, a missing field is NULL.

pub mod csv;
pub mod encode;
pub mod json;

use crate::data::Batch;

/// A record that could not be decoded: kept whole for the dead-letter output.
#[derive(Debug, Clone, PartialEq)]
pub struct BadRecord {
    /// The raw record (lossily UTF-8 decoded).
    pub raw: String,
    /// What is wrong with it, e.g. "field `timestamp`: expected a number, found \"abc\"".
    pub error: String,
    /// 1-based line number within the input (files, stdin); 0 for messages.
    pub line: u64,
}

/// Turns bytes into rows of a batch laid out by the source's schema.
pub trait Decoder: Send {
    /// Decodes newline-separated records (files, stdin). `chunk` holds complete lines only;
    /// `first_line` is the 1-based line number of its first line. Good records are appended
    /// to `out` (one row each); bad ones to `bad`. Empty lines are skipped.
    fn decode_lines(
        &mut self,
        chunk: &[u8],
        first_line: u64,
        out: &mut Batch,
        bad: &mut Vec<BadRecord>,
    );

    /// Decodes one message (Kafka, Kinesis) into one row of `out`.
    ///
    /// # Errors
    /// Why the message is not a valid record; `out` is left unchanged.
    fn decode_message(&mut self, bytes: &[u8], out: &mut Batch) -> Result<(), String>;

    /// Whether the input starts with a header line that [`Decoder::read_header`] must see
    /// before any record (CSV with `header: true`).
    fn expects_header(&self) -> bool {
        false
    }

    /// Reads a header line (column names) to map columns to schema fields.
    ///
    /// # Errors
    /// When the header lacks fields the schema needs in a way that cannot be decoded.
    fn read_header(&mut self, _line: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

/// Helpers shared by the decoders' unit tests.
#[cfg(test)]
mod test_support {
    use super::{BadRecord, Decoder};
    use crate::data::{Batch, DataType, Field, Schema};

    pub fn schema(fields: &[(&str, DataType)]) -> Schema {
        Schema::new(
            fields
                .iter()
                .map(|(name, ty)| Field::new(*name, ty.clone()))
                .collect(),
        )
    }

    /// Decodes `input` as lines starting at line 1.
    pub fn decode_with(
        decoder: &mut dyn Decoder,
        schema: &Schema,
        input: &[u8],
    ) -> (Batch, Vec<BadRecord>) {
        let mut out = Batch::empty(schema);
        let mut bad = Vec::new();
        decoder.decode_lines(input, 1, &mut out, &mut bad);
        (out, bad)
    }
}
