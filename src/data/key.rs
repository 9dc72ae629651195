//! Values in key encoding: compact bytes that hash and compare like SQL values (group keys,
//! DISTINCT sets, sink buckets).
//!
//! Layout: `0` for NULL, or `1` followed by the value (8 bytes little-endian for
//! BIGINT/TIMESTAMP/DOUBLE bits, 1 byte for BOOLEAN, `u32` length + UTF-8 for STRING).

use super::{Column, ColumnData, DataType, Value};

/// Appends one value of `column` at `row` in key encoding.
#[inline]
pub fn encode_value(column: &Column, row: usize, buf: &mut Vec<u8>) {
    if column.is_null(row) {
        buf.push(0);
        return;
    }
    buf.push(1);
    match &column.data {
        ColumnData::Int(v) | ColumnData::Timestamp(v) => {
            buf.extend_from_slice(&v[row].to_le_bytes())
        }
        ColumnData::Double(v) => {
            // Group -0.0 with 0.0 and every NaN together, as SQL equality does.
            let d = v[row];
            let d = if d == 0.0 {
                0.0
            } else if d.is_nan() {
                f64::NAN
            } else {
                d
            };
            buf.extend_from_slice(&d.to_bits().to_le_bytes());
        }
        ColumnData::Bool(v) => buf.push(u8::from(v[row])),
        ColumnData::Str(s) => {
            let text = s.get(row);
            buf.extend_from_slice(&(text.len() as u32).to_le_bytes());
            buf.extend_from_slice(text.as_bytes());
        }
        ColumnData::List(_) => {
            // Validation rejects array keys; encode their text so this never panics.
            let text = column.value(row).to_string();
            buf.extend_from_slice(&(text.len() as u32).to_le_bytes());
            buf.extend_from_slice(text.as_bytes());
        }
    }
}

/// Decodes one value; returns it and the remaining bytes.
pub fn decode_value<'a>(ty: &DataType, bytes: &'a [u8]) -> (Value<'a>, &'a [u8]) {
    let Some((&flag, rest)) = bytes.split_first() else {
        return (Value::Null, bytes);
    };
    if flag == 0 {
        return (Value::Null, rest);
    }
    let eight = |rest: &'a [u8]| -> ([u8; 8], &'a [u8]) {
        let mut b = [0u8; 8];
        b.copy_from_slice(&rest[..8]);
        (b, &rest[8..])
    };
    match ty {
        DataType::Int => {
            let (b, rest) = eight(rest);
            (Value::Int(i64::from_le_bytes(b)), rest)
        }
        DataType::Timestamp => {
            let (b, rest) = eight(rest);
            (Value::Timestamp(i64::from_le_bytes(b)), rest)
        }
        DataType::Double => {
            let (b, rest) = eight(rest);
            (Value::Double(f64::from_bits(u64::from_le_bytes(b))), rest)
        }
        DataType::Bool => (Value::Bool(rest[0] != 0), &rest[1..]),
        DataType::String | DataType::Array(_) => {
            let mut len = [0u8; 4];
            len.copy_from_slice(&rest[..4]);
            let len = u32::from_le_bytes(len) as usize;
            let text = std::str::from_utf8(&rest[4..4 + len]).unwrap_or_default();
            (Value::Str(text.into()), &rest[4 + len..])
        }
    }
}
