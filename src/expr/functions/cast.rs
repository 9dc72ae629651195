//! CAST with Flink 1.20 semantics (non-legacy cast behaviour: a failing CAST is an error,
//! TRY_CAST turns it into NULL — the evaluator handles TRY_CAST).
//!
//! Allowed conversions among our types (Flink's `LogicalTypeCasts` minus the rules Flink's
//! planner rejects): anything to STRING; STRING to everything scalar; BOOLEAN ↔ BIGINT;
//! BOOLEAN → DOUBLE; BIGINT ↔ DOUBLE; ARRAY to ARRAY element-wise. Flink refuses numbers ↔
//! TIMESTAMP_LTZ (use TO_TIMESTAMP_LTZ) and DOUBLE → BOOLEAN.

use std::borrow::Cow;

use crate::data::{DataType, OwnedValue, Value, time};

/// Whether `CAST(x AS to)` is allowed for an `x` of type `from` (checked at validation).
///
/// # Errors
/// Why the cast is not allowed, with the alternative Flink recommends.
pub fn cast_type_rule(from: &DataType, to: &DataType) -> Result<(), String> {
    use DataType::{Array, Bool, Double, Int, String, Timestamp};
    let refuse = |hint: &str| {
        let mut message = format!("cannot CAST {from} to {to}");
        if !hint.is_empty() {
            message.push_str(": ");
            message.push_str(hint);
        }
        Err(message)
    };
    match (from, to) {
        _ if from == to => Ok(()),
        (_, String) => Ok(()),
        (String, Array(_)) => refuse("a STRING cannot be cast to an ARRAY"),
        (String, _) => Ok(()),
        (Bool, Int | Double) | (Int, Bool | Double) | (Double, Int) => Ok(()),
        (Double, Bool) => refuse("compare instead, e.g. `x <> 0`"),
        (Int | Double, Timestamp) => refuse(
            "use TO_TIMESTAMP_LTZ(value, 0) for epoch seconds or TO_TIMESTAMP_LTZ(value, 3) for epoch milliseconds",
        ),
        (Timestamp, Int | Double) => {
            refuse("for epoch seconds use UNIX_TIMESTAMP(CAST(ts AS STRING))")
        }
        (Array(a), Array(b)) => {
            cast_type_rule(a, b).map_err(|e| format!("cannot CAST {from} to {to} ({e})"))
        }
        _ => refuse(""),
    }
}

/// CAST with Flink semantics. `Err` when the value cannot be converted (CAST('abc' AS BIGINT)).
pub fn cast(value: &Value<'_>, to: &DataType) -> Result<OwnedValue, String> {
    let fail = || Err(format!("cannot cast {} to {to}", describe(value)));
    Ok(match (value, to) {
        (Value::Null, _) => Value::Null,
        (v, DataType::String) => Value::Str(Cow::Owned(to_text(v))),
        (Value::Str(s), DataType::Int) => match parse_bigint(s) {
            Some(n) => Value::Int(n),
            None => return fail(),
        },
        (Value::Str(s), DataType::Double) => match parse_java_double(s) {
            Some(d) => Value::Double(d),
            None => return fail(),
        },
        (Value::Str(s), DataType::Bool) => match parse_bool(s) {
            Some(b) => Value::Bool(b),
            None => return fail(),
        },
        (Value::Str(s), DataType::Timestamp) => match time::parse_timestamp(s.trim()) {
            Some(t) => Value::Timestamp(t),
            None => return fail(),
        },
        (Value::Int(n), DataType::Int) => Value::Int(*n),
        (Value::Int(n), DataType::Double) => Value::Double(*n as f64),
        (Value::Int(n), DataType::Bool) => Value::Bool(*n != 0),
        // Java's (long) cast: toward zero, saturating, NaN to 0 — exactly Rust's `as`.
        (Value::Double(d), DataType::Int) => Value::Int(*d as i64),
        (Value::Double(d), DataType::Double) => Value::Double(*d),
        (Value::Bool(b), DataType::Bool) => Value::Bool(*b),
        (Value::Bool(b), DataType::Int) => Value::Int(i64::from(*b)),
        (Value::Bool(b), DataType::Double) => Value::Double(if *b { 1.0 } else { 0.0 }),
        (Value::Timestamp(t), DataType::Timestamp) => Value::Timestamp(*t),
        (Value::List(items), DataType::Array(element)) => Value::List(
            items
                .iter()
                .map(|x| cast(x, element))
                .collect::<Result<_, _>>()?,
        ),
        (Value::Int(_) | Value::Double(_), DataType::Timestamp) => {
            return Err(format!(
                "cannot cast {} to {to}: use TO_TIMESTAMP_LTZ(value, 0) or TO_TIMESTAMP_LTZ(value, 3)",
                describe(value)
            ));
        }
        _ => return fail(),
    })
}

fn describe(v: &Value<'_>) -> String {
    match v {
        Value::Str(s) => format!("'{s}'"),
        Value::Bool(_) => "a BOOLEAN".to_string(),
        Value::Int(_) => "a BIGINT".to_string(),
        Value::Double(_) => "a DOUBLE".to_string(),
        Value::Timestamp(_) => "a TIMESTAMP".to_string(),
        Value::List(_) => "an ARRAY".to_string(),
        Value::Null => "NULL".to_string(),
    }
}

/// The text of a value as Flink's CAST(… AS STRING) writes it: booleans in upper case,
/// numbers like Java, timestamps as `yyyy-MM-dd HH:mm:ss.SSS`, arrays as `[a, NULL, b]`.
fn to_text(v: &Value<'_>) -> String {
    match v {
        Value::Bool(true) => "TRUE".to_string(),
        Value::Bool(false) => "FALSE".to_string(),
        Value::Null => "NULL".to_string(),
        Value::List(items) => {
            let parts: Vec<String> = items.iter().map(to_text).collect();
            format!("[{}]", parts.join(", "))
        }
        other => other.to_string(),
    }
}

/// Flink's `BinaryStringDataUtil.toLong` on the text without surrounding spaces (FLINK-27368
/// trims before numeric casts): optional sign, digits, and an ignored fraction of digits
/// (`'1.9'` → 1); no exponent, overflow is an error.
fn parse_bigint(s: &str) -> Option<i64> {
    let b = s.trim_matches(' ').as_bytes();
    let (negative, mut i) = match b.first()? {
        b'-' => (true, 1),
        b'+' => (false, 1),
        _ => (false, 0),
    };
    if i == b.len() && i == 1 {
        return None;
    }
    // Accumulate negatively so that i64::MIN parses.
    let mut acc: i64 = 0;
    while let Some(&c) = b.get(i) {
        i += 1;
        if c == b'.' {
            break;
        }
        if !c.is_ascii_digit() {
            return None;
        }
        acc = acc.checked_mul(10)?.checked_sub(i64::from(c - b'0'))?;
    }
    if !b[i.min(b.len())..].iter().all(u8::is_ascii_digit) {
        return None;
    }
    if negative {
        Some(acc)
    } else {
        acc.checked_neg()
    }
}

/// Java's `Double.parseDouble`: surrounding whitespace ignored, optional sign, `NaN`,
/// `Infinity`, decimal digits with optional fraction and exponent, optional `d`/`f` suffix.
/// (Hexadecimal floating literals are not supported.)
fn parse_java_double(s: &str) -> Option<f64> {
    let t = s.trim_matches(|c: char| c <= ' ');
    let (sign, body) = match t.as_bytes().first()? {
        b'-' => ("-", &t[1..]),
        b'+' => ("", &t[1..]),
        _ => ("", t),
    };
    match body {
        "NaN" => return Some(f64::NAN),
        "Infinity" => {
            return Some(if sign.is_empty() {
                f64::INFINITY
            } else {
                f64::NEG_INFINITY
            });
        }
        _ => {}
    }
    let body = body.strip_suffix(['d', 'D', 'f', 'F']).unwrap_or(body);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(e) => (&body[..e], Some(&body[e + 1..])),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |x: &str| x.bytes().all(|c| c.is_ascii_digit());
    let mantissa_ok = digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    if !(mantissa_ok && exponent_ok) {
        return None;
    }
    format!("{sign}{body}").parse().ok()
}

/// Flink's `BinaryStringDataUtil.toBoolean`: case-insensitive, not trimmed.
fn parse_bool(s: &str) -> Option<bool> {
    const TRUE: [&str; 5] = ["t", "true", "y", "yes", "1"];
    const FALSE: [&str; 5] = ["f", "false", "n", "no", "0"];
    if TRUE.iter().any(|t| s.eq_ignore_ascii_case(t)) {
        Some(true)
    } else if FALSE.iter().any(|f| s.eq_ignore_ascii_case(f)) {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value<'static> {
        Value::Str(v.to_string().into())
    }

    use DataType::{Bool, Double, Int, String as Str, Timestamp};

    #[test]
    fn type_rules() {
        assert!(cast_type_rule(&Int, &Str).is_ok());
        assert!(cast_type_rule(&Str, &Timestamp).is_ok());
        assert!(cast_type_rule(&Bool, &Int).is_ok());
        assert!(cast_type_rule(&Int, &Bool).is_ok());
        assert!(cast_type_rule(&Double, &Int).is_ok());
        assert!(cast_type_rule(&Timestamp, &Str).is_ok());
        let err = cast_type_rule(&Int, &Timestamp).unwrap_err();
        assert!(err.contains("TO_TIMESTAMP_LTZ"), "{err}");
        assert!(cast_type_rule(&Timestamp, &Int).is_err());
        assert!(cast_type_rule(&Double, &Bool).is_err());
        assert!(cast_type_rule(&Bool, &Timestamp).is_err());
        let arr = |t| DataType::Array(Box::new(t));
        assert!(cast_type_rule(&arr(Int), &arr(Double)).is_ok());
        assert!(cast_type_rule(&arr(Int), &Str).is_ok());
        assert!(cast_type_rule(&arr(Int), &arr(Timestamp)).is_err());
        assert!(cast_type_rule(&Str, &arr(Int)).is_err());
        assert!(cast_type_rule(&arr(Int), &Int).is_err());
    }

    #[test]
    fn strings_to_bigint() {
        let c = |v: &str| cast(&s(v), &Int);
        assert_eq!(c("42"), Ok(Value::Int(42)));
        assert_eq!(c("  -42 "), Ok(Value::Int(-42)));
        assert_eq!(c("+7"), Ok(Value::Int(7)));
        assert_eq!(c("1.9"), Ok(Value::Int(1)));
        assert_eq!(c("-9223372036854775808"), Ok(Value::Int(i64::MIN)));
        assert!(c("9223372036854775808").is_err());
        assert!(c("abc").is_err());
        assert!(c("").is_err());
        assert!(c("-").is_err());
        assert!(c("1e3").is_err());
        assert!(c("1.x").is_err());
        assert!(c("\t1").is_err());
        assert_eq!(c("abc").unwrap_err(), "cannot cast 'abc' to BIGINT");
    }

    #[test]
    fn strings_to_double_boolean_timestamp() {
        let d = |v: &str| cast(&s(v), &Double);
        assert_eq!(d(" 1.5 "), Ok(Value::Double(1.5)));
        assert_eq!(d("1e3"), Ok(Value::Double(1000.0)));
        assert_eq!(d("-.5"), Ok(Value::Double(-0.5)));
        assert_eq!(d("2d"), Ok(Value::Double(2.0)));
        assert_eq!(d("-Infinity"), Ok(Value::Double(f64::NEG_INFINITY)));
        assert!(matches!(d("NaN"), Ok(Value::Double(x)) if x.is_nan()));
        assert!(d("inf").is_err());
        assert!(d("nan").is_err());
        assert!(d("1e").is_err());
        assert!(d(".").is_err());
        assert!(d("x").is_err());
        let b = |v: &str| cast(&s(v), &Bool);
        assert_eq!(b("TRUE"), Ok(Value::Bool(true)));
        assert_eq!(b("yes"), Ok(Value::Bool(true)));
        assert_eq!(b("1"), Ok(Value::Bool(true)));
        assert_eq!(b("F"), Ok(Value::Bool(false)));
        assert_eq!(b("0"), Ok(Value::Bool(false)));
        assert!(b("maybe").is_err());
        assert!(b(" true").is_err());
        assert_eq!(
            cast(&s("2019-01-07 07:21:58.557"), &Timestamp),
            Ok(Value::Timestamp(1_546_845_718_557))
        );
        assert!(cast(&s("yesterday"), &Timestamp).is_err());
    }

    #[test]
    fn to_string_like_flink() {
        let t = |v: Value<'_>| cast(&v, &Str).unwrap();
        assert_eq!(t(Value::Bool(true)), s("TRUE"));
        assert_eq!(t(Value::Bool(false)), s("FALSE"));
        assert_eq!(t(Value::Int(-5)), s("-5"));
        assert_eq!(t(Value::Double(1.0)), s("1.0"));
        assert_eq!(t(Value::Double(1e10)), s("1.0E10"));
        assert_eq!(
            t(Value::Timestamp(1_546_845_718_557)),
            s("2019-01-07 07:21:58.557")
        );
        assert_eq!(t(Value::Timestamp(0)), s("1970-01-01 00:00:00.000"));
        assert_eq!(
            t(Value::List(vec![
                Value::Int(1),
                Value::Null,
                Value::Bool(true)
            ])),
            s("[1, NULL, TRUE]")
        );
        assert_eq!(cast(&Value::Null, &Str), Ok(Value::Null));
    }

    #[test]
    fn between_numbers_and_booleans() {
        assert_eq!(cast(&Value::Double(-2.9), &Int), Ok(Value::Int(-2)));
        assert_eq!(cast(&Value::Double(1e300), &Int), Ok(Value::Int(i64::MAX)));
        assert_eq!(cast(&Value::Double(f64::NAN), &Int), Ok(Value::Int(0)));
        assert_eq!(cast(&Value::Int(3), &Double), Ok(Value::Double(3.0)));
        assert_eq!(cast(&Value::Int(3), &Bool), Ok(Value::Bool(true)));
        assert_eq!(cast(&Value::Int(0), &Bool), Ok(Value::Bool(false)));
        assert_eq!(cast(&Value::Bool(true), &Int), Ok(Value::Int(1)));
        assert_eq!(cast(&Value::Bool(false), &Double), Ok(Value::Double(0.0)));
        let err = cast(&Value::Int(3), &Timestamp).unwrap_err();
        assert!(err.contains("TO_TIMESTAMP_LTZ"), "{err}");
        assert!(cast(&Value::Timestamp(0), &Int).is_err());
        assert!(cast(&Value::Double(1.0), &Bool).is_err());
        assert_eq!(
            cast(
                &Value::List(vec![s("1"), Value::Null]),
                &DataType::Array(Box::new(Int))
            ),
            Ok(Value::List(vec![Value::Int(1), Value::Null]))
        );
        assert!(cast(&Value::List(vec![s("x")]), &DataType::Array(Box::new(Int))).is_err());
    }
}
