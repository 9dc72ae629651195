//! The `file` source: local files (a path or glob) or S3 objects (`s3://bucket/prefix/*.jsonl.gz`),
//! JSON lines or CSV, gzip by extension. Files are read one after another in name order; each
//! file is a partition, so its watermark counts while it is being read and stops counting
//! when it ends. A file's position is its path (or `s3://` URL) and the byte offset after the
//! last record read; a restart skips finished files and continues the others from their
//! offsets (S3 objects with a ranged GET).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;

use super::lines::{PartitionStart, decode_pool, read_partition};
use crate::aws::s3::{S3, S3Url};
use crate::plan::connectors::{Compression, FileSource as FileSettings};
use crate::runtime::{ConnectorError, Offset, Source, SourceContext, SourceEvent};

pub struct FileSource {
    settings: FileSettings,
}

/// One file to read.
struct Input {
    /// Its name in positions and messages: a path, or `s3://bucket/key`.
    name: String,
    size: u64,
    location: Location,
}

enum Location {
    Local(PathBuf),
    S3 { bucket: String, key: String },
}

/// Where the files are: this machine, or a bucket (with the client that reads it).
enum Files {
    Local,
    S3(Box<S3>),
}

impl Files {
    /// Opens `input` at byte `offset`.
    fn open(&self, input: &Input, offset: u64) -> Result<Box<dyn Read + Send>, ConnectorError> {
        let io = |e: std::io::Error| ConnectorError::io(&format!("opening {}", input.name), &e);
        match (&input.location, self) {
            (Location::Local(path), _) => {
                let mut file = File::open(path).map_err(io)?;
                if offset > 0 {
                    file.seek(SeekFrom::Start(offset)).map_err(io)?;
                }
                Ok(Box::new(file))
            }
            (Location::S3 { bucket, key }, Files::S3(s3)) => {
                Ok(Box::new(s3.open_read(bucket, key, offset)?))
            }
            (Location::S3 { .. }, Files::Local) => Err(ConnectorError::internal(
                "an S3 object without an S3 client",
            )),
        }
    }
}

impl FileSource {
    pub fn new(settings: FileSettings) -> FileSource {
        FileSource { settings }
    }

    /// The files to read, in name order.
    fn files(&self) -> Result<(Files, Vec<Input>), ConnectorError> {
        let pattern = &self.settings.path;
        if pattern.starts_with("s3://") {
            return self.objects();
        }
        let is_glob = pattern.contains(['*', '?', '[']);
        let local = |path: PathBuf| Input {
            name: path.display().to_string(),
            size: std::fs::metadata(&path).map_or(0, |m| m.len()),
            location: Location::Local(path),
        };
        if !is_glob {
            let path = PathBuf::from(pattern);
            if !path.exists() {
                return Err(ConnectorError::user(format!(
                    "input file `{pattern}` does not exist"
                )));
            }
            return Ok((Files::Local, vec![local(path)]));
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
        Ok((Files::Local, files.into_iter().map(local).collect()))
    }

    /// S3 objects: one key, or every key matching a glob (`*` stays within one level).
    fn objects(&self) -> Result<(Files, Vec<Input>), ConnectorError> {
        let pattern = &self.settings.path;
        let location = S3Url::parse(pattern)
            .ok_or_else(|| ConnectorError::user(format!("`{pattern}` is not s3://bucket/key")))?;
        // Region and endpoint from the AWS environment (AWS_REGION, AWS_ENDPOINT_URL_S3…).
        let s3 = S3::connect(&crate::aws::AwsSettings::default(), None)?;
        s3.check_bucket(&location.bucket)?;
        let bucket = &location.bucket;
        let input = |key: String, size: u64| Input {
            name: crate::aws::s3::url(bucket, &key),
            size,
            location: Location::S3 {
                bucket: bucket.clone(),
                key,
            },
        };
        let Some(glob_at) = location.key.find(['*', '?', '[']) else {
            let size = s3.size(bucket, &location.key)?.ok_or_else(|| {
                ConnectorError::user(format!("input object `{pattern}` does not exist"))
            })?;
            let key = location.key.clone();
            return Ok((Files::S3(Box::new(s3)), vec![input(key, size)]));
        };
        let matcher = glob::Pattern::new(&location.key)
            .map_err(|e| ConnectorError::user(format!("bad glob `{pattern}`: {e}")))?;
        let options = glob::MatchOptions {
            require_literal_separator: true,
            ..glob::MatchOptions::new()
        };
        let objects: Vec<Input> = s3
            .list(bucket, &location.key[..glob_at], None)?
            .into_iter()
            .filter(|o| !o.key.ends_with('/') && matcher.matches_with(&o.key, options))
            .map(|o| input(o.key, o.size))
            .collect();
        if objects.is_empty() {
            return Err(ConnectorError::user(format!(
                "no object matches `{pattern}`"
            )));
        }
        Ok((Files::S3(Box::new(s3)), objects))
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
fn first_line(files: &Files, input: &Input) -> Result<Vec<u8>, ConnectorError> {
    let mut line = Vec::new();
    BufReader::new(files.open(input, 0)?)
        .read_until(b'\n', &mut line)
        .map_err(|e| ConnectorError::io(&format!("reading {}", input.name), &e))?;
    let trimmed = line.strip_suffix(b"\n").unwrap_or(&line);
    Ok(trimmed.strip_suffix(b"\r").unwrap_or(trimmed).to_vec())
}

impl Source for FileSource {
    fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), ConnectorError> {
        let (files, inputs) = self.files()?;
        let total: u64 = inputs.iter().map(|f| f.size).sum();
        ctx.set_total_bytes(total.max(1));
        let decoding = &self.settings.decoding;
        let mut pool = decode_pool(&ctx, decoding);
        let expects_header = super::decoder(decoding, &ctx.schema).expects_header();
        for (i, file) in inputs.iter().enumerate() {
            let partition = i as u32;
            let name = file.name.clone();
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
                    ctx.add_skipped_bytes(file.size);
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
            // Progress for gzip counts compressed bytes as they are read (the total is the
            // compressed size), so decoded chunks report none.
            let mut input: Box<dyn Read> = if gzip {
                Box::new(flate2::read::MultiGzDecoder::new(Counting {
                    inner: BufReader::new(files.open(file, 0)?),
                    metrics: ctx.metrics.clone(),
                    index: ctx.metrics_index,
                }))
            } else if start.resume > 0 {
                // Plain files start where the restart left off (reading the header
                // separately when the format has one).
                if expects_header {
                    start.header = Some(first_line(&files, file)?);
                }
                start.base = start.resume;
                ctx.add_skipped_bytes(start.resume);
                files.open(file, start.resume)?
            } else {
                files.open(file, 0)?
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
