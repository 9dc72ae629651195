//! A proxy of our own in front of a Kafka-protocol broker that breaks connections the way
//! networks do, in the middle of the Kafka protocol: a connection cut in the middle of a
//! produce request (the broker never gets it whole), an answer lost after the broker stored
//! the batch (the producer's retry must be answered as a duplicate), and a connection reset
//! between two requests. Faults are injected while `failing` is set, at random (seeded)
//! moments, at most one per `gap`; every other byte passes through unchanged both ways.
//!
//! Kafka framing: each request and response is a 4-byte big-endian length and that many
//! bytes. A request header starts with api_key (i16, 0 is Produce), api_version (i16) and
//! correlation_id (i32); a response header starts with the correlation_id. The broker must
//! advertise the proxy's address (clients connect to the listener the metadata names), so
//! the proxy's port is taken first ([`Proxy::bind`]) and served once the broker runs
//! ([`Proxy::start`]).
//!
//! Produce requests (versions 3 to 12) and their answers are read far enough to know which
//! batches (producer id, epoch, base sequence, per partition) a request carries and whether
//! the broker stored them: a lost answer counts only if it said every batch was stored, and
//! the proxy then watches for the producer sending those batches again.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Rng;

const PRODUCE: i16 = 0;
/// The error code DUPLICATE_SEQUENCE_NUMBER.
const DUPLICATE: i16 = 46;

/// One record batch of a produce request: topic, partition, producer id, producer epoch,
/// base sequence.
pub type BatchId = (String, i32, i64, i16, i32);

/// The proxy's switches and what it did, by kind.
pub struct Faults {
    pub failing: AtomicBool,
    /// Requests forwarded or failed, of every kind, and produce requests among them.
    pub requests: AtomicU64,
    pub produce: AtomicU64,
    /// Connections cut in the middle of a produce request.
    pub cut_mid_request: AtomicU64,
    /// Answers to produce requests saying every batch was stored (or had been: a duplicate),
    /// which the client never got.
    pub lost_answers: AtomicU64,
    /// Dropped answers that reported another error or could not be read (expected: none).
    pub lost_other: AtomicU64,
    /// Batches the broker answered as duplicates (DUPLICATE_SEQUENCE_NUMBER: stored before).
    pub duplicates: AtomicU64,
    /// Connections reset (RST) between two requests (before a produce request is sent).
    pub resets: AtomicU64,
    /// Batches of lost answers sent again by the producer (each counted once).
    pub resent: AtomicU64,
    /// The shortest time between two faults.
    pub gap: Duration,
    /// Batches stored whose answer was lost, not yet sent again.
    unanswered: Mutex<HashSet<BatchId>>,
    schedule: Mutex<(Rng, Option<Instant>, usize)>,
}

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Pass,
    Cut,
    LoseAnswer,
    Reset,
}

impl Faults {
    /// Faults on (`failing`), drawn from `seed`, at most one per `gap`.
    pub fn new(seed: u64, gap: Duration) -> Faults {
        Faults {
            failing: AtomicBool::new(true),
            requests: AtomicU64::new(0),
            produce: AtomicU64::new(0),
            cut_mid_request: AtomicU64::new(0),
            lost_answers: AtomicU64::new(0),
            lost_other: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            resets: AtomicU64::new(0),
            resent: AtomicU64::new(0),
            gap,
            unanswered: Mutex::default(),
            schedule: Mutex::new((Rng(seed | 1), None, (seed % 3) as usize)),
        }
    }

    /// Faults injected so far, of every kind.
    pub fn injected(&self) -> u64 {
        self.cut_mid_request.load(Ordering::Relaxed)
            + self.lost_answers.load(Ordering::Relaxed)
            + self.lost_other.load(Ordering::Relaxed)
            + self.resets.load(Ordering::Relaxed)
    }

    /// Batches stored whose answer was lost and that the producer has not sent again.
    pub fn not_resent(&self) -> Vec<BatchId> {
        let mut batches: Vec<BatchId> = self
            .unanswered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect();
        batches.sort();
        batches
    }

    pub fn summary(&self) -> String {
        format!(
            "{} requests ({} produce), {} connections cut mid-request, {} lost answers (+{} of errors), {} resets between requests; {} batches of lost answers sent again, {} not; {} batches answered as duplicates",
            self.requests.load(Ordering::Relaxed),
            self.produce.load(Ordering::Relaxed),
            self.cut_mid_request.load(Ordering::Relaxed),
            self.lost_answers.load(Ordering::Relaxed),
            self.lost_other.load(Ordering::Relaxed),
            self.resets.load(Ordering::Relaxed),
            self.resent.load(Ordering::Relaxed),
            self.not_resent().len(),
            self.duplicates.load(Ordering::Relaxed),
        )
    }

    /// The fate of a request of `len` bytes with `api_key` (`answered`: a produce request
    /// that expects an answer), and where a cut would fall (1 to `len - 1`). While failing,
    /// one produce request in 4 at least `gap` after the last fault meets a fault: the kinds
    /// take turns (cut, lost answer, reset), so each gets a third of them.
    fn fate(&self, api_key: i16, answered: bool, len: usize) -> (Fate, usize) {
        let mut schedule = self.schedule.lock().unwrap_or_else(|e| e.into_inner());
        let (rng, last, turn) = &mut *schedule;
        let draw = rng.below(4);
        let cut_at = 1 + rng.below(len.max(2) as u64 - 1) as usize;
        if !self.failing.load(Ordering::Relaxed)
            || api_key != PRODUCE
            || draw != 0
            || last.is_some_and(|t| t.elapsed() < self.gap)
        {
            return (Fate::Pass, cut_at);
        }
        let fate = [Fate::Cut, Fate::LoseAnswer, Fate::Reset][*turn % 3];
        if fate == Fate::LoseAnswer && !answered {
            return (Fate::Pass, cut_at);
        }
        *turn += 1;
        *last = Some(Instant::now());
        (fate, cut_at)
    }

    /// A produce request with `batches` is on its way to the broker: the ones whose answers
    /// were lost are being sent again.
    fn sending(&self, batches: &[BatchId]) {
        let mut unanswered = self.unanswered.lock().unwrap_or_else(|e| e.into_inner());
        for b in batches {
            if unanswered.remove(b) {
                self.resent.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The broker answered a produce request of `version` with `batches`; `lost`: the answer
    /// is dropped.
    fn answered(&self, answer: &[u8], version: i16, batches: Vec<BatchId>, lost: bool) {
        let errors = produce_errors(answer, version);
        let duplicates = errors.iter().flatten().filter(|&&c| c == DUPLICATE).count();
        self.duplicates
            .fetch_add(duplicates as u64, Ordering::Relaxed);
        if !lost {
            return;
        }
        if errors.is_some_and(|e| e.iter().all(|&c| c == 0 || c == DUPLICATE))
            && !batches.is_empty()
        {
            self.lost_answers.fetch_add(1, Ordering::Relaxed);
            self.unanswered
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(batches);
        } else {
            self.lost_other.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Reads one frame (length prefix and body); `None` at the end of the stream or on an error.
fn read_frame(r: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0; 4];
    r.read_exact(&mut len).ok()?;
    let n = usize::try_from(i32::from_be_bytes(len)).ok()?;
    let mut frame = vec![0; 4 + n];
    frame[..4].copy_from_slice(&len);
    r.read_exact(&mut frame[4..]).ok()?;
    Some(frame)
}

/// Reads Kafka's primitive types; `flexible` for the compact forms of versions with tagged
/// fields (produce v9+).
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
    flexible: bool,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.take(1)?.first()?;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// A length: of a (nullable) string, bytes or array; `None` for null.
    fn length(&mut self, wide: bool) -> Option<Option<usize>> {
        let n: i64 = if self.flexible {
            i64::try_from(self.uvarint()?).ok()? - 1
        } else if wide {
            i64::from(self.i32()?)
        } else {
            i64::from(self.i16()?)
        };
        Some(usize::try_from(n).ok())
    }

    /// A (nullable) string; `None` inside for null.
    fn string(&mut self) -> Option<Option<&'a [u8]>> {
        match self.length(false)? {
            Some(n) => Some(Some(self.take(n)?)),
            None => Some(None),
        }
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.length(true)?.unwrap_or(0);
        self.take(n)
    }

    fn array(&mut self) -> Option<usize> {
        Some(self.length(true)?.unwrap_or(0))
    }

    fn tagged_fields(&mut self) -> Option<()> {
        if self.flexible {
            for _ in 0..self.uvarint()? {
                self.uvarint()?;
                let n = usize::try_from(self.uvarint()?).ok()?;
                self.take(n)?;
            }
        }
        Some(())
    }
}

/// A produce request (`frame`, with its length prefix, version 3 to 12): whether it expects
/// an answer (`acks` other than 0) and its record batches (the first of each partition's
/// records). `None` if it cannot be read.
fn produce_request(frame: &[u8], version: i16) -> Option<(bool, Vec<BatchId>)> {
    if !(3..=12).contains(&version) {
        return None;
    }
    let mut c = Cursor {
        b: frame,
        at: 12,
        flexible: false,
    };
    c.string()?; // client id: never compact
    c.flexible = version >= 9;
    c.tagged_fields()?;
    c.string()?; // transactional id
    let acks = c.i16()?;
    c.i32()?; // timeout
    let mut batches = Vec::new();
    for _ in 0..c.array()? {
        let topic = String::from_utf8_lossy(c.string()?.unwrap_or_default()).to_string();
        for _ in 0..c.array()? {
            let partition = c.i32()?;
            let records = c.bytes()?;
            c.tagged_fields()?;
            // Record batch v2: producer id at 43, epoch at 51, base sequence at 53.
            let mut r = Cursor {
                b: records,
                at: 43,
                flexible: false,
            };
            if let (Some(id), Some(epoch), Some(sequence)) = (
                r.take(8)
                    .and_then(|b| b.try_into().ok())
                    .map(i64::from_be_bytes),
                r.i16(),
                r.i32(),
            ) {
                batches.push((topic.clone(), partition, id, epoch, sequence));
            }
        }
        c.tagged_fields()?;
    }
    Some((acks != 0, batches))
}

/// The error code of each partition in the answer (`frame`, with its length prefix) to a
/// produce request of `version` (3 to 12); `None` if it cannot be read.
fn produce_errors(frame: &[u8], version: i16) -> Option<Vec<i16>> {
    let mut c = Cursor {
        b: frame,
        at: 8,
        flexible: version >= 9,
    };
    c.tagged_fields()?;
    let mut errors = Vec::new();
    for _ in 0..c.array()? {
        c.string()?;
        for _ in 0..c.array()? {
            c.i32()?; // partition
            errors.push(c.i16()?);
            c.take(8 + 8)?; // base offset, log append time
            if version >= 5 {
                c.take(8)?; // log start offset
            }
            if version >= 8 {
                for _ in 0..c.array()? {
                    c.i32()?;
                    c.string()?;
                    c.tagged_fields()?;
                }
                c.string()?; // error message
            }
            c.tagged_fields()?;
        }
        c.tagged_fields()?;
    }
    Some(errors)
}

/// Closes `s` with a reset (RST) instead of an orderly FIN once its last handle is dropped.
fn reset_on_close(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket this proxy owns, with a correctly sized option value.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::from_ref(&linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// The produce requests of a connection not answered yet, by correlation id: version,
/// batches, and whether the answer is to be lost.
type Produced = HashMap<i32, (i16, Vec<BatchId>, bool)>;

/// Serves one client connection over its own connection to the broker: requests on this
/// thread, answers on another.
fn proxy_connection(client: TcpStream, upstream: &str, faults: Arc<Faults>) {
    let Ok(up) = TcpStream::connect(upstream) else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = up.set_nodelay(true);
    let produced: Arc<Mutex<Produced>> = Arc::default();
    // Set when one side ends the connection on purpose (the other then leaves it alone).
    let ending = Arc::new(AtomicBool::new(false));
    let answers = {
        let (mut up, mut client) = (up.try_clone().unwrap(), client.try_clone().unwrap());
        let (produced, ending, faults) = (produced.clone(), ending.clone(), faults.clone());
        std::thread::spawn(move || {
            while let Some(frame) = read_frame(&mut up) {
                let correlation = frame
                    .get(4..8)
                    .map_or(-1, |b| i32::from_be_bytes(b.try_into().unwrap_or_default()));
                let request = produced
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&correlation);
                let Some((version, batches, lost)) = request else {
                    if client.write_all(&frame).is_err() {
                        break;
                    }
                    continue;
                };
                faults.answered(&frame, version, batches, lost);
                if lost {
                    // The broker did the work; the client never hears of it.
                    ending.store(true, Ordering::Relaxed);
                    let _ = client.shutdown(Shutdown::Both);
                    let _ = up.shutdown(Shutdown::Both);
                    return;
                }
                if client.write_all(&frame).is_err() {
                    break;
                }
            }
            if !ending.load(Ordering::Relaxed) {
                let _ = client.shutdown(Shutdown::Both);
            }
        })
    };
    let (mut client_r, mut up_w) = (client, up);
    while let Some(frame) = read_frame(&mut client_r) {
        let mut header = Cursor {
            b: &frame,
            at: 4,
            flexible: false,
        };
        let (Some(api_key), Some(version), Some(correlation)) =
            (header.i16(), header.i16(), header.i32())
        else {
            break;
        };
        faults.requests.fetch_add(1, Ordering::Relaxed);
        let (answered, batches) = if api_key == PRODUCE {
            faults.produce.fetch_add(1, Ordering::Relaxed);
            produce_request(&frame, version).unwrap_or((false, Vec::new()))
        } else {
            (false, Vec::new())
        };
        let (fate, cut_at) = faults.fate(api_key, answered, frame.len());
        match fate {
            Fate::Pass => {}
            Fate::Cut => {
                // Part of the request, then both connections closed: the broker never gets
                // it whole, the client never gets an answer.
                faults.cut_mid_request.fetch_add(1, Ordering::Relaxed);
                ending.store(true, Ordering::Relaxed);
                let _ = up_w.write_all(&frame[..cut_at]);
                let _ = up_w.shutdown(Shutdown::Both);
                let _ = client_r.shutdown(Shutdown::Both);
                break;
            }
            Fate::LoseAnswer => {}
            Fate::Reset => {
                // Not a byte of the request is forwarded; the client's connection is reset
                // once both threads let go of it.
                faults.resets.fetch_add(1, Ordering::Relaxed);
                ending.store(true, Ordering::Relaxed);
                reset_on_close(&client_r);
                let _ = up_w.shutdown(Shutdown::Both);
                break;
            }
        }
        faults.sending(&batches);
        if answered {
            produced
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(correlation, (version, batches, fate == Fate::LoseAnswer));
        }
        if up_w.write_all(&frame).is_err() {
            break;
        }
    }
    if !ending.load(Ordering::Relaxed) {
        let _ = up_w.shutdown(Shutdown::Both);
    }
    let _ = answers.join();
}

/// The proxy's port, taken before the broker starts (which must advertise it).
pub struct Proxy {
    listener: TcpListener,
}

impl Proxy {
    /// Takes a free port of 127.0.0.1.
    pub fn bind() -> Proxy {
        Proxy {
            listener: TcpListener::bind("127.0.0.1:0").unwrap(),
        }
    }

    /// `127.0.0.1:PORT`: what the broker advertises and clients use as `brokers`.
    pub fn address(&self) -> String {
        self.listener.local_addr().unwrap().to_string()
    }

    /// Serves clients in front of `upstream` (`host:port`) until the test process ends.
    pub fn start(self, upstream: String, faults: Arc<Faults>) {
        std::thread::spawn(move || {
            for client in self.listener.incoming().flatten() {
                let upstream = upstream.clone();
                let faults = faults.clone();
                std::thread::spawn(move || proxy_connection(client, &upstream, faults));
            }
        });
    }
}
