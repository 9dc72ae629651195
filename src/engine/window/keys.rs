//! Group keys as compact bytes: hashed and compared without building values per record.
//!
//! Layout per key column: `0` for NULL, or `1` followed by the value (8 bytes little-endian for
//! BIGINT/TIMESTAMP/DOUBLE bits, 1 byte for BOOLEAN, `u32` length + UTF-8 for STRING).

use std::hash::BuildHasher;

pub use crate::data::key::{decode_value, encode_value};
use crate::data::{Column, DataType};

/// Keys up to this many bytes are hashed by a fast path (and stored inline by tables).
pub const INLINE: usize = 24;

/// `key` zero-padded to `INLINE` bytes (its first `INLINE` bytes when longer).
///
/// Every record pads its key: copied as two overlapping fixed-size pieces (the first and
/// the last bytes) rather than by a `memcpy` call for its length, which was most of the
/// engine thread's copying.
#[inline]
pub fn pad(key: &[u8]) -> [u8; INLINE] {
    fn ends<const N: usize>(padded: &mut [u8; INLINE], key: &[u8]) {
        if let (Some(first), Some(last)) = (key.first_chunk::<N>(), key.last_chunk::<N>()) {
            padded[..N].copy_from_slice(first);
            padded[key.len() - N..key.len()].copy_from_slice(last);
        }
    }
    let mut padded = [0u8; INLINE];
    let key = &key[..key.len().min(INLINE)];
    match key.len() {
        0..=3 => {
            for (p, &b) in padded.iter_mut().zip(key) {
                *p = b;
            }
        }
        4..=7 => ends::<4>(&mut padded, key),
        8..=15 => ends::<8>(&mut padded, key),
        _ => ends::<16>(&mut padded, key),
    }
    padded
}

/// Hashes key bytes with a fixed seed, so hashes (and table orders) are the same every run.
#[derive(Clone)]
pub struct KeyHasher(foldhash::fast::FixedState);

impl Default for KeyHasher {
    fn default() -> Self {
        KeyHasher(foldhash::fast::FixedState::with_seed(0x5eed))
    }
}

impl KeyHasher {
    #[inline]
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.hash_padded(key, &pad(key))
    }

    /// Hash of a key whose padded form the caller already has: three multiply-folds over the
    /// padded words for short keys (the common case, and 4% of the run time with a
    /// general-purpose hasher), foldhash for long ones.
    #[inline]
    pub fn hash_padded(&self, key: &[u8], padded: &[u8; INLINE]) -> u64 {
        if key.len() > INLINE {
            return self.0.hash_one(key);
        }
        #[inline]
        fn fold(a: u64, b: u64) -> u64 {
            let full = u128::from(a) * u128::from(b);
            (full as u64) ^ ((full >> 64) as u64)
        }
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&padded[i * 8..i * 8 + 8]);
            u64::from_le_bytes(b)
        };
        let a = fold(
            word(0) ^ 0x243F_6A88_85A3_08D3,
            word(1) ^ 0x1319_8A2E_0370_7344,
        );
        fold(a ^ word(2) ^ key.len() as u64, 0xA409_3822_299F_31D0)
    }
}

/// Encodes and decodes the group keys of one window.
#[derive(Debug, Clone)]
pub struct KeyCodec {
    types: Vec<DataType>,
}

impl KeyCodec {
    pub fn new(types: Vec<DataType>) -> KeyCodec {
        KeyCodec { types }
    }

    pub fn types(&self) -> &[DataType] {
        &self.types
    }

    /// Appends the key of `row` (one value per key column) to `buf`.
    #[inline]
    pub fn encode(&self, columns: &[&Column], row: usize, buf: &mut Vec<u8>) {
        for column in columns {
            encode_value(column, row, buf);
        }
    }

    /// Decodes a key, pushing one value into each of `out` (one column per key).
    #[inline]
    pub fn decode_into(&self, mut key: &[u8], out: &mut [Column]) {
        for (ty, column) in self.types.iter().zip(out.iter_mut()) {
            // BIGINT and TIMESTAMP keys (ids) go straight in: this runs once per output row.
            if matches!(ty, DataType::Int | DataType::Timestamp)
                && let Some((&1, rest)) = key.split_first()
                && let Some((value, rest)) = rest.split_first_chunk::<8>()
            {
                column.push_int(i64::from_le_bytes(*value));
                key = rest;
                continue;
            }
            let (value, rest) = decode_value(ty, key);
            column.push_value(&value);
            key = rest;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pad_keeps_the_first_bytes_and_zeros_the_rest() {
        let long: Vec<u8> = (1..=40).collect();
        for len in 0..=40 {
            let key = &long[..len];
            let mut expected = [0u8; INLINE];
            let n = len.min(INLINE);
            expected[..n].copy_from_slice(&key[..n]);
            assert_eq!(pad(key), expected, "{len}");
        }
    }

    #[test]
    fn keys_round_trip() {
        let mut a = Column::new(&DataType::String, 2);
        a.push_str("m1");
        a.push_null();
        let mut b = Column::new(&DataType::Int, 2);
        b.push_int(-7);
        b.push_int(9);
        let codec = KeyCodec::new(vec![DataType::String, DataType::Int]);
        for row in 0..2 {
            let mut buf = Vec::new();
            codec.encode(&[&a, &b], row, &mut buf);
            let mut out = vec![
                Column::new(&DataType::String, 1),
                Column::new(&DataType::Int, 1),
            ];
            codec.decode_into(&buf, &mut out);
            assert_eq!(out[0].value(0), a.value(row));
            assert_eq!(out[1].value(0), b.value(row));
        }
    }
}
