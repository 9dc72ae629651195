//! CSV lines (RFC 4180): a header of column names when asked, fields quoted only when needed.
//!
//! A field is quoted when it contains the delimiter, `"`, CR or LF (RFC 4180), and also when
//! it starts or ends with a space or tab: the RFC keeps such spaces, but some readers trim
//! unquoted fields, and quoting is always allowed. `"` inside quotes is doubled. NULL is an
//! empty field, like an empty string (as Flink's CSV format writes both by default).

use std::io;

use memchr::memmem;

use super::text::{TimestampText, push_display, push_int, timestamp_in_range};
use super::{LineFormat, invalid_input};
use crate::config::sink::CsvOutput;
use crate::data::{Column, ColumnData, Field};

pub(super) struct CsvFormat {
    /// The delimiter's UTF-8 bytes.
    delimiter: Vec<u8>,
    /// Bytes that force quoting: `"`, CR, LF and an ASCII delimiter (a multi-byte delimiter
    /// is searched for separately).
    special: [bool; 256],
    /// Integers and timestamps never need quotes (the delimiter is none of their characters):
    /// their fields are not scanned.
    plain_numbers: bool,
    header: Option<Vec<u8>>,
    /// Holds a field while it is rewritten quoted.
    scratch: Vec<u8>,
}

impl CsvFormat {
    pub(super) fn new(options: &CsvOutput, fields: &[Field]) -> io::Result<CsvFormat> {
        if matches!(options.delimiter, '"' | '\r' | '\n') {
            return Err(invalid_input(format!(
                "{:?} cannot be a CSV delimiter",
                options.delimiter
            )));
        }
        let mut special = [false; 256];
        for b in [b'"', b'\r', b'\n'] {
            special[usize::from(b)] = true;
        }
        if options.delimiter.is_ascii() {
            special[options.delimiter as usize] = true;
        }
        // Integer text is digits and `-`; timestamp text adds ` `, `:` and `.`.
        let plain_numbers =
            options.delimiter.is_ascii() && !b"0123456789-: .".contains(&(options.delimiter as u8));
        let mut format = CsvFormat {
            delimiter: options.delimiter.to_string().into_bytes(),
            special,
            plain_numbers,
            header: None,
            scratch: Vec::new(),
        };
        if options.header {
            let mut line = Vec::new();
            for (i, field) in fields.iter().enumerate() {
                if i > 0 {
                    line.extend_from_slice(&format.delimiter);
                }
                let start = line.len();
                line.extend_from_slice(field.name.as_bytes());
                format.quote_if_needed(&mut line, start, fields.len());
            }
            line.push(b'\n');
            format.header = Some(line);
        }
        Ok(format)
    }

    /// Quotes the field `buf[start..]` in place if it needs it; `columns` is the row's width.
    #[inline]
    fn quote_if_needed(&mut self, buf: &mut Vec<u8>, start: usize, columns: usize) {
        let field = &buf[start..];
        if field.is_empty() {
            // A row of one empty field would be a blank line, which readers skip.
            if columns == 1 {
                buf.extend_from_slice(b"\"\"");
            }
            return;
        }
        if !self.needs_quotes(field) {
            return;
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(field);
        buf.truncate(start);
        buf.push(b'"');
        for &b in &self.scratch {
            if b == b'"' {
                buf.push(b'"');
            }
            buf.push(b);
        }
        buf.push(b'"');
    }

    /// How `column`'s values become fields: integers and timestamps are written without a
    /// look at their text when the delimiter cannot occur in it.
    fn field_text<'c>(&self, column: &'c Column) -> FieldText<'c> {
        if self.plain_numbers {
            let valid = column.valid.as_deref();
            match &column.data {
                ColumnData::Int(values) => return FieldText::Int { values, valid },
                ColumnData::Timestamp(values) => {
                    return FieldText::Timestamp {
                        values,
                        valid,
                        text: TimestampText::new(),
                    };
                }
                _ => {}
            }
        }
        FieldText::Checked(column)
    }

    #[inline]
    fn push_delimiter(&self, buf: &mut Vec<u8>) {
        match self.delimiter[..] {
            [byte] => buf.push(byte),
            _ => buf.extend_from_slice(&self.delimiter),
        }
    }

    fn needs_quotes(&self, field: &[u8]) -> bool {
        let padded = |b: Option<&u8>| matches!(b, Some(b' ' | b'\t'));
        padded(field.first())
            || padded(field.last())
            || field.iter().any(|&b| self.special[usize::from(b)])
            || (self.delimiter.len() > 1 && memmem::find(field, &self.delimiter).is_some())
    }
}

impl LineFormat for CsvFormat {
    fn preamble(&mut self, buf: &mut Vec<u8>) {
        if let Some(header) = &self.header {
            buf.extend_from_slice(header);
        }
    }

    fn encode_row(&mut self, buf: &mut Vec<u8>, columns: &[&Column], row: usize) {
        self.encode_rows(buf, columns, &[row as u32]);
    }

    /// Column by column, the type decides once how values are written; row by row, the
    /// fields are laid out.
    fn encode_rows(&mut self, buf: &mut Vec<u8>, columns: &[&Column], rows: &[u32]) {
        let mut fields: Vec<FieldText<'_>> = columns.iter().map(|c| self.field_text(c)).collect();
        let width = columns.len();
        for &row in rows {
            let row = row as usize;
            for (i, field) in fields.iter_mut().enumerate() {
                if i > 0 {
                    self.push_delimiter(buf);
                }
                match field {
                    FieldText::Int { values, valid } => {
                        if valid.is_none_or(|v| v[row]) {
                            push_int(buf, values[row]);
                        } else {
                            push_null(buf, width);
                        }
                    }
                    FieldText::Timestamp {
                        values,
                        valid,
                        text,
                    } => {
                        if valid.is_none_or(|v| v[row]) {
                            let millis = values[row];
                            if timestamp_in_range(millis) {
                                buf.extend_from_slice(text.of(millis));
                            } else {
                                push_int(buf, millis);
                            }
                        } else {
                            push_null(buf, width);
                        }
                    }
                    FieldText::Checked(column) => {
                        let start = buf.len();
                        push_display(buf, column, row);
                        // NULL is an empty field, which may need quotes too.
                        self.quote_if_needed(buf, start, width);
                    }
                }
            }
            buf.push(b'\n');
        }
    }
}

/// How one column's values become CSV fields (see [`CsvFormat::field_text`]).
enum FieldText<'c> {
    /// BIGINT values, whose text never needs quotes; `valid` marks NULLs as in [`Column`].
    Int {
        values: &'c [i64],
        valid: Option<&'c [bool]>,
    },
    /// TIMESTAMP values, likewise; `text` keeps the last one formatted, which rows of a window
    /// repeat.
    Timestamp {
        values: &'c [i64],
        valid: Option<&'c [bool]>,
        text: TimestampText,
    },
    /// Any other column (or any column, with a delimiter that numbers may contain): its text,
    /// quoted when it needs it.
    Checked(&'c Column),
}

/// A NULL integer or timestamp: an empty field, quoted when it is the whole row (a blank
/// line would be skipped by readers).
#[inline]
fn push_null(buf: &mut Vec<u8>, width: usize) {
    if width == 1 {
        buf.extend_from_slice(b"\"\"");
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::text::TestRng;
    use super::super::{EncodeOptions, Projection, RowWriter, row_writer};
    use crate::config::sink::{CsvOutput, OutputFormat};
    use crate::data::time::{MAX_MILLIS, MIN_MILLIS, format_sql};
    use crate::data::{Batch, DataType, Value};

    fn writer(
        header: bool,
        delimiter: char,
        projection: &Projection,
    ) -> Box<dyn RowWriter<Vec<u8>>> {
        let options = EncodeOptions {
            format: OutputFormat::Csv,
            csv: CsvOutput { header, delimiter },
        };
        row_writer(&options, projection, Vec::new()).unwrap()
    }

    fn encode(
        header: bool,
        delimiter: char,
        batch: &Batch,
        projection: &Projection,
        rows: &[u32],
    ) -> String {
        let mut w = writer(header, delimiter, projection);
        w.write_rows(batch, rows).unwrap();
        let counted = w.bytes_written();
        let out = w.finish().unwrap();
        assert_eq!(counted, out.len() as u64);
        String::from_utf8(out).unwrap()
    }

    fn every_type() -> (Batch, Projection) {
        batch_of(&[
            (
                "b",
                DataType::Bool,
                vec![Value::Bool(true), Value::Null, Value::Bool(false)],
            ),
            (
                "n",
                DataType::Int,
                vec![Value::Int(-42), Value::Null, Value::Int(i64::MAX)],
            ),
            (
                "d",
                DataType::Double,
                vec![Value::Double(1.0), Value::Null, Value::Double(1e10)],
            ),
            (
                "t",
                DataType::Timestamp,
                vec![
                    Value::Timestamp(1_546_845_718_557),
                    Value::Null,
                    Value::Timestamp(0),
                ],
            ),
            ("s", DataType::String, vec![s("plain"), Value::Null, s("")]),
            (
                "a",
                DataType::Array(Box::new(DataType::Int)),
                vec![
                    list(vec![Value::Int(1), Value::Null, Value::Int(3)]),
                    Value::Null,
                    list(vec![]),
                ],
            ),
        ])
    }

    #[test]
    fn writes_a_header_and_every_type() {
        let (batch, projection) = every_type();
        let out = encode(true, ',', &batch, &projection, &all_rows(&batch));
        assert_eq!(
            out,
            "b,n,d,t,s,a\n\
             true,-42,1.0,2019-01-07 07:21:58.557,plain,\"[1, , 3]\"\n\
             ,,,,,\n\
             false,9223372036854775807,1.0E10,1970-01-01 00:00:00.000,,[]\n"
        );
    }

    #[test]
    fn header_is_optional_and_written_even_without_rows() {
        let (batch, projection) = every_type();
        assert_eq!(encode(true, ',', &batch, &projection, &[]), "b,n,d,t,s,a\n");
        assert_eq!(encode(false, ',', &batch, &projection, &[]), "");
        assert_eq!(encode(false, ',', &batch, &projection, &[1]), ",,,,,\n");
    }

    #[test]
    fn quotes_only_fields_that_need_it() {
        let texts = [
            ("plain", "plain"),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("\"", "\"\"\"\""),
            ("two\nlines", "\"two\nlines\""),
            ("cr\r", "\"cr\r\""),
            (" lead", "\" lead\""),
            ("trail\t", "\"trail\t\""),
            ("in side", "in side"),
            ("semi;colon", "semi;colon"),
            ("ünïcødé ✓", "ünïcødé ✓"),
        ];
        let (batch, projection) = batch_of(&[
            (
                "k",
                DataType::Int,
                texts.iter().map(|_| Value::Int(1)).collect(),
            ),
            (
                "text",
                DataType::String,
                texts.iter().map(|(t, _)| s(t)).collect(),
            ),
        ]);
        let out = encode(false, ',', &batch, &projection, &all_rows(&batch));
        let expected: String = texts.iter().map(|(_, q)| format!("1,{q}\n")).collect();
        assert_eq!(out, expected);
    }

    #[test]
    fn other_delimiters_change_what_needs_quotes() {
        let (batch, projection) = batch_of(&[
            ("a;b", DataType::String, vec![s("x,y"), s("x;y")]),
            (
                "t",
                DataType::Timestamp,
                vec![Value::Timestamp(0), Value::Timestamp(0)],
            ),
            (
                "d",
                DataType::Double,
                vec![Value::Double(-1.5), Value::Double(2.0)],
            ),
        ]);
        let rows = all_rows(&batch);
        assert_eq!(
            encode(true, ';', &batch, &projection, &rows),
            "\"a;b\";t;d\nx,y;1970-01-01 00:00:00.000;-1.5\n\"x;y\";1970-01-01 00:00:00.000;2.0\n"
        );
        assert_eq!(
            encode(false, '\t', &batch, &projection, &rows),
            "x,y\t1970-01-01 00:00:00.000\t-1.5\nx;y\t1970-01-01 00:00:00.000\t2.0\n"
        );
        // Numbers and timestamps are quoted too when they contain the delimiter.
        assert_eq!(
            encode(false, '-', &batch, &projection, &rows[..1]),
            "x,y-\"1970-01-01 00:00:00.000\"-\"-1.5\"\n"
        );
        // A multi-byte delimiter.
        let (batch, projection) = batch_of(&[
            ("s", DataType::String, vec![s("a§b"), s("a")]),
            ("n", DataType::Int, vec![Value::Int(1), Value::Int(2)]),
        ]);
        assert_eq!(
            encode(false, '§', &batch, &projection, &all_rows(&batch)),
            "\"a§b\"§1\na§2\n"
        );
    }

    #[test]
    fn numbers_and_timestamps_are_written_like_their_values() {
        // More rows than one `encode_rows` call takes, picked out of order and repeated, with
        // NULLs, runs of one timestamp (as window bounds) and timestamps out of the date range.
        let mut rng = TestRng(11);
        let n = 700;
        let mut ints = Vec::new();
        let mut times = Vec::new();
        for i in 0..n {
            ints.push(match rng.below(5) {
                0 => Value::Null,
                1 => Value::Int(i64::MIN),
                _ => Value::Int(rng.next() as i64 >> rng.below(64)),
            });
            times.push(match rng.below(6) {
                0 => Value::Null,
                1 => Value::Timestamp(MAX_MILLIS + 1 + rng.below(1000) as i64),
                2 => Value::Timestamp(MIN_MILLIS - rng.below(1000) as i64),
                3 => Value::Timestamp(rng.below(MAX_MILLIS as u64) as i64),
                _ => Value::Timestamp(1_546_819_200_000 + (i / 50) * 2000),
            });
        }
        let text = |v: &Value<'_>| match v {
            Value::Null => String::new(),
            Value::Timestamp(t) => format_sql(*t),
            other => other.to_string(),
        };
        let (batch, projection) = batch_of(&[
            ("n", DataType::Int, ints.clone()),
            ("t", DataType::Timestamp, times.clone()),
        ]);
        let rows: Vec<u32> = (0..2 * n).map(|_| rng.below(n as u64) as u32).collect();
        let expected: String = rows
            .iter()
            .map(|&r| format!("{}|{}\n", text(&ints[r as usize]), text(&times[r as usize])))
            .collect();
        assert_eq!(encode(false, '|', &batch, &projection, &rows), expected);
        // With a delimiter numbers contain, they are quoted when they contain it.
        let quoted = |t: String| {
            if t.contains('-') {
                format!("\"{t}\"")
            } else {
                t
            }
        };
        let expected: String = rows
            .iter()
            .map(|&r| {
                let (i, t) = (&ints[r as usize], &times[r as usize]);
                format!("{}-{}\n", quoted(text(i)), quoted(text(t)))
            })
            .collect();
        assert_eq!(encode(false, '-', &batch, &projection, &rows), expected);
        // A NULL that is the whole row is quoted.
        let (batch, projection) = batch_of(&[("t", DataType::Timestamp, times.clone())]);
        let expected: String = rows
            .iter()
            .map(|&r| match &times[r as usize] {
                Value::Null => "\"\"\n".to_string(),
                t => format!("{}\n", text(t)),
            })
            .collect();
        assert_eq!(encode(false, ',', &batch, &projection, &rows), expected);
    }

    #[test]
    fn a_lone_empty_field_is_quoted_so_the_row_survives() {
        let (batch, projection) =
            batch_of(&[("s", DataType::String, vec![s(""), Value::Null, s("x")])]);
        assert_eq!(
            encode(false, ',', &batch, &projection, &all_rows(&batch)),
            "\"\"\n\"\"\nx\n"
        );
    }

    #[test]
    fn rows_are_picked_by_index() {
        let (batch, projection) = batch_of(&[
            (
                "n",
                DataType::Int,
                vec![Value::Int(0), Value::Int(1), Value::Int(2), Value::Int(3)],
            ),
            (
                "s",
                DataType::String,
                vec![s("zero"), s("one"), s("two"), s("three")],
            ),
        ]);
        assert_eq!(
            encode(false, ',', &batch, &projection, &[3, 1, 1, 0]),
            "3,three\n1,one\n1,one\n0,zero\n"
        );
        // Only and in the order of the projection's columns.
        let swapped = Projection {
            columns: vec![1, 1, 0],
            fields: vec![
                projection.fields[1].clone(),
                projection.fields[1].clone(),
                projection.fields[0].clone(),
            ],
        };
        assert_eq!(
            encode(true, ',', &batch, &swapped, &[2]),
            "s,s,n\ntwo,two,2\n"
        );
    }

    #[test]
    fn bytes_written_counts_every_call() {
        let (batch, projection) = every_type();
        let mut w = writer(true, ',', &projection);
        let mut counts = vec![w.bytes_written()];
        for rows in [&[0][..], &[], &[2, 1]] {
            w.write_rows(&batch, rows).unwrap();
            counts.push(w.bytes_written());
        }
        let out = String::from_utf8(w.finish().unwrap()).unwrap();
        // Each count is the length of the lines written so far.
        let line_ends: Vec<u64> = out.match_indices('\n').map(|(i, _)| i as u64 + 1).collect();
        assert_eq!(
            counts,
            [line_ends[0], line_ends[1], line_ends[1], line_ends[3]]
        );
    }

    #[test]
    fn random_text_reads_back_with_a_csv_parser() {
        let alphabet: Vec<char> = "ab ,;\"\r\n\t'é✓\\".chars().collect();
        let mut rng = TestRng(7);
        let rows: Vec<Vec<String>> = (0..500)
            .map(|_| {
                (0..3)
                    .map(|_| {
                        (0..rng.below(8))
                            .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let columns: Vec<(String, DataType, Vec<Value<'_>>)> = (0..3)
            .map(|c| {
                (
                    format!("c {c},\""),
                    DataType::String,
                    rows.iter().map(|r| s(&r[c])).collect(),
                )
            })
            .collect();
        let named: Vec<(&str, DataType, Vec<Value<'_>>)> = columns
            .iter()
            .map(|(n, t, v)| (n.as_str(), t.clone(), v.clone()))
            .collect();
        let (batch, projection) = batch_of(&named);
        let out = encode(true, ',', &batch, &projection, &all_rows(&batch));
        let mut reader = ::csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(out.as_bytes());
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(header, ["c 0,\"", "c 1,\"", "c 2,\""]);
        let read: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect();
        assert_eq!(read, rows);
    }

    #[test]
    fn quote_and_newline_delimiters_are_refused() {
        let (_, projection) = every_type();
        for delimiter in ['"', '\n', '\r'] {
            let options = EncodeOptions {
                format: OutputFormat::Csv,
                csv: CsvOutput {
                    header: true,
                    delimiter,
                },
            };
            assert!(row_writer(&options, &projection, Vec::new()).is_err());
        }
    }
}
