//! serde `Deserializer` over the spanned YAML tree, so the typed config is built from the
//! same tree the schema check walked (and errors keep a position).

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

use super::yaml::{Node, NodeKind, Resolved, is_null_text};
use crate::diag::Span;

/// A deserialization error with the span of the value being read when it happened.
#[derive(Debug)]
pub struct DeError {
    pub message: String,
    pub span: Option<Span>,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            span: None,
        }
    }
}

trait AtSpan<T> {
    fn at(self, span: Span) -> Result<T, DeError>;
}

impl<T> AtSpan<T> for Result<T, DeError> {
    fn at(self, span: Span) -> Result<T, DeError> {
        self.map_err(|mut e| {
            e.span.get_or_insert(span);
            e
        })
    }
}

pub struct NodeDeserializer<'a>(pub &'a Node);

impl NodeDeserializer<'_> {
    fn scalar_text(&self) -> Result<&str, DeError> {
        self.0.as_str().ok_or_else(|| DeError {
            message: format!("expected a value, found {}", self.0.kind_name()),
            span: Some(self.0.span),
        })
    }

    fn parse<T: std::str::FromStr>(&self, what: &str) -> Result<T, DeError> {
        let text = self.scalar_text()?;
        text.trim().parse().map_err(|_| DeError {
            message: format!("expected {what}, found {}", self.0.describe()),
            span: Some(self.0.span),
        })
    }
}

macro_rules! deserialize_number {
    ($method:ident, $visit:ident, $what:literal) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let span = self.0.span;
            let value = self.parse($what)?;
            visitor.$visit(value).at(span)
        }
    };
}

impl<'de> de::Deserializer<'de> for NodeDeserializer<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let node = self.0;
        let result = match &node.kind {
            NodeKind::Scalar(s) => {
                let resolved = s
                    .resolved
                    .unwrap_or_else(|| core_schema_type(&s.value, s.plain));
                match resolved {
                    Resolved::Null => visitor.visit_unit(),
                    Resolved::Bool => visitor.visit_bool(s.value == "true"),
                    Resolved::Int => match s.value.trim().parse::<i64>() {
                        Ok(i) => visitor.visit_i64(i),
                        Err(_) => visitor.visit_str(&s.value),
                    },
                    Resolved::Float => match s.value.trim().parse::<f64>() {
                        Ok(f) => visitor.visit_f64(f),
                        Err(_) => visitor.visit_str(&s.value),
                    },
                    Resolved::String => visitor.visit_borrowed_str(&s.value),
                }
            }
            NodeKind::Seq(items) => visitor.visit_seq(Seq {
                items: items.iter(),
            }),
            NodeKind::Map(entries) => visitor.visit_map(Map {
                entries: entries.iter(),
                value: None,
            }),
        };
        result.at(node.span)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.0.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let span = self.0.span;
        match &self.0.kind {
            NodeKind::Scalar(s) => visitor.visit_borrowed_str(&s.value).at(span),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let span = self.0.span;
        let text = self.scalar_text()?;
        let mut chars = text.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => visitor.visit_char(c).at(span),
            _ => Err(DeError {
                message: format!("expected a single character, found {}", self.0.describe()),
                span: Some(span),
            }),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let span = self.0.span;
        match self.scalar_text()? {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            _ => Err(DeError {
                message: format!("expected `true` or `false`, found {}", self.0.describe()),
                span: Some(span),
            }),
        }
    }

    deserialize_number!(deserialize_i8, visit_i8, "a whole number");
    deserialize_number!(deserialize_i16, visit_i16, "a whole number");
    deserialize_number!(deserialize_i32, visit_i32, "a whole number");
    deserialize_number!(deserialize_i64, visit_i64, "a whole number");
    deserialize_number!(deserialize_u8, visit_u8, "a whole number");
    deserialize_number!(deserialize_u16, visit_u16, "a whole number");
    deserialize_number!(deserialize_u32, visit_u32, "a whole number");
    deserialize_number!(deserialize_u64, visit_u64, "a whole number");
    deserialize_number!(deserialize_f32, visit_f32, "a number");
    deserialize_number!(deserialize_f64, visit_f64, "a number");

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let span = self.0.span;
        match &self.0.kind {
            NodeKind::Scalar(s) => visitor
                .visit_enum(s.value.as_str().into_deserializer())
                .at(span),
            _ => Err(DeError {
                message: format!("expected a name, found {}", self.0.kind_name()),
                span: Some(span),
            }),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        i128 u128 bytes byte_buf unit_struct seq tuple tuple_struct map struct identifier
    }
}

/// YAML 1.2 core-schema typing, for scalars the schema check did not resolve.
fn core_schema_type(text: &str, plain: bool) -> Resolved {
    if !plain {
        Resolved::String
    } else if is_null_text(text) {
        Resolved::Null
    } else if text == "true" || text == "false" {
        Resolved::Bool
    } else if text.parse::<i64>().is_ok() {
        Resolved::Int
    } else if text.parse::<f64>().is_ok() {
        Resolved::Float
    } else {
        Resolved::String
    }
}

struct Seq<'a> {
    items: std::slice::Iter<'a, Node>,
}

impl<'de> SeqAccess<'de> for Seq<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some(node) => seed
                .deserialize(NodeDeserializer(node))
                .at(node.span)
                .map(Some),
            None => Ok(None),
        }
    }
}

struct Map<'a> {
    entries: std::slice::Iter<'a, (Node, Node)>,
    value: Option<&'a Node>,
}

impl<'de> MapAccess<'de> for Map<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(NodeDeserializer(key))
                    .at(key.span)
                    .map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let value = self.value.take().ok_or_else(|| DeError {
            message: "internal error: map value requested before its key".to_string(),
            span: None,
        })?;
        seed.deserialize(NodeDeserializer(value)).at(value.span)
    }
}
