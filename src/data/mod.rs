//! The in-memory data model shared by every stage: types, schemas, columnar batches and
//! single values.
//!
//! Records travel between stages as [`Batch`]es of [`Column`]s (strings packed in one buffer per
//! column), so decoding, filtering and aggregating touch contiguous memory and allocate per
//! batch, not per record. See BENCHMARKS.md for the measurement behind this choice.

mod batch;
mod column;
pub mod key;
pub mod time;
mod value;

use std::fmt;
use std::sync::Arc;

pub use batch::Batch;
pub use column::{Column, ColumnData, Strings};
pub use value::{OwnedValue, Value};

/// The type of a column or expression (Flink SQL names in comments).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DataType {
    /// BOOLEAN
    Bool,
    /// BIGINT
    Int,
    /// DOUBLE
    Double,
    /// TIMESTAMP_LTZ(3): milliseconds since the Unix epoch, shown in UTC.
    Timestamp,
    /// STRING
    String,
    /// ARRAY<T>
    Array(Box<DataType>),
}

impl DataType {
    pub fn is_numeric(&self) -> bool {
        matches!(self, DataType::Int | DataType::Double)
    }

    /// The Flink SQL name of this type.
    pub fn sql_name(&self) -> String {
        match self {
            DataType::Bool => "BOOLEAN".to_string(),
            DataType::Int => "BIGINT".to_string(),
            DataType::Double => "DOUBLE".to_string(),
            DataType::Timestamp => "TIMESTAMP_LTZ(3)".to_string(),
            DataType::String => "STRING".to_string(),
            DataType::Array(t) => format!("ARRAY<{}>", t.sql_name()),
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql_name())
    }
}

/// A named, typed column of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub data_type: DataType,
    /// For BIGINT fields declared `timestamp_ms`/`timestamp_s`: milliseconds per unit, so
    /// they can serve as event time and in path templates.
    pub epoch_unit_ms: Option<i64>,
}

impl Field {
    pub fn new(name: impl Into<String>, data_type: DataType) -> Field {
        Field {
            name: name.into(),
            data_type,
            epoch_unit_ms: None,
        }
    }

    /// Whether values of this field are points in time (usable as event time).
    pub fn is_time(&self) -> bool {
        self.data_type == DataType::Timestamp || self.epoch_unit_ms.is_some()
    }
}

/// The ordered fields of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Schema {
    pub fields: Vec<Field>,
}

pub type SchemaRef = Arc<Schema>;

impl Schema {
    pub fn new(fields: Vec<Field>) -> Schema {
        Schema { fields }
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// Case-insensitive lookup, for "did you mean" on a wrongly cased name.
    pub fn index_of_ignore_case(&self, name: &str) -> Option<usize> {
        self.fields
            .iter()
            .position(|f| f.name.eq_ignore_ascii_case(name))
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.index_of(name).map(|i| &self.fields[i])
    }

    pub fn names(&self) -> Vec<&str> {
        self.fields.iter().map(|f| f.name.as_str()).collect()
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} {}", field.name, field.data_type)?;
            if let Some(unit) = field.epoch_unit_ms {
                write!(f, " (epoch {})", if unit == 1 { "ms" } else { "s" })?;
            }
        }
        Ok(())
    }
}

/// A row as a JSON object, for dead letters of transforms.
pub fn row_json(schema: &Schema, columns: &[Column], row: usize) -> String {
    let mut obj = serde_json::Map::new();
    for (field, column) in schema.fields.iter().zip(columns) {
        obj.insert(field.name.clone(), value_json(&column.value(row)));
    }
    serde_json::Value::Object(obj).to_string()
}

fn value_json(v: &Value<'_>) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Double(d) => {
            serde_json::Number::from_f64(*d).map_or(serde_json::Value::Null, Into::into)
        }
        Value::Timestamp(t) => crate::data::time::format_sql(*t).into(),
        Value::Str(s) => s.to_string().into(),
        Value::List(items) => items.iter().map(value_json).collect::<Vec<_>>().into(),
    }
}
