//! Parquet files through the `parquet` crate's low-level API (the crate is built without
//! arrow).
//!
//! Schema (message `flink_schema`, as Flink names it), every column OPTIONAL: BOOLEAN;
//! BIGINT → INT64; DOUBLE; TIMESTAMP → INT64 annotated TIMESTAMP(MILLIS, UTC); STRING →
//! BYTE_ARRAY annotated STRING; ARRAY<T> → the standard 3-level list
//! `optional group a (LIST) { repeated group list { optional T element; } }`, nesting as
//! deep as the type does. Pages are Snappy-compressed.
//!
//! A row group's columns must be written one after the other, so rows are buffered column by
//! column (Dremel definition/repetition levels plus the non-NULL values) until the row group
//! is full (`ROW_GROUP_LIMITS`) or the file finishes. Only `Write` is needed: the footer goes
//! at the end and nothing is rewritten.

use std::io::{self, Write};
use std::sync::Arc;

use parquet::basic::{Compression, LogicalType, Repetition, TimeUnit, Type as PhysicalType};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::{SerializedColumnWriter, SerializedFileWriter};
use parquet::schema::types::Type;

use super::{Projection, RowWriter, invalid_input, projected_columns};
use crate::data::{Batch, Column, ColumnData, DataType};

/// When a row group is written out: at whichever limit comes first.
#[derive(Debug, Clone, Copy)]
struct RowGroupLimits {
    rows: usize,
    /// Of the size estimate (see [`Leaf::estimate`]).
    bytes: usize,
}

const ROW_GROUP_LIMITS: RowGroupLimits = RowGroupLimits {
    rows: 1 << 20,
    bytes: 64 << 20,
};

/// Rows appended column by column between two checks of the byte limit: long enough for tight
/// per-column loops, short enough that row groups overshoot the limit by little.
const APPEND_SLICE: usize = 4096;

/// Level entries per `write_batch` call for string columns, whose values are converted to
/// the writer's `ByteArray`s a slice at a time rather than all at once.
const BYTES_SLICE: usize = 64 * 1024;

pub(super) struct ParquetWriter<W: Write + Send> {
    file: SerializedFileWriter<W>,
    /// Batch column and type of each output column.
    columns: Vec<usize>,
    types: Vec<DataType>,
    /// One per output column: without structs, every column is exactly one leaf.
    leaves: Vec<Leaf>,
    limits: RowGroupLimits,
    buffered_rows: usize,
    buffered_estimate: usize,
    /// Estimates of the row groups written so far and the file bytes they took: their ratio
    /// (compression, encodings) scales the estimate of the buffered rows in `bytes_written`.
    flushed_estimate: u64,
    flushed_bytes: u64,
    ratio: f64,
}

impl<W: Write + Send> ParquetWriter<W> {
    pub(super) fn new(projection: &Projection, out: W) -> io::Result<Self> {
        Self::with_limits(projection, out, ROW_GROUP_LIMITS)
    }

    fn with_limits(projection: &Projection, out: W, limits: RowGroupLimits) -> io::Result<Self> {
        if projection.fields.is_empty() {
            return Err(invalid_input(
                "a Parquet file needs at least one column".to_string(),
            ));
        }
        let fields = projection
            .fields
            .iter()
            .map(|field| parquet_type(&field.name, &field.data_type).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(io_error)?;
        let schema = Type::group_type_builder("flink_schema")
            .with_fields(fields)
            .build()
            .map_err(io_error)?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let file = SerializedFileWriter::new(out, Arc::new(schema), Arc::new(properties))
            .map_err(io_error)?;
        let leaves = projection
            .fields
            .iter()
            .zip(file.schema_descr().columns())
            .map(|(field, descr)| {
                Leaf::new(
                    &field.data_type,
                    descr.max_def_level(),
                    descr.max_rep_level() > 0,
                )
            })
            .collect();
        Ok(ParquetWriter {
            file,
            columns: projection.columns.clone(),
            types: projection
                .fields
                .iter()
                .map(|f| f.data_type.clone())
                .collect(),
            leaves,
            limits,
            buffered_rows: 0,
            buffered_estimate: 0,
            flushed_estimate: 0,
            flushed_bytes: 0,
            ratio: 1.0,
        })
    }

    /// Writes the buffered rows as one row group.
    fn flush_row_group(&mut self) -> io::Result<()> {
        if self.buffered_rows == 0 {
            return Ok(());
        }
        let before = self.file.bytes_written();
        let mut group = self.file.next_row_group().map_err(io_error)?;
        for leaf in &mut self.leaves {
            let mut column = group
                .next_column()
                .map_err(io_error)?
                .ok_or_else(|| io::Error::other("Parquet schema has fewer leaves than columns"))?;
            leaf.write(&mut column).map_err(io_error)?;
            column.close().map_err(io_error)?;
            leaf.clear();
        }
        group.close().map_err(io_error)?;
        self.flushed_bytes += (self.file.bytes_written() - before) as u64;
        self.flushed_estimate += self.buffered_estimate as u64;
        if self.flushed_estimate > 0 {
            self.ratio = self.flushed_bytes as f64 / self.flushed_estimate as f64;
        }
        self.buffered_rows = 0;
        self.buffered_estimate = 0;
        Ok(())
    }
}

impl<W: Write + Send> RowWriter<W> for ParquetWriter<W> {
    fn write_rows(&mut self, batch: &Batch, rows: &[u32]) -> io::Result<()> {
        let columns = projected_columns(batch, &self.columns, rows)?;
        // Leaves take values of their schema type only: check before buffering anything.
        for (column, expected) in columns.iter().zip(&self.types) {
            let actual = column.data_type();
            if actual != *expected {
                return Err(invalid_input(format!(
                    "a {actual} column cannot be written as {expected}"
                )));
            }
        }
        let mut rest = rows;
        while !rest.is_empty() {
            let take = rest
                .len()
                .min(APPEND_SLICE)
                .min(self.limits.rows - self.buffered_rows);
            let (slice, tail) = rest.split_at(take);
            rest = tail;
            for (leaf, column) in self.leaves.iter_mut().zip(&columns) {
                for &row in slice {
                    leaf.append(column, row as usize, 0, 0, 0);
                }
            }
            self.buffered_rows += slice.len();
            self.buffered_estimate = self.leaves.iter().map(|l| l.estimate).sum();
            if self.buffered_rows >= self.limits.rows || self.buffered_estimate >= self.limits.bytes
            {
                self.flush_row_group()?;
            }
        }
        Ok(())
    }

    /// Flushes the row groups already written. Buffered rows stay buffered: writing them
    /// now would mean a row group per flush, and Parquet is for object sinks, which only
    /// read the file once it is finished.
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }

    fn bytes_written(&self) -> u64 {
        self.file.bytes_written() as u64 + (self.buffered_estimate as f64 * self.ratio) as u64
    }

    fn finish(self: Box<Self>) -> io::Result<W> {
        let mut this = *self;
        this.flush_row_group()?;
        // Flush the row groups on their own first: `into_inner` reports a failed flush as a
        // message only, losing the error's kind.
        this.file.flush()?;
        let mut out = this.file.into_inner().map_err(io_error)?;
        out.flush()?;
        Ok(out)
    }
}

/// The Parquet type of a column, OPTIONAL like every Flink column that may hold NULL.
fn parquet_type(name: &str, data_type: &DataType) -> Result<Type, ParquetError> {
    let primitive = |physical, logical| {
        Type::primitive_type_builder(name, physical)
            .with_repetition(Repetition::OPTIONAL)
            .with_logical_type(logical)
            .build()
    };
    match data_type {
        DataType::Bool => primitive(PhysicalType::BOOLEAN, None),
        DataType::Int => primitive(PhysicalType::INT64, None),
        DataType::Double => primitive(PhysicalType::DOUBLE, None),
        DataType::Timestamp => primitive(
            PhysicalType::INT64,
            Some(LogicalType::timestamp(true, TimeUnit::MILLIS)),
        ),
        DataType::String => primitive(PhysicalType::BYTE_ARRAY, Some(LogicalType::String)),
        DataType::Array(element) => {
            let list = Type::group_type_builder("list")
                .with_repetition(Repetition::REPEATED)
                .with_fields(vec![Arc::new(parquet_type("element", element)?)])
                .build()?;
            Type::group_type_builder(name)
                .with_repetition(Repetition::OPTIONAL)
                .with_logical_type(Some(LogicalType::List))
                .with_fields(vec![Arc::new(list)])
                .build()
        }
    }
}

/// Parquet errors as I/O errors, unwrapping those that came from the underlying writer.
fn io_error(error: ParquetError) -> io::Error {
    match error {
        ParquetError::External(inner) => match inner.downcast::<io::Error>() {
            Ok(error) => *error,
            Err(other) => io::Error::other(other),
        },
        other => io::Error::other(other),
    }
}

/// The buffered rows of one leaf column: a definition level for every entry, a repetition
/// level too inside lists, and the non-NULL values.
struct Leaf {
    max_def: i16,
    repeated: bool,
    def: Vec<i16>,
    rep: Vec<i16>,
    values: Values,
    /// PLAIN-encoded size of the values plus a byte per entry: what the buffered rows would
    /// take before compression and dictionary encoding.
    estimate: usize,
}

enum Values {
    Bool(Vec<bool>),
    /// BIGINT and TIMESTAMP.
    Int64(Vec<i64>),
    Double(Vec<f64>),
    /// Strings packed: value `i` ends at `ends[i]`.
    Bytes {
        data: Vec<u8>,
        ends: Vec<usize>,
    },
}

impl Leaf {
    fn new(data_type: &DataType, max_def: i16, repeated: bool) -> Leaf {
        let values = match data_type {
            DataType::Bool => Values::Bool(Vec::new()),
            DataType::Int | DataType::Timestamp => Values::Int64(Vec::new()),
            DataType::Double => Values::Double(Vec::new()),
            DataType::String => Values::Bytes {
                data: Vec::new(),
                ends: Vec::new(),
            },
            DataType::Array(element) => return Leaf::new(element, max_def, repeated),
        };
        Leaf {
            max_def,
            repeated,
            def: Vec::new(),
            rep: Vec::new(),
            values,
            estimate: 0,
        }
    }

    /// Appends `column[row]`: its levels and, when not NULL, its value(s).
    ///
    /// `def` counts the defined optional/repeated ancestors of its node, `rep` is the
    /// repetition level of its first entry and `depth` the number of lists around it. In
    /// `optional group a (LIST) { repeated group list { optional T element } }` a NULL `a` has
    /// level `def`, an empty list `def + 1`, and elements start from `def + 2`.
    fn append(&mut self, column: &Column, row: usize, def: i16, rep: i16, depth: i16) {
        if column.is_null(row) {
            self.push_levels(def, rep);
            return;
        }
        match &column.data {
            ColumnData::List(list) => {
                let (start, end) = (list.offsets[row] as usize, list.offsets[row + 1] as usize);
                if start == end {
                    self.push_levels(def + 1, rep);
                }
                for i in start..end {
                    // Later elements repeat at this list's level.
                    let rep = if i == start { rep } else { depth + 1 };
                    self.append(&list.values, i, def + 2, rep, depth + 1);
                }
            }
            data => {
                debug_assert_eq!(def + 1, self.max_def);
                self.push_levels(def + 1, rep);
                self.estimate += self.values.push(data, row);
            }
        }
    }

    #[inline]
    fn push_levels(&mut self, def: i16, rep: i16) {
        self.def.push(def);
        if self.repeated {
            self.rep.push(rep);
        }
        self.estimate += 1;
    }

    /// Writes the buffered entries as the column chunk of the current row group.
    fn write(&mut self, column: &mut SerializedColumnWriter<'_>) -> Result<(), ParquetError> {
        let def = Some(self.def.as_slice());
        let rep = self.repeated.then_some(self.rep.as_slice());
        match &mut self.values {
            Values::Bool(v) => {
                column.typed::<BoolType>().write_batch(v, def, rep)?;
            }
            Values::Int64(v) => {
                column.typed::<Int64Type>().write_batch(v, def, rep)?;
            }
            Values::Double(v) => {
                column.typed::<DoubleType>().write_batch(v, def, rep)?;
            }
            Values::Bytes { data, ends } => {
                // One shared buffer; each value is a cheap slice of it.
                let all = ByteArray::from(std::mem::take(data));
                let writer = column.typed::<ByteArrayType>();
                let mut slice_values = Vec::with_capacity(BYTES_SLICE.min(ends.len()));
                let (mut level, mut value, mut value_start) = (0, 0, 0);
                while level < self.def.len() {
                    let mut end = (level + BYTES_SLICE).min(self.def.len());
                    // The writer may close a page after any call, and pages must start with a
                    // row (the offset index counts rows): end slices between rows.
                    if self.repeated {
                        while end < self.rep.len() && self.rep[end] != 0 {
                            end += 1;
                        }
                    }
                    slice_values.clear();
                    for &d in &self.def[level..end] {
                        if d == self.max_def {
                            slice_values.push(all.slice(value_start, ends[value] - value_start));
                            value_start = ends[value];
                            value += 1;
                        }
                    }
                    writer.write_batch(
                        &slice_values,
                        Some(&self.def[level..end]),
                        self.repeated.then(|| &self.rep[level..end]),
                    )?;
                    level = end;
                }
            }
        }
        Ok(())
    }

    fn clear(&mut self) {
        self.def.clear();
        self.rep.clear();
        match &mut self.values {
            Values::Bool(v) => v.clear(),
            Values::Int64(v) => v.clear(),
            Values::Double(v) => v.clear(),
            Values::Bytes { data, ends } => {
                data.clear();
                ends.clear();
            }
        }
        self.estimate = 0;
    }
}

impl Values {
    /// Appends the value at `row` of `data`; returns its PLAIN-encoded size.
    #[inline]
    fn push(&mut self, data: &ColumnData, row: usize) -> usize {
        match (self, data) {
            (Values::Bool(v), ColumnData::Bool(d)) => {
                v.push(d[row]);
                1
            }
            (Values::Int64(v), ColumnData::Int(d) | ColumnData::Timestamp(d)) => {
                v.push(d[row]);
                8
            }
            (Values::Double(v), ColumnData::Double(d)) => {
                v.push(d[row]);
                8
            }
            (Values::Bytes { data, ends }, ColumnData::Str(s)) => {
                let text = s.get(row);
                data.extend_from_slice(text.as_bytes());
                ends.push(data.len());
                text.len() + 4
            }
            _ => unreachable!("write_rows checks column types against the schema"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field as PqField;
    use parquet::schema::printer::print_schema;

    use super::super::test_util::*;
    use super::super::text::TestRng;
    use super::*;
    use crate::data::{OwnedValue, Value};

    fn read_back(bytes: &[u8]) -> SerializedFileReader<File> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        SerializedFileReader::new(file).unwrap()
    }

    fn to_value(field: &PqField) -> OwnedValue {
        match field {
            PqField::Null => Value::Null,
            PqField::Bool(b) => Value::Bool(*b),
            PqField::Long(x) => Value::Int(*x),
            PqField::Double(d) => Value::Double(*d),
            PqField::TimestampMillis(t) => Value::Timestamp(*t),
            PqField::Str(s) => Value::Str(s.clone().into()),
            PqField::ListInternal(list) => {
                Value::List(list.elements().iter().map(to_value).collect())
            }
            other => panic!("unexpected Parquet value {other:?}"),
        }
    }

    fn rows_of(reader: &SerializedFileReader<File>) -> Vec<Vec<OwnedValue>> {
        reader
            .get_row_iter(None)
            .unwrap()
            .map(|row| {
                row.unwrap()
                    .get_column_iter()
                    .map(|(_, f)| to_value(f))
                    .collect()
            })
            .collect()
    }

    /// Equality with doubles compared bit for bit (NaN, -0.0).
    fn same(a: &Value<'_>, b: &Value<'_>) -> bool {
        match (a, b) {
            (Value::Double(x), Value::Double(y)) => x.to_bits() == y.to_bits(),
            (Value::List(x), Value::List(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
            }
            _ => a == b,
        }
    }

    fn assert_rows(read: &[Vec<OwnedValue>], batch: &Batch, rows: &[u32]) {
        assert_eq!(read.len(), rows.len());
        for (got, &row) in read.iter().zip(rows) {
            let expected: Vec<Value<'_>> = batch
                .columns
                .iter()
                .map(|c| c.value(row as usize))
                .collect();
            assert_eq!(got.len(), expected.len());
            for (g, e) in got.iter().zip(&expected) {
                assert!(same(g, e), "row {row}: read {g:?}, wrote {e:?}");
            }
        }
    }

    fn encode_with(
        batch: &Batch,
        projection: &Projection,
        calls: &[&[u32]],
        limits: RowGroupLimits,
    ) -> Vec<u8> {
        let mut w = Box::new(ParquetWriter::with_limits(projection, Vec::new(), limits).unwrap());
        for rows in calls {
            w.write_rows(batch, rows).unwrap();
        }
        w.finish().unwrap()
    }

    fn every_type() -> (Batch, Projection) {
        let strings = DataType::Array(Box::new(DataType::String));
        batch_of(&[
            (
                "b",
                DataType::Bool,
                vec![
                    Value::Bool(true),
                    Value::Null,
                    Value::Bool(false),
                    Value::Bool(true),
                ],
            ),
            (
                "n",
                DataType::Int,
                vec![
                    Value::Int(i64::MIN),
                    Value::Null,
                    Value::Int(0),
                    Value::Int(i64::MAX),
                ],
            ),
            (
                "d",
                DataType::Double,
                vec![
                    Value::Double(1.5),
                    Value::Null,
                    Value::Double(f64::NAN),
                    Value::Double(-0.0),
                ],
            ),
            (
                "t",
                DataType::Timestamp,
                vec![
                    Value::Timestamp(1_546_845_718_557),
                    Value::Null,
                    Value::Timestamp(-1),
                    Value::Timestamp(0),
                ],
            ),
            (
                "s",
                DataType::String,
                vec![s("héllo ✓"), Value::Null, s(""), s("x\"\n\0")],
            ),
            (
                "ints",
                DataType::Array(Box::new(DataType::Int)),
                vec![
                    list(vec![Value::Int(1), Value::Null, Value::Int(3)]),
                    Value::Null,
                    list(vec![]),
                    list(vec![Value::Null]),
                ],
            ),
            (
                "nested",
                DataType::Array(Box::new(strings)),
                vec![
                    list(vec![
                        list(vec![s("a"), Value::Null]),
                        Value::Null,
                        list(vec![]),
                        list(vec![s("b")]),
                    ]),
                    Value::Null,
                    list(vec![]),
                    list(vec![Value::Null, list(vec![s("c"), s("d")])]),
                ],
            ),
        ])
    }

    #[test]
    fn schema_follows_flink_and_the_list_spec() {
        let (batch, projection) = every_type();
        let out = encode_with(&batch, &projection, &[&all_rows(&batch)], ROW_GROUP_LIMITS);
        let reader = read_back(&out);
        let mut printed = Vec::new();
        print_schema(&mut printed, reader.metadata().file_metadata().schema());
        let printed = String::from_utf8(printed).unwrap();
        let expected = "message flink_schema {
  OPTIONAL BOOLEAN b;
  OPTIONAL INT64 n;
  OPTIONAL DOUBLE d;
  OPTIONAL INT64 t (TIMESTAMP(MILLIS,true));
  OPTIONAL BYTE_ARRAY s (STRING);
  OPTIONAL group ints (LIST) {
    REPEATED group list {
      OPTIONAL INT64 element;
    }
  }
  OPTIONAL group nested (LIST) {
    REPEATED group list {
      OPTIONAL group element (LIST) {
        REPEATED group list {
          OPTIONAL BYTE_ARRAY element (STRING);
        }
      }
    }
  }
}
";
        assert_eq!(printed, expected);
        let group = reader.metadata().row_group(0);
        for column in group.columns() {
            assert_eq!(column.compression(), Compression::SNAPPY);
        }
    }

    #[test]
    fn every_type_reads_back() {
        let (batch, projection) = every_type();
        let rows = all_rows(&batch);
        let out = encode_with(&batch, &projection, &[&rows], ROW_GROUP_LIMITS);
        let reader = read_back(&out);
        assert_eq!(reader.metadata().num_row_groups(), 1);
        assert_rows(&rows_of(&reader), &batch, &rows);
    }

    #[test]
    fn rows_are_picked_by_index() {
        let (batch, projection) = every_type();
        let out = encode_with(
            &batch,
            &projection,
            &[&[3, 0], &[], &[3, 1, 2]],
            ROW_GROUP_LIMITS,
        );
        assert_rows(&rows_of(&read_back(&out)), &batch, &[3, 0, 3, 1, 2]);
    }

    #[test]
    fn a_file_without_rows_is_valid() {
        let (batch, projection) = every_type();
        let out = encode_with(&batch, &projection, &[], ROW_GROUP_LIMITS);
        let reader = read_back(&out);
        assert_eq!(reader.metadata().num_row_groups(), 0);
        assert!(rows_of(&reader).is_empty());
    }

    /// A batch of random rows of every type, lists included.
    fn random_batch(rows: usize, seed: u64) -> (Batch, Projection) {
        let mut rng = TestRng(seed);
        let mut ints = Vec::new();
        let mut strings = Vec::new();
        let mut lists = Vec::new();
        for _ in 0..rows {
            let null = rng.below(10) == 0;
            ints.push(if null {
                Value::Null
            } else {
                Value::Int(rng.next() as i64)
            });
            let text: String = (0..rng.below(20))
                .map(|_| char::from(b'a' + rng.below(26) as u8))
                .collect();
            strings.push(if rng.below(10) == 0 {
                Value::Null
            } else {
                s(&text)
            });
            let items = (0..rng.below(4))
                .map(|_| {
                    if rng.below(5) == 0 {
                        Value::Null
                    } else {
                        s(&text[..rng.below(text.len() as u64 + 1) as usize])
                    }
                })
                .collect();
            lists.push(if rng.below(10) == 0 {
                Value::Null
            } else {
                list(items)
            });
        }
        batch_of(&[
            ("n", DataType::Int, ints),
            ("s", DataType::String, strings),
            ("l", DataType::Array(Box::new(DataType::String)), lists),
        ])
    }

    #[test]
    fn row_groups_close_at_the_row_limit() {
        let (batch, projection) = random_batch(1000, 3);
        let rows = all_rows(&batch);
        let limits = RowGroupLimits {
            rows: 300,
            bytes: usize::MAX,
        };
        let out = encode_with(&batch, &projection, &[&rows[..450], &rows[450..]], limits);
        let reader = read_back(&out);
        let sizes: Vec<i64> = reader
            .metadata()
            .row_groups()
            .iter()
            .map(|g| g.num_rows())
            .collect();
        assert_eq!(sizes, [300, 300, 300, 100]);
        assert_rows(&rows_of(&reader), &batch, &rows);
    }

    #[test]
    fn row_groups_close_at_the_size_limit() {
        let (batch, projection) = random_batch(20_000, 5);
        let rows = all_rows(&batch);
        let limits = RowGroupLimits {
            rows: usize::MAX,
            bytes: 64 * 1024,
        };
        let out = encode_with(&batch, &projection, &[&rows], limits);
        let reader = read_back(&out);
        let groups = reader.metadata().num_row_groups();
        assert!(groups > 3, "{groups} row groups");
        assert_rows(&rows_of(&reader), &batch, &rows);
    }

    #[test]
    fn long_string_columns_are_written_in_slices() {
        // More level entries than BYTES_SLICE in one row group, lists crossing slice ends.
        let (batch, projection) = random_batch(60_000, 9);
        let rows = all_rows(&batch);
        let out = encode_with(&batch, &projection, &[&rows], ROW_GROUP_LIMITS);
        let reader = read_back(&out);
        assert_eq!(reader.metadata().num_row_groups(), 1);
        assert_rows(&rows_of(&reader), &batch, &rows);
    }

    #[test]
    fn bytes_written_tracks_the_file() {
        let (batch, projection) = random_batch(4000, 8);
        let limits = RowGroupLimits {
            rows: 1000,
            bytes: usize::MAX,
        };
        let mut w = Box::new(ParquetWriter::with_limits(&projection, Vec::new(), limits).unwrap());
        assert_eq!(w.bytes_written(), 4); // the magic number
        let mut last = w.bytes_written();
        for chunk in all_rows(&batch).chunks(250) {
            w.write_rows(&batch, chunk).unwrap();
            let now = w.bytes_written();
            assert!(now > last);
            last = now;
        }
        // The last call filled the fourth row group exactly: everything is in the file.
        assert_eq!(w.buffered_rows, 0);
        assert_eq!(w.bytes_written(), w.file.bytes_written() as u64);
        let before_footer = w.bytes_written();
        let out = w.finish().unwrap();
        assert!(out.len() as u64 > before_footer);
    }

    #[test]
    fn buffered_rows_are_estimated_at_the_observed_compression() {
        let (batch, projection) = batch_of(&[(
            "s",
            DataType::String,
            vec![s(&"same text ".repeat(20)); 1000],
        )]);
        let limits = RowGroupLimits {
            rows: 500,
            bytes: usize::MAX,
        };
        let mut w = Box::new(ParquetWriter::with_limits(&projection, Vec::new(), limits).unwrap());
        w.write_rows(&batch, &all_rows(&batch)[..500]).unwrap();
        let one_group = w.bytes_written();
        w.write_rows(&batch, &all_rows(&batch)[..250]).unwrap();
        let grown = w.bytes_written() - one_group;
        // 250 rows of 200 bytes of text: far less once dictionary-encoded, as the first row
        // group showed.
        assert!(grown < 250 * 200 / 10, "{grown}");
        assert!(grown > 0);
    }

    #[test]
    fn columns_must_match_the_schema() {
        let (batch, mut projection) = every_type();
        projection.fields[1].data_type = DataType::Double;
        let mut w = Box::new(ParquetWriter::new(&projection, Vec::new()).unwrap());
        let err = w.write_rows(&batch, &[0]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        // Nothing was buffered: the file is still consistent.
        w.finish().unwrap();
        let empty = Projection {
            columns: vec![],
            fields: vec![],
        };
        assert!(ParquetWriter::new(&empty, Vec::new()).is_err());
    }

    #[test]
    fn writer_errors_come_back_as_io_errors() {
        struct Failing;
        impl Write for Failing {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let (batch, projection) = every_type();
        let mut w = Box::new(ParquetWriter::new(&projection, Failing).unwrap());
        w.write_rows(&batch, &all_rows(&batch)).unwrap();
        let Err(err) = w.finish() else {
            panic!("finish succeeded")
        };
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
    }
}
