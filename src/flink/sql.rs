//! Flink SQL lexical rules in one place: identifiers are quoted, literals escaped and typed
//! here, and nowhere else.

use crate::data::{DataType, Value};

/// A quoted identifier: `` `movieId` `` (a backtick inside is doubled).
pub fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A string literal: `'it''s'`.
pub fn string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A `'key' = 'value'` option of a `WITH (...)` clause or a `SET` statement.
pub fn option(key: &str, value: &str) -> String {
    format!("{} = {}", string(key), string(value))
}

/// The Flink SQL type of a column.
pub fn type_name(ty: &DataType) -> String {
    ty.sql_name()
}

/// A literal with the type the embedded engine gives it.
///
/// Flink reads `4.2` as DECIMAL, so doubles are written with an exponent (`4.2E0`, a DOUBLE);
/// timestamps are epoch milliseconds through `TO_TIMESTAMP_LTZ`, exact in any session zone.
pub fn literal(value: &Value<'_>, ty: Option<&DataType>) -> String {
    match value {
        Value::Null => match ty {
            Some(t) => format!("CAST(NULL AS {})", type_name(t)),
            None => "NULL".to_string(),
        },
        Value::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        // Literals outside INT are BIGINT in Flink already; the minimum has no positive twin.
        Value::Int(i) if *i == i64::MIN => format!("CAST({i} AS BIGINT)"),
        Value::Int(i) if *i < 0 => format!("-{}", i.unsigned_abs()),
        Value::Int(i) => i.to_string(),
        Value::Double(d) => double(*d),
        Value::Timestamp(ms) => format!("TO_TIMESTAMP_LTZ({ms}, 3)"),
        Value::Str(s) => string(s),
        Value::List(items) => {
            let element = match ty {
                Some(DataType::Array(e)) => Some(e.as_ref()),
                _ => None,
            };
            let items: Vec<String> = items.iter().map(|v| literal(v, element)).collect();
            format!("ARRAY[{}]", items.join(", "))
        }
    }
}

/// A DOUBLE literal that reads back to the same bits.
pub fn double(d: f64) -> String {
    if d.is_nan() {
        return "CAST('NaN' AS DOUBLE)".to_string();
    }
    if d.is_infinite() {
        let sign = if d > 0.0 { "" } else { "-" };
        return format!("CAST('{sign}Infinity' AS DOUBLE)");
    }
    // Rust's `{:e}` is the shortest text that round-trips: `4.2e0`, `1e300`, `-5e-324`.
    format!("{d:e}").replace('e', "E")
}

/// A positive duration as an SQL interval, in the largest unit that divides it exactly.
pub fn interval(millis: i64) -> String {
    const UNITS: [(i64, &str); 4] = [
        (86_400_000, "DAY"),
        (3_600_000, "HOUR"),
        (60_000, "MINUTE"),
        (1_000, "SECOND"),
    ];
    for (size, unit) in UNITS {
        if millis != 0 && millis % size == 0 {
            return format!("INTERVAL '{}' {unit}", millis / size);
        }
    }
    // Milliseconds: a fractional second (`INTERVAL '0.250' SECOND`).
    format!(
        "INTERVAL '{}.{:03}' SECOND",
        millis / 1000,
        (millis % 1000).abs()
    )
}

/// A duration as Flink configuration text: `90 s`, `15 min`, `250 ms`.
pub fn duration(millis: i64) -> String {
    if millis % 60_000 == 0 && millis != 0 {
        format!("{} min", millis / 60_000)
    } else if millis % 1000 == 0 {
        format!("{} s", millis / 1000)
    } else {
        format!("{millis} ms")
    }
}

/// A byte size as Flink configuration text (`MemorySize`): `128mb`, `1000b`.
pub fn memory_size(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes != 0 && bytes.is_multiple_of(1024 * MIB) {
        format!("{}gb", bytes / (1024 * MIB))
    } else if bytes != 0 && bytes.is_multiple_of(MIB) {
        format!("{}mb", bytes / MIB)
    } else if bytes != 0 && bytes.is_multiple_of(1024) {
        format!("{}kb", bytes / 1024)
    } else {
        format!("{bytes}b")
    }
}

/// Text inside an SQL `--` comment stays on one line.
pub fn comment(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_strings_are_escaped() {
        assert_eq!(ident("timestamp"), "`timestamp`");
        assert_eq!(ident("a`b"), "`a``b`");
        assert_eq!(string("it's"), "'it''s'");
        assert_eq!(option("k", "v'"), "'k' = 'v'''");
    }

    #[test]
    fn literals_keep_their_type() {
        assert_eq!(literal(&Value::Double(4.2), None), "4.2E0");
        assert_eq!(literal(&Value::Double(1e300), None), "1E300");
        assert_eq!(literal(&Value::Double(0.1), None), "1E-1");
        assert_eq!(
            literal(&Value::Double(f64::NAN), None),
            "CAST('NaN' AS DOUBLE)"
        );
        assert_eq!(literal(&Value::Int(-5), None), "-5");
        assert_eq!(
            literal(&Value::Int(i64::MIN), None),
            "CAST(-9223372036854775808 AS BIGINT)"
        );
        assert_eq!(
            literal(&Value::Timestamp(1_546_819_200_000), None),
            "TO_TIMESTAMP_LTZ(1546819200000, 3)"
        );
        assert_eq!(
            literal(&Value::Null, Some(&DataType::String)),
            "CAST(NULL AS STRING)"
        );
        for d in [4.2, 0.1, 1e-7, 123456.789, -2.5e10, f64::MIN_POSITIVE] {
            let text = double(d).replace('E', "e");
            assert_eq!(text.parse::<f64>().unwrap(), d, "{text}");
        }
    }

    #[test]
    fn durations_use_the_largest_exact_unit() {
        assert_eq!(interval(900_000), "INTERVAL '15' MINUTE");
        assert_eq!(interval(5_000), "INTERVAL '5' SECOND");
        assert_eq!(interval(7_200_000), "INTERVAL '2' HOUR");
        assert_eq!(interval(250), "INTERVAL '0.250' SECOND");
        assert_eq!(interval(1_500), "INTERVAL '1.500' SECOND");
        assert_eq!(duration(60_000), "1 min");
        assert_eq!(duration(1_500), "1500 ms");
        assert_eq!(memory_size(128 * 1024 * 1024), "128mb");
        assert_eq!(memory_size(1000), "1000b");
    }
}
