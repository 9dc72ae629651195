//! Sources: where records come from. Each connector lives in the file named by its `type:`.

pub mod generator;
