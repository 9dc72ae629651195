//! CSV decoding.
