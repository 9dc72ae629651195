//! JSON decoding (schema-driven, one object per line or message).
//! TEMPORARY stand-in until the fast decoder lands.

use super::{BadRecord, Decoder};
use crate::data::{Batch, DataType, Schema, Value};

pub struct JsonDecoder {
    schema: Schema,
}

impl JsonDecoder {
    pub fn new(schema: &Schema) -> JsonDecoder {
        JsonDecoder {
            schema: schema.clone(),
        }
    }

    fn decode_one(&self, line: &[u8], out: &mut Batch) -> Result<(), String> {
        let v: serde_json::Value = serde_json::from_slice(line).map_err(|e| e.to_string())?;
        let obj = v.as_object().ok_or("not an object")?;
        let before = out.num_rows;
        for (i, f) in self.schema.fields.iter().enumerate() {
            let value = match (obj.get(&f.name), &f.data_type) {
                (None | Some(serde_json::Value::Null), _) => Value::Null,
                (Some(serde_json::Value::String(s)), DataType::String) => {
                    Value::Str(s.clone().into())
                }
                (Some(other), DataType::String) => Value::Str(other.to_string().into()),
                (Some(n), DataType::Int) => match n.as_i64() {
                    Some(i) => Value::Int(i),
                    None => {
                        for c in &mut out.columns {
                            c.truncate(before);
                        }
                        return Err(format!("field `{}`: expected an integer", f.name));
                    }
                },
                (Some(n), DataType::Double) => Value::Double(n.as_f64().unwrap_or(0.0)),
                (Some(b), DataType::Bool) => Value::Bool(b.as_bool().unwrap_or(false)),
                _ => Value::Null,
            };
            out.columns[i].push_value(&value);
        }
        out.num_rows += 1;
        Ok(())
    }
}

impl Decoder for JsonDecoder {
    fn decode_lines(
        &mut self,
        chunk: &[u8],
        first_line: u64,
        out: &mut Batch,
        bad: &mut Vec<BadRecord>,
    ) {
        for (i, line) in chunk.split(|&b| b == b'\n').enumerate() {
            if line.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            if let Err(error) = self.decode_one(line, out) {
                bad.push(BadRecord {
                    raw: String::from_utf8_lossy(line).to_string(),
                    error,
                    line: first_line + i as u64,
                });
            }
        }
    }

    fn decode_message(&mut self, bytes: &[u8], out: &mut Batch) -> Result<(), String> {
        self.decode_one(bytes, out)
    }
}
