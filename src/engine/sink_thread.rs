//! Runs each sink on a thread of its own, so encoding, bucketing and I/O (and uploads)
//! overlap with the engine thread instead of stalling it.
//!
//! Commands travel over a bounded channel (backpressure) and run in order. Calls that need an
//! answer (start, prepare, finish) wait for it; the others return at once, and a failure on
//! the sink thread surfaces at the next call.
//!
//! Small batches are gathered on the engine thread before they are sent (see
//! [`GATHER_ROWS`]): session windows fire a few rows per watermark step, and sending each as
//! its own command woke the sink thread (and the engine thread behind it) thousands of times
//! per input batch.

use std::cell::RefCell;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::operator::{EngineError, Result};
use crate::data::{Batch, Column, ColumnData};
use crate::runtime::{ConnectorError, Sink, SinkSnapshot, SinkStart};

/// Batches of fewer than [`SMALL_ROWS`] rows are gathered into one of up to this many rows
/// before the sink thread sees them; larger ones go as they are (after the gathered rows).
/// The gathered rows are sent before any other command (so the sink sees everything in the
/// order it was written), and when the engine has nothing else to do ([`SinkThread::flush`]).
pub const GATHER_ROWS: usize = 8192;

/// A batch this large costs more to copy than to hand over on its own.
pub const SMALL_ROWS: usize = 1024;

enum Command {
    Start(SinkStart),
    Write(Batch),
    Tick(i64),
    Watermark(i64),
    Prepare {
        epoch: u64,
        end_of_input: bool,
    },
    Commit(u64),
    Finish,
    Abort,
    /// Answers once every command before it has run.
    Sync,
}

enum Reply {
    Done(std::result::Result<(), ConnectorError>),
    Prepared(std::result::Result<SinkSnapshot, ConnectorError>),
}

pub struct SinkThread {
    name: String,
    commands: Option<SyncSender<Command>>,
    replies: Receiver<Reply>,
    thread: Option<JoinHandle<()>>,
    /// The first error the sink thread hit on a call that does not wait.
    failure: Arc<Mutex<Option<ConnectorError>>>,
    /// Small batches written and not sent yet (see [`GATHER_ROWS`]).
    gathered: RefCell<Option<Batch>>,
}

impl SinkThread {
    /// Moves `sink` to a new thread.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn spawn(name: &str, mut sink: Box<dyn Sink>) -> std::result::Result<SinkThread, String> {
        // A few batches in flight: enough to overlap, little enough to bound memory.
        let (commands, receiver) = sync_channel::<Command>(4);
        let (reply, replies) = sync_channel::<Reply>(1);
        let failure = Arc::new(Mutex::new(None));
        let thread_failure = failure.clone();
        let thread = std::thread::Builder::new()
            .name(format!("sink-{name}"))
            .spawn(move || {
                let mut failed = false;
                for command in receiver {
                    let result = match command {
                        Command::Start(start) => {
                            let result = sink.start(&start);
                            failed |= result.is_err();
                            let _ = reply.send(Reply::Done(result));
                            continue;
                        }
                        Command::Prepare {
                            epoch,
                            end_of_input,
                        } => {
                            let result = if failed {
                                Err(ConnectorError::internal("the sink failed earlier"))
                            } else {
                                sink.prepare(epoch, end_of_input)
                            };
                            failed |= result.is_err();
                            let _ = reply.send(Reply::Prepared(result));
                            continue;
                        }
                        Command::Finish => {
                            let result = if failed { Ok(()) } else { sink.finish() };
                            failed |= result.is_err();
                            let _ = reply.send(Reply::Done(result));
                            continue;
                        }
                        Command::Abort => {
                            sink.abort();
                            let _ = reply.send(Reply::Done(Ok(())));
                            continue;
                        }
                        Command::Sync => {
                            let _ = reply.send(Reply::Done(Ok(())));
                            continue;
                        }
                        _ if failed => Ok(()),
                        Command::Write(batch) => sink.write(batch),
                        Command::Tick(now) => sink.on_tick(now),
                        Command::Watermark(w) => sink.on_watermark(w),
                        Command::Commit(epoch) => sink.commit(epoch),
                    };
                    if let Err(e) = result {
                        failed = true;
                        if let Ok(mut slot) = thread_failure.lock() {
                            slot.get_or_insert(e);
                        }
                    }
                }
            })
            .map_err(|e| format!("starting the sink thread: {e}"))?;
        Ok(SinkThread {
            name: name.to_string(),
            commands: Some(commands),
            replies,
            thread: Some(thread),
            failure,
            gathered: RefCell::new(None),
        })
    }

    fn error(&self, error: ConnectorError) -> EngineError {
        if error.is_output_closed() {
            return EngineError::OutputClosed;
        }
        EngineError::Sink {
            component: self.name.clone(),
            error,
        }
    }

    fn gone(&self) -> EngineError {
        self.error(ConnectorError::internal(
            "the sink thread stopped unexpectedly",
        ))
    }

    /// The error the sink thread hit on an earlier call, if any.
    pub fn check(&self) -> Result<()> {
        match self.failure.lock().ok().and_then(|mut f| f.take()) {
            Some(e) => Err(self.error(e)),
            None => Ok(()),
        }
    }

    fn send(&self, command: Command) -> Result<()> {
        // Rows written before this command reach the sink before it.
        self.flush()?;
        self.send_now(command)
    }

    fn send_now(&self, command: Command) -> Result<()> {
        self.check()?;
        let sent = self
            .commands
            .as_ref()
            .is_some_and(|c| c.send(command).is_ok());
        if sent {
            Ok(())
        } else {
            self.check()?;
            Err(self.gone())
        }
    }

    fn call(&self, command: Command) -> Result<Reply> {
        self.send(command)?;
        self.replies.recv().map_err(|_| self.gone())
    }

    fn done(&self, reply: Reply) -> Result<()> {
        match reply {
            Reply::Done(result) => result.map_err(|e| self.error(e)),
            Reply::Prepared(_) => Err(EngineError::Internal("unexpected sink reply".to_string())),
        }
    }

    /// Sends the start command without waiting, so sinks start in parallel; see
    /// [`SinkThread::started`].
    pub fn begin_start(&self, start: SinkStart) -> Result<()> {
        self.send(Command::Start(start))
    }

    /// Waits for the answer to [`SinkThread::begin_start`].
    pub fn started(&self) -> std::result::Result<(), ConnectorError> {
        match self.replies.recv() {
            Ok(Reply::Done(result)) => result,
            _ => Err(ConnectorError::internal(
                "the sink thread stopped unexpectedly",
            )),
        }
    }

    /// Writes `batch` after everything written before it; a small one waits on this thread
    /// for more rows (see [`GATHER_ROWS`]).
    pub fn write(&self, batch: Batch) -> Result<()> {
        if batch.num_rows >= SMALL_ROWS {
            return self.send(Command::Write(batch));
        }
        let full = {
            let mut gathered = self.gathered.borrow_mut();
            match gathered.as_mut() {
                Some(rows) if same_layout(rows, &batch) => {
                    rows.append(&batch);
                    rows.num_rows >= GATHER_ROWS
                }
                Some(_) => {
                    // Rows of another layout (a sink with several inputs): send those first.
                    let earlier = gathered.replace(batch);
                    drop(gathered);
                    if let Some(earlier) = earlier {
                        self.send_now(Command::Write(earlier))?;
                    }
                    false
                }
                None => {
                    *gathered = Some(batch);
                    false
                }
            }
        };
        if full { self.flush() } else { Ok(()) }
    }

    /// Sends the gathered small batches, if any: the engine calls it before it waits for
    /// input, so gathering never holds rows back while the engine is idle.
    pub fn flush(&self) -> Result<()> {
        let gathered = self.gathered.borrow_mut().take();
        match gathered {
            Some(batch) => self.send_now(Command::Write(batch)),
            None => Ok(()),
        }
    }

    pub fn tick(&self, now_ms: i64) -> Result<()> {
        self.send(Command::Tick(now_ms))
    }

    pub fn watermark(&self, watermark: i64) -> Result<()> {
        self.send(Command::Watermark(watermark))
    }

    pub fn prepare(&self, epoch: u64, end_of_input: bool) -> Result<SinkSnapshot> {
        match self.call(Command::Prepare {
            epoch,
            end_of_input,
        })? {
            Reply::Prepared(result) => result.map_err(|e| self.error(e)),
            Reply::Done(_) => Err(EngineError::Internal("unexpected sink reply".to_string())),
        }
    }

    pub fn commit(&self, epoch: u64) -> Result<()> {
        self.send(Command::Commit(epoch))
    }

    /// Publishes everything (no checkpoints), after every command sent before.
    pub fn finish(&self) -> Result<()> {
        let reply = self.call(Command::Finish)?;
        self.done(reply)?;
        self.check()
    }

    /// Waits until every command sent so far has run, and reports the first failure.
    pub fn sync(&self) -> Result<()> {
        let reply = self.call(Command::Sync)?;
        self.done(reply)?;
        self.check()
    }

    /// Removes what was written and not published (a failed run), waiting for it.
    pub fn abort(&self) {
        // Rows not sent yet are not written at all.
        self.gathered.borrow_mut().take();
        if let Some(c) = &self.commands
            && c.send(Command::Abort).is_ok()
        {
            let _ = self.replies.recv();
        }
    }
}

impl Drop for SinkThread {
    fn drop(&mut self) {
        // What was written reaches the sink like everything sent before it; a failure here
        // has already been reported, or the run is ending anyway.
        let _ = self.flush();
        // Closing the channel ends the thread after the commands already queued.
        self.commands = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Whether `more` can be appended to `rows`: the same column types, and times and watermarks
/// present in both or in neither.
fn same_layout(rows: &Batch, more: &Batch) -> bool {
    fn kind(c: &Column) -> std::mem::Discriminant<ColumnData> {
        std::mem::discriminant(&c.data)
    }
    rows.columns.len() == more.columns.len()
        && rows.times.is_empty() == more.times.is_empty()
        && rows.watermarks.is_empty() == more.watermarks.is_empty()
        && rows
            .columns
            .iter()
            .zip(&more.columns)
            .all(|(a, b)| kind(a) == kind(b))
}
