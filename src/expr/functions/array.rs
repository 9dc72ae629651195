//! Array functions.

use std::cmp::Ordering;

use super::Function;
use super::args::{P, check, common_type, i64_at, list_at, sig, value_at};
use crate::data::{DataType, Value};

/// The element type of an (optionally untyped) array argument.
fn element_type(t: Option<&Option<DataType>>) -> Option<DataType> {
    match t {
        Some(Some(DataType::Array(e))) => Some((**e).clone()),
        _ => None,
    }
}

pub(super) fn functions() -> Vec<Function> {
    vec![
        Function::strict(
            "CARDINALITY",
            "CARDINALITY(array) → BIGINT",
            "The number of elements of the array.",
            |a| sig("CARDINALITY", a, &[P::Array], &[], DataType::Int),
            |a| Ok(Value::Int(list_at(a, 0)?.len() as i64)),
        ),
        Function::sees_nulls(
            "ARRAY_CONTAINS",
            "ARRAY_CONTAINS(array, value) → BOOLEAN",
            "Whether the array has an element equal to `value` (a NULL value looks for a NULL element); NULL if the array is NULL.",
            |a| {
                check("ARRAY_CONTAINS", a, &[P::Array, P::Any], &[])?;
                let element = element_type(a.first());
                common_type("ARRAY_CONTAINS", [&element, &a[1]])?;
                Ok(DataType::Bool)
            },
            |a| {
                if value_at(a, 0)?.is_null() {
                    return Ok(Value::Null);
                }
                let needle = value_at(a, 1)?;
                let found = list_at(a, 0)?.iter().any(|x| match (x, needle) {
                    (Value::Null, Value::Null) => true,
                    _ => x.sql_cmp(needle) == Some(Ordering::Equal),
                });
                Ok(Value::Bool(found))
            },
        ),
        Function::strict(
            "ELEMENT_AT",
            "ELEMENT_AT(array, index) → element type",
            "The element at 1-based `index` (`array[index]`); NULL if the index is out of range.",
            |a| {
                check("ELEMENT_AT", a, &[P::Array, P::Int], &[])?;
                Ok(element_type(a.first()).unwrap_or(DataType::String))
            },
            |a| {
                let items = list_at(a, 0)?;
                let index = i64_at(a, 1)?;
                Ok(usize::try_from(index)
                    .ok()
                    .and_then(|i| i.checked_sub(1))
                    .and_then(|i| items.get(i))
                    .map_or(Value::Null, Value::to_owned_value))
            },
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::test_support::{ok as call, types};

    fn arr(t: DataType) -> Option<DataType> {
        Some(DataType::Array(Box::new(t)))
    }

    use Value::{Int as I, Null};

    #[test]
    fn cardinality() {
        assert_eq!(call("CARDINALITY", &[Value::List(vec![I(1), Null])]), I(2));
        assert_eq!(call("CARDINALITY", &[Value::List(vec![])]), I(0));
        assert_eq!(call("CARDINALITY", &[Null]), Null);
        assert_eq!(
            types("CARDINALITY", &[Some(DataType::Int)]).unwrap_err(),
            "CARDINALITY expects an ARRAY argument, found BIGINT"
        );
    }

    #[test]
    fn array_contains() {
        let list = Value::List(vec![I(1), Null, I(3)]);
        assert_eq!(
            call("ARRAY_CONTAINS", &[list.clone(), I(3)]),
            Value::Bool(true)
        );
        assert_eq!(
            call("ARRAY_CONTAINS", &[list.clone(), I(2)]),
            Value::Bool(false)
        );
        assert_eq!(
            call("ARRAY_CONTAINS", &[list.clone(), Value::Double(3.0)]),
            Value::Bool(true)
        );
        assert_eq!(call("ARRAY_CONTAINS", &[list, Null]), Value::Bool(true));
        assert_eq!(
            call("ARRAY_CONTAINS", &[Value::List(vec![I(1)]), Null]),
            Value::Bool(false)
        );
        assert_eq!(call("ARRAY_CONTAINS", &[Null, I(1)]), Null);
        assert_eq!(
            types(
                "ARRAY_CONTAINS",
                &[arr(DataType::Int), Some(DataType::Double)]
            ),
            Ok(DataType::Bool)
        );
        assert!(
            types(
                "ARRAY_CONTAINS",
                &[arr(DataType::Int), Some(DataType::String)]
            )
            .is_err()
        );
        assert!(
            types(
                "ARRAY_CONTAINS",
                &[Some(DataType::Int), Some(DataType::Int)]
            )
            .is_err()
        );
    }

    #[test]
    fn element_at() {
        let list = Value::List(vec![I(10), I(20)]);
        assert_eq!(call("ELEMENT_AT", &[list.clone(), I(1)]), I(10));
        assert_eq!(call("ELEMENT_AT", &[list.clone(), I(2)]), I(20));
        assert_eq!(call("ELEMENT_AT", &[list.clone(), I(3)]), Null);
        assert_eq!(call("ELEMENT_AT", &[list.clone(), I(0)]), Null);
        assert_eq!(call("ELEMENT_AT", &[list, I(-1)]), Null);
        assert_eq!(
            types("ELEMENT_AT", &[arr(DataType::String), Some(DataType::Int)]),
            Ok(DataType::String)
        );
        assert_eq!(
            types("ELEMENT_AT", &[arr(DataType::Double), None]),
            Ok(DataType::Double)
        );
    }
}
