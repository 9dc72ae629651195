//! The `file` source: local files (a path or glob), JSON lines or CSV, gzip by extension.
//! Files are read one after another in name order; each file is a partition, so its
//! watermark counts while it is being read and stops counting when it ends.

use std::fs::File;
use std::io::{BufReader, Read};

use super::lines::{DecodePool, read_partition};
use super::{Source, SourceContext, SourceEvent};
use crate::config::source::{Compression, FileSource as FileConfig};

pub struct FileSource {
    config: FileConfig,
}

impl FileSource {
    pub fn new(config: FileConfig) -> FileSource {
        FileSource { config }
    }

    /// The files to read, in name order.
    fn files(&self) -> Result<Vec<std::path::PathBuf>, String> {
        let pattern = &self.config.path;
        let is_glob = pattern.contains(['*', '?', '[']);
        if !is_glob {
            let path = std::path::PathBuf::from(pattern);
            if !path.exists() {
                return Err(format!("input file `{pattern}` does not exist"));
            }
            return Ok(vec![path]);
        }
        let mut files: Vec<_> = glob::glob(pattern)
            .map_err(|e| format!("bad glob `{pattern}`: {e}"))?
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(format!("no file matches `{pattern}`"));
        }
        Ok(files)
    }
}

/// Counts compressed bytes read, for progress on `.gz` inputs.
struct Counting<R> {
    inner: R,
    metrics: std::sync::Arc<crate::engine::metrics::Metrics>,
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

impl Source for FileSource {
    fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), String> {
        let files = self.files()?;
        let total: u64 = files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum();
        ctx.set_total_bytes(total.max(1));
        let mut pool = DecodePool::new(&ctx, &self.config.decoding);
        for (i, path) in files.iter().enumerate() {
            let partition = i as u32;
            let name = path.display().to_string();
            if !ctx.send(SourceEvent::Opened {
                partition,
                name: name.clone(),
            }) {
                return Ok(());
            }
            let file = File::open(path).map_err(|e| format!("opening {name}: {e}"))?;
            let gzip = match self.config.compression {
                Compression::Gzip => true,
                Compression::None => false,
                Compression::Auto => name.ends_with(".gz"),
            };
            // Progress for gzip counts compressed bytes as they are read (the total is the
            // compressed size), so decoded chunks report none.
            let mut input: Box<dyn Read> = if gzip {
                Box::new(flate2::read::MultiGzDecoder::new(Counting {
                    inner: BufReader::new(file),
                    metrics: ctx.metrics.clone(),
                    index: ctx.metrics_index,
                }))
            } else {
                Box::new(file)
            };
            let keep_going = read_partition(
                &mut input,
                partition,
                &ctx,
                &mut pool,
                &self.config.decoding,
                &name,
                !gzip,
            )?;
            if !keep_going || !ctx.send(SourceEvent::Closed { partition }) {
                return Ok(());
            }
        }
        ctx.send(SourceEvent::Finished);
        Ok(())
    }
}
