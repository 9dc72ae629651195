//! The scalar function library: every SQL function the embedded engine evaluates, with the
//! meaning it has in Flink SQL 1.20 (NULL in → NULL out unless stated, UTC for date/time).
//!
//! Each [`Function`] carries its type rule and its evaluator; the compiler looks functions up
//! by name, checks argument types with `return_type`, and the evaluator calls `eval` with the
//! evaluated arguments. Special syntax (CAST, CASE, EXTRACT, SUBSTRING … FROM … FOR, TRIM …
//! FROM, POSITION … IN, FLOOR(ts TO unit), TIMESTAMPADD/DIFF units, INTERVAL arithmetic) is
//! turned into calls of the functions here by `expr::compile`:
//!
//! | SQL                                   | call                                   |
//! |---------------------------------------|----------------------------------------|
//! | `TRIM(BOTH c FROM s)`, `TRIM(s)`      | `TRIM_BOTH(s, c)` (`c` = `' '`)        |
//! | `TRIM(LEADING/TRAILING c FROM s)`     | `TRIM_LEADING(s, c)`, `TRIM_TRAILING`  |
//! | `EXTRACT(unit FROM ts)`               | `EXTRACT_FIELD('UNIT', ts)`            |
//! | `FLOOR(ts TO unit)`, `CEIL(ts TO u)`  | `FLOOR_TS(ts, 'UNIT')`, `CEIL_TS`      |
//! | `TIMESTAMPADD(unit, n, ts)`, `ts ± INTERVAL` | `TIMESTAMPADD('UNIT', n, ts)`   |
//! | `TIMESTAMPDIFF(unit, a, b)`           | `TIMESTAMPDIFF('UNIT', a, b)`          |
//! | `arr[i]`                              | `ELEMENT_AT(arr, i)`                   |
//!
//! Layout: `args` holds the shared type rules and argument accessors, `cache` the per-thread
//! caches of compiled patterns, and one module per family holds its functions.

mod args;
mod array;
mod cache;
mod cast;
mod cond;
mod datetime;
mod javafmt;
mod json;
mod like;
mod math;
mod string;

use std::sync::LazyLock;

use crate::data::{DataType, OwnedValue, Value};

pub use cast::{cast, cast_type_rule};
pub use like::{check_like_pattern, like};

/// Given the argument types (`None` for an untyped NULL literal), the result type, or a
/// message saying what is wrong ("UPPER expects a STRING argument, found BIGINT").
pub type ReturnType = fn(&[Option<DataType>]) -> Result<DataType, String>;

/// Evaluates the function on evaluated arguments. Numeric parameters may receive `Int` or
/// `Double` (the type rule allowed both). An `Err` is a runtime error of this record (e.g.
/// an invalid regular expression given as a column value) handled by the bad-record policy.
pub type Eval = fn(&[Value<'_>]) -> Result<OwnedValue, String>;

pub struct Function {
    /// Upper-case SQL name.
    pub name: &'static str,
    /// For documentation and help: `UPPER(string) → STRING`.
    pub signature: &'static str,
    /// One sentence on what it does.
    pub description: &'static str,
    pub return_type: ReturnType,
    pub eval: Eval,
    /// When true, a NULL argument makes the result NULL without calling `eval`.
    pub null_in_null_out: bool,
}

impl Function {
    /// A function whose result is NULL as soon as one argument is NULL (most SQL functions).
    const fn strict(
        name: &'static str,
        signature: &'static str,
        description: &'static str,
        return_type: ReturnType,
        eval: Eval,
    ) -> Function {
        Function {
            name,
            signature,
            description,
            return_type,
            eval,
            null_in_null_out: true,
        }
    }

    /// A function that sees NULL arguments itself (COALESCE, CONCAT_WS, IF, …).
    const fn sees_nulls(
        name: &'static str,
        signature: &'static str,
        description: &'static str,
        return_type: ReturnType,
        eval: Eval,
    ) -> Function {
        Function {
            null_in_null_out: false,
            ..Function::strict(name, signature, description, return_type, eval)
        }
    }
}

/// Every family contributes its list once; a `Vec` because the families live in their own
/// modules and `all()` must hand out one contiguous slice.
static FUNCTIONS: LazyLock<Vec<Function>> = LazyLock::new(|| {
    let mut all = Vec::new();
    all.extend(string::functions());
    all.extend(math::functions());
    all.extend(cond::functions());
    all.extend(datetime::functions());
    all.extend(array::functions());
    all
});

/// Finds a function by (case-insensitive) name.
pub fn lookup(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name.eq_ignore_ascii_case(name))
}

/// Every function, for documentation and "did you mean".
pub fn all() -> &'static [Function] {
    &FUNCTIONS
}

/// Checks the arguments of a call that are literals, so that mistakes the type rule cannot
/// see (a bad time unit, regular expression, date pattern or JSON path) are reported when the
/// pipeline is validated instead of failing every record. `args[i]` is `Some` for a literal.
///
/// # Errors
/// What is wrong with the literal argument, naming the function.
pub fn check_literal_args(name: &str, args: &[Option<&Value<'_>>]) -> Result<(), String> {
    let upper = name.to_ascii_uppercase();
    let literal = |i: usize| match args.get(i) {
        Some(Some(Value::Str(s))) => Some(s.as_ref()),
        _ => None,
    };
    match upper.as_str() {
        "REGEXP" | "REGEXP_EXTRACT" | "REGEXP_REPLACE" => match literal(1) {
            Some(p) => string::check_regex(p).map_err(|e| format!("{upper}: {e}")),
            None => Ok(()),
        },
        "JSON_VALUE" => match literal(1) {
            Some(p) => json::check_path(p).map_err(|e| format!("{upper}: {e}")),
            None => Ok(()),
        },
        _ => datetime::check_literal_args(&upper, args),
    }
}

/// Calling library functions the way the evaluator does, for the families' unit tests.
#[cfg(test)]
mod test_support {
    use super::lookup;
    use crate::data::{DataType, OwnedValue, Value};

    /// Evaluates `name` on `args`, with the evaluator's NULL short-cut.
    pub fn call(name: &str, args: &[Value<'_>]) -> Result<OwnedValue, String> {
        let f = lookup(name).expect("function exists");
        if f.null_in_null_out && args.iter().any(Value::is_null) {
            return Ok(Value::Null);
        }
        (f.eval)(args)
    }

    /// As [`call`], for calls that must succeed.
    pub fn ok(name: &str, args: &[Value<'_>]) -> OwnedValue {
        call(name, args).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// The type rule of `name` on `args`.
    pub fn types(name: &str, args: &[Option<DataType>]) -> Result<DataType, String> {
        (lookup(name).expect("function exists").return_type)(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_upper_case_and_documented() {
        let mut seen = std::collections::HashSet::new();
        for f in all() {
            assert!(seen.insert(f.name), "duplicate {}", f.name);
            assert_eq!(f.name, f.name.to_ascii_uppercase());
            assert!(f.signature.starts_with(f.name), "{}", f.signature);
            assert!(f.signature.contains('→'), "{}", f.signature);
            assert!(f.description.ends_with('.'), "{}", f.name);
            assert!(!f.description.is_empty());
        }
        assert!(all().len() > 90);
    }

    #[test]
    fn lookup_is_case_insensitive() {
        assert_eq!(lookup("upper").map(|f| f.name), Some("UPPER"));
        assert_eq!(lookup("Json_Value").map(|f| f.name), Some("JSON_VALUE"));
        assert!(lookup("NO_SUCH_FUNCTION").is_none());
    }

    /// Every evaluator survives every combination of awkward values without panicking:
    /// arguments of the wrong kind must give `Err`, not a panic.
    #[test]
    fn no_evaluator_panics_on_odd_input() {
        let samples: Vec<Value<'static>> = vec![
            Value::Null,
            Value::Bool(true),
            Value::Int(0),
            Value::Int(-1),
            Value::Int(i64::MIN),
            Value::Int(i64::MAX),
            Value::Double(f64::NAN),
            Value::Double(-0.5),
            Value::Double(1e300),
            Value::Timestamp(i64::MIN),
            Value::Timestamp(0),
            Value::Str("".into()),
            Value::Str("DAY".into()),
            Value::Str("é[(".into()),
            Value::List(vec![Value::Int(1), Value::Null]),
        ];
        for f in all() {
            for n in 0..=3 {
                let mut idx = vec![0usize; n];
                loop {
                    let args: Vec<Value<'_>> = idx.iter().map(|&i| samples[i].clone()).collect();
                    let _ = (f.eval)(&args);
                    // odometer over all combinations
                    let mut k = 0;
                    while k < n {
                        idx[k] += 1;
                        if idx[k] < samples.len() {
                            break;
                        }
                        idx[k] = 0;
                        k += 1;
                    }
                    if k == n {
                        break;
                    }
                }
            }
        }
    }

    #[test]
    fn literal_arguments_are_checked() {
        let re = Value::Str("(".into());
        assert!(check_literal_args("regexp", &[None, Some(&re)]).is_err());
        let unit = Value::Str("FORTNIGHT".into());
        let err = check_literal_args("FLOOR_TS", &[None, Some(&unit)]).unwrap_err();
        assert!(err.contains("FORTNIGHT"), "{err}");
        let fmt = Value::Str("yyyy-MM-dd bb".into());
        assert!(check_literal_args("DATE_FORMAT", &[None, Some(&fmt)]).is_err());
        let ok = Value::Str("yyyy-MM-dd".into());
        assert!(check_literal_args("DATE_FORMAT", &[None, Some(&ok)]).is_ok());
        let path = Value::Str("$.a[*]".into());
        assert!(check_literal_args("JSON_VALUE", &[None, Some(&path)]).is_err());
        assert!(check_literal_args("UPPER", &[Some(&re)]).is_ok());
    }
}
