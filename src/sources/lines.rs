//! Reading newline-separated records from a byte stream (files, stdin) and decoding them on a
//! pool of threads while keeping their order.
//!
//! The reader cuts the input into chunks of whole lines; workers decode chunks into batches
//! (and extract event time) in parallel; the reader forwards results to the engine strictly in
//! input order, so watermarks and results are the same as with one thread.

use std::io::Read;
use std::sync::Arc;

use super::extract_event_time;
use super::pool::{Decoded, OrderedPool, Worker, worker_count};
use crate::data::Batch;
use crate::format::{BadRecord, Decoder};
use crate::plan::connectors::Decoding;
use crate::runtime::{ConnectorError, Offset, Position, SourceContext};

/// Bytes per chunk: large enough to amortise hand-offs, small enough to keep batches cache
/// friendly and progress smooth.
const CHUNK_BYTES: usize = 1 << 20;

/// One chunk of whole lines to decode.
pub struct Job {
    chunk: Vec<u8>,
    first_line: u64,
    /// The CSV header of the file this chunk comes from.
    header: Option<Arc<Vec<u8>>>,
    partition: u32,
    /// Whether the chunk's size counts as input progress.
    count_bytes: bool,
    /// The position just after the chunk (`None` for inputs that cannot be replayed).
    position: Option<Position>,
}

/// A pool of decoding threads for one source, forwarding batches in input order.
pub type DecodePool = OrderedPool<Job>;

/// The pool decoding lines of `decoding`'s format for `ctx`'s source.
pub fn decode_pool(ctx: &SourceContext, decoding: &Decoding) -> DecodePool {
    let workers = (0..worker_count())
        .map(|_| {
            let mut decoder = super::decoder(decoding, &ctx.schema);
            let ctx = ctx.clone();
            let mut header: Option<Arc<Vec<u8>>> = None;
            let work: Worker<Job> =
                Box::new(move |job| decode_job(job, decoder.as_mut(), &mut header, &ctx));
            work
        })
        .collect();
    OrderedPool::new(ctx, workers)
}

fn decode_job(
    job: Job,
    decoder: &mut dyn Decoder,
    header: &mut Option<Arc<Vec<u8>>>,
    ctx: &SourceContext,
) -> Decoded {
    if let Some(h) = &job.header
        && header.as_ref().is_none_or(|cur| !Arc::ptr_eq(cur, h))
    {
        // Validated when the file was opened; a failure here was reported there.
        let _ = decoder.read_header(h);
        *header = Some(h.clone());
    }
    let mut batch = Batch::with_capacity(
        &ctx.schema
            .fields
            .iter()
            .map(|f| f.data_type.clone())
            .collect::<Vec<_>>(),
        job.chunk.len() / 48,
    );
    let mut bad = Vec::new();
    decoder.decode_lines(&job.chunk, job.first_line, &mut batch, &mut bad);
    if let Some(et) = &ctx.event_time {
        // Lines of good rows are needed only when some record lacks an event time (a
        // column without NULLs has no validity mask), so they are recovered only then.
        let lines = if batch.columns[et.column].valid.is_some() {
            good_row_lines(&job.chunk, job.first_line, &bad, batch.num_rows)
        } else {
            Vec::new()
        };
        let origin = |row: usize| {
            let (line, bytes) = lines.get(row)?;
            Some((*line, &job.chunk[bytes.clone()]))
        };
        extract_event_time(&mut batch, et, &ctx.schema, &origin, &mut bad);
        // Dead letters in input order, whichever check caught them.
        bad.sort_by_key(|b| b.line);
    }
    Decoded {
        partition: job.partition,
        batch,
        bad,
        bytes: if job.count_bytes {
            job.chunk.len() as u64
        } else {
            0
        },
        position: job.position,
    }
}

/// The line number and bytes (without the line end) of each decoded row of a chunk: the
/// non-blank lines not reported bad.
fn good_row_lines(
    chunk: &[u8],
    first_line: u64,
    bad: &[BadRecord],
    rows: usize,
) -> Vec<(u64, std::ops::Range<usize>)> {
    let bad_lines: std::collections::HashSet<u64> = bad.iter().map(|b| b.line).collect();
    let mut lines = Vec::with_capacity(rows);
    let mut start = 0;
    for (i, raw) in chunk.split(|&b| b == b'\n').enumerate() {
        if lines.len() == rows {
            break;
        }
        let line = first_line + i as u64;
        if !raw.iter().all(u8::is_ascii_whitespace) && !bad_lines.contains(&line) {
            let end = start + raw.strip_suffix(b"\r").unwrap_or(raw).len();
            lines.push((line, start..end));
        }
        start += raw.len() + 1;
    }
    lines
}

/// Where reading one partition starts.
#[derive(Debug, Clone, Default)]
pub struct PartitionStart {
    /// The input's name in positions (a file path); `None` when it cannot be replayed.
    pub name: Option<String>,
    /// Absolute offset of the input's first byte (the reader seeked there), else 0.
    pub base: u64,
    /// Bytes before this absolute offset were processed before a restart: skipped, not
    /// decoded (for inputs that cannot seek, like gzip).
    pub resume: u64,
    /// The line number at `resume` (1 at the start).
    pub line: u64,
    /// The CSV header, when the reader seeked past it.
    pub header: Option<Vec<u8>>,
}

/// Reads `input` (partition `partition`) to its end in chunks of whole lines, decoding on the
/// pool; every chunk's batch carries the position after it. Returns `false` when a stop was
/// requested or the engine went away.
///
/// # Errors
/// Read errors and CSV header problems.
#[allow(clippy::too_many_arguments)]
pub fn read_partition(
    input: &mut dyn Read,
    partition: u32,
    start: &PartitionStart,
    ctx: &SourceContext,
    pool: &mut DecodePool,
    decoding: &Decoding,
    describe: &str,
    count_bytes: bool,
) -> Result<bool, ConnectorError> {
    // A decoder of our own checks the header before workers see chunks.
    let mut probe = super::decoder(decoding, &ctx.schema);
    let expects_header = probe.expects_header();
    let mut carry: Vec<u8> = Vec::new();
    let mut next_line: u64 = if start.resume > 0 {
        start.line.max(1)
    } else {
        1
    };
    let mut header: Option<Arc<Vec<u8>>> = None;
    if let Some(h) = &start.header
        && expects_header
    {
        probe
            .read_header(h)
            .map_err(|e| ConnectorError::user(format!("{describe}: bad CSV header: {e}")))?;
        header = Some(Arc::new(h.clone()));
    }
    // Absolute offset of the first byte of `carry` / the next chunk.
    let mut consumed = start.base;
    let mut eof = false;
    while !eof {
        if ctx.stopped() {
            return Ok(false);
        }
        let mut chunk = std::mem::take(&mut carry);
        let filled_before = chunk.len();
        chunk.resize(filled_before + CHUNK_BYTES, 0);
        // One read per chunk: a file fills it, while a pipe hands over what has arrived, so
        // records from a slow stream (`tail -f … |`) are processed without waiting for more.
        let filled = loop {
            match input.read(&mut chunk[filled_before..]) {
                Ok(0) => {
                    eof = true;
                    break filled_before;
                }
                Ok(n) => break filled_before + n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(ConnectorError::io(&format!("reading {describe}"), &e));
                }
            }
        };
        chunk.truncate(filled);
        // Keep a trailing partial line for the next chunk (unless the input ended).
        if !eof {
            match memchr::memrchr(b'\n', &chunk) {
                Some(i) => carry = chunk.split_off(i + 1),
                None => {
                    carry = chunk;
                    continue;
                }
            }
        }
        if expects_header && header.is_none() {
            let end = memchr::memchr(b'\n', &chunk).map_or(chunk.len(), |i| i + 1);
            let line: Vec<u8> = chunk.drain(..end).collect();
            consumed += line.len() as u64;
            let trimmed = line.strip_suffix(b"\n").unwrap_or(&line);
            let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
            probe
                .read_header(trimmed)
                .map_err(|e| ConnectorError::user(format!("{describe}: bad CSV header: {e}")))?;
            header = Some(Arc::new(trimmed.to_vec()));
            if start.resume == 0 {
                next_line += 1;
            }
        }
        if consumed < start.resume {
            // Already processed before a restart (positions are at line ends).
            let skip = ((start.resume - consumed) as usize).min(chunk.len());
            chunk.drain(..skip);
            consumed += skip as u64;
        }
        if chunk.is_empty() {
            continue;
        }
        let lines = memchr::memchr_iter(b'\n', &chunk).count() as u64;
        let first_line = next_line;
        next_line += lines;
        consumed += chunk.len() as u64;
        let position = start.name.as_ref().map(|name| {
            Position::new(
                name.clone(),
                Offset::Bytes {
                    offset: consumed,
                    line: next_line,
                },
            )
        });
        let job = Job {
            chunk,
            first_line,
            header: header.clone(),
            partition,
            count_bytes,
            position,
        };
        if !pool.submit(job) {
            return Ok(false);
        }
    }
    Ok(pool.flush())
}
