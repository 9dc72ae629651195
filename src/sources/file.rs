//! The `file` source: local files (a path or glob), JSON lines or CSV, gzip by extension.
//! Files are read one after another in name order; each file is a partition, so its
//! watermark counts while it is being read and stops counting when it ends. A file's position
//! is its path and the byte offset after the last record read; a restart skips finished files
//! and continues the others from their offsets.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};

use super::lines::{DecodePool, PartitionStart, read_partition};
use crate::plan::connectors::{Compression, FileSource as FileSettings};
use crate::runtime::{ConnectorError, Offset, Source, SourceContext, SourceEvent};

pub struct FileSource {
    settings: FileSettings,
}

impl FileSource {
    pub fn new(settings: FileSettings) -> FileSource {
        FileSource { settings }
    }

    /// The files to read, in name order.
    fn files(&self) -> Result<Vec<std::path::PathBuf>, ConnectorError> {
        let pattern = &self.settings.path;
        let is_glob = pattern.contains(['*', '?', '[']);
        if !is_glob {
            let path = std::path::PathBuf::from(pattern);
            if !path.exists() {
                return Err(ConnectorError::user(format!(
                    "input file `{pattern}` does not exist"
                )));
            }
            return Ok(vec![path]);
        }
        let mut files: Vec<_> = glob::glob(pattern)
            .map_err(|e| ConnectorError::user(format!("bad glob `{pattern}`: {e}")))?
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(ConnectorError::user(format!("no file matches `{pattern}`")));
        }
        Ok(files)
    }
}

/// Counts compressed bytes read, for progress on `.gz` inputs.
struct Counting<R> {
    inner: R,
    metrics: std::sync::Arc<crate::runtime::Metrics>,
    index: usize,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.metrics.sources[self.index]
            .bytes
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// The first line of a file (a CSV header), without its line ending.
fn first_line(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    BufReader::new(File::open(path)?).read_until(b'\n', &mut line)?;
    let trimmed = line.strip_suffix(b"\n").unwrap_or(&line);
    Ok(trimmed.strip_suffix(b"\r").unwrap_or(trimmed).to_vec())
}

impl Source for FileSource {
    fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), ConnectorError> {
        let files = self.files()?;
        let total: u64 = files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum();
        ctx.set_total_bytes(total.max(1));
        let decoding = &self.settings.decoding;
        let mut pool = DecodePool::new(&ctx, decoding);
        let expects_header = super::decoder(decoding, &ctx.schema).expects_header();
        for (i, path) in files.iter().enumerate() {
            let partition = i as u32;
            let name = path.display().to_string();
            let gzip = match self.settings.compression {
                Compression::Gzip => true,
                Compression::None => false,
                Compression::Auto => name.ends_with(".gz"),
            };
            let mut start = PartitionStart {
                name: Some(name.clone()),
                line: 1,
                ..PartitionStart::default()
            };
            match ctx.start.get(&name) {
                Some(Offset::End) => {
                    // Read completely before a restart.
                    ctx.add_skipped_bytes(std::fs::metadata(path).map_or(0, |m| m.len()));
                    continue;
                }
                Some(Offset::Bytes { offset, line }) => {
                    start.resume = *offset;
                    start.line = *line;
                }
                _ => {}
            }
            if !ctx.send(SourceEvent::Opened {
                partition,
                name: name.clone(),
            }) {
                return Ok(());
            }
            let io = |e: std::io::Error| ConnectorError::io(&format!("opening {name}"), &e);
            let mut file = File::open(path).map_err(io)?;
            // Progress for gzip counts compressed bytes as they are read (the total is the
            // compressed size), so decoded chunks report none.
            let mut input: Box<dyn Read> = if gzip {
                Box::new(flate2::read::MultiGzDecoder::new(Counting {
                    inner: BufReader::new(file),
                    metrics: ctx.metrics.clone(),
                    index: ctx.metrics_index,
                }))
            } else {
                if start.resume > 0 {
                    // Plain files seek to where the restart left off (reading the header
                    // separately when the format has one).
                    if expects_header {
                        start.header = Some(first_line(path).map_err(io)?);
                    }
                    file.seek(SeekFrom::Start(start.resume)).map_err(io)?;
                    start.base = start.resume;
                    ctx.add_skipped_bytes(start.resume);
                }
                Box::new(file)
            };
            let keep_going = read_partition(
                &mut input, partition, &start, &ctx, &mut pool, decoding, &name, !gzip,
            )?;
            if !keep_going || !ctx.send(SourceEvent::Closed { partition }) {
                return Ok(());
            }
        }
        ctx.send(SourceEvent::Finished);
        Ok(())
    }
}
