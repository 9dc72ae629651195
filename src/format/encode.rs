//! Encoders: rows of batches → bytes of one output file (CSV with header, JSON lines, Parquet).

use std::io::{self, Write};

use crate::config::sink::{CsvOutput, OutputFormat};
use crate::data::{Batch, Field};

/// Which input columns a sink writes, in order, and under which names/types.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    /// Index of each written column in the input batch.
    pub columns: Vec<usize>,
    /// Name and type of each written column (same length as `columns`).
    pub fields: Vec<Field>,
}

/// Writes rows into one file. CSV and JSON stream through; Parquet buffers row groups and
/// writes its footer in [`RowWriter::finish`].
pub trait RowWriter<W: Write>: Send {
    /// Encodes the rows `rows` of `batch` (indexes into the batch, in that order).
    ///
    /// # Errors
    /// I/O errors of the underlying writer.
    fn write_rows(&mut self, batch: &Batch, rows: &[u32]) -> io::Result<()>;

    /// Bytes encoded so far, including any still buffered: drives size-based rolling.
    fn bytes_written(&self) -> u64;

    /// Completes the file (flush; Parquet: last row group and footer) and hands back the
    /// underlying writer so the caller can commit it.
    ///
    /// # Errors
    /// I/O errors of the underlying writer.
    fn finish(self: Box<Self>) -> io::Result<W>;
}

/// Encoding settings of a sink.
#[derive(Debug, Clone)]
pub struct EncodeOptions {
    pub format: OutputFormat,
    pub csv: CsvOutput,
}

/// A writer for `options.format` over `out`.
///
/// # Errors
/// When the format cannot represent the projection's types.
pub fn row_writer<W: Write + Send + 'static>(
    options: &EncodeOptions,
    projection: &Projection,
    out: W,
) -> io::Result<Box<dyn RowWriter<W>>> {
    let _ = (options, projection, out);
    Err(io::Error::other("encoders are not written yet"))
}
