//! Shared pieces of the function definitions: parameter kinds and the type-rule checks built
//! on them (with the error messages users see), common result types, and the accessors the
//! evaluators use to read their arguments without panicking.

use std::borrow::Cow;

use crate::data::{DataType, OwnedValue, Value};

/// What a parameter accepts. Numeric parameters take BIGINT and DOUBLE because the compiler
/// does no implicit casts; `Int` is for positions, counts and lengths, which Flink types as
/// INT and so rejects DOUBLE for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum P {
    Str,
    Num,
    Int,
    Bool,
    Ts,
    Array,
    Any,
}

impl P {
    fn accepts(self, t: &DataType) -> bool {
        match self {
            P::Str => *t == DataType::String,
            P::Num => t.is_numeric(),
            P::Int => *t == DataType::Int,
            P::Bool => *t == DataType::Bool,
            P::Ts => *t == DataType::Timestamp,
            P::Array => matches!(t, DataType::Array(_)),
            P::Any => true,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            P::Str => "a STRING",
            P::Num => "a numeric",
            P::Int => "an integer (BIGINT)",
            P::Bool => "a BOOLEAN",
            P::Ts => "a TIMESTAMP",
            P::Array => "an ARRAY",
            P::Any => "a",
        }
    }
}

fn ordinal(i: usize) -> String {
    const NAMES: [&str; 6] = ["first", "second", "third", "fourth", "fifth", "sixth"];
    NAMES
        .get(i)
        .map_or_else(|| format!("#{}", i + 1), |s| (*s).to_string())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "argument" } else { "arguments" }
}

/// "ROUND takes 1 or 2 arguments, found 3".
pub(super) fn check_count(
    name: &str,
    found: usize,
    min: usize,
    max: Option<usize>,
) -> Result<(), String> {
    let ok = found >= min && max.is_none_or(|m| found <= m);
    if ok {
        return Ok(());
    }
    let wanted = match max {
        Some(0) => "no arguments".to_string(),
        Some(m) if m == min => format!("{m} {}", plural(m)),
        Some(m) if m == min + 1 => format!("{min} or {m} arguments"),
        Some(m) => format!("{min} to {m} arguments"),
        None => format!("at least {min} {}", plural(min)),
    };
    Err(format!("{name} takes {wanted}, found {found}"))
}

/// "ROUND expects a numeric first argument, found STRING" (no ordinal for one-argument
/// functions).
pub(super) fn type_error(name: &str, index: usize, single: bool, p: P, found: &DataType) -> String {
    if single {
        format!("{name} expects {} argument, found {found}", p.describe())
    } else {
        format!(
            "{name} expects {} {} argument, found {found}",
            p.describe(),
            ordinal(index)
        )
    }
}

/// Checks a fixed signature: `required` parameters followed by up to `optional.len()` more.
/// Untyped NULL literals are accepted anywhere.
pub(super) fn check(
    name: &str,
    args: &[Option<DataType>],
    required: &[P],
    optional: &[P],
) -> Result<(), String> {
    let max = required.len() + optional.len();
    check_count(name, args.len(), required.len(), Some(max))?;
    for (i, (arg, p)) in args.iter().zip(required.iter().chain(optional)).enumerate() {
        if let Some(t) = arg
            && !p.accepts(t)
        {
            return Err(type_error(name, i, max == 1, *p, t));
        }
    }
    Ok(())
}

/// Checks a variadic signature: at least `min` arguments, all of kind `p`.
pub(super) fn check_variadic(
    name: &str,
    args: &[Option<DataType>],
    min: usize,
    p: P,
) -> Result<(), String> {
    check_count(name, args.len(), min, None)?;
    for (i, arg) in args.iter().enumerate() {
        if let Some(t) = arg
            && !p.accepts(t)
        {
            return Err(type_error(name, i, false, p, t));
        }
    }
    Ok(())
}

/// `check` then a fixed result type: the common case, kept short at the definitions.
pub(super) fn sig(
    name: &str,
    args: &[Option<DataType>],
    required: &[P],
    optional: &[P],
    result: DataType,
) -> Result<DataType, String> {
    check(name, args, required, optional)?;
    Ok(result)
}

/// The result type of a function returning its numeric argument's type (ABS, ROUND, …).
/// An untyped NULL gives DOUBLE, the type every numeric converts to.
pub(super) fn numeric_like(arg: Option<&Option<DataType>>) -> DataType {
    match arg {
        Some(Some(DataType::Int)) => DataType::Int,
        _ => DataType::Double,
    }
}

/// The least restrictive common type of the typed arguments (Flink's rule restricted to our
/// types): all equal, or BIGINT with DOUBLE giving DOUBLE, element-wise for arrays. Only
/// untyped NULLs give STRING, the type a bare NULL is printed as.
pub(super) fn common_type<'a>(
    name: &str,
    types: impl IntoIterator<Item = &'a Option<DataType>>,
) -> Result<DataType, String> {
    let mut common: Option<DataType> = None;
    for t in types.into_iter().flatten() {
        common = Some(match common {
            None => t.clone(),
            Some(c) => unify(&c, t)
                .ok_or_else(|| format!("{name} needs arguments of one type, found {c} and {t}"))?,
        });
    }
    Ok(common.unwrap_or(DataType::String))
}

fn unify(a: &DataType, b: &DataType) -> Option<DataType> {
    match (a, b) {
        _ if a == b => Some(a.clone()),
        (DataType::Int, DataType::Double) | (DataType::Double, DataType::Int) => {
            Some(DataType::Double)
        }
        (DataType::Array(x), DataType::Array(y)) => {
            unify(x, y).map(|t| DataType::Array(Box::new(t)))
        }
        _ => None,
    }
}

/// Converts a value to the common type computed by [`common_type`] (BIGINT → DOUBLE, also
/// inside arrays), so the result has the declared type.
pub(super) fn coerce(v: &Value<'_>, to: &DataType) -> OwnedValue {
    match (v, to) {
        (Value::Int(i), DataType::Double) => Value::Double(*i as f64),
        (Value::List(items), DataType::Array(t)) => {
            Value::List(items.iter().map(|x| coerce(x, t)).collect())
        }
        _ => v.to_owned_value(),
    }
}

/// What [`coerce`] should widen a result of COALESCE, IF, GREATEST … to, as far as the values
/// show it: DOUBLE (or ARRAY<DOUBLE>) when some argument holds one, else BIGINT, which
/// leaves every value as it is. Evaluators see values, not the declared types: when the only
/// DOUBLE argument is NULL the result stays a BIGINT value, which is why the compiler should
/// cast BIGINT arguments of these functions when the result type is DOUBLE.
pub(super) fn widest_value_type(values: &[Value<'_>]) -> DataType {
    let mut widest = DataType::Int;
    for v in values {
        match v {
            Value::Double(_) => return DataType::Double,
            Value::List(items) if items.iter().any(|x| matches!(x, Value::Double(_))) => {
                widest = DataType::Array(Box::new(DataType::Double));
            }
            _ => {}
        }
    }
    widest
}

/// An owned STRING result.
pub(super) fn text(s: impl Into<String>) -> OwnedValue {
    Value::Str(Cow::Owned(s.into()))
}

fn unexpected(i: usize, v: Option<&Value<'_>>) -> String {
    match v {
        Some(v) => format!(
            "internal error: argument {} has unexpected value {v:?}",
            i + 1
        ),
        None => format!("internal error: argument {} is missing", i + 1),
    }
}

pub(super) fn str_at<'a>(args: &'a [Value<'_>], i: usize) -> Result<&'a str, String> {
    match args.get(i) {
        Some(Value::Str(s)) => Ok(s),
        v => Err(unexpected(i, v)),
    }
}

/// A numeric argument as DOUBLE (BIGINT converts).
pub(super) fn f64_at(args: &[Value<'_>], i: usize) -> Result<f64, String> {
    match args.get(i) {
        Some(Value::Double(d)) => Ok(*d),
        Some(Value::Int(n)) => Ok(*n as f64),
        v => Err(unexpected(i, v)),
    }
}

pub(super) fn i64_at(args: &[Value<'_>], i: usize) -> Result<i64, String> {
    match args.get(i) {
        Some(Value::Int(n)) => Ok(*n),
        v => Err(unexpected(i, v)),
    }
}

/// An optional integer argument (`None` when the call left it out).
pub(super) fn opt_i64_at(args: &[Value<'_>], i: usize) -> Result<Option<i64>, String> {
    if i < args.len() {
        i64_at(args, i).map(Some)
    } else {
        Ok(None)
    }
}

pub(super) fn ts_at(args: &[Value<'_>], i: usize) -> Result<i64, String> {
    match args.get(i) {
        Some(Value::Timestamp(t)) => Ok(*t),
        v => Err(unexpected(i, v)),
    }
}

pub(super) fn list_at<'a, 'v>(args: &'a [Value<'v>], i: usize) -> Result<&'a [Value<'v>], String> {
    match args.get(i) {
        Some(Value::List(items)) => Ok(items),
        v => Err(unexpected(i, v)),
    }
}

pub(super) fn value_at<'a, 'v>(args: &'a [Value<'v>], i: usize) -> Result<&'a Value<'v>, String> {
    args.get(i).ok_or_else(|| unexpected(i, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_messages() {
        assert_eq!(
            check_count("ROUND", 3, 1, Some(2)).unwrap_err(),
            "ROUND takes 1 or 2 arguments, found 3"
        );
        assert_eq!(
            check_count("PI", 1, 0, Some(0)).unwrap_err(),
            "PI takes no arguments, found 1"
        );
        assert_eq!(
            check_count("UPPER", 2, 1, Some(1)).unwrap_err(),
            "UPPER takes 1 argument, found 2"
        );
        assert_eq!(
            check_count("LPAD", 1, 3, Some(3)).unwrap_err(),
            "LPAD takes 3 arguments, found 1"
        );
        assert_eq!(
            check_count("COALESCE", 0, 1, None).unwrap_err(),
            "COALESCE takes at least 1 argument, found 0"
        );
        assert!(check_count("F", 2, 1, None).is_ok());
    }

    #[test]
    fn type_messages() {
        let err = check("ROUND", &[Some(DataType::String)], &[P::Num], &[P::Int]).unwrap_err();
        assert_eq!(err, "ROUND expects a numeric first argument, found STRING");
        let err = check("UPPER", &[Some(DataType::Int)], &[P::Str], &[]).unwrap_err();
        assert_eq!(err, "UPPER expects a STRING argument, found BIGINT");
        let err = check(
            "SUBSTRING",
            &[Some(DataType::String), Some(DataType::Double)],
            &[P::Str, P::Int],
            &[P::Int],
        )
        .unwrap_err();
        assert_eq!(
            err,
            "SUBSTRING expects an integer (BIGINT) second argument, found DOUBLE"
        );
        assert!(check("UPPER", &[None], &[P::Str], &[]).is_ok());
    }

    #[test]
    fn common_types() {
        let t = |v: &[Option<DataType>]| common_type("F", v);
        assert_eq!(
            t(&[Some(DataType::Int), None, Some(DataType::Double)]),
            Ok(DataType::Double)
        );
        assert_eq!(t(&[None]), Ok(DataType::String));
        assert_eq!(
            t(&[Some(DataType::Int), Some(DataType::String)]).unwrap_err(),
            "F needs arguments of one type, found BIGINT and STRING"
        );
        let arr = |t: DataType| Some(DataType::Array(Box::new(t)));
        assert_eq!(
            t(&[arr(DataType::Int), arr(DataType::Double)]),
            Ok(DataType::Array(Box::new(DataType::Double)))
        );
        assert_eq!(
            coerce(
                &Value::List(vec![Value::Int(1)]),
                &DataType::Array(Box::new(DataType::Double))
            ),
            Value::List(vec![Value::Double(1.0)])
        );
    }

    #[test]
    fn accessors_report_instead_of_panicking() {
        let args = [Value::Int(1)];
        assert!(str_at(&args, 0).is_err());
        assert!(str_at(&args, 5).is_err());
        assert_eq!(f64_at(&args, 0), Ok(1.0));
        assert_eq!(opt_i64_at(&args, 1), Ok(None));
        assert!(ts_at(&args, 0).is_err());
        assert!(list_at(&args, 0).is_err());
        assert!(value_at(&args, 1).is_err());
    }
}
