//! Decoding on a pool of threads while keeping input order: a source's reader hands over
//! jobs (chunks of lines, runs of Kafka messages), workers decode them into batches in
//! parallel, and a forwarder sends the results to the engine strictly in submission order,
//! each as soon as it is ready, so watermarks and results are the same as with one thread.

use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};

use crate::data::Batch;
use crate::runtime::{BadRecord, Position, SourceContext, SourceEvent};

/// What a worker makes of one job: one `Data` event.
pub struct Decoded {
    pub partition: u32,
    pub batch: Batch,
    pub bad: Vec<BadRecord>,
    pub bytes: u64,
    pub position: Option<Position>,
}

/// Turns jobs into batches; one per worker thread.
pub type Worker<J> = Box<dyn FnMut(J) -> Decoded + Send>;

/// What the forwarder hands to the engine, in submission order.
enum Pending {
    Job(Receiver<Decoded>),
    /// Everything before this has been sent to the engine: reply.
    Barrier(Sender<bool>),
}

/// Worker threads for one source, and a forwarder that sends their results to the engine in
/// submission order.
pub struct OrderedPool<J: Send + 'static> {
    jobs: Option<Sender<(J, Sender<Decoded>)>>,
    /// Bounded: the reader waits when this many jobs are in flight.
    order: Option<SyncSender<Pending>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Decoding threads a source uses: the machine's cores, at most 4.
pub fn worker_count() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4)
}

impl<J: Send + 'static> OrderedPool<J> {
    /// A pool running one thread per worker, sending to the engine through `ctx`.
    pub fn new(ctx: &SourceContext, workers: Vec<Worker<J>>) -> OrderedPool<J> {
        let in_flight = workers.len().max(1) * 2;
        let (jobs, receiver) = channel::<(J, Sender<Decoded>)>();
        let receiver = Arc::new(Mutex::new(receiver));
        let mut threads: Vec<_> = workers
            .into_iter()
            .enumerate()
            .filter_map(|(i, mut work)| {
                let receiver = receiver.clone();
                std::thread::Builder::new()
                    .name(format!("decode-{}-{i}", ctx.name))
                    .spawn(move || {
                        loop {
                            let job = match receiver.lock() {
                                Ok(r) => r.recv(),
                                Err(_) => return,
                            };
                            let Ok((job, reply)) = job else { return };
                            let _ = reply.send(work(job));
                        }
                    })
                    .ok()
            })
            .collect();
        let (order, pending) = sync_channel::<Pending>(in_flight);
        let forward_ctx = ctx.clone();
        if let Ok(forwarder) = std::thread::Builder::new()
            .name(format!("forward-{}", ctx.name))
            .spawn(move || forward_loop(&pending, &forward_ctx))
        {
            threads.push(forwarder);
        }
        OrderedPool {
            jobs: Some(jobs),
            order: Some(order),
            threads,
        }
    }

    /// Queues a job (waiting while too many are in flight); `false` when the engine has gone
    /// away.
    pub fn submit(&mut self, job: J) -> bool {
        let (Some(jobs), Some(order)) = (&self.jobs, &self.order) else {
            return false;
        };
        let (reply, result) = channel();
        jobs.send((job, reply)).is_ok() && order.send(Pending::Job(result)).is_ok()
    }

    /// Waits until everything submitted so far has been sent to the engine; `false` when the
    /// engine has gone away.
    pub fn flush(&mut self) -> bool {
        let Some(order) = &self.order else {
            return false;
        };
        let (ack, done) = channel();
        order.send(Pending::Barrier(ack)).is_ok() && done.recv().unwrap_or(false)
    }
}

impl<J: Send + 'static> Drop for OrderedPool<J> {
    fn drop(&mut self) {
        self.jobs = None;
        self.order = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn forward_loop(pending: &Receiver<Pending>, ctx: &SourceContext) {
    let mut alive = true;
    for item in pending {
        match item {
            Pending::Job(result) if alive => {
                alive = match result.recv() {
                    Ok(d) => ctx.send(SourceEvent::Data {
                        partition: d.partition,
                        batch: d.batch,
                        bad: d.bad,
                        bytes: d.bytes,
                        position: d.position,
                    }),
                    Err(_) => false,
                };
            }
            Pending::Job(_) => {}
            Pending::Barrier(ack) => {
                let _ = ack.send(alive);
            }
        }
    }
}
