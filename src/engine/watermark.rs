//! Watermarks of one source: bounded out-of-orderness per partition, combined as the minimum
//! over the partitions that are open and not idle, never moving backwards.
//!
//! The tracker also stamps each row with the watermark in force *before* it (so a window
//! decides lateness per record, independently of how records were batched), which is the
//! semantics the property tests check against a brute-force oracle.

use std::collections::BTreeMap;

pub use crate::runtime::{MAX_WATERMARK, MIN_WATERMARK};

#[derive(Debug, Clone)]
struct Partition {
    /// Largest event time seen, or `MIN_WATERMARK` before any record.
    max_time: i64,
    /// No data for longer than the idle timeout: excluded from the minimum.
    idle: bool,
    /// Processing time (ms) of the last record, for idleness.
    last_data_ms: i64,
}

impl Partition {
    fn watermark(&self, delay: i64) -> i64 {
        if self.max_time == MIN_WATERMARK {
            MIN_WATERMARK
        } else {
            self.max_time.saturating_sub(delay)
        }
    }
}

/// The clock idleness is measured on: processing time minus the stretches in which the engine
/// took no input (a slow checkpoint, a sink pushing back). Records wait in the source channel
/// meanwhile, so a partition is not idle for that time however long it lasts. Counting it made
/// every partition idle after a pause longer than the idle timeout, and the first one to
/// deliver afterwards moved the watermark past the others' queued records, which were then
/// dropped as late. (Flink's idleness timer pauses under back-pressure for the same reason.)
#[derive(Debug, Clone)]
pub struct IdleClock {
    /// When the engine last took a message or stopped waiting for one.
    busy_since: i64,
    /// Total length of the pauses so far.
    paused: i64,
}

impl IdleClock {
    /// A busy stretch at least this long is a pause; shorter ones are the engine's normal work
    /// on other partitions' batches, which must count, or under full load no partition could
    /// ever go idle.
    pub const PAUSE_MS: i64 = 1_000;

    pub fn new(now_ms: i64) -> IdleClock {
        IdleClock {
            busy_since: now_ms,
            paused: 0,
        }
    }

    /// The engine looked for input at `ready_ms` (a message was there, or it started waiting)
    /// and has one, or stopped waiting, at `now_ms`.
    pub fn took_input(&mut self, ready_ms: i64, now_ms: i64) {
        let busy = ready_ms.saturating_sub(self.busy_since);
        if busy >= Self::PAUSE_MS {
            self.paused += busy;
        }
        self.busy_since = now_ms;
    }

    /// `now_ms` on the idleness clock.
    pub fn now(&self, now_ms: i64) -> i64 {
        now_ms - self.paused
    }
}

/// Combined watermark of one source.
#[derive(Debug, Clone)]
pub struct WatermarkTracker {
    delay: i64,
    idle_timeout: Option<i64>,
    partitions: BTreeMap<u32, Partition>,
    current: i64,
    /// Every partition ended (bounded input): the watermark is +∞.
    finished: bool,
}

impl WatermarkTracker {
    pub fn new(max_out_of_orderness_ms: i64, idle_timeout_ms: Option<i64>) -> WatermarkTracker {
        WatermarkTracker {
            delay: max_out_of_orderness_ms,
            idle_timeout: idle_timeout_ms,
            partitions: BTreeMap::new(),
            current: MIN_WATERMARK,
            finished: false,
        }
    }

    pub fn current(&self) -> i64 {
        self.current
    }

    /// Whether every open partition is idle (the source holds nobody back).
    pub fn is_idle(&self) -> bool {
        !self.partitions.is_empty() && self.partitions.values().all(|p| p.idle)
    }

    /// A partition started: until it has data it holds the watermark where it is. Opened
    /// again (a Kafka partition the group assigns after the source announced it), its idle
    /// clock starts over: idleness counts from when records can arrive.
    pub fn open(&mut self, partition: u32, now_ms: i64) {
        let p = self.partitions.entry(partition).or_insert(Partition {
            max_time: MIN_WATERMARK,
            idle: false,
            last_data_ms: now_ms,
        });
        p.idle = false;
        p.last_data_ms = now_ms;
    }

    /// A partition reached its end: it no longer holds the watermark back.
    pub fn close(&mut self, partition: u32) {
        self.partitions.remove(&partition);
        self.recompute();
    }

    /// The source has no more data at all: the watermark goes to +∞.
    pub fn finish(&mut self) {
        self.partitions.clear();
        self.finished = true;
        self.current = MAX_WATERMARK;
    }

    /// Stamps `times` (event times of consecutive records of `partition`) with the watermark
    /// before each record into `watermarks`, and advances the tracker past them.
    pub fn assign(
        &mut self,
        partition: u32,
        times: &[i64],
        now_ms: i64,
        watermarks: &mut Vec<i64>,
    ) {
        watermarks.clear();
        watermarks.reserve(times.len());
        let delay = self.delay;
        self.open(partition, now_ms);
        // Only this partition changes during the batch: the others' minimum is fixed.
        let others = self
            .partitions
            .iter()
            .filter(|(p, s)| **p != partition && !s.idle)
            .map(|(_, s)| s.watermark(delay))
            .min()
            .unwrap_or(MAX_WATERMARK);
        let state = self.partitions.get_mut(&partition).expect("opened above");
        state.idle = false;
        state.last_data_ms = now_ms;
        let mut current = self.current;
        let mut max_time = state.max_time;
        for &t in times {
            watermarks.push(current);
            max_time = max_time.max(t);
            // Recomputed even without a new maximum: this partition may just have come back
            // from idleness, which changes the minimum.
            let combined = max_time.saturating_sub(delay).min(others);
            if combined > current {
                current = combined;
            }
        }
        state.max_time = max_time;
        self.current = current;
    }

    /// Each open partition's newest event time and idle flag, for checkpoints.
    pub fn partitions(&self) -> impl Iterator<Item = (u32, i64, bool)> + '_ {
        self.partitions
            .iter()
            .map(|(&p, s)| (p, s.max_time, s.idle))
    }

    /// Whether the input ended (+∞).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Restores the combined watermark from a checkpoint (partitions come back as they reopen).
    pub fn restore(&mut self, current: i64) {
        self.current = self.current.max(current);
    }

    /// Restores one reopened partition's newest event time from a checkpoint. It comes back
    /// active even if it was idle then: a restarted run finds a backlog in every partition,
    /// and a partition left idle would let the first other one to deliver move the watermark
    /// past its records. If it is still quiet, the idle timeout finds that again.
    pub fn restore_partition(&mut self, partition: u32, max_time: i64, now_ms: i64) {
        self.open(partition, now_ms);
        if let Some(p) = self.partitions.get_mut(&partition) {
            p.max_time = p.max_time.max(max_time);
        }
    }

    /// Moves one partition's watermark up to at least `watermark`, as if it had seen an event
    /// `max_out_of_orderness` later; the partition counts again if it was idle.
    pub fn advance(&mut self, partition: u32, watermark: i64, now_ms: i64) {
        self.open(partition, now_ms);
        let delay = self.delay;
        if let Some(p) = self.partitions.get_mut(&partition) {
            p.max_time = p.max_time.max(watermark.saturating_add(delay));
            p.idle = false;
            p.last_data_ms = now_ms;
        }
        self.recompute();
    }

    /// Marks one partition idle now (what the idle timeout does after a quiet period).
    pub fn mark_idle(&mut self, partition: u32) {
        if let Some(p) = self.partitions.get_mut(&partition) {
            p.idle = true;
        }
        self.recompute();
    }

    /// Marks partitions idle that sent nothing for the idle timeout; returns whether the
    /// watermark advanced because of it.
    pub fn check_idle(&mut self, now_ms: i64) -> bool {
        let Some(timeout) = self.idle_timeout else {
            return false;
        };
        // One at a time, the longest quiet first, the watermark recomputed after each, as
        // finer ticks would have seen it. Marking them all at once left no partition active
        // when they went quiet together (records that came with the partitions'
        // assignment): the watermark then stayed short of the partitions that had data and
        // no window closed. On a tie, one that never had data goes first (it knows nothing),
        // then the furthest ahead (so the watermark stops at the slowest one with data).
        let mut quiet: Vec<(i64, bool, std::cmp::Reverse<i64>, u32)> = self
            .partitions
            .iter()
            .filter(|(_, p)| !p.idle && now_ms.saturating_sub(p.last_data_ms) >= timeout)
            .map(|(id, p)| {
                let had_data = p.max_time != MIN_WATERMARK;
                (p.last_data_ms, had_data, std::cmp::Reverse(p.max_time), *id)
            })
            .collect();
        quiet.sort_unstable();
        let before = self.current;
        for (_, _, _, id) in quiet {
            if let Some(p) = self.partitions.get_mut(&id) {
                p.idle = true;
            }
            self.recompute();
        }
        self.current > before
    }

    fn recompute(&mut self) {
        if self.finished {
            return;
        }
        let delay = self.delay;
        let min = self
            .partitions
            .values()
            .filter(|p| !p.idle)
            .map(|p| p.watermark(delay))
            .min();
        if let Some(min) = min
            && min > self.current
        {
            self.current = min;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_trails_the_newest_event_by_the_delay() {
        let mut t = WatermarkTracker::new(5, None);
        let mut w = Vec::new();
        t.assign(0, &[10, 8, 20, 12], 0, &mut w);
        assert_eq!(w, vec![MIN_WATERMARK, 5, 5, 15]);
        assert_eq!(t.current(), 15);
    }

    #[test]
    fn the_slowest_partition_holds_the_watermark() {
        let mut t = WatermarkTracker::new(0, None);
        let mut w = Vec::new();
        t.open(1, 0);
        t.assign(0, &[100], 0, &mut w);
        assert_eq!(t.current(), MIN_WATERMARK, "partition 1 has no data yet");
        t.assign(1, &[50], 0, &mut w);
        assert_eq!(t.current(), 50);
        t.assign(0, &[200], 0, &mut w);
        assert_eq!(t.current(), 50);
        t.close(1);
        assert_eq!(t.current(), 200);
    }

    #[test]
    fn partitions_going_quiet_together_still_let_the_watermark_through() {
        // Partition 1 never had data; 0 and 2 had theirs when 1 was opened (records read
        // ahead arrive with the assignment). All three go quiet at the same tick: the empty
        // one goes idle first, so the watermark reaches the others' newest time.
        let mut t = WatermarkTracker::new(0, Some(1000));
        let mut w = Vec::new();
        t.open(1, 0);
        t.assign(0, &[59_000], 0, &mut w);
        t.assign(2, &[40_000], 0, &mut w);
        assert_eq!(t.current(), MIN_WATERMARK);
        assert!(t.check_idle(1000));
        assert_eq!(
            t.current(),
            40_000,
            "the slower of the partitions with data"
        );
        assert!(t.is_idle());
    }

    #[test]
    fn idle_partitions_stop_holding_it_back() {
        let mut t = WatermarkTracker::new(0, Some(1000));
        let mut w = Vec::new();
        t.open(1, 0);
        t.assign(0, &[100], 1000, &mut w);
        assert!(!t.check_idle(500));
        // Partition 1 has been quiet for 1.5 s, partition 0 for 0.5 s.
        assert!(t.check_idle(1500));
        assert_eq!(t.current(), 100);
        // Data from the idle partition makes it count again, but never moves time back.
        t.assign(1, &[10], 2000, &mut w);
        assert_eq!(t.current(), 100);
    }

    #[test]
    fn an_advance_moves_one_partition_and_never_back() {
        let mut t = WatermarkTracker::new(5, None);
        let mut w = Vec::new();
        t.open(1, 0);
        t.assign(0, &[100], 0, &mut w);
        t.advance(1, 60, 0);
        assert_eq!(t.current(), 60, "partition 1 now holds it at its advance");
        t.advance(1, 40, 0);
        assert_eq!(t.current(), 60, "an older advance changes nothing");
        t.advance(1, 500, 0);
        assert_eq!(t.current(), 95, "partition 0 (100 - 5) is the slowest now");
        // An event after the advance is judged against it: the advance counts as an event
        // `delay` later.
        t.assign(1, &[480], 0, &mut w);
        assert_eq!(w, vec![95]);
    }

    #[test]
    fn an_advance_brings_an_idle_partition_back() {
        let mut t = WatermarkTracker::new(0, Some(1000));
        let mut w = Vec::new();
        t.open(1, 0);
        t.assign(0, &[100], 0, &mut w);
        t.mark_idle(1);
        assert_eq!(t.current(), 100);
        t.advance(1, 50, 0);
        assert!(!t.is_idle());
        assert_eq!(t.current(), 100, "never back");
        t.assign(0, &[300], 0, &mut w);
        assert_eq!(
            t.current(),
            100,
            "partition 1 counts again: it holds the watermark where it was, not at 300"
        );
    }

    #[test]
    fn a_pause_longer_than_the_idle_timeout_makes_no_partition_idle() {
        // Two partitions far apart in event time; the engine then spends two minutes in a
        // checkpoint while both keep records queued. Afterwards partition 0 delivers first:
        // partition 1's older records must not be late.
        let mut t = WatermarkTracker::new(0, Some(60_000));
        let mut clock = IdleClock::new(0);
        let mut w = Vec::new();
        t.open(0, clock.now(0));
        t.open(1, clock.now(0));
        t.assign(0, &[1_000_000], clock.now(0), &mut w);
        t.assign(1, &[10_000], clock.now(0), &mut w);
        assert_eq!(t.current(), 10_000);
        // Busy from 0 to 120 s (the checkpoint), then it takes the next message at once.
        clock.took_input(120_000, 120_000);
        assert!(
            !t.check_idle(clock.now(120_200)),
            "the pause is not idleness"
        );
        t.assign(0, &[1_000_500], clock.now(120_200), &mut w);
        assert_eq!(t.current(), 10_000, "partition 1 still holds the watermark");
        t.assign(1, &[10_500], clock.now(120_300), &mut w);
        assert_eq!(w, vec![10_000], "partition 1's queued record is on time");
        // Really quiet afterwards (the engine waiting for input): idle after the timeout.
        clock.took_input(120_400, 190_000);
        t.check_idle(clock.now(190_000));
        assert!(t.is_idle(), "both quiet for 70 s of waiting");
    }

    #[test]
    fn short_busy_stretches_count_towards_idleness() {
        // Under full load the engine is never waiting: its work on partition 0's batches is
        // time in which partition 1 could have sent something, so partition 1 goes idle.
        let mut t = WatermarkTracker::new(0, Some(1_000));
        let mut clock = IdleClock::new(0);
        let mut w = Vec::new();
        t.assign(1, &[10], clock.now(0), &mut w);
        for now in (5..=1_500).step_by(5) {
            clock.took_input(now, now);
            t.assign(0, &[now * 10], clock.now(now), &mut w);
        }
        assert!(t.check_idle(clock.now(1_500)));
        assert_eq!(t.current(), 15_000);
    }

    #[test]
    fn a_restored_idle_partition_comes_back_active() {
        let mut t = WatermarkTracker::new(0, Some(60_000));
        let mut w = Vec::new();
        t.open(0, 0);
        t.open(1, 0);
        t.restore_partition(1, 5_000, 0);
        t.assign(0, &[900_000], 100, &mut w);
        t.check_idle(30_000);
        assert_eq!(t.current(), 5_000, "partition 1 holds it where it was");
        t.assign(1, &[6_000], 40_000, &mut w);
        assert_eq!(w, vec![5_000], "partition 1's backlog is on time");
        assert_eq!(t.current(), 6_000);
    }

    #[test]
    fn finishing_goes_to_infinity() {
        let mut t = WatermarkTracker::new(0, None);
        t.finish();
        assert_eq!(t.current(), MAX_WATERMARK);
    }
}
