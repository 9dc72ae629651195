//! JSON lines: one object per row, keys in projection order, as Flink's `json` format writes
//! with `json.timestamp-format.standard = SQL`.
//!
//! NULL is `null`; BIGINT and DOUBLE are numbers (doubles Java-style, `1.0E10`, which is valid
//! JSON; NaN and ±Infinity, which JSON cannot hold, become `null`); timestamps are strings
//! `yyyy-MM-dd HH:mm:ss.SSS` (UTC); arrays are arrays. Strings are escaped as Jackson does
//! (Flink's JSON library): `\"`, `\\`, the short escapes `\b \t \n \f \r` and `\u00XX` (upper
//! case hex) for other control characters; everything else, non-ASCII included, passes
//! through as UTF-8.

use super::LineFormat;
use super::text::{push_bool, push_double, push_int, push_timestamp};
use crate::data::{Column, ColumnData, Field};

pub(super) struct JsonFormat {
    /// What precedes each value: `{"name":` for the first column, `,"name":` for the others.
    keys: Vec<Vec<u8>>,
}

impl JsonFormat {
    pub(super) fn new(fields: &[Field]) -> JsonFormat {
        let keys = fields
            .iter()
            .enumerate()
            .map(|(i, field)| {
                let mut key = vec![if i == 0 { b'{' } else { b',' }];
                push_string(&mut key, &field.name);
                key.push(b':');
                key
            })
            .collect();
        JsonFormat { keys }
    }
}

impl LineFormat for JsonFormat {
    fn encode_row(&mut self, buf: &mut Vec<u8>, columns: &[&Column], row: usize) {
        if columns.is_empty() {
            buf.push(b'{');
        }
        for (key, column) in self.keys.iter().zip(columns) {
            buf.extend_from_slice(key);
            push_value(buf, column, row);
        }
        buf.extend_from_slice(b"}\n");
    }
}

/// The JSON form of row `row` of `column`.
fn push_value(buf: &mut Vec<u8>, column: &Column, row: usize) {
    if column.is_null(row) {
        buf.extend_from_slice(b"null");
        return;
    }
    match &column.data {
        ColumnData::Bool(v) => push_bool(buf, v[row]),
        ColumnData::Int(v) => push_int(buf, v[row]),
        ColumnData::Double(v) if v[row].is_finite() => push_double(buf, v[row]),
        ColumnData::Double(_) => buf.extend_from_slice(b"null"),
        ColumnData::Timestamp(v) => {
            // The text is digits and `-: .` only: nothing to escape.
            buf.push(b'"');
            push_timestamp(buf, v[row]);
            buf.push(b'"');
        }
        ColumnData::Str(s) => push_string(buf, s.get(row)),
        ColumnData::List(l) => {
            buf.push(b'[');
            for i in l.offsets[row] as usize..l.offsets[row + 1] as usize {
                if i > l.offsets[row] as usize {
                    buf.push(b',');
                }
                push_value(buf, &l.values, i);
            }
            buf.push(b']');
        }
    }
}

/// For each byte: 0 when it stands for itself in a JSON string, else the letter of its escape
/// (`u` for `\u00XX`). Bytes of multi-byte UTF-8 sequences are all >= 0x80, so they pass.
static ESCAPES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// A JSON string literal of `text`, quotes included.
fn push_string(buf: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = text.as_bytes();
    buf.reserve(bytes.len() + 2);
    buf.push(b'"');
    // Copy runs of plain bytes whole; stop only at bytes to escape.
    let mut run_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape = ESCAPES[usize::from(b)];
        if escape == 0 {
            continue;
        }
        buf.extend_from_slice(&bytes[run_start..i]);
        if escape == b'u' {
            buf.extend_from_slice(b"\\u00");
            buf.push(HEX[usize::from(b >> 4)]);
            buf.push(HEX[usize::from(b & 0xf)]);
        } else {
            buf.push(b'\\');
            buf.push(escape);
        }
        run_start = i + 1;
    }
    buf.extend_from_slice(&bytes[run_start..]);
    buf.push(b'"');
}

#[cfg(test)]
mod tests {
    use serde_json::{Value as Json, json};

    use super::super::test_util::*;
    use super::super::text::TestRng;
    use super::super::{EncodeOptions, Projection, row_writer};
    use crate::config::sink::{CsvOutput, OutputFormat};
    use crate::data::{Batch, DataType, Value};

    fn encode(batch: &Batch, projection: &Projection, rows: &[u32]) -> String {
        let options = EncodeOptions {
            format: OutputFormat::Json,
            csv: CsvOutput::default(),
        };
        let mut w = row_writer(&options, projection, Vec::new()).unwrap();
        w.write_rows(batch, rows).unwrap();
        let counted = w.bytes_written();
        let out = w.finish().unwrap();
        assert_eq!(counted, out.len() as u64);
        String::from_utf8(out).unwrap()
    }

    fn parse_lines(text: &str) -> Vec<Json> {
        assert!(text.is_empty() || text.ends_with('\n'));
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[test]
    fn writes_every_type() {
        let (batch, projection) = batch_of(&[
            ("b", DataType::Bool, vec![Value::Bool(true), Value::Null]),
            ("n", DataType::Int, vec![Value::Int(i64::MIN), Value::Null]),
            (
                "d",
                DataType::Double,
                vec![Value::Double(1e10), Value::Null],
            ),
            (
                "t",
                DataType::Timestamp,
                vec![Value::Timestamp(1_546_845_718_557), Value::Null],
            ),
            ("s", DataType::String, vec![s("x"), Value::Null]),
            (
                "a",
                DataType::Array(Box::new(DataType::Timestamp)),
                vec![list(vec![Value::Timestamp(0), Value::Null]), Value::Null],
            ),
        ]);
        let out = encode(&batch, &projection, &all_rows(&batch));
        assert_eq!(
            out,
            "{\"b\":true,\"n\":-9223372036854775808,\"d\":1.0E10,\"t\":\"2019-01-07 07:21:58.557\",\
             \"s\":\"x\",\"a\":[\"1970-01-01 00:00:00.000\",null]}\n\
             {\"b\":null,\"n\":null,\"d\":null,\"t\":null,\"s\":null,\"a\":null}\n"
        );
        let parsed = parse_lines(&out);
        assert_eq!(parsed[0]["n"], json!(i64::MIN));
        assert_eq!(parsed[0]["d"].as_f64(), Some(1e10));
    }

    #[test]
    fn doubles_are_java_style_numbers_and_non_finite_ones_null() {
        let doubles = [
            1.0,
            -0.5,
            1e-5,
            123_456.789,
            1e300,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        let (batch, projection) = batch_of(&[(
            "d",
            DataType::Double,
            doubles.iter().map(|&d| Value::Double(d)).collect(),
        )]);
        let out = encode(&batch, &projection, &all_rows(&batch));
        let texts: Vec<&str> = out
            .lines()
            .map(|l| {
                l.strip_prefix("{\"d\":")
                    .unwrap()
                    .strip_suffix('}')
                    .unwrap()
            })
            .collect();
        assert_eq!(
            texts,
            [
                "1.0",
                "-0.5",
                "1.0E-5",
                "123456.789",
                "1.0E300",
                "-0.0",
                "null",
                "null",
                "null"
            ]
        );
        for (json, d) in parse_lines(&out).iter().zip(doubles) {
            match json["d"].as_f64() {
                Some(x) => assert_eq!(x, d),
                None => assert!(!d.is_finite() && json["d"].is_null()),
            }
        }
    }

    #[test]
    fn strings_are_escaped() {
        let control: String = (0u8..0x20).map(char::from).collect();
        let texts = [
            "plain".to_string(),
            "say \"hi\"".to_string(),
            "back\\slash".to_string(),
            control.clone(),
            "\u{7f} é ✓ 😀 \u{2028} \u{fffd}".to_string(),
            "/".to_string(),
            String::new(),
        ];
        let (batch, projection) = batch_of(&[(
            "text",
            DataType::String,
            texts.iter().map(|t| s(t)).collect(),
        )]);
        let out = encode(&batch, &projection, &all_rows(&batch));
        for (json, text) in parse_lines(&out).iter().zip(&texts) {
            assert_eq!(json["text"].as_str(), Some(text.as_str()));
        }
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[1], r#"{"text":"say \"hi\""}"#);
        assert_eq!(lines[2], r#"{"text":"back\\slash"}"#);
        assert_eq!(
            lines[3],
            r#"{"text":"\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000B\f\r\u000E\u000F\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001A\u001B\u001C\u001D\u001E\u001F"}"#
        );
        assert_eq!(lines[4], "{\"text\":\"\u{7f} é ✓ 😀 \u{2028} \u{fffd}\"}");
        assert_eq!(lines[5], r#"{"text":"/"}"#);
    }

    #[test]
    fn keys_keep_projection_order_and_are_escaped() {
        let (batch, projection) = batch_of(&[
            ("z", DataType::Int, vec![Value::Int(1)]),
            ("a \"quoted\"\n", DataType::Int, vec![Value::Int(2)]),
            ("m", DataType::Int, vec![Value::Int(3)]),
        ]);
        let out = encode(&batch, &projection, &[0]);
        assert_eq!(out, "{\"z\":1,\"a \\\"quoted\\\"\\n\":2,\"m\":3}\n");
        assert_eq!(parse_lines(&out)[0]["a \"quoted\"\n"], json!(2));
        let empty = Projection {
            columns: vec![],
            fields: vec![],
        };
        assert_eq!(encode(&batch, &empty, &[0, 0]), "{}\n{}\n");
    }

    #[test]
    fn arrays_nest() {
        let inner = DataType::Array(Box::new(DataType::String));
        let (batch, projection) = batch_of(&[(
            "a",
            DataType::Array(Box::new(inner)),
            vec![
                list(vec![
                    list(vec![s("x\"y"), Value::Null]),
                    Value::Null,
                    list(vec![]),
                ]),
                list(vec![]),
            ],
        )]);
        let out = encode(&batch, &projection, &all_rows(&batch));
        let parsed = parse_lines(&out);
        assert_eq!(parsed[0], json!({"a": [["x\"y", null], null, []]}));
        assert_eq!(parsed[1], json!({"a": []}));
    }

    #[test]
    fn rows_are_picked_by_index() {
        let (batch, projection) = batch_of(&[
            (
                "n",
                DataType::Int,
                vec![Value::Int(0), Value::Int(1), Value::Int(2)],
            ),
            ("s", DataType::String, vec![s("zero"), s("one"), s("two")]),
        ]);
        let out = encode(&batch, &projection, &[2, 0, 2]);
        assert_eq!(
            parse_lines(&out),
            [
                json!({"n": 2, "s": "two"}),
                json!({"n": 0, "s": "zero"}),
                json!({"n": 2, "s": "two"})
            ]
        );
        assert_eq!(encode(&batch, &projection, &[]), "");
    }

    #[test]
    fn random_strings_round_trip_through_a_json_parser() {
        let alphabet: Vec<char> = "a\"\\/\u{0}\u{1f}\n\r\t\u{7f}é✓😀\u{2028}"
            .chars()
            .collect();
        let mut rng = TestRng(11);
        let texts: Vec<String> = (0..2000)
            .map(|_| {
                (0..rng.below(12))
                    .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                    .collect()
            })
            .collect();
        let (batch, projection) = batch_of(&[(
            "text",
            DataType::String,
            texts.iter().map(|t| s(t)).collect(),
        )]);
        let out = encode(&batch, &projection, &all_rows(&batch));
        let parsed = parse_lines(&out);
        assert_eq!(parsed.len(), texts.len());
        for (json, text) in parsed.iter().zip(&texts) {
            assert_eq!(json["text"].as_str(), Some(text.as_str()));
        }
    }
}
