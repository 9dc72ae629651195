//! Sinks: where results go. Each connector lives in the file named by its `type:`.

pub mod path_template;
