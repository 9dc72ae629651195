//! Conditional functions. They see NULL arguments themselves, and their result has the
//! common type of the value arguments (BIGINT with DOUBLE gives DOUBLE, converted here so the
//! value matches the declared type).

use super::Function;
use super::args::{P, check, check_variadic, coerce, common_type, value_at, widest_value_type};
use crate::data::Value;

pub(super) fn functions() -> Vec<Function> {
    vec![
        Function::sees_nulls(
            "COALESCE",
            "COALESCE(value1, value2, …) → common type",
            "The first argument that is not NULL (NULL if all are).",
            |a| {
                check_variadic("COALESCE", a, 1, P::Any)?;
                common_type("COALESCE", a)
            },
            |a| {
                let to = widest_value_type(a);
                Ok(a.iter()
                    .find(|v| !v.is_null())
                    .map_or(Value::Null, |v| coerce(v, &to)))
            },
        ),
        Function::sees_nulls(
            "NULLIF",
            "NULLIF(value1, value2) → type of value1",
            "NULL if value1 equals value2, otherwise value1.",
            |a| {
                check("NULLIF", a, &[P::Any, P::Any], &[])?;
                // The values must be comparable; the result keeps value1's type.
                let common = common_type("NULLIF", a)?;
                Ok(a[0].clone().unwrap_or(common))
            },
            |a| {
                let (x, y) = (value_at(a, 0)?, value_at(a, 1)?);
                let equal = x.sql_cmp(y) == Some(std::cmp::Ordering::Equal);
                Ok(if equal {
                    Value::Null
                } else {
                    x.to_owned_value()
                })
            },
        ),
        Function::sees_nulls(
            "IF",
            "IF(condition, if_true, if_false) → common type",
            "`if_true` when the condition is TRUE, otherwise (FALSE or NULL) `if_false`.",
            |a| {
                check("IF", a, &[P::Bool, P::Any, P::Any], &[])?;
                common_type("IF", &a[1..])
            },
            |a| {
                let chosen = match value_at(a, 0)? {
                    Value::Bool(true) => value_at(a, 1)?,
                    _ => value_at(a, 2)?,
                };
                Ok(coerce(
                    chosen,
                    &widest_value_type(a.get(1..).unwrap_or_default()),
                ))
            },
        ),
        Function::sees_nulls(
            "IFNULL",
            "IFNULL(value, replacement) → common type",
            "`replacement` when `value` is NULL, otherwise `value`.",
            |a| {
                check("IFNULL", a, &[P::Any, P::Any], &[])?;
                common_type("IFNULL", a)
            },
            |a| {
                let chosen = match value_at(a, 0)? {
                    Value::Null => value_at(a, 1)?,
                    v => v,
                };
                Ok(coerce(chosen, &widest_value_type(a)))
            },
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::lookup;
    use super::*;
    use crate::data::{DataType, OwnedValue};

    fn ok(name: &str, args: &[Value<'_>]) -> OwnedValue {
        let f = lookup(name).expect("function exists");
        assert!(!f.null_in_null_out, "{name} must see NULLs");
        (f.eval)(args).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    use super::super::test_support::types;

    use Value::{Double as D, Int as I, Null};
    const INT: Option<DataType> = Some(DataType::Int);
    const DOUBLE: Option<DataType> = Some(DataType::Double);
    const STR: Option<DataType> = Some(DataType::String);

    #[test]
    fn coalesce() {
        assert_eq!(ok("COALESCE", &[Null, I(2), I(3)]), I(2));
        assert_eq!(ok("COALESCE", &[Null, Null]), Null);
        assert_eq!(ok("COALESCE", &[I(1), D(2.5)]), D(1.0));
        assert_eq!(ok("COALESCE", &[Null, I(1), Null]), I(1));
        assert_eq!(
            types("COALESCE", &[None, INT, DOUBLE]),
            Ok(DataType::Double)
        );
        assert_eq!(types("COALESCE", &[STR, None]), Ok(DataType::String));
        assert!(types("COALESCE", &[STR, INT]).is_err());
        assert!(types("COALESCE", &[]).is_err());
    }

    #[test]
    fn nullif() {
        // Flink's documented examples.
        assert_eq!(ok("NULLIF", &[I(5), I(5)]), Null);
        assert_eq!(ok("NULLIF", &[I(5), I(0)]), I(5));
        assert_eq!(ok("NULLIF", &[I(5), D(5.0)]), Null);
        assert_eq!(ok("NULLIF", &[Null, I(5)]), Null);
        assert_eq!(ok("NULLIF", &[I(5), Null]), I(5));
        assert_eq!(types("NULLIF", &[INT, DOUBLE]), Ok(DataType::Int));
        assert_eq!(types("NULLIF", &[None, DOUBLE]), Ok(DataType::Double));
        assert!(types("NULLIF", &[INT, STR]).is_err());
    }

    #[test]
    fn if_and_ifnull() {
        // Flink's documented example: IF(5 > 3, 5, 3) = 5.
        assert_eq!(ok("IF", &[Value::Bool(true), I(5), I(3)]), I(5));
        assert_eq!(ok("IF", &[Value::Bool(false), I(5), I(3)]), I(3));
        assert_eq!(ok("IF", &[Null, I(5), I(3)]), I(3));
        assert_eq!(ok("IF", &[Value::Bool(true), I(5), D(0.5)]), D(5.0));
        assert_eq!(ok("IF", &[Value::Bool(true), Null, I(3)]), Null);
        assert_eq!(
            types("IF", &[Some(DataType::Bool), INT, DOUBLE]),
            Ok(DataType::Double)
        );
        assert_eq!(
            types("IF", &[INT, INT, INT]).unwrap_err(),
            "IF expects a BOOLEAN first argument, found BIGINT"
        );
        assert_eq!(ok("IFNULL", &[Null, I(5)]), I(5));
        assert_eq!(ok("IFNULL", &[I(1), I(5)]), I(1));
        assert_eq!(ok("IFNULL", &[I(1), D(5.0)]), D(1.0));
        assert_eq!(ok("IFNULL", &[Null, Null]), Null);
        assert!(types("IFNULL", &[INT]).is_err());
    }

    #[test]
    fn arrays_widen_element_wise() {
        let ints = Value::List(vec![I(1)]);
        let doubles = Value::List(vec![D(0.5)]);
        assert_eq!(ok("COALESCE", &[ints, doubles]), Value::List(vec![D(1.0)]));
    }
}
