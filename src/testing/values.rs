//! Values in test files: a YAML record → the bytes a source would read (JSON object, CSV
//! line), an expected YAML value → a typed value, and typed values back to YAML for
//! `--update` and failure reports.
//!
//! Values are typed by the pipeline's schemas, not by YAML's guesses: `007` in a `string`
//! field is the text `007`, and an instant (`2019-01-07T00:01:00Z`) in a `timestamp_ms` field
//! is its epoch milliseconds. Instants are written back the same way, so tests read as times.

use crate::config::yaml::{Node, NodeKind};
use crate::data::time::{parse_timestamp, to_datetime};
use crate::data::{DataType, Field, OwnedValue, Value};
use crate::plan::connectors::{DataFormat, Decoding};

/// A problem with one value, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueProblem {
    pub span: crate::diag::Span,
    pub message: String,
}

fn problem(node: &Node, message: String) -> ValueProblem {
    ValueProblem {
        span: node.span,
        message,
    }
}

/// Describes a field's type for messages: `int`, `timestamp_ms`…
pub fn type_name(field: &Field) -> String {
    match (field.epoch_unit_ms, &field.data_type) {
        (Some(1000), _) => "timestamp_s".to_string(),
        (Some(_), _) => "timestamp_ms".to_string(),
        (None, DataType::Bool) => "boolean".to_string(),
        (None, DataType::Int) => "int".to_string(),
        (None, DataType::Double) => "double".to_string(),
        (None, DataType::Timestamp) => "timestamp".to_string(),
        (None, DataType::String) => "string".to_string(),
        (None, DataType::Array(t)) => {
            format!("array<{}>", type_name(&Field::new("", (**t).clone())))
        }
    }
}

/// Reads a YAML value as a value of `field`'s type.
///
/// # Errors
/// When the value is not one of that type (the message says what is expected).
pub fn typed(node: &Node, field: &Field) -> Result<OwnedValue, ValueProblem> {
    if node.is_null() {
        return Ok(Value::Null);
    }
    let expected = |node: &Node, example: &str| {
        problem(
            node,
            format!(
                "`{}` is {}: expected {example}, found {}",
                field.name,
                type_name(field),
                node.describe()
            ),
        )
    };
    match &field.data_type {
        DataType::Array(element) => {
            let Some(items) = node.as_seq() else {
                return Err(expected(node, "a list such as `[a, b]`"));
            };
            let element = Field::new(format!("{}[]", field.name), (**element).clone());
            items
                .iter()
                .map(|i| typed(i, &element))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::List)
        }
        _ if !matches!(node.kind, NodeKind::Scalar(_)) => Err(expected(
            node,
            match field.data_type {
                DataType::String => "text",
                _ => "a single value",
            },
        )),
        DataType::String => Ok(Value::Str(
            node.as_str().unwrap_or_default().to_string().into(),
        )),
        DataType::Bool => match node.as_str().map(str::trim) {
            Some("true") => Ok(Value::Bool(true)),
            Some("false") => Ok(Value::Bool(false)),
            _ => Err(expected(node, "`true` or `false`")),
        },
        DataType::Int => {
            let text = node.as_str().unwrap_or_default().trim();
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Value::Int(i));
            }
            match field.epoch_unit_ms {
                Some(unit) => {
                    let ms = parse_timestamp(text).ok_or_else(|| {
                        expected(
                            node,
                            "an instant such as `2019-01-07T00:01:00Z` (or an epoch number)",
                        )
                    })?;
                    if ms.rem_euclid(unit) != 0 {
                        return Err(problem(
                            node,
                            format!(
                                "`{}` is timestamp_s: {} is not a whole second",
                                field.name,
                                node.describe()
                            ),
                        ));
                    }
                    Ok(Value::Int(ms.div_euclid(unit)))
                }
                None => Err(expected(node, "a whole number")),
            }
        }
        DataType::Double => node
            .as_str()
            .unwrap_or_default()
            .trim()
            .parse::<f64>()
            .map(Value::Double)
            .map_err(|_| expected(node, "a number")),
        DataType::Timestamp => {
            let text = node.as_str().unwrap_or_default().trim();
            if let Ok(ms) = text.parse::<i64>() {
                return Ok(Value::Timestamp(ms));
            }
            parse_timestamp(text)
                .map(Value::Timestamp)
                .ok_or_else(|| expected(node, "an instant such as `2019-01-07T00:01:00Z`"))
        }
    }
}

/// Encodes a record (a YAML mapping) the way a source of `decoding` reads it: a JSON object,
/// or a CSV line in `schema`'s column order. Fields are typed by the schema (problems are
/// returned, each at its value); fields missing from the mapping are absent (NULL).
///
/// # Errors
/// Unknown fields and values that do not fit their field's type.
pub fn encode_record(
    record: &Node,
    schema: &crate::data::Schema,
    decoding: &Decoding,
) -> Result<Vec<u8>, Vec<ValueProblem>> {
    let mut problems = Vec::new();
    let mut values: Vec<Option<OwnedValue>> = vec![None; schema.fields.len()];
    for (key, value) in record.as_map().unwrap_or_default() {
        let name = key.as_str().unwrap_or_default();
        match schema.index_of(name) {
            Some(i) => match typed(value, &schema.fields[i]) {
                Ok(v) => values[i] = Some(v),
                Err(p) => problems.push(p),
            },
            None => {
                let names = schema.names();
                let hint =
                    crate::diag::did_you_mean(name, names.iter().copied()).unwrap_or_else(|| {
                        format!("its fields are {}", crate::diag::list_names(&names))
                    });
                problems.push(problem(
                    key,
                    format!("`{name}` is not a field of this source; {hint}"),
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(match decoding.format {
        DataFormat::Json => {
            let mut obj = serde_json::Map::new();
            for (field, value) in schema.fields.iter().zip(&values) {
                if let Some(v) = value {
                    obj.insert(field.name.clone(), json_value(v, field));
                }
            }
            serde_json::Value::Object(obj).to_string().into_bytes()
        }
        DataFormat::Csv => {
            let texts: Vec<String> = schema
                .fields
                .iter()
                .zip(&values)
                .map(|(field, value)| {
                    value
                        .as_ref()
                        .map_or(String::new(), |v| csv_text(v, field, decoding))
                })
                .collect();
            csv_line(&texts, decoding.csv_delimiter)
        }
    })
}

/// The header line a CSV source expects before records written as mappings: the schema's
/// field names.
pub fn csv_header(schema: &crate::data::Schema, decoding: &Decoding) -> Vec<u8> {
    let names: Vec<String> = schema.fields.iter().map(|f| f.name.clone()).collect();
    csv_line(&names, decoding.csv_delimiter)
}

pub fn csv_line(texts: &[String], delimiter: u8) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    // Writing to memory cannot fail.
    let _ = w.write_record(texts);
    let mut bytes = w.into_inner().unwrap_or_default();
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    bytes
}

fn json_value(v: &OwnedValue, field: &Field) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Double(d) => serde_json::Number::from_f64(*d).map_or_else(
            // JSON has no NaN or infinities: the decoder reads them as text.
            || Value::Double(*d).to_string().into(),
            Into::into,
        ),
        Value::Timestamp(t) => crate::data::time::format_rfc3339(*t).into(),
        Value::Str(s) => s.to_string().into(),
        Value::List(items) => {
            let element = match &field.data_type {
                DataType::Array(e) => Field::new("", (**e).clone()),
                _ => field.clone(),
            };
            items
                .iter()
                .map(|i| json_value(i, &element))
                .collect::<Vec<_>>()
                .into()
        }
    }
}

fn csv_text(v: &OwnedValue, field: &Field, decoding: &Decoding) -> String {
    match v {
        Value::Timestamp(t) => crate::data::time::format_rfc3339(*t),
        Value::List(items) => {
            let separator = if decoding.csv_delimiter == b';' {
                ","
            } else {
                ";"
            };
            let element = match &field.data_type {
                DataType::Array(e) => Field::new("", (**e).clone()),
                _ => field.clone(),
            };
            items
                .iter()
                .map(|i| csv_text(i, &element, decoding))
                .collect::<Vec<_>>()
                .join(separator)
        }
        other => other.to_string(),
    }
}

/// Whether an actual value equals an expected one: doubles within a relative 1e-9 (so
/// results do not hinge on the last bit of a sum), everything else exactly.
pub fn same(actual: &Value<'_>, expected: &Value<'_>) -> bool {
    match (actual, expected) {
        (Value::Double(a), Value::Double(b)) => {
            a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
        }
        (Value::Double(a), Value::Int(b)) | (Value::Int(b), Value::Double(a)) => *a == *b as f64,
        (Value::List(a), Value::List(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        (a, b) => a == b,
    }
}

/// An instant as tests write it: `2019-01-07T00:15:00Z`, with milliseconds when it has them.
pub fn instant(ms: i64) -> String {
    match to_datetime(ms) {
        Some(dt) if ms.rem_euclid(1000) == 0 => dt.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Some(dt) => dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => ms.to_string(),
    }
}

/// A value as YAML (flow style), the way `--update` writes it and failures show it.
pub fn yaml_value(v: &Value<'_>, field: &Field) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => match field.epoch_unit_ms {
            Some(unit) => instant(i.saturating_mul(unit)),
            None => i.to_string(),
        },
        Value::Double(d) => match Value::Double(*d).to_string().as_str() {
            "NaN" => ".nan".to_string(),
            "Infinity" => ".inf".to_string(),
            "-Infinity" => "-.inf".to_string(),
            text => text.to_string(),
        },
        Value::Timestamp(t) => instant(*t),
        Value::Str(s) => yaml_string(s),
        Value::List(items) => {
            let element = match &field.data_type {
                DataType::Array(e) => Field::new("", (**e).clone()),
                _ => field.clone(),
            };
            let parts: Vec<String> = items.iter().map(|i| yaml_value(i, &element)).collect();
            format!("[{}]", parts.join(", "))
        }
    }
}

/// Text as a YAML scalar that also works inside `{…}` and `[…]`: plain when that reads back
/// as the same text in every YAML reader, else single-quoted (JSON reads best that way), and
/// double-quoted with escapes only for control characters.
pub fn yaml_string(s: &str) -> String {
    if plain_is_safe(s) {
        s.to_string()
    } else if !s.chars().any(char::is_control) {
        format!("'{}'", s.replace('\'', "''"))
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
    }
}

fn plain_is_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    let lower = s.to_ascii_lowercase();
    let reserved = matches!(
        lower.as_str(),
        "null" | "~" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
    ) || s.parse::<f64>().is_ok()
        || lower.starts_with(".inf")
        || lower.starts_with("-.inf")
        || lower == ".nan";
    !reserved
        && (first.is_alphanumeric() || matches!(first, '_' | '.' | '/' | '('))
        && s.chars()
            .all(|c| !c.is_control() && !",[]{}#&*!|>'\"%@`".contains(c))
        && !s.contains(": ")
        && !s.ends_with(':')
        && !s.ends_with(' ')
}

/// A field name as a YAML key.
pub fn yaml_key(name: &str) -> String {
    yaml_string(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml::parse;
    use crate::data::Schema;

    fn node(text: &str) -> Node {
        parse(&format!("v: {text}\n"))
            .unwrap()
            .get("v")
            .unwrap()
            .clone()
    }

    fn epoch_ms(name: &str) -> Field {
        Field {
            epoch_unit_ms: Some(1),
            ..Field::new(name, DataType::Int)
        }
    }

    #[test]
    fn values_are_typed_by_the_field_not_by_yaml() {
        let s = Field::new("s", DataType::String);
        assert_eq!(typed(&node("007"), &s).unwrap(), Value::Str("007".into()));
        assert_eq!(typed(&node("true"), &s).unwrap(), Value::Str("true".into()));
        let t = epoch_ms("t");
        assert_eq!(
            typed(&node("2019-01-07T00:00:01.5Z"), &t).unwrap(),
            Value::Int(1_546_819_201_500)
        );
        assert_eq!(typed(&node("12"), &t).unwrap(), Value::Int(12));
        let secs = Field {
            epoch_unit_ms: Some(1000),
            ..Field::new("t", DataType::Int)
        };
        assert!(typed(&node("2019-01-07T00:00:01.5Z"), &secs).is_err());
        let e = typed(&node("abc"), &Field::new("n", DataType::Int)).unwrap_err();
        assert_eq!(
            e.message,
            "`n` is int: expected a whole number, found `abc`"
        );
        assert_eq!(
            typed(&node("~"), &Field::new("n", DataType::Int)).unwrap(),
            Value::Null
        );
    }

    #[test]
    fn records_are_encoded_in_the_sources_format() {
        let schema = Schema::new(vec![
            Field::new("id", DataType::String),
            epoch_ms("ts"),
            Field::new("tags", DataType::Array(Box::new(DataType::String))),
        ]);
        let record = node("{id: 'a,b', ts: 2019-01-07T00:00:00Z, tags: [x, y]}");
        let json = Decoding {
            format: DataFormat::Json,
            csv_delimiter: b',',
            csv_header: true,
            strict_types: false,
        };
        assert_eq!(
            String::from_utf8(encode_record(&record, &schema, &json).unwrap()).unwrap(),
            r#"{"id":"a,b","ts":1546819200000,"tags":["x","y"]}"#
        );
        let csv = Decoding {
            format: DataFormat::Csv,
            ..json.clone()
        };
        assert_eq!(
            String::from_utf8(encode_record(&record, &schema, &csv).unwrap()).unwrap(),
            "\"a,b\",1546819200000,x;y"
        );
        let e = encode_record(&node("{idd: 1}"), &schema, &json).unwrap_err();
        assert!(e[0].message.contains("did you mean `id`?"), "{e:?}");
    }

    #[test]
    fn yaml_text_reads_back_as_the_same_value() {
        for s in [
            "m1",
            "007",
            "true",
            "a: b",
            "x, y",
            "",
            " lead",
            "{x}",
            "null",
            "1e5",
            "don't",
            "2019-01-07T00:00:00Z",
            "{\"a\": \"b\"}",
            "tab\there",
            "trips:2",
        ] {
            let text = format!("{{v: {}}}", yaml_string(s));
            let root = parse(&format!("r: {text}\n")).unwrap();
            let v = root.get("r").unwrap().get("v").unwrap();
            assert_eq!(v.as_str(), Some(s), "{text}");
            assert!(!v.is_null() || s.is_empty(), "{text}");
        }
        assert_eq!(
            yaml_value(&Value::Int(1_546_819_200_000), &epoch_ms("t")),
            "2019-01-07T00:00:00Z"
        );
        assert_eq!(
            yaml_value(
                &Value::Timestamp(1_546_819_200_123),
                &Field::new("t", DataType::Timestamp)
            ),
            "2019-01-07T00:00:00.123Z"
        );
        assert_eq!(
            yaml_value(&Value::Double(2.0), &Field::new("d", DataType::Double)),
            "2.0"
        );
    }

    #[test]
    fn doubles_compare_within_rounding() {
        assert!(same(&Value::Double(0.1 + 0.2), &Value::Double(0.3)));
        assert!(!same(&Value::Double(0.3001), &Value::Double(0.3)));
        assert!(same(&Value::Double(2.0), &Value::Int(2)));
        assert!(!same(&Value::Int(2), &Value::Int(3)));
    }
}
