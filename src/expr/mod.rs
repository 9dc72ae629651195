//! SQL expressions: parsed with `sqlparser`, type-checked against a stream's schema, evaluated
//! row by row over batches.

pub mod functions;
