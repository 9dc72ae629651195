//! Sinks that write one stream of rows: `stdout`, and `file` (one local file, visible under
//! its name only when the run completes).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use crate::data::Batch;
use crate::engine::metrics::Metrics;
use crate::engine::operator::{Emitter, EngineError, Operator, Result};
use crate::format::encode::{EncodeOptions, Projection, RowWriter, row_writer};

/// Where a stream sink's bytes go.
pub enum Target {
    Stdout,
    File { path: PathBuf },
}

/// The writer of a stream target; `Send` because the engine thread owns it.
type Out = Box<dyn Write + Send>;

pub struct StreamSink {
    name: String,
    target: Target,
    writer: Option<Box<dyn RowWriter<Out>>>,
    temp: Option<PathBuf>,
    metrics: Arc<Metrics>,
}

impl StreamSink {
    /// # Errors
    /// When the output file cannot be created.
    pub fn new(
        name: &str,
        target: Target,
        encode: &EncodeOptions,
        projection: &Projection,
        metrics: Arc<Metrics>,
    ) -> std::result::Result<StreamSink, String> {
        let (out, temp): (Out, Option<PathBuf>) = match &target {
            Target::Stdout => (Box::new(std::io::stdout()), None),
            Target::File { path } => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| format!("creating {}: {e}", dir.display()))?;
                }
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                let temp = path.with_file_name(format!(".{name}.inprogress"));
                let file =
                    File::create(&temp).map_err(|e| format!("creating {}: {e}", temp.display()))?;
                (
                    Box::new(BufWriter::with_capacity(1 << 20, file)),
                    Some(temp),
                )
            }
        };
        let writer = row_writer(encode, projection, out).map_err(|e| e.to_string())?;
        Ok(StreamSink {
            name: name.to_string(),
            target,
            writer: Some(writer),
            temp,
            metrics,
        })
    }

    fn error(&self, e: std::io::Error) -> EngineError {
        if e.kind() == std::io::ErrorKind::BrokenPipe && matches!(self.target, Target::Stdout) {
            return EngineError::OutputClosed;
        }
        EngineError::Sink {
            component: self.name.clone(),
            message: e.to_string(),
        }
    }
}

impl Operator for StreamSink {
    fn process(&mut self, _input: usize, batch: Batch, _out: &mut Emitter) -> Result<()> {
        let rows: Vec<u32> = (0..batch.num_rows as u32).collect();
        if let Some(w) = self.writer.as_mut() {
            let result = w.write_rows(&batch, &rows);
            result.map_err(|e| self.error(e))?;
        }
        if matches!(self.target, Target::Stdout)
            && let Some(w) = self.writer.as_mut()
        {
            // Keep stdout flowing for people watching and for pipes.
            let result = w.flush();
            result.map_err(|e| self.error(e))?;
        }
        self.metrics
            .records_out
            .fetch_add(batch.num_rows as u64, Relaxed);
        Ok(())
    }

    fn finish(&mut self, _out: &mut Emitter) -> Result<()> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        let bytes = writer.bytes_written();
        let mut out = writer.finish().map_err(|e| self.error(e))?;
        out.flush().map_err(|e| self.error(e))?;
        drop(out);
        if let (Some(temp), Target::File { path }) = (&self.temp, &self.target) {
            std::fs::rename(temp, path).map_err(|e| {
                self.error(std::io::Error::new(
                    e.kind(),
                    format!("moving into place: {e}"),
                ))
            })?;
            self.metrics.files_committed.fetch_add(1, Relaxed);
        }
        self.metrics.bytes_out.fetch_add(bytes, Relaxed);
        Ok(())
    }
}
