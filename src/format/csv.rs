//! CSV decoding. TEMPORARY stand-in until the real decoder lands.

use super::{BadRecord, Decoder};
use crate::data::{Batch, Schema};

pub struct CsvDecoder;

impl CsvDecoder {
    pub fn new(_schema: &Schema, _delimiter: u8, _header: bool) -> CsvDecoder {
        CsvDecoder
    }
}

impl Decoder for CsvDecoder {
    fn decode_lines(
        &mut self,
        _chunk: &[u8],
        _first_line: u64,
        _out: &mut Batch,
        _bad: &mut Vec<BadRecord>,
    ) {
    }

    fn decode_message(&mut self, _bytes: &[u8], _out: &mut Batch) -> Result<(), String> {
        Err("csv decoding not available".to_string())
    }
}
