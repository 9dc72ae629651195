//! Runs a sink on a thread of its own, so encoding, bucketing and I/O (and, for S3, uploads)
//! overlap with the engine thread instead of stalling it.
//!
//! The engine keeps calling an ordinary [`Operator`]; batches travel over a bounded channel
//! (backpressure), and a failure on the sink thread surfaces at the next call or at `finish`.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::data::Batch;
use crate::engine::operator::{Emitter, EngineError, Operator, Result};

enum Command {
    Process(usize, Batch),
    Tick(i64),
    Finish,
}

pub struct ThreadedSink {
    name: String,
    commands: Option<SyncSender<Command>>,
    thread: Option<JoinHandle<()>>,
    /// The first error the sink thread hit.
    failure: Arc<Mutex<Option<EngineError>>>,
    /// Reply to `Finish`.
    finished: Receiver<Result<()>>,
}

impl ThreadedSink {
    /// Moves `sink` to a new thread.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn spawn(
        name: &str,
        mut sink: Box<dyn Operator>,
    ) -> std::result::Result<ThreadedSink, String> {
        // A few batches in flight: enough to overlap, little enough to bound memory.
        let (commands, receiver) = sync_channel::<Command>(4);
        let (done, finished) = sync_channel::<Result<()>>(1);
        let failure = Arc::new(Mutex::new(None));
        let thread_failure = failure.clone();
        let thread = std::thread::Builder::new()
            .name(format!("sink-{name}"))
            .spawn(move || {
                let mut out = Emitter::default();
                let mut failed = false;
                for command in receiver {
                    let result = match command {
                        Command::Process(input, batch) if !failed => {
                            sink.process(input, batch, &mut out)
                        }
                        Command::Tick(now) if !failed => sink.on_tick(now, &mut out),
                        Command::Finish => {
                            let result = if failed {
                                Ok(())
                            } else {
                                sink.finish(&mut out)
                            };
                            let _ = done.send(result);
                            return;
                        }
                        _ => Ok(()),
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
        Ok(ThreadedSink {
            name: name.to_string(),
            commands: Some(commands),
            thread: Some(thread),
            failure,
            finished,
        })
    }

    fn check(&self) -> Result<()> {
        match self.failure.lock().ok().and_then(|mut f| f.take()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn send(&self, command: Command) -> Result<()> {
        self.check()?;
        let sent = self
            .commands
            .as_ref()
            .is_some_and(|c| c.send(command).is_ok());
        if sent {
            Ok(())
        } else {
            self.check()?;
            Err(EngineError::Sink {
                component: self.name.clone(),
                message: "the sink thread stopped unexpectedly".to_string(),
            })
        }
    }
}

impl Operator for ThreadedSink {
    fn process(&mut self, input: usize, batch: Batch, _out: &mut Emitter) -> Result<()> {
        self.send(Command::Process(input, batch))
    }

    fn on_tick(&mut self, now_ms: i64, _out: &mut Emitter) -> Result<()> {
        self.send(Command::Tick(now_ms))
    }

    fn finish(&mut self, _out: &mut Emitter) -> Result<()> {
        self.send(Command::Finish)?;
        let result = self.finished.recv().unwrap_or_else(|_| {
            Err(EngineError::Sink {
                component: self.name.clone(),
                message: "the sink thread stopped unexpectedly".to_string(),
            })
        });
        self.commands = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.check()?;
        result
    }
}

impl Drop for ThreadedSink {
    fn drop(&mut self) {
        // Closing the channel ends the thread without committing (an aborted run).
        self.commands = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
