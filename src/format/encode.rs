//! Encoders: rows of batches → bytes of one output file (CSV with header, JSON lines, Parquet).
//!
//! Values are written the way Flink's filesystem sink writes them where we can (Java-style
//! doubles, `yyyy-MM-dd HH:mm:ss.SSS` timestamps in UTC, Jackson's JSON escapes, 3-level
//! Parquet lists), so Athena tables over either engine's output read alike.
//!
//! CSV and JSON share a `TextWriter`: rows are rendered into one reusable buffer (by the
//! scalar renderers in `text`) that goes to the underlying writer in large writes. Parquet
//! buffers whole row groups column by column.

mod csv;
mod json;
mod parquet;
mod text;

use std::io::{self, Write};

use crate::config::sink::{CsvOutput, OutputFormat};
use crate::data::{Batch, Column, Field};

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

    /// Writes everything buffered so far through to the underlying writer and flushes it
    /// (for streams people watch, such as stdout).
    ///
    /// # Errors
    /// I/O errors of the underlying writer.
    fn flush(&mut self) -> io::Result<()>;

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
    if projection.columns.len() != projection.fields.len() {
        return Err(invalid_input(format!(
            "projection has {} columns but {} fields",
            projection.columns.len(),
            projection.fields.len()
        )));
    }
    Ok(match options.format {
        OutputFormat::Csv => {
            let format = csv::CsvFormat::new(&options.csv, &projection.fields)?;
            Box::new(TextWriter::new(out, format, projection))
        }
        OutputFormat::Json => {
            let format = json::JsonFormat::new(&projection.fields);
            Box::new(TextWriter::new(out, format, projection))
        }
        OutputFormat::Parquet => Box::new(parquet::ParquetWriter::new(projection, out)?),
    })
}

fn invalid_input(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// The projected columns of `batch`, after checking that the projection and `rows` fit it:
/// a mismatch is a caller bug, reported as an error rather than a panic half-way through a
/// file.
fn projected_columns<'b>(
    batch: &'b Batch,
    columns: &[usize],
    rows: &[u32],
) -> io::Result<Vec<&'b Column>> {
    if let Some(&row) = rows.iter().find(|&&r| r as usize >= batch.num_rows) {
        return Err(invalid_input(format!(
            "row {row} is out of range for a batch of {} rows",
            batch.num_rows
        )));
    }
    columns
        .iter()
        .map(|&c| {
            batch.columns.get(c).ok_or_else(|| {
                invalid_input(format!(
                    "column {c} is out of range for a batch of {} columns",
                    batch.columns.len()
                ))
            })
        })
        .collect()
}

/// How a text format lays out rows (one line each).
trait LineFormat: Send {
    /// Bytes at the top of every file (the CSV header), if any.
    fn preamble(&mut self, _buf: &mut Vec<u8>) {}

    /// Appends row `row` of the projected `columns`, line end included.
    fn encode_row(&mut self, buf: &mut Vec<u8>, columns: &[&Column], row: usize);

    /// Appends the rows `rows` of the projected `columns`, in that order: a format may look at
    /// each column's type once for all of them instead of once per value.
    fn encode_rows(&mut self, buf: &mut Vec<u8>, columns: &[&Column], rows: &[u32]) {
        for &row in rows {
            self.encode_row(buf, columns, row as usize);
        }
    }
}

/// Rows encoded at a time between checks of the buffer's size: enough that looking at the
/// columns' types once per call costs nothing per row, few enough that the buffer stays near
/// [`TEXT_FLUSH_BYTES`].
const ENCODE_ROWS: usize = 256;

/// Buffer size at which encoded text goes to the underlying writer: large enough that the
/// writer sees few, big writes; small because a sink may hold many files open at once (one
/// per bucket), each with its buffer.
const TEXT_FLUSH_BYTES: usize = 64 * 1024;

/// A CSV or JSON-lines file: rows are encoded into `buf`, which is written out whenever it
/// passes [`TEXT_FLUSH_BYTES`].
struct TextWriter<W, F> {
    out: W,
    buf: Vec<u8>,
    /// Bytes already handed to `out`.
    flushed: u64,
    format: F,
    columns: Vec<usize>,
}

impl<W: Write, F: LineFormat> TextWriter<W, F> {
    fn new(out: W, mut format: F, projection: &Projection) -> Self {
        let mut buf = Vec::new();
        format.preamble(&mut buf);
        TextWriter {
            out,
            buf,
            flushed: 0,
            format,
            columns: projection.columns.clone(),
        }
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.flushed += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

impl<W: Write + Send, F: LineFormat> RowWriter<W> for TextWriter<W, F> {
    fn write_rows(&mut self, batch: &Batch, rows: &[u32]) -> io::Result<()> {
        let columns = projected_columns(batch, &self.columns, rows)?;
        for chunk in rows.chunks(ENCODE_ROWS) {
            self.format.encode_rows(&mut self.buf, &columns, chunk);
            if self.buf.len() >= TEXT_FLUSH_BYTES {
                self.flush_buf()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_buf()?;
        self.out.flush()
    }

    fn bytes_written(&self) -> u64 {
        self.flushed + self.buf.len() as u64
    }

    fn finish(mut self: Box<Self>) -> io::Result<W> {
        self.flush()?;
        Ok(self.out)
    }
}

/// Helpers shared by the encoders' tests.
#[cfg(test)]
mod test_util {
    use crate::data::{Batch, Column, DataType, Field, Value};

    use super::Projection;

    /// A batch with one column per `(name, type, values)`, and the projection writing all of
    /// them in order.
    pub fn batch_of(columns: &[(&str, DataType, Vec<Value<'_>>)]) -> (Batch, Projection) {
        let num_rows = columns.first().map_or(0, |c| c.2.len());
        let mut out = Vec::new();
        for (_, data_type, values) in columns {
            assert_eq!(values.len(), num_rows);
            let mut column = Column::new(data_type, values.len());
            for value in values {
                column.push_value(value);
            }
            out.push(column);
        }
        let projection = Projection {
            columns: (0..columns.len()).collect(),
            fields: columns
                .iter()
                .map(|(name, data_type, _)| Field::new(*name, data_type.clone()))
                .collect(),
        };
        (Batch::new(out, num_rows), projection)
    }

    pub fn s(text: &str) -> Value<'static> {
        Value::Str(text.to_string().into())
    }

    pub fn list(items: Vec<Value<'static>>) -> Value<'static> {
        Value::List(items)
    }

    /// Every row index of `batch`.
    pub fn all_rows(batch: &Batch) -> Vec<u32> {
        (0..batch.num_rows as u32).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;
    use crate::data::{DataType, Value};

    fn options(format: OutputFormat) -> EncodeOptions {
        EncodeOptions {
            format,
            csv: CsvOutput::default(),
        }
    }

    #[test]
    fn every_format_writes_through_the_factory() {
        let (batch, projection) = batch_of(&[("n", DataType::Int, vec![Value::Int(7)])]);
        for format in [OutputFormat::Csv, OutputFormat::Json, OutputFormat::Parquet] {
            let mut writer = row_writer(&options(format), &projection, Vec::new()).unwrap();
            writer.write_rows(&batch, &[0]).unwrap();
            let out = writer.finish().unwrap();
            assert!(!out.is_empty(), "{format:?}");
        }
    }

    #[test]
    fn projection_and_rows_must_fit_the_batch() {
        let (batch, mut projection) = batch_of(&[("n", DataType::Int, vec![Value::Int(7)])]);
        for format in [OutputFormat::Csv, OutputFormat::Json, OutputFormat::Parquet] {
            let mut writer = row_writer(&options(format), &projection, Vec::new()).unwrap();
            let err = writer.write_rows(&batch, &[0, 1]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{format:?}");
        }
        projection.columns = vec![3];
        for format in [OutputFormat::Csv, OutputFormat::Json, OutputFormat::Parquet] {
            let mut writer = row_writer(&options(format), &projection, Vec::new()).unwrap();
            let err = writer.write_rows(&batch, &[0]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{format:?}");
        }
        projection.columns = vec![0, 0];
        assert!(row_writer(&options(OutputFormat::Json), &projection, Vec::new()).is_err());
    }

    /// A writer that records the size of every write it gets.
    struct Recorder(Vec<u8>, Vec<usize>);

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.extend_from_slice(buf);
            self.1.push(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn flush_writes_text_through() {
        let (batch, projection) = batch_of(&[("n", DataType::Int, vec![Value::Int(7)])]);
        for (format, expected) in [
            (OutputFormat::Csv, "n\n7\n"),
            (OutputFormat::Json, "{\"n\":7}\n"),
        ] {
            let mut writer = row_writer(
                &options(format),
                &projection,
                Recorder(Vec::new(), Vec::new()),
            )
            .unwrap();
            writer.write_rows(&batch, &[0]).unwrap();
            writer.flush().unwrap();
            let out = writer.finish().unwrap();
            // One write by the flush, none left for `finish`.
            assert_eq!(out.0, expected.as_bytes(), "{format:?}");
            assert_eq!(out.1, [expected.len()], "{format:?}");
        }
    }

    #[test]
    fn text_goes_out_in_large_writes_and_is_counted_exactly() {
        let (batch, projection) = batch_of(&[(
            "text",
            DataType::String,
            vec![s(&"x".repeat(100)), Value::Null],
        )]);
        for format in [OutputFormat::Csv, OutputFormat::Json] {
            let mut writer = row_writer(
                &options(format),
                &projection,
                Recorder(Vec::new(), Vec::new()),
            )
            .unwrap();
            for _ in 0..10_000 {
                writer.write_rows(&batch, &[0, 1]).unwrap();
            }
            let counted = writer.bytes_written();
            let out = writer.finish().unwrap();
            assert_eq!(counted, out.0.len() as u64, "{format:?}");
            assert!(
                out.1.len() <= out.0.len() / TEXT_FLUSH_BYTES + 1,
                "{format:?}"
            );
            assert!(
                out.1[..out.1.len() - 1]
                    .iter()
                    .all(|&n| n >= TEXT_FLUSH_BYTES)
            );
        }
    }
}
