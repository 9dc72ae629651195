//! JSON decoding (schema-driven, one object per line or message).
