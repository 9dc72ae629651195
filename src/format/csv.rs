//! CSV decoding.
//!
//! [`CsvDecoder`] reads RFC 4180 CSV with the `csv` crate (quoted fields may hold the
//! delimiter, doubled quotes and line breaks) and converts fields with the same rules and
//! messages as the JSON decoder:
//!
//! - with a header, columns map to schema fields by name (exact, then ignoring ASCII case);
//!   schema fields the header lacks are NULL and extra columns are ignored. Without one,
//!   columns map to schema fields in order;
//! - an empty field is NULL, except for STRING where it is the empty string; other types
//!   ignore surrounding whitespace;
//! - ARRAY<T> fields hold elements separated by `;` (by `,` when `;` is the delimiter);
//! - a row whose column count differs from the header's (schema's) is a bad record, as is
//!   a field that does not convert or a STRING field with invalid UTF-8.
//!
//! Empty lines are skipped. The file source hands over chunks of whole lines, so a quoted
//! field whose line break falls on a chunk boundary is split into two bad records: quoted
//! line breaks work within a chunk only.

use csv::{ByteRecord, ReaderBuilder};

use super::json::{Mismatch, Rollback, convert_text, mark_valid, push_scalar, shorten};
use super::{BadRecord, Decoder};
use crate::data::{Batch, ColumnData, DataType, Schema};

/// Decodes delimited text into rows of a schema. See the module documentation.
pub struct CsvDecoder {
    names: Vec<String>,
    types: Vec<DataType>,
    delimiter: u8,
    header: bool,
    /// The schema field of each input column (`None`: ignored). Its length is the column
    /// count every row must have.
    targets: Vec<Option<usize>>,
    /// Schema fields no column maps to: always NULL.
    missing: Vec<usize>,
    record: ByteRecord,
    rollback: Rollback,
    /// `types: strict`: integers must be written as integers (`42`, not `42.0`).
    strict: bool,
}

impl CsvDecoder {
    pub fn new(schema: &Schema, delimiter: u8, header: bool) -> CsvDecoder {
        CsvDecoder {
            names: schema.fields.iter().map(|f| f.name.clone()).collect(),
            types: schema.fields.iter().map(|f| f.data_type.clone()).collect(),
            delimiter,
            header,
            targets: (0..schema.fields.len()).map(Some).collect(),
            missing: Vec::new(),
            record: ByteRecord::new(),
            rollback: Rollback::default(),
            strict: false,
        }
    }

    /// With `strict`, an integer field takes only an integer as written (`42`, not `42.0` or
    /// `4.2e1`). CSV values are text, so every other type must parse as before.
    #[must_use]
    pub fn with_strict_types(mut self, strict: bool) -> CsvDecoder {
        self.strict = strict;
        self
    }

    fn reader<'a>(&self, bytes: &'a [u8]) -> csv::Reader<&'a [u8]> {
        ReaderBuilder::new()
            .delimiter(self.delimiter)
            .has_headers(false)
            // Column counts are checked per record, for a better message than csv's.
            .flexible(true)
            .from_reader(bytes)
    }

    /// Decodes the records of `chunk`, whose first line is line `first_line`.
    fn decode_chunk(
        &mut self,
        chunk: &[u8],
        first_line: u64,
        out: &mut Batch,
        bad: &mut Vec<BadRecord>,
    ) {
        let mut reader = self.reader(chunk);
        loop {
            let start = reader.position().byte() as usize;
            let line = first_line + reader.position().line().saturating_sub(1);
            match reader.read_byte_record(&mut self.record) {
                Ok(true) => {}
                Ok(false) => break,
                // Reading bytes from memory cannot fail; if it ever does, keep the rest.
                Err(e) => {
                    bad.push(BadRecord {
                        raw: chunk.get(start..).unwrap_or_default().to_vec(),
                        error: e.to_string(),
                        line,
                        offset: None,
                    });
                    break;
                }
            }
            // The record's position is where the reader started looking for it: before the
            // blank lines it skipped (and the `\n` of a `\r\n` ending the previous record).
            let (mut start, mut line) = self.record.position().map_or((start, line), |p| {
                (p.byte() as usize, first_line + p.line().saturating_sub(1))
            });
            while let Some(&c @ (b'\r' | b'\n')) = chunk.get(start) {
                line += u64::from(c == b'\n');
                start += 1;
            }
            let end = reader.position().byte() as usize;
            if let Err(error) = self.decode_record(out) {
                let raw = chunk.get(start..end).unwrap_or_default();
                let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
                let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
                bad.push(BadRecord {
                    raw: raw.to_vec(),
                    error,
                    line,
                    offset: None,
                });
            }
        }
    }

    /// Appends `self.record` as a row of `out`; on error `out` is unchanged.
    fn decode_record(&mut self, out: &mut Batch) -> Result<(), String> {
        if self.record.len() != self.targets.len() {
            return Err(format!(
                "expected {} columns, found {}",
                self.targets.len(),
                self.record.len()
            ));
        }
        let rows = out.num_rows;
        self.rollback.start();
        for (i, (bytes, target)) in self.record.iter().zip(&self.targets).enumerate() {
            let Some(field) = *target else { continue };
            let ty = &self.types[field];
            if let Err(error) = decode_field(
                ty,
                self.delimiter,
                self.strict,
                &mut self.rollback,
                field,
                bytes,
                out,
            ) {
                self.rollback.undo(&mut out.columns, rows);
                return Err(format!(
                    "column {} (`{}`): {error}",
                    i + 1,
                    self.names[field]
                ));
            }
        }
        for &field in &self.missing {
            out.columns[field].push_null();
        }
        out.num_rows += 1;
        Ok(())
    }
}

/// Appends one field's value to column `field` (of type `ty`) of `out`.
fn decode_field(
    ty: &DataType,
    delimiter: u8,
    strict: bool,
    rollback: &mut Rollback,
    field: usize,
    bytes: &[u8],
    out: &mut Batch,
) -> Result<(), String> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(match ty {
            DataType::String => "invalid UTF-8".to_string(),
            _ => Mismatch::expected(ty).describe(&quote(&String::from_utf8_lossy(bytes))),
        });
    };
    if *ty != DataType::String && text.trim().is_empty() {
        rollback.before_null(&out.columns);
        out.columns[field].push_null();
        return Ok(());
    }
    let DataType::Array(element) = ty else {
        let scalar = convert_text(ty, text, strict).map_err(|m| m.describe(&quote(text)))?;
        push_scalar(&mut out.columns[field], scalar);
        return Ok(());
    };
    rollback.before_null(&out.columns);
    let col = &mut out.columns[field];
    let ColumnData::List(list) = &mut col.data else {
        return Err("internal error: the batch does not match the schema".to_string());
    };
    let separator = if delimiter == b';' { ',' } else { ';' };
    for (k, item) in text.split(separator).enumerate() {
        if **element != DataType::String && item.trim().is_empty() {
            list.values.push_null();
            continue;
        }
        let scalar = convert_text(element, item, strict)
            .map_err(|m| format!("element {}: {}", k + 1, m.describe(&quote(item))))?;
        push_scalar(&mut list.values, scalar);
    }
    list.offsets.push(list.values.len() as u32);
    mark_valid(col);
    Ok(())
}

/// A field quoted for a message: `"x"`.
fn quote(text: &str) -> String {
    format!("{:?}", shorten(text))
}

const BOM: &[u8] = "\u{feff}".as_bytes();

impl Decoder for CsvDecoder {
    fn decode_lines(
        &mut self,
        chunk: &[u8],
        first_line: u64,
        out: &mut Batch,
        bad: &mut Vec<BadRecord>,
    ) {
        if first_line > 1 && chunk.starts_with(BOM) {
            // The csv reader drops a byte order mark at the start of its input, which is
            // right for a file but not for a chunk that happens to start with U+FEFF. A blank
            // line in front (which the reader skips) keeps it.
            let shifted = [b"\n", chunk].concat();
            self.decode_chunk(&shifted, first_line - 1, out, bad);
        } else {
            self.decode_chunk(chunk, first_line, out, bad);
        }
    }

    fn decode_message(&mut self, bytes: &[u8], out: &mut Batch) -> Result<(), String> {
        let mut reader = self.reader(bytes);
        match reader.read_byte_record(&mut self.record) {
            Ok(true) => {}
            Ok(false) => return Err("empty message".to_string()),
            Err(e) => return Err(e.to_string()),
        }
        let end = reader.position().byte() as usize;
        if bytes
            .get(end..)
            .is_some_and(|rest| !rest.iter().all(u8::is_ascii_whitespace))
        {
            return Err("the message holds more than one CSV record".to_string());
        }
        self.decode_record(out)
    }

    fn expects_header(&self) -> bool {
        self.header
    }

    /// Maps the header's columns to schema fields by name: exact matches first, then
    /// ignoring ASCII case. Fails when no column names a schema field, which usually means a
    /// wrong delimiter or a file without a header.
    fn read_header(&mut self, line: &[u8]) -> Result<(), String> {
        let line = line.strip_prefix(BOM).unwrap_or(line);
        let mut header = ByteRecord::new();
        match self.reader(line).read_byte_record(&mut header) {
            Ok(true) => {}
            Ok(false) => return Err("the header line is empty".to_string()),
            Err(e) => return Err(format!("cannot read the header: {e}")),
        }
        let columns: Vec<String> = header
            .iter()
            .map(|name| String::from_utf8_lossy(name).trim().to_string())
            .collect();
        let mut targets: Vec<Option<usize>> = vec![None; columns.len()];
        let mut taken = vec![false; self.names.len()];
        let passes: [fn(&str, &str) -> bool; 2] = [|a, b| a == b, str::eq_ignore_ascii_case];
        for matches in passes {
            for (column, target) in columns.iter().zip(targets.iter_mut()) {
                if target.is_some() {
                    continue;
                }
                let found =
                    (0..self.names.len()).find(|&f| !taken[f] && matches(&self.names[f], column));
                if let Some(f) = found {
                    taken[f] = true;
                    *target = Some(f);
                }
            }
        }
        if !self.names.is_empty() && !taken.contains(&true) {
            return Err(format!(
                "the header ({}) names none of the schema's fields ({}); check the delimiter",
                shorten(&columns.join(", ")),
                self.names.join(", ")
            ));
        }
        self.missing = (0..self.names.len()).filter(|&f| !taken[f]).collect();
        self.targets = targets;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{OwnedValue, Value};
    use proptest::prelude::*;

    use super::super::test_support::{decode_with, schema};

    fn products() -> Schema {
        schema(&[
            ("name", DataType::String),
            ("qty", DataType::Int),
            ("price", DataType::Double),
            ("ok", DataType::Bool),
            ("at", DataType::Timestamp),
        ])
    }

    fn decode(schema: &Schema, input: &str) -> (Batch, Vec<BadRecord>) {
        decode_with(
            &mut CsvDecoder::new(schema, b',', false),
            schema,
            input.as_bytes(),
        )
    }

    fn rows(batch: &Batch) -> Vec<Vec<OwnedValue>> {
        (0..batch.num_rows)
            .map(|r| {
                batch
                    .columns
                    .iter()
                    .map(|c| c.value(r).into_owned())
                    .collect()
            })
            .collect()
    }

    fn s(text: &str) -> OwnedValue {
        Value::Str(text.to_string().into())
    }

    /// `types: strict`: an integer written as `3.0` or `1e3` is a bad record (lenient reads 3
    /// and 1000); everything else parses as in lenient mode.
    #[test]
    fn strict_types_want_integers_written_as_integers() {
        let input = b"a,3,1.5,true,2019-01-07 00:00:00\nb,3.0,1,false,\nc,1e3,2,true,\n";
        let mut strict = CsvDecoder::new(&products(), b',', false).with_strict_types(true);
        let (out, bad) = decode_with(&mut strict, &products(), input);
        assert_eq!(out.num_rows, 1);
        let errors: Vec<&str> = bad.iter().map(|b| b.error.as_str()).collect();
        assert_eq!(
            errors,
            [
                "column 2 (`qty`): expected an integer, found \"3.0\"",
                "column 2 (`qty`): expected an integer, found \"1e3\"",
            ]
        );
        let mut lenient = CsvDecoder::new(&products(), b',', false);
        let (out, bad) = decode_with(&mut lenient, &products(), input);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(out.num_rows, 3);
    }

    #[test]
    fn maps_columns_in_schema_order_without_a_header() {
        let (out, bad) = decode(
            &products(),
            "apple,3,1.5,true,2019-01-07T07:21:58.557Z\n\"pear, green\", -2 ,2,FALSE,2019-01-07\n",
        );
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(
            rows(&out),
            vec![
                vec![
                    s("apple"),
                    Value::Int(3),
                    Value::Double(1.5),
                    Value::Bool(true),
                    Value::Timestamp(1_546_845_718_557)
                ],
                vec![
                    s("pear, green"),
                    Value::Int(-2),
                    Value::Double(2.0),
                    Value::Bool(false),
                    Value::Timestamp(1_546_819_200_000)
                ],
            ]
        );
        assert!(!CsvDecoder::new(&products(), b',', false).expects_header());
    }

    #[test]
    fn empty_fields_are_null_except_for_strings() {
        let (out, bad) = decode(&products(), ",, ,,\n");
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(
            rows(&out),
            vec![vec![
                s(""),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null
            ]]
        );
    }

    #[test]
    fn rfc4180_quoting() {
        let schema = schema(&[("a", DataType::String), ("b", DataType::String)]);
        let (out, bad) = decode(
            &schema,
            "\"say \"\"hi\"\"\",\"two\nlines\"\r\nx,\"\"\n\"bad\",\"row\",\"three\"\n",
        );
        assert_eq!(
            rows(&out),
            vec![vec![s("say \"hi\""), s("two\nlines")], vec![s("x"), s("")]]
        );
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 4, "the quoted line break counts as a line");
        assert_eq!(bad[0].raw, b"\"bad\",\"row\",\"three\"");
        assert_eq!(bad[0].error, "expected 2 columns, found 3");
    }

    #[test]
    fn skips_empty_lines_and_counts_them() {
        let (out, bad) = decode(&products(), "\n\na,1,1,true,\r\n\r\nb,x,1,true,\n\nc\n");
        assert_eq!(out.num_rows, 1);
        let found: Vec<(u64, &str, &str)> = bad
            .iter()
            .map(|b| {
                (
                    b.line,
                    std::str::from_utf8(&b.raw).unwrap(),
                    b.error.as_str(),
                )
            })
            .collect();
        assert_eq!(
            found,
            vec![
                (
                    5,
                    "b,x,1,true,",
                    r#"column 2 (`qty`): expected a number, found "x""#
                ),
                (7, "c", "expected 5 columns, found 1"),
            ]
        );
    }

    #[test]
    fn conversion_errors_name_the_column() {
        let cases = [
            (
                "a,1,x,true,",
                r#"column 3 (`price`): expected a number, found "x""#,
            ),
            (
                "a,1.5,1,true,",
                r#"column 2 (`qty`): expected an integer, found "1.5""#,
            ),
            (
                "a,99999999999999999999,1,true,",
                r#"column 2 (`qty`): "99999999999999999999" is out of range for BIGINT"#,
            ),
            (
                "a,1,1,yes,",
                r#"column 4 (`ok`): expected a boolean (true or false), found "yes""#,
            ),
            (
                "a,1,1,true,soon",
                r#"column 5 (`at`): expected a timestamp such as "2019-01-07T07:21:58.557Z", found "soon""#,
            ),
        ];
        for (line, want) in cases {
            let (out, bad) = decode(&products(), line);
            assert_eq!(out.num_rows, 0);
            assert_eq!(bad[0].error, want, "{line}");
        }
        let (_, bad) = decode_with(
            &mut CsvDecoder::new(&products(), b',', false),
            &products(),
            b"\xff\xfe,1,1,true,\n",
        );
        assert_eq!(bad[0].error, "column 1 (`name`): invalid UTF-8");
    }

    #[test]
    fn integers_may_be_written_as_integral_decimals() {
        let (out, bad) = decode(&products(), "a,3.0,1,true,\nb,1e3,1,true,\nc,+7,1,true,");
        assert!(bad.is_empty(), "{bad:?}");
        let qty: Vec<OwnedValue> = rows(&out).into_iter().map(|r| r[1].clone()).collect();
        assert_eq!(qty, vec![Value::Int(3), Value::Int(1000), Value::Int(7)]);
    }

    #[test]
    fn header_maps_columns_by_name() {
        let schema = products();
        let mut decoder = CsvDecoder::new(&schema, b';', true);
        assert!(decoder.expects_header());
        // BOM, other order, case-insensitive fallback, an extra column, `ok` and `at` missing.
        decoder
            .read_header("\u{feff}Price;extra;name;QTY;Name".as_bytes())
            .unwrap();
        let (out, bad) = decode_with(&mut decoder, &schema, b"2.5;zzz;apple;4;other\n");
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(
            rows(&out),
            vec![vec![
                s("apple"),
                Value::Int(4),
                Value::Double(2.5),
                Value::Null,
                Value::Null
            ]]
        );
        let (_, bad) = decode_with(&mut decoder, &schema, b"2.5;zzz;apple;4\n");
        assert_eq!(bad[0].error, "expected 5 columns, found 4");
    }

    #[test]
    fn exact_header_names_win_over_case_insensitive_ones() {
        let schema = schema(&[("id", DataType::Int)]);
        let mut decoder = CsvDecoder::new(&schema, b',', true);
        decoder.read_header(b"ID,id").unwrap();
        let (out, _) = decode_with(&mut decoder, &schema, b"1,2\n");
        assert_eq!(out.columns[0].value(0), Value::Int(2));
    }

    #[test]
    fn header_without_any_schema_field_is_an_error() {
        let mut decoder = CsvDecoder::new(&products(), b',', true);
        assert_eq!(
            decoder.read_header(b"name;qty;price"),
            Err("the header (name;qty;price) names none of the schema's fields (name, qty, price, ok, at); check the delimiter".to_string())
        );
        assert!(decoder.read_header(b"").is_err());
    }

    #[test]
    fn array_fields_split_on_semicolons() {
        let schema = schema(&[
            ("tags", DataType::Array(Box::new(DataType::String))),
            ("ns", DataType::Array(Box::new(DataType::Int))),
        ]);
        let (out, bad) = decode(&schema, "a;b;,1; ;3\n,\nx,1;y\n");
        assert_eq!(
            rows(&out),
            vec![
                vec![
                    Value::List(vec![s("a"), s("b"), s("")]),
                    Value::List(vec![Value::Int(1), Value::Null, Value::Int(3)]),
                ],
                vec![Value::Null, Value::Null],
            ]
        );
        assert_eq!(
            bad[0].error,
            r#"column 2 (`ns`): element 2: expected a number, found "y""#
        );
        // With `;` as the delimiter, elements are separated by `,`.
        let (out, _) = decode_with(
            &mut CsvDecoder::new(&schema, b';', false),
            &schema,
            b"a,b;1,2\n",
        );
        assert_eq!(
            out.columns[1].value(0),
            Value::List(vec![Value::Int(1), Value::Int(2)])
        );
    }

    #[test]
    fn a_byte_order_mark_is_dropped_at_the_start_of_the_file_only() {
        let schema = schema(&[("a", DataType::String)]);
        let input = "\u{feff}x\n\u{feff}y\n";
        let mut decoder = CsvDecoder::new(&schema, b',', false);
        let mut out = Batch::empty(&schema);
        let mut bad = Vec::new();
        decoder.decode_lines(input.as_bytes(), 1, &mut out, &mut bad);
        decoder.decode_lines(input.as_bytes(), 7, &mut out, &mut bad);
        decoder.decode_lines(b"\xef\xbb\xbfz,z", 9, &mut out, &mut bad);
        assert_eq!(
            rows(&out),
            vec![
                vec![s("x")],
                vec![s("\u{feff}y")],
                vec![s("\u{feff}x")],
                vec![s("\u{feff}y")]
            ]
        );
        assert_eq!(
            (bad[0].line, &bad[0].raw[..]),
            (9, "\u{feff}z,z".as_bytes())
        );
    }

    #[test]
    fn tab_delimited() {
        let schema = schema(&[("a", DataType::String), ("b", DataType::Int)]);
        let (out, bad) = decode_with(
            &mut CsvDecoder::new(&schema, b'\t', false),
            &schema,
            b"x,y\t1\n",
        );
        assert!(bad.is_empty());
        assert_eq!(rows(&out), vec![vec![s("x,y"), Value::Int(1)]]);
    }

    #[test]
    fn bad_records_leave_the_batch_unchanged() {
        let schema = schema(&[
            ("a", DataType::Int),
            ("b", DataType::Array(Box::new(DataType::Int))),
            ("c", DataType::Int),
        ]);
        let mut decoder = CsvDecoder::new(&schema, b',', false);
        let mut out = Batch::empty(&schema);
        decoder.decode_message(b"1,2,3", &mut out).unwrap();
        let before = out.clone();
        for bad in ["  ,;1;,x", ",1;;2,x", "1,2"] {
            assert!(decoder.decode_message(bad.as_bytes(), &mut out).is_err());
            assert_eq!(out, before, "{bad}");
        }
        assert_eq!(
            decoder.decode_message(b"", &mut out),
            Err("empty message".to_string())
        );
        assert_eq!(
            decoder.decode_message(b"1,2,3\n4,5,6\n", &mut out),
            Err("the message holds more than one CSV record".to_string())
        );
        decoder.decode_message(b"\"4\",,6\r\n", &mut out).unwrap();
        assert_eq!(
            rows(&out)[1],
            vec![Value::Int(4), Value::Null, Value::Int(6)]
        );
    }

    proptest! {
        #[test]
        fn round_trips_what_csv_writes(
            values in prop::collection::vec(
                (".{0,8}", prop::option::of(any::<i64>()), prop::option::of(-1e9..1e9f64), prop::option::of(any::<bool>())),
                0..20,
            ),
            delimiter in prop::sample::select(vec![b',', b';', b'\t', b'|']),
        ) {
            let schema = schema(&[
                ("s", DataType::String),
                ("i", DataType::Int),
                ("d", DataType::Double),
                ("b", DataType::Bool),
            ]);
            let mut writer = csv::WriterBuilder::new().delimiter(delimiter).from_writer(Vec::new());
            let text = |v: Option<String>| v.unwrap_or_default();
            for (s, i, d, b) in &values {
                writer
                    .write_record([s.clone(), text(i.map(|x| x.to_string())), text(d.map(|x| x.to_string())), text(b.map(|x| x.to_string()))])
                    .unwrap();
            }
            let input = writer.into_inner().unwrap();
            let mut out = Batch::empty(&schema);
            let mut bad = Vec::new();
            // Not the file's first line, where a byte order mark would be dropped.
            CsvDecoder::new(&schema, delimiter, false).decode_lines(&input, 2, &mut out, &mut bad);
            let want: Vec<Vec<OwnedValue>> = values
                .iter()
                .map(|(s, i, d, b)| {
                    vec![
                        Value::Str(s.clone().into()),
                        i.map_or(Value::Null, Value::Int),
                        d.map_or(Value::Null, Value::Double),
                        b.map_or(Value::Null, Value::Bool),
                    ]
                })
                .collect();
            prop_assert!(bad.is_empty(), "{bad:?}");
            prop_assert_eq!(rows(&out), want);
        }

        #[test]
        fn random_bytes_never_panic(
            input in prop::collection::vec(
                prop::sample::select(b",;\"\n\r x1.-e\xff\xc3\xa9".to_vec()),
                0..120,
            ),
            header in any::<bool>(),
        ) {
            let schema = schema(&[
                ("s", DataType::String),
                ("i", DataType::Int),
                ("a", DataType::Array(Box::new(DataType::Double))),
            ]);
            let mut decoder = CsvDecoder::new(&schema, b',', header);
            if header {
                let _ = decoder.read_header(b"a,s,x,i");
            }
            let (out, bad) = decode_with(&mut decoder, &schema, &input);
            for col in &out.columns {
                prop_assert_eq!(col.len(), out.num_rows);
            }
            for b in &bad {
                prop_assert!(b.line >= 1 && b.line <= input.len() as u64 + 1);
            }
            let mut message = Batch::empty(&schema);
            let _ = decoder.decode_message(&input, &mut message);
            prop_assert!(message.num_rows <= 1);
        }
    }
}
