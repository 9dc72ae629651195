//! Session windows: per group, a record opens `[t, t + gap)`, which merges with every session
//! of the group it touches (touching counts, as in Flink's `TimeWindow.intersects`). A session
//! fires when the watermark reaches its end - 1, and is forgotten `allowed_lateness` later.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use hashbrown::{HashMap, HashTable};
use smallvec::SmallVec;

use super::keys::{INLINE, KeyHasher, pad};
use super::{LateRows, OUTPUT_ROWS, OutputRows, WindowCore};
use crate::data::Batch;
use crate::engine::operator::{Emitter, Operator, Result};
use crate::engine::watermark::{MAX_WATERMARK, MIN_WATERMARK};
use crate::runtime::state::{StateError, StateReader, StateResult, StateWriter};

#[derive(Debug, Clone, Copy)]
struct Session {
    uid: u64,
    start: i64,
    end: i64,
    slot: u32,
    fired: bool,
    /// The revision its row has (or will have) when written: 0 for a session's first row; a
    /// session that absorbs a written one writes the next revision.
    revision: u32,
}

/// A key and its sessions. Groups live in one vector and their places are reused: the long
/// tail of keys comes and goes, and allocating a key and a vector of sessions per new group
/// was a tenth of the run time. Most groups have one session at a time, kept inline, so a
/// timer finds its session in the group itself (one cache miss instead of two).
struct Group {
    sessions: SmallVec<[Session; 1]>,
    /// The key zero padded (its first `INLINE` bytes when longer): compared in place.
    key: [u8; INLINE],
    len: u32,
    /// In use (else its place is free, and it has no sessions).
    live: bool,
}

/// Group keys longer than `INLINE`, by group (rare: keys are mostly ids).
type LongKeys = HashMap<u32, Box<[u8]>>;

/// The key of group `g`.
fn key_of<'a>(groups: &'a [Group], long_keys: &'a LongKeys, g: u32) -> &'a [u8] {
    let group = &groups[g as usize];
    if group.len as usize <= INLINE {
        &group.key[..group.len as usize]
    } else {
        long_keys.get(&g).map_or(&[], |k| &k[..])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    Fire,
    Purge,
}

type Timer = (i64, TimerKind, u32, u64);

pub struct SessionWindows {
    core: WindowCore,
    gap: i64,
    table: HashTable<u32>,
    groups: Vec<Group>,
    long_keys: LongKeys,
    free_groups: Vec<u32>,
    /// (time, kind, group, session uid), earliest first; stale entries are skipped when
    /// popped, and a session that grew since its timer was set is due again at its new end.
    timers: BinaryHeap<Reverse<Timer>>,
    next_uid: u64,
    live_sessions: usize,
    /// Bytes of the groups' long keys (for the state memory limit).
    key_bytes: usize,
    watermark: i64,
    hasher: KeyHasher,
    key_buf: Vec<u8>,
    /// Scratch, kept between records and watermark steps: the sessions a record touches,
    /// sessions to write and sessions to forget.
    touching: Vec<Session>,
    fired: Vec<(u32, Session)>,
    expired: Vec<(u32, u64)>,
    /// Rows fired and not emitted yet: each watermark step fires a few sessions, gathered
    /// into one batch per call (or per `OUTPUT_ROWS`) instead of a batch each.
    rows: Option<OutputRows>,
}

impl SessionWindows {
    pub fn new(core: WindowCore, gap: i64) -> SessionWindows {
        SessionWindows {
            core,
            gap,
            table: HashTable::new(),
            groups: Vec::new(),
            long_keys: LongKeys::default(),
            free_groups: Vec::new(),
            timers: BinaryHeap::new(),
            next_uid: 1,
            live_sessions: 0,
            key_bytes: 0,
            watermark: MIN_WATERMARK,
            hasher: KeyHasher::default(),
            key_buf: Vec::new(),
            touching: Vec::new(),
            fired: Vec::new(),
            expired: Vec::new(),
            rows: None,
        }
    }

    fn next_timer(&self) -> i64 {
        self.timers.peek().map_or(MAX_WATERMARK, |t| t.0.0)
    }

    /// The group of the key in `key_buf`, created if new.
    fn group_for(&mut self) -> u32 {
        let key = &self.key_buf;
        let padded = pad(key);
        let hash = self.hasher.hash_padded(key, &padded);
        let len = key.len() as u32;
        let (groups, long_keys) = (&self.groups, &self.long_keys);
        if let Some(&g) = self.table.find(hash, |&g| {
            let group = &groups[g as usize];
            group.key == padded
                && group.len == len
                && (key.len() <= INLINE || long_keys.get(&g).is_some_and(|k| **k == **key))
        }) {
            return g;
        }
        let g = match self.free_groups.pop() {
            Some(g) => {
                let group = &mut self.groups[g as usize];
                group.key = padded;
                group.len = len;
                group.live = true;
                g
            }
            None => {
                self.groups.push(Group {
                    sessions: SmallVec::new(),
                    key: padded,
                    len,
                    live: true,
                });
                (self.groups.len() - 1) as u32
            }
        };
        if key.len() > INLINE {
            self.key_bytes += key.len();
            self.long_keys.insert(g, key[..].into());
        }
        let (groups, long_keys, hasher) = (&self.groups, &self.long_keys, &self.hasher);
        self.table.insert_unique(hash, g, |&x| {
            let group = &groups[x as usize];
            hasher.hash_padded(key_of(groups, long_keys, x), &group.key)
        });
        g
    }

    /// Fires and purges sessions whose timers are due at `watermark`.
    fn advance(&mut self, watermark: i64, out: &mut Emitter) {
        let lateness = self.core.lateness;
        let delay = self.core.emit_delay;
        let mut fired = std::mem::take(&mut self.fired);
        let mut expired = std::mem::take(&mut self.expired);
        while let Some(&Reverse((time, kind, g, uid))) = self.timers.peek() {
            if time > watermark {
                break;
            }
            self.timers.pop();
            let Some(session) = self.groups[g as usize]
                .sessions
                .iter_mut()
                .find(|s| s.uid == uid)
            else {
                continue; // merged away or purged: a stale timer
            };
            let fire_at = (session.end - 1).saturating_add(delay);
            match kind {
                // The session grew after this timer was set (records extend a session in
                // place): it is due at its new end.
                TimerKind::Fire if !session.fired && fire_at > time => {
                    self.timers
                        .push(Reverse((fire_at, TimerKind::Fire, g, uid)));
                }
                TimerKind::Fire if !session.fired && fire_at == time => {
                    session.fired = true;
                    fired.push((g, *session));
                    // Without updates to come (no lateness, or `emit: final`), it is done.
                    if lateness == 0 || !self.core.revisions {
                        expired.push((g, uid));
                    } else {
                        let purge_at = (session.end - 1).saturating_add(lateness);
                        self.timers
                            .push(Reverse((purge_at, TimerKind::Purge, g, uid)));
                    }
                }
                TimerKind::Purge if (session.end - 1).saturating_add(lateness) == time => {
                    expired.push((g, uid));
                }
                _ => {}
            }
        }
        if !fired.is_empty() {
            self.emit(&fired, out);
        }
        for &(g, uid) in &expired {
            self.remove_session(g, uid);
        }
        fired.clear();
        expired.clear();
        self.fired = fired;
        self.expired = expired;
        self.watermark = self.watermark.max(watermark);
        self.core.metrics.open_windows.store(
            self.live_sessions as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    fn remove_session(&mut self, g: u32, uid: u64) {
        let group = &mut self.groups[g as usize];
        let Some(pos) = group.sessions.iter().position(|s| s.uid == uid) else {
            return;
        };
        let session = group.sessions.remove(pos);
        let empty = group.sessions.is_empty();
        self.core.accs.release(session.slot);
        self.live_sessions -= 1;
        if empty {
            self.drop_group(g);
        }
    }

    /// Forgets a group with no sessions left.
    fn drop_group(&mut self, g: u32) {
        if !self.groups[g as usize].live {
            return;
        }
        let group = &self.groups[g as usize];
        let hash = self
            .hasher
            .hash_padded(key_of(&self.groups, &self.long_keys, g), &group.key);
        if let Ok(entry) = self.table.find_entry(hash, |&x| x == g) {
            entry.remove();
        }
        if let Some(long) = self.long_keys.remove(&g) {
            self.key_bytes -= long.len();
        }
        let group = &mut self.groups[g as usize];
        group.live = false;
        group.sessions.clear();
        self.free_groups.push(g);
    }

    /// Adds the rows of fired sessions to the rows to emit (see [`SessionWindows::flush`]).
    fn emit(&mut self, sessions: &[(u32, Session)], out: &mut Emitter) {
        let mut rows = self
            .rows
            .take()
            .unwrap_or_else(|| self.core.output_rows(sessions.len().max(64)));
        for (g, s) in sessions {
            let key = key_of(&self.groups, &self.long_keys, *g);
            self.core
                .push_row(&mut rows, s.start, s.end, key, s.slot, s.revision);
        }
        if rows.len() >= OUTPUT_ROWS {
            out.emit(0, self.core.finish_rows(rows));
        } else {
            self.rows = Some(rows);
        }
    }

    /// Emits the rows gathered by [`SessionWindows::emit`]: at the end of every call, so rows
    /// leave in the same order and with the same watermark as when emitted one by one.
    fn flush(&mut self, out: &mut Emitter) {
        if let Some(rows) = self.rows.take()
            && !rows.is_empty()
        {
            out.emit(0, self.core.finish_rows(rows));
        }
    }
}

impl Operator for SessionWindows {
    fn process(&mut self, _input: usize, batch: Batch, out: &mut Emitter) -> Result<()> {
        let evaluated = self.core.evaluate(&batch, out)?;
        let keys = evaluated.key_columns();
        let args = evaluated.arg_columns();
        let (gap, lateness) = (self.gap, self.core.lateness);
        let mut late = LateRows::default();
        for i in 0..batch.num_rows {
            if evaluated.failed[i] {
                continue;
            }
            let (t, w) = (batch.times[i], batch.watermarks[i]);
            if w >= self.next_timer() {
                self.advance(w, out);
            }
            self.key_buf.clear();
            self.core.keys.encode(&keys, i, &mut self.key_buf);
            let g = self.group_for();
            let (start, end) = (t, t.saturating_add(gap));
            let group = &mut self.groups[g as usize];
            if let Some(s) = only_touching_unfired(&mut group.sessions, start, end) {
                // The common case: the record falls in (or extends) one session that has not
                // fired. It grows in place and keeps its timer, which finds the new end when
                // it comes due.
                s.start = s.start.min(start);
                s.end = s.end.max(end);
                let (slot, session_end) = (s.slot, s.end);
                self.core
                    .accs
                    .update(&[slot], i, &args, self.core.seq + i as u64);
                if self.core.revisions && session_end - 1 <= w {
                    // Only with allowed lateness: complete already, so it fires now, as below.
                    let session = *s;
                    s.fired = true;
                    let uid = s.uid;
                    self.emit(&[(g, session)], out);
                    let purge_at = (session_end - 1).saturating_add(lateness);
                    self.timers
                        .push(Reverse((purge_at, TimerKind::Purge, g, uid)));
                }
                continue;
            }
            let touching = &mut self.touching;
            touching.clear();
            touching.extend(
                group
                    .sessions
                    .iter()
                    .filter(|s| s.start <= end && s.end >= start)
                    .copied(),
            );
            if touching.is_empty() && (end - 1).saturating_add(lateness) <= w {
                // Too late for the session it would have opened.
                late.push(i as u32, t, w, [(start, end)], false);
                if group.sessions.is_empty() {
                    // Do not keep an empty group for a record that went nowhere.
                    self.drop_group(g);
                }
                continue;
            }
            let merged_start = touching.iter().map(|s| s.start).fold(start, i64::min);
            let merged_end = touching.iter().map(|s| s.end).fold(end, i64::max);
            // The merged session's row replaces the rows already written for its parts.
            let revision = touching
                .iter()
                .map(|s| s.revision + u32::from(s.fired))
                .max()
                .unwrap_or(0);
            let slot = match touching.first() {
                Some(first) => first.slot,
                None => self.core.accs.alloc(),
            };
            for other in touching.iter().skip(1) {
                self.core.accs.merge(slot, other.slot);
                self.core.accs.release(other.slot);
            }
            group
                .sessions
                .retain(|s| !touching.iter().any(|t| t.uid == s.uid));
            let uid = self.next_uid;
            self.next_uid += 1;
            group.sessions.push(Session {
                uid,
                start: merged_start,
                end: merged_end,
                slot,
                fired: false,
                revision,
            });
            self.live_sessions = self.live_sessions + 1 - touching.len();
            self.core
                .accs
                .update(&[slot], i, &args, self.core.seq + i as u64);
            if self.core.revisions && merged_end - 1 <= w {
                // Only with allowed lateness: the merged session is already complete, so it
                // fires (again) now, like Flink's trigger on a late element.
                let session = *group.sessions.last().expect("pushed above");
                if let Some(s) = group.sessions.last_mut() {
                    s.fired = true;
                }
                self.emit(&[(g, session)], out);
                let purge_at = (merged_end - 1).saturating_add(lateness);
                self.timers
                    .push(Reverse((purge_at, TimerKind::Purge, g, uid)));
            } else {
                let fire_at = (merged_end - 1).saturating_add(self.core.emit_delay);
                self.timers
                    .push(Reverse((fire_at, TimerKind::Fire, g, uid)));
            }
        }
        self.core.seq += batch.num_rows as u64;
        self.flush(out);
        self.core.route_late(&batch, late, out);
        Ok(())
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Emitter) -> Result<()> {
        if watermark > self.watermark || watermark >= self.next_timer() {
            self.advance(watermark, out);
            self.flush(out);
        }
        Ok(())
    }

    fn output_watermark(&self, input: i64) -> i64 {
        self.core.firing_watermark(input)
    }

    fn open_windows(&self) -> usize {
        self.live_sessions
    }

    fn open_groups(&self) -> usize {
        self.table.len()
    }

    /// Estimated from counts (walking every group per batch would cost more than it tells):
    /// tables by capacity, a group's sessions as one allocation each.
    fn state_bytes(&self) -> usize {
        use std::mem::size_of;
        self.table.capacity() * (size_of::<u32>() + 1)
            + self.groups.capacity() * size_of::<Group>()
            + self.key_bytes
            + self.live_sessions * size_of::<Session>()
            + self.timers.capacity() * size_of::<Reverse<Timer>>()
            + self.core.accs.state_bytes()
    }

    /// Groups in key order, each with its sessions in start order and their aggregate state;
    /// timers are derived on restore (an unfired session fires at its end, a fired one is
    /// purged after the allowed lateness).
    fn snapshot(&self, w: &mut StateWriter) {
        w.i64(self.gap);
        w.i64(self.watermark);
        w.u64(self.core.seq);
        let key = |g: u32| key_of(&self.groups, &self.long_keys, g);
        let mut groups: Vec<u32> = (0..self.groups.len() as u32)
            .filter(|&g| self.groups[g as usize].live)
            .collect();
        groups.sort_by(|&a, &b| key(a).cmp(key(b)));
        w.usize(groups.len());
        for g in groups {
            w.bytes(key(g));
            let group = &self.groups[g as usize];
            let mut sessions: Vec<&Session> = group.sessions.iter().collect();
            sessions.sort_by_key(|s| (s.start, s.end));
            w.usize(sessions.len());
            for s in sessions {
                w.i64(s.start);
                w.i64(s.end);
                w.bool(s.fired);
                w.u64(u64::from(s.revision));
                self.core.accs.snapshot_slot(s.slot, w);
            }
        }
    }

    fn restore(&mut self, r: &mut StateReader<'_>) -> StateResult<()> {
        let gap = r.i64()?;
        if gap != self.gap {
            return Err(StateError(format!(
                "session gap {gap} ms in the checkpoint, {} ms now",
                self.gap
            )));
        }
        self.watermark = r.i64()?;
        self.core.seq = r.u64()?;
        let lateness = self.core.lateness;
        for _ in 0..r.count(2)? {
            self.key_buf.clear();
            self.key_buf.extend_from_slice(r.bytes()?);
            let g = self.group_for();
            for _ in 0..r.count(3)? {
                let (start, end, fired) = (r.i64()?, r.i64()?, r.bool()?);
                let revision = u32::try_from(r.u64()?)
                    .map_err(|_| StateError("a session revision out of range".to_string()))?;
                let slot = self.core.accs.restore_slot(r)?;
                let uid = self.next_uid;
                self.next_uid += 1;
                let timer = if fired {
                    ((end - 1).saturating_add(lateness), TimerKind::Purge)
                } else {
                    (
                        (end - 1).saturating_add(self.core.emit_delay),
                        TimerKind::Fire,
                    )
                };
                self.timers.push(Reverse((timer.0, timer.1, g, uid)));
                self.groups[g as usize].sessions.push(Session {
                    uid,
                    start,
                    end,
                    slot,
                    fired,
                    revision,
                });
                self.live_sessions += 1;
            }
        }
        self.core.metrics.open_windows.store(
            self.live_sessions as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(())
    }
}

/// The session a record `[start, end)` touches when it touches exactly one, and that one has
/// not fired yet.
fn only_touching_unfired(sessions: &mut [Session], start: i64, end: i64) -> Option<&mut Session> {
    let mut found = None;
    for (k, s) in sessions.iter().enumerate() {
        if s.start <= end && s.end >= start {
            if found.is_some() {
                return None;
            }
            found = Some(k);
        }
    }
    let s = &mut sessions[found?];
    (!s.fired).then_some(s)
}
