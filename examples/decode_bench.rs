//! Decoder throughput on movie-impression lines, single-threaded:
//!
//! ```text
//! cargo run --release --example decode_bench [LINES]
//! ```
//!
//! Generates LINES (default 1,000,000) lines such as
//! `{"movieId":"m17","userId":"u493","timestamp":1546845718557}` (and the same data as CSV),
//! cuts them into 1 MiB chunks of whole lines as the file source does, and decodes each
//! chunk into a fresh batch. Prints the best of five passes.

use std::io::Write;
use std::time::{Duration, Instant};

use streamctl::data::{Batch, DataType, Field, Schema};
use streamctl::format::Decoder;
use streamctl::format::csv::CsvDecoder;
use streamctl::format::json::JsonDecoder;

const CHUNK: usize = 1 << 20;
const PASSES: usize = 5;

fn main() {
    let lines: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut timestamp = Field::new("timestamp", DataType::Int);
    timestamp.epoch_unit_ms = Some(1);
    let schema = Schema::new(vec![
        Field::new("movieId", DataType::String),
        Field::new("userId", DataType::String),
        timestamp,
    ]);

    let mut json = Vec::with_capacity(lines * 64);
    let mut csv = Vec::with_capacity(lines * 32);
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = |bound: u64| {
        // xorshift64: reproducible input without a dependency.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % bound
    };
    for i in 0..lines as u64 {
        let (movie, user) = (next(5_000), next(100_000));
        let ts = 1_546_845_718_557 + i * 3 + next(1_000);
        writeln!(
            json,
            r#"{{"movieId":"m{movie}","userId":"u{user}","timestamp":{ts}}}"#
        )
        .unwrap();
        writeln!(csv, "m{movie},u{user},{ts}").unwrap();
    }

    bench("json", &mut JsonDecoder::new(&schema), &schema, &json);
    bench(
        "csv",
        &mut CsvDecoder::new(&schema, b',', false),
        &schema,
        &csv,
    );
}

fn bench(name: &str, decoder: &mut dyn Decoder, schema: &Schema, input: &[u8]) {
    let chunks = split_lines(input, CHUNK);
    let types: Vec<DataType> = schema.fields.iter().map(|f| f.data_type.clone()).collect();
    let mut best = Duration::MAX;
    let (mut rows, mut bad) = (0, Vec::new());
    for _ in 0..PASSES {
        rows = 0;
        bad.clear();
        let start = Instant::now();
        for chunk in &chunks {
            let mut out = Batch::with_capacity(&types, chunk.len() / 40);
            decoder.decode_lines(chunk, 1, &mut out, &mut bad);
            rows += out.num_rows;
            std::hint::black_box(&out);
        }
        best = best.min(start.elapsed());
    }
    assert!(bad.is_empty(), "{name}: {:?}", bad.first());
    let secs = best.as_secs_f64();
    println!(
        "{name:>4}: {:>7.1} MB/s  {:>6.2} M lines/s  ({rows} lines, {:.1} MB, best of {PASSES}: {:.1} ms)",
        input.len() as f64 / secs / 1e6,
        rows as f64 / secs / 1e6,
        input.len() as f64 / 1e6,
        secs * 1e3,
    );
}

/// Cuts `input` into chunks of about `size` bytes that end at line ends.
fn split_lines(input: &[u8], size: usize) -> Vec<&[u8]> {
    let mut chunks = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let cut = if rest.len() <= size {
            rest.len()
        } else {
            rest[size..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |i| size + i + 1)
        };
        let (chunk, tail) = rest.split_at(cut);
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}
