//! Record encodings: decoding bytes into batches (json, csv) and encoding batches into files
//! (csv, json lines, parquet).
//!
//! Decoders follow Flink's formats where they differ from plain parsing: a STRING field takes
//! any JSON scalar as text, numbers may be quoted, a missing field is NULL.

pub mod csv;
pub mod encode;
pub mod json;

use crate::data::Batch;

pub use crate::runtime::BadRecord;

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

/// Standard base64 with padding (RFC 4648), for raw records that are not UTF-8 text.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= group.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * k)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_the_rfc_4648_test_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (text, encoded) in vectors {
            assert_eq!(super::base64(text.as_bytes()), encoded);
        }
        assert_eq!(super::base64(&[0xff, 0xfe, 0x00]), "//4A");
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
