//! Tumbling and sliding (HOP) windows, computed over panes.
//!
//! Time is cut into panes of length `slide` (for tumbling windows, `slide == size`). Each
//! record updates exactly one pane's state for its group; a window `[end - size, end)` is the
//! merge of its `size / slide` panes when it fires. This is how Flink SQL slices hopping
//! windows, and it keeps the per-record cost independent of the number of overlapping windows.

use std::collections::{BTreeMap, HashMap};

use hashbrown::HashTable;

use super::WindowCore;
use super::accumulators::NO_SLOT;
use super::keys::KeyHasher;
use crate::data::Batch;
use crate::data::time::floor_to;
use crate::engine::operator::{Emitter, Operator, Result};
use crate::engine::watermark::{MAX_WATERMARK, MIN_WATERMARK};

/// The group of one slot: which pane and key it belongs to.
struct SlotInfo {
    pane: i64,
    hash: u64,
    key: Box<[u8]>,
}

pub struct AlignedWindows {
    core: WindowCore,
    size: i64,
    slide: i64,
    /// (pane, key) → slot.
    table: HashTable<u32>,
    slots: Vec<Option<SlotInfo>>,
    /// Pane start → its slots, in arrival order of their first record.
    panes: BTreeMap<i64, Vec<u32>>,
    /// Every window ending at or before this has fired (with or without data).
    fired_until: i64,
    /// The highest watermark processed.
    watermark: i64,
    hasher: KeyHasher,
    key_buf: Vec<u8>,
}

impl AlignedWindows {
    pub fn new(core: WindowCore, size: i64, slide: i64) -> AlignedWindows {
        AlignedWindows {
            core,
            size,
            slide,
            table: HashTable::new(),
            slots: Vec::new(),
            panes: BTreeMap::new(),
            fired_until: MIN_WATERMARK,
            watermark: MIN_WATERMARK,
            hasher: KeyHasher::default(),
            key_buf: Vec::new(),
        }
    }

    /// The end of the next window to fire that holds data.
    fn next_end(&self) -> Option<i64> {
        let from = self.fired_until.saturating_sub(self.size).saturating_add(1);
        let (&pane, _) = self.panes.range(from..).next()?;
        let first = pane + self.slide;
        Some(if self.fired_until == MIN_WATERMARK {
            first
        } else {
            first.max(self.fired_until.saturating_add(self.slide))
        })
    }

    /// The lowest watermark at which something happens: a window fires or a pane expires.
    fn next_event(&self) -> i64 {
        let fire = self.next_end().map_or(MAX_WATERMARK, |e| e - 1);
        let purge = self
            .panes
            .first_key_value()
            .map_or(MAX_WATERMARK, |(&pane, _)| {
                (pane + self.size - 1).saturating_add(self.core.lateness)
            });
        fire.min(purge)
    }

    /// Windows without data up to `watermark` count as fired, so that a record arriving later
    /// for one of them is late for it.
    fn mark_fired(&mut self, watermark: i64) {
        let aligned = match watermark {
            MIN_WATERMARK => return,
            MAX_WATERMARK => MAX_WATERMARK,
            w => floor_to(w + 1, self.slide),
        };
        self.fired_until = self.fired_until.max(aligned);
    }

    /// Fires every window whose end - 1 is at or before `watermark`, then frees the panes no
    /// window needs any more.
    fn advance(&mut self, watermark: i64, out: &mut Emitter) {
        while let Some(end) = self.next_end() {
            if end - 1 > watermark {
                break;
            }
            self.emit_window(end, out);
            self.fired_until = end;
        }
        self.mark_fired(watermark);
        self.watermark = self.watermark.max(watermark);
        self.purge(watermark);
    }

    fn emit_window(&mut self, end: i64, out: &mut Emitter) {
        let start = end - self.size;
        let mut rows: Vec<(i64, i64, &[u8], u32)> = Vec::new();
        let mut temporary = Vec::new();
        if self.size == self.slide {
            if let Some(slots) = self.panes.get(&start) {
                for &slot in slots {
                    if let Some(info) = &self.slots[slot as usize] {
                        rows.push((start, end, &info.key, slot));
                    }
                }
            }
        } else {
            // Merge the group states of the window's panes.
            let mut merged: HashMap<&[u8], u32> = HashMap::new();
            let mut order = Vec::new();
            for (_, slots) in self.panes.range(start..=end - self.slide) {
                for &slot in slots {
                    let Some(info) = &self.slots[slot as usize] else {
                        continue;
                    };
                    let target = *merged.entry(&info.key).or_insert_with(|| {
                        let t = self.core.accs.alloc();
                        temporary.push(t);
                        order.push((&info.key[..], t));
                        t
                    });
                    self.core.accs.merge(target, slot);
                }
            }
            rows = order.into_iter().map(|(k, t)| (start, end, k, t)).collect();
        }
        let batch = self.core.output(&rows);
        for t in temporary {
            self.core.accs.release(t);
        }
        out.emit(0, batch);
    }

    /// Re-emits window `end`'s row for one group after a late (but allowed) record.
    fn emit_update(&mut self, end: i64, key: &[u8], out: &mut Emitter) {
        let start = end - self.size;
        let target = self.core.accs.alloc();
        for pane in (start..end).step_by(self.slide as usize) {
            if let Some(slot) = self.find(pane, key) {
                self.core.accs.merge(target, slot);
            }
        }
        let batch = self.core.output(&[(start, end, key, target)]);
        self.core.accs.release(target);
        out.emit(0, batch);
    }

    fn find(&self, pane: i64, key: &[u8]) -> Option<u32> {
        let hash = self.hasher.hash(pane, key);
        self.table
            .find(hash, |&s| {
                self.slots[s as usize]
                    .as_ref()
                    .is_some_and(|i| i.pane == pane && *i.key == *key)
            })
            .copied()
    }

    /// The slot of `(pane, key in key_buf)`, created if new; the flag says whether the pane
    /// is new. `watermark` is the one in force for the record.
    fn slot_for(&mut self, pane: i64, watermark: i64) -> (u32, bool) {
        let hash = self.hasher.hash(pane, &self.key_buf);
        let slots = &self.slots;
        let key = &self.key_buf;
        if let Some(&slot) = self.table.find(hash, |&s| {
            slots[s as usize]
                .as_ref()
                .is_some_and(|i| i.pane == pane && *i.key == **key)
        }) {
            return (slot, false);
        }
        let new_pane = !self.panes.contains_key(&pane);
        if new_pane {
            self.mark_fired(watermark);
        }
        let slot = self.core.accs.alloc();
        let index = slot as usize;
        if index >= self.slots.len() {
            self.slots.resize_with(index + 1, || None);
        }
        self.slots[index] = Some(SlotInfo {
            pane,
            hash,
            key: self.key_buf.clone().into_boxed_slice(),
        });
        let slots = &self.slots;
        self.table.insert_unique(hash, slot, |&s| {
            slots[s as usize].as_ref().map_or(0, |i| i.hash)
        });
        self.panes.entry(pane).or_default().push(slot);
        (slot, new_pane)
    }

    fn purge(&mut self, watermark: i64) {
        let lateness = self.core.lateness;
        while let Some((&pane, _)) = self.panes.first_key_value() {
            let last_end = pane + self.size;
            if (last_end - 1).saturating_add(lateness) > watermark {
                break;
            }
            let slots = self.panes.remove(&pane).unwrap_or_default();
            for slot in slots {
                if let Some(info) = self.slots[slot as usize].take()
                    && let Ok(entry) = self.table.find_entry(info.hash, |&s| s == slot)
                {
                    entry.remove();
                }
                self.core.accs.release(slot);
            }
        }
        self.core.metrics.open_windows.store(
            self.panes.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

impl Operator for AlignedWindows {
    fn process(&mut self, _input: usize, batch: Batch, out: &mut Emitter) -> Result<()> {
        let evaluated = self.core.evaluate(&batch, out)?;
        let keys = evaluated.key_columns();
        let args = evaluated.arg_columns();
        let n = batch.num_rows;
        let (size, slide, lateness) = (self.size, self.slide, self.core.lateness);
        let mut slots = vec![NO_SLOT; n];
        let mut late: Vec<u32> = Vec::new();
        // Rows before `applied` are already in the accumulators.
        let mut applied = 0;
        let mut next_event = self.next_event();
        for i in 0..n {
            if evaluated.failed[i] {
                continue;
            }
            let (t, w) = (batch.times[i], batch.watermarks[i]);
            if w >= next_event {
                // Fired windows must include every record before this one.
                self.core.accs.update(
                    &slots[applied..i],
                    applied,
                    &args,
                    self.core.seq + applied as u64,
                );
                applied = i;
                self.advance(w, out);
                next_event = self.next_event();
            }
            let pane = floor_to(t, slide);
            if (pane + size - 1).saturating_add(lateness) <= w {
                late.push(i as u32);
                continue;
            }
            self.key_buf.clear();
            self.core.keys.encode(&keys, i, &mut self.key_buf);
            let (slot, new_pane) = self.slot_for(pane, w);
            slots[i] = slot;
            if new_pane {
                next_event = next_event.min(self.next_event());
            }
            if lateness > 0 && pane + slide - 1 <= w {
                // The record reached a window that already fired: apply it now and re-emit
                // that window's row for its group (allowed lateness).
                self.core.accs.update(
                    &slots[applied..=i],
                    applied,
                    &args,
                    self.core.seq + applied as u64,
                );
                applied = i + 1;
                let key = self.key_buf.clone();
                let mut end = pane + slide;
                while end <= pane + size {
                    if end - 1 <= w && (end - 1).saturating_add(lateness) > w {
                        self.emit_update(end, &key, out);
                    }
                    end += slide;
                }
            }
        }
        self.core.accs.update(
            &slots[applied..],
            applied,
            &args,
            self.core.seq + applied as u64,
        );
        self.core.seq += n as u64;
        self.core.route_late(&batch, &late, out);
        Ok(())
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Emitter) -> Result<()> {
        if watermark > self.watermark {
            self.advance(watermark, out);
        }
        Ok(())
    }

    fn open_windows(&self) -> usize {
        self.panes.len()
    }
}
