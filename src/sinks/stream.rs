//! Sinks that write one stream of rows: `stdout`, and `file` (one local file, visible under
//! its name only when the run completes).
//!
//! With checkpoints, the `file` sink keeps writing one hidden file across checkpoints: each
//! checkpoint records how much of it is durable, a restart cuts it back to that length and
//! goes on, and the last checkpoint of a completed run publishes it. `stdout` cannot take
//! back what it printed: after a restart it repeats what came after the checkpoint.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

use crate::data::Batch;
use crate::format::encode::{EncodeOptions, Projection, RowWriter, row_writer};
use crate::runtime::sink::read_state;
use crate::runtime::{
    ConnectorError, IfExists, Metrics, PendingObject, Sink, SinkSnapshot, SinkStart, StateWriter,
};

/// Where a stream sink's bytes go.
pub enum Target {
    Stdout,
    File { path: PathBuf },
}

/// The writer of a stream target.
type Out = Box<dyn Write + Send>;

/// Bytes written to a file between two requests to the kernel to start writing them to disk.
const WRITE_BACK_BYTES: u64 = 8 * 1024 * 1024;

/// A file being written and how much of it is in there.
struct Counted {
    out: BufWriter<File>,
    written: Arc<std::sync::atomic::AtomicU64>,
    /// Bytes written since the kernel was last asked to start writing the file back.
    not_written_back: u64,
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.written
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        // The run ends with an fsync of the whole file (or a checkpoint does): left to the
        // kernel, a file of hundreds of MB would be written to disk only then, the run
        // waiting for all of it (0.25 s for the sliding benchmark's 616 MB). Started as the
        // file grows, that writing overlaps the run.
        self.not_written_back += n as u64;
        if self.not_written_back >= WRITE_BACK_BYTES {
            self.not_written_back = 0;
            super::store::start_write_back(self.out.get_ref());
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        // A checkpoint counts bytes as durable only once they are on disk.
        self.out.get_ref().sync_data()
    }
}

pub struct StreamSink {
    target: Target,
    encode: EncodeOptions,
    projection: Projection,
    writer: Option<Box<dyn RowWriter<Out>>>,
    /// Bytes in the hidden file (for checkpoints).
    written: Arc<std::sync::atomic::AtomicU64>,
    /// Rows written and not published yet.
    rows: u64,
    /// The file was prepared for publishing by the last checkpoint.
    publish_pending: bool,
    checkpointing: bool,
    metrics: Arc<Metrics>,
}

impl StreamSink {
    pub fn new(
        target: Target,
        encode: &EncodeOptions,
        projection: &Projection,
        metrics: Arc<Metrics>,
    ) -> StreamSink {
        StreamSink {
            target,
            encode: encode.clone(),
            projection: projection.clone(),
            writer: None,
            written: Arc::default(),
            rows: 0,
            publish_pending: false,
            checkpointing: false,
            metrics,
        }
    }

    fn path(&self) -> Option<&PathBuf> {
        match &self.target {
            Target::File { path } => Some(path),
            Target::Stdout => None,
        }
    }

    fn temp(&self) -> Option<PathBuf> {
        self.path().map(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            path.with_file_name(format!(".{name}.inprogress"))
        })
    }

    fn error(&self, e: std::io::Error) -> ConnectorError {
        if e.kind() == std::io::ErrorKind::BrokenPipe && matches!(self.target, Target::Stdout) {
            return ConnectorError::output_closed();
        }
        let what = match self.path() {
            Some(p) => format!("writing {}", p.display()),
            None => "writing to standard output".to_string(),
        };
        ConnectorError::io(&what, &e)
    }

    /// Opens the hidden file: truncated to `keep` bytes (a restart) or empty, after copying
    /// `append_from` into it (`--if-exists append`). A CSV header is written only at the
    /// start of an empty file.
    fn open_file(
        &mut self,
        keep: Option<u64>,
        append_from: Option<&PathBuf>,
    ) -> Result<(), ConnectorError> {
        let (Some(path), Some(temp)) = (self.path().cloned(), self.temp()) else {
            return Ok(());
        };
        let io = |what: &str, e: std::io::Error| {
            ConnectorError::io(&format!("{what} {}", temp.display()), &e)
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| ConnectorError::io(&format!("creating {}", dir.display()), &e))?;
        }
        let file = match keep {
            Some(len) => {
                let file = OpenOptions::new()
                    .write(true)
                    .open(&temp)
                    .map_err(|e| io("reopening", e))?;
                let have = file.metadata().map_err(|e| io("reading", e))?.len();
                if have < len {
                    return Err(ConnectorError::external(
                        format!(
                            "{} holds {have} bytes but the checkpoint made {len} durable: it was changed by someone else",
                            temp.display()
                        ),
                        false,
                    ));
                }
                file.set_len(len).map_err(|e| io("truncating", e))?;
                file
            }
            None => {
                let file = File::create(&temp).map_err(|e| io("creating", e))?;
                if let Some(existing) = append_from {
                    let mut from = File::open(existing).map_err(|e| {
                        ConnectorError::io(&format!("reading {}", existing.display()), &e)
                    })?;
                    std::io::copy(&mut from, &mut &file).map_err(|e| io("writing", e))?;
                }
                file
            }
        };
        let mut file = file;
        use std::io::Seek;
        let len = file
            .seek(std::io::SeekFrom::End(0))
            .map_err(|e| io("opening", e))?;
        self.written
            .store(len, std::sync::atomic::Ordering::Relaxed);
        let mut encode = self.encode.clone();
        if len > 0 {
            encode.csv.header = false;
        }
        let out: Out = Box::new(Counted {
            out: BufWriter::with_capacity(super::store::FILE_BUFFER_BYTES, file),
            written: self.written.clone(),
            not_written_back: 0,
        });
        self.writer = Some(
            row_writer(&encode, &self.projection, out)
                .map_err(|e| ConnectorError::user(e.to_string()))?,
        );
        Ok(())
    }

    fn publish(&mut self) -> Result<(), ConnectorError> {
        if let (Some(temp), Some(path)) = (self.temp(), self.path()) {
            match std::fs::rename(&temp, path) {
                Ok(()) => {}
                // Published before a restart.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && path.exists() => {}
                Err(e) => {
                    return Err(ConnectorError::io(
                        &format!("moving {} into place", temp.display()),
                        &e,
                    ));
                }
            }
            let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
            self.metrics.rows_published(self.rows, bytes, 1);
        } else {
            self.metrics.rows_published(self.rows, 0, 0);
        }
        self.rows = 0;
        Ok(())
    }

    /// Completes the writer (flushes buffered rows).
    fn close_writer(&mut self) -> Result<(), ConnectorError> {
        if let Some(writer) = self.writer.take() {
            let mut out = writer.finish().map_err(|e| self.error(e))?;
            out.flush().map_err(|e| self.error(e))?;
        }
        Ok(())
    }
}

impl Sink for StreamSink {
    fn start(&mut self, start: &SinkStart) -> Result<(), ConnectorError> {
        self.checkpointing = start.checkpointing;
        let Some(path) = self.path().cloned() else {
            let out: Out = Box::new(std::io::stdout());
            self.writer = Some(
                row_writer(&self.encode, &self.projection, out)
                    .map_err(|e| ConnectorError::user(e.to_string()))?,
            );
            return Ok(());
        };
        if let Some(restored) = &start.restored {
            if !restored.pending.is_empty() {
                // The run had completed; publish again in case the crash came first.
                self.publish()?;
                return Ok(());
            }
            if !restored.state.is_empty() {
                let len = read_state(&restored.state, |r| r.u64())
                    .map_err(|e| ConnectorError::internal(format!("file sink state: {e}")))?;
                return self.open_file(Some(len), None);
            }
        }
        let exists = path.exists();
        let append_from = match (exists, start.if_exists) {
            (false, _) | (true, IfExists::Overwrite) => None,
            (true, IfExists::Append) => Some(&path),
            (true, IfExists::Fail) => {
                return Err(ConnectorError::user(format!(
                    "{} already exists: a new run would replace it. Pass `--if-exists overwrite` \
                     to replace it or `--if-exists append` to add to it",
                    path.display()
                )));
            }
        };
        self.open_file(None, append_from)
    }

    fn write(&mut self, batch: Batch) -> Result<(), ConnectorError> {
        let rows: Vec<u32> = (0..batch.num_rows as u32).collect();
        if let Some(w) = self.writer.as_mut() {
            let result = w.write_rows(&batch, &rows);
            result.map_err(|e| self.error(e))?;
        }
        if matches!(self.target, Target::Stdout) {
            if let Some(w) = self.writer.as_mut() {
                // Keep stdout flowing for people watching and for pipes.
                let result = w.flush();
                result.map_err(|e| self.error(e))?;
            }
            // Printed is published: stdout cannot take it back.
            self.metrics.rows_published(batch.num_rows as u64, 0, 0);
        } else {
            self.rows += batch.num_rows as u64;
            self.metrics.rows_written(batch.num_rows as u64);
        }
        Ok(())
    }

    fn prepare(&mut self, _epoch: u64, end_of_input: bool) -> Result<SinkSnapshot, ConnectorError> {
        if self.path().is_none() {
            if let Some(w) = self.writer.as_mut() {
                let result = w.flush();
                result.map_err(|e| self.error(e))?;
            }
            return Ok(SinkSnapshot::default());
        }
        if end_of_input {
            self.close_writer()?;
        } else if let Some(w) = self.writer.as_mut() {
            let result = w.flush();
            result.map_err(|e| self.error(e))?;
        }
        let len = self.written.load(std::sync::atomic::Ordering::Relaxed);
        let mut state = StateWriter::new();
        state.u64(len);
        let mut pending = Vec::new();
        if end_of_input && let (Some(temp), Some(path)) = (self.temp(), self.path()) {
            pending.push(PendingObject {
                name: format!("file://{}", path.display()),
                bytes: len,
                rows: self.rows,
                token: temp.display().to_string(),
            });
            self.publish_pending = true;
        }
        Ok(SinkSnapshot {
            pending,
            state: state.into_bytes(),
        })
    }

    fn commit(&mut self, _epoch: u64) -> Result<(), ConnectorError> {
        if std::mem::take(&mut self.publish_pending) {
            self.publish()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), ConnectorError> {
        self.close_writer()?;
        self.publish()
    }

    fn abort(&mut self) {
        self.metrics.rows_discarded(self.rows);
        self.rows = 0;
        self.writer = None;
        // Without checkpoints the hidden file is garbage; with them a restart cuts it back to
        // the last checkpoint's length and goes on, so it stays.
        if !self.checkpointing
            && let Some(temp) = self.temp()
        {
            let _ = std::fs::remove_file(temp);
        }
    }
}
