//! A small binary codec for checkpointed state: what operators, sources and sinks write into a
//! snapshot and read back on restore.
//!
//! Integers are LEB128 varints (signed ones zigzag-encoded), so state is compact without a
//! schema; byte strings are length-prefixed. Readers check every length against what is
//! left, so a truncated or corrupt snapshot is an error, never a panic or a huge allocation.

use std::fmt;

/// Why state could not be read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateError(pub String);

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StateError {}

pub type StateResult<T> = Result<T, StateError>;

/// Appends state to a byte buffer.
#[derive(Debug, Default)]
pub struct StateWriter {
    buf: Vec<u8>,
}

impl StateWriter {
    pub fn new() -> StateWriter {
        StateWriter::default()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }

    pub fn u64(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    pub fn usize(&mut self, v: usize) {
        self.u64(v as u64);
    }

    pub fn i64(&mut self, v: i64) {
        self.u64(((v << 1) ^ (v >> 63)) as u64);
    }

    pub fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_bits().to_le_bytes());
    }

    pub fn bytes(&mut self, v: &[u8]) {
        self.usize(v.len());
        self.buf.extend_from_slice(v);
    }

    pub fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }

    pub fn opt_i64(&mut self, v: Option<i64>) {
        self.bool(v.is_some());
        if let Some(v) = v {
            self.i64(v);
        }
    }
}

/// Reads state written by a [`StateWriter`], in the same order.
#[derive(Debug, Clone)]
pub struct StateReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> StateReader<'a> {
    pub fn new(buf: &'a [u8]) -> StateReader<'a> {
        StateReader { buf, pos: 0 }
    }

    pub fn is_at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    fn error(&self, what: &str) -> StateError {
        StateError(format!("{what} at byte {} of {}", self.pos, self.buf.len()))
    }

    pub fn u8(&mut self) -> StateResult<u8> {
        let v = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| self.error("state ends early"))?;
        self.pos += 1;
        Ok(v)
    }

    pub fn bool(&mut self) -> StateResult<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.error("bad boolean")),
        }
    }

    pub fn u64(&mut self) -> StateResult<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.error("varint too long"))
    }

    pub fn i64(&mut self) -> StateResult<i64> {
        let v = self.u64()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    pub fn u32(&mut self) -> StateResult<u32> {
        u32::try_from(self.u64()?).map_err(|_| self.error("value out of range"))
    }

    /// A count of items that follow, each taking at least `min_bytes`: bounded by what is
    /// left, so a corrupt count cannot make a reader allocate without limit.
    pub fn count(&mut self, min_bytes: usize) -> StateResult<usize> {
        let n = self.u64()?;
        let left = (self.buf.len() - self.pos) as u64;
        if n.saturating_mul(min_bytes.max(1) as u64) > left {
            return Err(self.error("count larger than the state left"));
        }
        Ok(n as usize)
    }

    pub fn f64(&mut self) -> StateResult<f64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_bits(u64::from_le_bytes(a)))
    }

    fn take(&mut self, n: usize) -> StateResult<&'a [u8]> {
        if self.buf.len() - self.pos < n {
            return Err(self.error("state ends early"));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn bytes(&mut self) -> StateResult<&'a [u8]> {
        let n = self.count(1)?;
        self.take(n)
    }

    pub fn str(&mut self) -> StateResult<&'a str> {
        let b = self.bytes()?;
        std::str::from_utf8(b).map_err(|_| self.error("text is not UTF-8"))
    }

    pub fn string(&mut self) -> StateResult<String> {
        self.str().map(str::to_string)
    }

    pub fn opt_i64(&mut self) -> StateResult<Option<i64>> {
        Ok(if self.bool()? {
            Some(self.i64()?)
        } else {
            None
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        let mut w = StateWriter::new();
        for v in [0i64, 1, -1, 63, -64, i64::MIN, i64::MAX] {
            w.i64(v);
        }
        w.u64(u64::MAX);
        w.f64(-0.5);
        w.str("héllo");
        w.bytes(&[0, 255]);
        w.bool(true);
        w.opt_i64(None);
        w.opt_i64(Some(-7));
        let bytes = w.into_bytes();
        let mut r = StateReader::new(&bytes);
        for v in [0i64, 1, -1, 63, -64, i64::MIN, i64::MAX] {
            assert_eq!(r.i64().unwrap(), v);
        }
        assert_eq!(r.u64().unwrap(), u64::MAX);
        assert_eq!(r.f64().unwrap(), -0.5);
        assert_eq!(r.str().unwrap(), "héllo");
        assert_eq!(r.bytes().unwrap(), &[0, 255]);
        assert!(r.bool().unwrap());
        assert_eq!(r.opt_i64().unwrap(), None);
        assert_eq!(r.opt_i64().unwrap(), Some(-7));
        assert!(r.is_at_end());
    }

    #[test]
    fn truncated_and_corrupt_state_is_an_error() {
        let mut w = StateWriter::new();
        w.str("a longer string");
        let bytes = w.into_bytes();
        for cut in 0..bytes.len() {
            assert!(StateReader::new(&bytes[..cut]).str().is_err());
        }
        // A count claiming more items than bytes left.
        let mut w = StateWriter::new();
        w.u64(1 << 40);
        let bytes = w.into_bytes();
        assert!(StateReader::new(&bytes).count(1).is_err());
    }
}
