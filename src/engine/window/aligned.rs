//! Tumbling and sliding (HOP) windows, computed over panes.
//!
//! Time is cut into panes of length `slide` (for tumbling windows, `slide == size`). Each
//! record updates exactly one pane's state for its group; a window `[end - size, end)` is the
//! merge of its `size / slide` panes when it fires. This is how Flink SQL slices hopping
//! windows, and it keeps the per-record cost independent of the number of overlapping windows.

use std::collections::{BTreeMap, HashMap};

use hashbrown::HashTable;

use super::accumulators::NO_SLOT;
use super::keys::{INLINE, KeyHasher, pad};
use super::{LateRows, OUTPUT_ROWS, WindowCore};
use crate::data::Batch;
use crate::data::time::floor_to;
use crate::engine::operator::{Emitter, Operator, Result};
use crate::engine::watermark::{MAX_WATERMARK, MIN_WATERMARK};
use crate::runtime::state::{StateError, StateReader, StateResult, StateWriter};

/// One group of a pane in its hash table: where its key and state are, and 32 bits of its
/// key's hash. The tag spares most key comparisons, and lets the table grow without reading
/// keys, so an entry takes 8 bytes and the table stays small enough to stay in cache longer.
#[derive(Clone, Copy)]
struct Group {
    index: u32,
    tag: u32,
}

/// The hash a tag stands for in the table (its top bits pick the control byte, its low bits
/// the bucket; multiplying spreads the tag's bits over both).
#[inline]
fn table_hash(tag: u32) -> u64 {
    u64::from(tag).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The tag of a key hash.
#[inline]
fn tag_of(hash: u64) -> u32 {
    (hash >> 32) as u32 ^ hash as u32
}

/// Entries in one bucket of a pane's table: one cache line.
const BUCKET: usize = 8;

/// An empty entry's index.
const EMPTY: u32 = u32::MAX;

/// One cache line of a pane's table.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Bucket([Group; BUCKET]);

const EMPTY_BUCKET: Bucket = Bucket(
    [Group {
        index: EMPTY,
        tag: 0,
    }; BUCKET],
);

/// A pane's table of groups: open addressing over cache-line buckets of (index, tag)
/// entries, probed bucket after bucket. A lookup for a key not in the table (most records of
/// a high-cardinality job) reads one cache line, whose address is known from the hash alone:
/// [`GroupTable::prefetch`] asks for it a few records ahead. Entries are never removed (a
/// pane is cleared whole), so the first empty entry ends a probe and is where the key goes.
#[derive(Default)]
struct GroupTable {
    buckets: Vec<Bucket>,
    len: usize,
}

/// Where a probe ended: the group's index, or the free entry (bucket, position) for it.
enum Probe {
    Found(usize),
    Vacant(usize, usize),
}

impl GroupTable {
    /// Groups the table holds without growing (7/8 of its entries).
    fn capacity(&self) -> usize {
        self.buckets.len() * BUCKET / 8 * 7
    }

    fn clear(&mut self) {
        self.buckets.fill(EMPTY_BUCKET);
        self.len = 0;
    }

    /// Heap bytes of the table.
    fn bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<Bucket>()
    }

    /// The first bucket to probe for `tag` (the buckets are a power of two, at least one).
    #[inline]
    fn home(&self, tag: u32) -> usize {
        (table_hash(tag) >> 32) as usize & (self.buckets.len() - 1)
    }

    /// Asks the CPU to fetch the bucket a probe for `tag` starts at.
    #[inline]
    fn prefetch(&self, tag: u32) {
        if self.buckets.is_empty() {
            return;
        }
        let bucket = &self.buckets[self.home(tag)];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint that reads nothing (and `bucket` is a live reference).
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(bucket).cast::<i8>());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = bucket;
    }

    /// Probes for the group with `tag` that `eq` accepts (by index).
    #[inline]
    fn probe(&self, tag: u32, mut eq: impl FnMut(usize) -> bool) -> Probe {
        if self.buckets.is_empty() {
            return Probe::Vacant(usize::MAX, 0);
        }
        let mask = self.buckets.len() - 1;
        let mut b = self.home(tag);
        loop {
            for (pos, g) in self.buckets[b].0.iter().enumerate() {
                if g.index == EMPTY {
                    return Probe::Vacant(b, pos);
                }
                if g.tag == tag && eq(g.index as usize) {
                    return Probe::Found(g.index as usize);
                }
            }
            b = (b + 1) & mask;
        }
    }

    /// Adds a group where a probe for it ended (growing first when full).
    #[inline]
    fn insert_at(&mut self, (bucket, pos): (usize, usize), group: Group) {
        if self.len >= self.capacity() {
            self.grow();
            self.insert_unique(group);
        } else {
            self.buckets[bucket].0[pos] = group;
            self.len += 1;
        }
    }

    /// Adds a group known not to be in the table.
    fn insert_unique(&mut self, group: Group) {
        if self.len >= self.capacity() {
            self.grow();
        }
        if let Probe::Vacant(b, pos) = self.probe(group.tag, |_| false) {
            self.buckets[b].0[pos] = group;
            self.len += 1;
        }
    }

    /// Doubles the buckets (16 at first), placing the entries again by their tags.
    #[cold]
    fn grow(&mut self) {
        let new_len = (self.buckets.len() * 2).max(16);
        let old = std::mem::replace(&mut self.buckets, vec![EMPTY_BUCKET; new_len]);
        self.len = 0;
        for g in old.iter().flat_map(|b| b.0.iter()) {
            if g.index != EMPTY {
                self.insert_unique(*g);
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Group> {
        self.buckets
            .iter()
            .flat_map(|b| b.0.iter())
            .filter(|g| g.index != EMPTY)
    }
}

/// The groups of one pane, in the order they appeared (their index): keys and accumulator
/// slots side by side in plain vectors, found through a table of indices. Output and
/// snapshots walk the vectors in order, without sorting or chasing pointers.
#[derive(Default)]
struct Pane {
    table: GroupTable,
    /// Keys by index, zero padded (the first `INLINE` bytes when longer).
    keys: Vec<[u8; INLINE]>,
    lens: Vec<u32>,
    /// Accumulator slot by index.
    slots: Vec<u32>,
    /// Keys longer than `INLINE`, by index, and their bytes.
    long_keys: HashMap<u32, Box<[u8]>>,
    long_key_bytes: usize,
}

impl Pane {
    fn len(&self) -> usize {
        self.keys.len()
    }

    /// Groups the pane has room for without growing.
    fn capacity(&self) -> usize {
        self.keys.capacity().min(self.table.capacity())
    }

    /// Forgets every group, keeping the room.
    fn clear(&mut self) {
        self.table.clear();
        self.keys.clear();
        self.lens.clear();
        self.slots.clear();
        self.long_keys = HashMap::new();
        self.long_key_bytes = 0;
    }

    /// Moves the groups of `other` into this pane's room (cleared first), in the same order.
    fn take_groups_of(&mut self, other: Pane) {
        self.clear();
        self.keys.extend_from_slice(&other.keys);
        self.lens.extend_from_slice(&other.lens);
        self.slots.extend_from_slice(&other.slots);
        for g in other.table.iter() {
            self.table.insert_unique(*g);
        }
        self.long_keys = other.long_keys;
        self.long_key_bytes = other.long_key_bytes;
    }

    fn key(&self, index: usize) -> &[u8] {
        let len = self.lens[index] as usize;
        if len <= INLINE {
            &self.keys[index][..len]
        } else {
            self.long_keys.get(&(index as u32)).map_or(&[], |k| &k[..])
        }
    }

    /// The index of `key` (hash `hash`, padded form `padded`).
    #[inline]
    fn find(&self, hash: u64, key: &[u8], padded: &[u8; INLINE]) -> Option<usize> {
        match self.probe(hash, key, padded) {
            Probe::Found(i) => Some(i),
            Probe::Vacant(..) => None,
        }
    }

    /// Probes the table for `key` (hash `hash`, padded form `padded`).
    #[inline]
    fn probe(&self, hash: u64, key: &[u8], padded: &[u8; INLINE]) -> Probe {
        let len = key.len() as u32;
        self.table.probe(tag_of(hash), |i| {
            self.keys[i] == *padded
                && self.lens[i] == len
                && (key.len() <= INLINE
                    || self.long_keys.get(&(i as u32)).is_some_and(|k| **k == *key))
        })
    }

    /// Asks the CPU to fetch the table memory a probe for `hash` starts at.
    #[inline]
    fn prefetch(&self, hash: u64) {
        self.table.prefetch(tag_of(hash));
    }

    /// Adds a group where its probe ended ([`Probe::Vacant`]).
    #[inline]
    fn insert_at(
        &mut self,
        at: (usize, usize),
        hash: u64,
        key: &[u8],
        padded: [u8; INLINE],
        slot: u32,
    ) {
        let index = self.keys.len() as u32;
        if key.len() > INLINE {
            self.long_keys.insert(index, key.into());
            self.long_key_bytes += key.len();
        }
        self.keys.push(padded);
        self.lens.push(key.len() as u32);
        self.slots.push(slot);
        let tag = tag_of(hash);
        self.table.insert_at(at, Group { index, tag });
    }

    /// Heap bytes held (for the state memory limit): table, vectors, long keys.
    fn state_bytes(&self) -> usize {
        self.table.bytes()
            + self.keys.capacity() * (INLINE + 8)
            + self.long_key_bytes
            + self.long_keys.capacity() * 32
    }
}

/// How many rows ahead [`AlignedWindows::process`] prefetches table memory.
const PREFETCH_AHEAD: usize = 8;

/// The table size from which [`AlignedWindows::process`] prefetches (about an L2 cache).
const PREFETCH_FROM_BYTES: usize = 1 << 20;

pub struct AlignedWindows {
    core: WindowCore,
    size: i64,
    slide: i64,
    /// Pane start → its groups.
    panes: BTreeMap<i64, Pane>,
    /// Every window ending at or before this has fired (with or without data).
    fired_until: i64,
    /// The highest watermark processed.
    watermark: i64,
    hasher: KeyHasher,
    /// The keys of the batch being processed, one after the other, where each ends, and
    /// their hashes.
    key_buf: Vec<u8>,
    key_ends: Vec<u32>,
    key_hashes: Vec<u64>,
    /// Rows re-emitted after late events, by (window end, key): the last revision written.
    revisions: BTreeMap<(i64, Box<[u8]>), u32>,
    /// An expired pane's room (its groups forgotten), for the next new pane: see
    /// [`AlignedWindows::recycle`].
    spare: Option<Pane>,
    /// Scratch of the sliding windows' pane merge.
    merge: Merge,
}

/// The groups of one sliding window while its panes are merged: each found through a table
/// of indices (as in a pane), by the pane and index of its first appearance.
#[derive(Default)]
struct Merge {
    table: HashTable<Group>,
    /// (pane of the window, index in that pane) of each merged group.
    groups: Vec<(u32, u32)>,
    /// The accumulator slot holding each group's state: its own, or its only pane's.
    targets: Vec<u32>,
    /// Whether each group's target is its own slot (allocated for the merge, freed after).
    owned: Vec<bool>,
}

impl Merge {
    fn clear(&mut self) {
        self.table.clear();
        self.groups.clear();
        self.targets.clear();
        self.owned.clear();
    }
}

impl AlignedWindows {
    pub fn new(core: WindowCore, size: i64, slide: i64) -> AlignedWindows {
        AlignedWindows {
            core,
            size,
            slide,
            panes: BTreeMap::new(),
            fired_until: MIN_WATERMARK,
            watermark: MIN_WATERMARK,
            hasher: KeyHasher::default(),
            key_buf: Vec::new(),
            key_ends: Vec::new(),
            key_hashes: Vec::new(),
            revisions: BTreeMap::new(),
            spare: None,
            merge: Merge::default(),
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
        let fire = self.next_end().map_or(MAX_WATERMARK, |e| {
            (e - 1).saturating_add(self.core.emit_delay)
        });
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
        let firing = self.core.firing_watermark(watermark);
        while let Some(end) = self.next_end() {
            if end - 1 > firing {
                break;
            }
            self.emit_window(end, out);
            self.fired_until = end;
        }
        self.mark_fired(firing);
        self.watermark = self.watermark.max(watermark);
        self.purge(watermark);
    }

    /// Writes window `end`'s rows, in batches of at most `OUTPUT_ROWS`: the sink starts on
    /// them while the rest are built, and a window of a million groups never sits in memory
    /// twice.
    fn emit_window(&mut self, end: i64, out: &mut Emitter) {
        let start = end - self.size;
        if self.size == self.slide {
            let Some(pane) = self.panes.get(&start) else {
                return;
            };
            // Full batches, then the rest (empty when the pane fills whole batches).
            let full = pane.len() / OUTPUT_ROWS * OUTPUT_ROWS;
            let mut first = 0;
            while first <= full {
                let last = (first + OUTPUT_ROWS).min(pane.len());
                let groups = (first..last).map(|i| (pane.key(i), pane.slots[i]));
                out.emit(0, self.core.window_output(start, end, groups));
                first += OUTPUT_ROWS;
            }
            return;
        }
        // Merge the group states of the window's panes, in order of first appearance. The
        // merge table is kept from window to window, so it does not grow from empty each time.
        let panes: Vec<&Pane> = self
            .panes
            .range(start..=end - self.slide)
            .map(|(_, pane)| pane)
            .collect();
        // Most groups of a window are in one of its panes only (the long tail): such a group
        // is written from its pane's slot, and gets a slot of its own to merge into only when
        // it turns up in a second pane.
        let single_pane_slots = self.core.accs.merge_into_fresh_copies();
        let merge = &mut self.merge;
        merge.clear();
        for (p, pane) in panes.iter().enumerate() {
            for (i, &slot) in pane.slots.iter().enumerate() {
                let padded = &pane.keys[i];
                let len = pane.lens[i];
                let key = pane.key(i);
                let tag = tag_of(self.hasher.hash_padded(key, padded));
                let found = merge.table.find(table_hash(tag), |g| {
                    let (q, j) = merge.groups[g.index as usize];
                    let other = panes[q as usize];
                    g.tag == tag
                        && other.keys[j as usize] == *padded
                        && other.lens[j as usize] == len
                        && (key.len() <= INLINE || other.key(j as usize) == key)
                });
                match found {
                    Some(g) => {
                        let g = g.index as usize;
                        if !merge.owned[g] {
                            let target = self.core.accs.alloc();
                            self.core.accs.merge(target, merge.targets[g]);
                            merge.targets[g] = target;
                            merge.owned[g] = true;
                        }
                        self.core.accs.merge(merge.targets[g], slot);
                    }
                    None => {
                        let index = merge.groups.len() as u32;
                        merge
                            .table
                            .insert_unique(table_hash(tag), Group { index, tag }, |g| {
                                table_hash(g.tag)
                            });
                        merge.groups.push((p as u32, i as u32));
                        if single_pane_slots {
                            merge.targets.push(slot);
                            merge.owned.push(false);
                        } else {
                            let target = self.core.accs.alloc();
                            self.core.accs.merge(target, slot);
                            merge.targets.push(target);
                            merge.owned.push(true);
                        }
                    }
                }
            }
        }
        for (chunk_groups, chunk_targets) in merge
            .groups
            .chunks(OUTPUT_ROWS)
            .zip(merge.targets.chunks(OUTPUT_ROWS))
        {
            let groups = chunk_groups
                .iter()
                .zip(chunk_targets)
                .map(|(&(p, i), &target)| (panes[p as usize].key(i as usize), target));
            out.emit(0, self.core.window_output(start, end, groups));
        }
        for (&target, &owned) in merge.targets.iter().zip(&merge.owned) {
            if owned {
                self.core.accs.release(target);
            }
        }
    }

    /// Re-emits window `end`'s row for one group after a late (but allowed) record.
    fn emit_update(&mut self, end: i64, key: &[u8], out: &mut Emitter) {
        let start = end - self.size;
        let padded = pad(key);
        let hash = self.hasher.hash_padded(key, &padded);
        let target = self.core.accs.alloc();
        for (_, pane) in self.panes.range(start..end) {
            if let Some(i) = pane.find(hash, key, &padded) {
                self.core.accs.merge(target, pane.slots[i]);
            }
        }
        let revision = self
            .revisions
            .entry((end, key.into()))
            .and_modify(|r| *r += 1)
            .or_insert(1);
        let batch = self.core.output(&[(start, end, key, target)], &[*revision]);
        self.core.accs.release(target);
        out.emit(0, batch);
    }

    /// The slot of `(pane, key)` (hash `hash`), created if new; the flag says whether the
    /// pane is new. `watermark` is the one in force for the record.
    #[inline]
    fn slot_for(&mut self, pane_start: i64, key: &[u8], hash: u64, watermark: i64) -> (u32, bool) {
        let padded = pad(key);
        if let Some(pane) = self.panes.get_mut(&pane_start) {
            return match pane.probe(hash, key, &padded) {
                Probe::Found(i) => (pane.slots[i], false),
                Probe::Vacant(b, pos) => {
                    let slot = self.core.accs.alloc();
                    pane.insert_at((b, pos), hash, key, padded, slot);
                    (slot, false)
                }
            };
        }
        self.mark_fired(self.core.firing_watermark(watermark));
        let mut pane = self.spare.take().unwrap_or_default();
        let slot = self.core.accs.alloc();
        if let Probe::Vacant(b, pos) = pane.probe(hash, key, &padded) {
            pane.insert_at((b, pos), hash, key, padded, slot);
        }
        self.panes.insert(pane_start, pane);
        (slot, true)
    }

    /// Inserts a group into a pane with the state in `r` (restoring a checkpoint).
    fn restore_entry(
        &mut self,
        pane_start: i64,
        key: &[u8],
        r: &mut StateReader<'_>,
    ) -> StateResult<()> {
        let padded = pad(key);
        let hash = self.hasher.hash_padded(key, &padded);
        let slot = self.core.accs.restore_slot(r)?;
        let pane = self.panes.entry(pane_start).or_default();
        match pane.probe(hash, key, &padded) {
            Probe::Found(_) => Err(StateError(format!(
                "a group appears twice in pane {pane_start}"
            ))),
            Probe::Vacant(b, pos) => {
                pane.insert_at((b, pos), hash, key, padded, slot);
                Ok(())
            }
        }
    }

    /// Keeps an expired pane's room for the panes to come. A new pane starts empty and grows
    /// as keys come (pre-sizing it like the last full pane doubled the memory while that one
    /// was still open, as it is for the out-of-orderness after the next pane starts); when a
    /// pane expires, the newest pane moves into its room if it has less, so it stops growing
    /// step by step, and its own smaller room is freed.
    fn recycle(&mut self, mut pane: Pane) {
        if let Some(mut newest) = self.panes.last_entry()
            && newest.get().capacity() < pane.capacity()
        {
            pane.take_groups_of(std::mem::take(newest.get_mut()));
            *newest.get_mut() = pane;
            return;
        }
        pane.clear();
        if self
            .spare
            .as_ref()
            .is_none_or(|s| s.capacity() < pane.capacity())
        {
            self.spare = Some(pane);
        }
    }

    fn purge(&mut self, watermark: i64) {
        let lateness = self.core.lateness;
        // Windows past their lateness get no more updates.
        while let Some(entry) = self.revisions.first_entry() {
            if (entry.key().0 - 1).saturating_add(lateness) > watermark {
                break;
            }
            entry.remove();
        }
        while let Some((&start, _)) = self.panes.first_key_value() {
            if (start + self.size - 1).saturating_add(lateness) > watermark {
                break;
            }
            if let Some(pane) = self.panes.remove(&start) {
                for &slot in &pane.slots {
                    self.core.accs.release(slot);
                }
                self.recycle(pane);
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
        let mut late = LateRows::default();
        // Rows before `applied` are already in the accumulators.
        let mut applied = 0;
        let mut next_event = self.next_event();
        // First every row's key and its hash (a failed row's key is empty), so that each row
        // can ask for the table memory of a row a few places ahead while it probes its own.
        let mut key_buf = std::mem::take(&mut self.key_buf);
        let mut key_ends = std::mem::take(&mut self.key_ends);
        let mut key_hashes = std::mem::take(&mut self.key_hashes);
        key_buf.clear();
        key_ends.clear();
        key_hashes.clear();
        key_ends.push(0);
        for i in 0..n {
            let start = key_buf.len();
            if !evaluated.failed[i] {
                self.core.keys.encode(&keys, i, &mut key_buf);
            }
            let key = &key_buf[start..];
            key_hashes.push(self.hasher.hash_padded(key, &pad(key)));
            key_ends.push(key_buf.len() as u32);
        }
        // Prefetching pays when tables outgrow the caches (and costs a pane lookup per row).
        let prefetch = self
            .panes
            .values()
            .any(|p| p.table.bytes() >= PREFETCH_FROM_BYTES);
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
            // The record's windows end at pane + slide, pane + 2·slide, … pane + size; the
            // earliest ones are the first to be too late.
            if (pane + slide - 1).saturating_add(lateness) <= w {
                let missed: Vec<(i64, i64)> = (1..=size / slide)
                    .map(|k| pane + k * slide)
                    .take_while(|end| (end - 1).saturating_add(lateness) <= w)
                    .map(|end| (end - size, end))
                    .collect();
                let all = missed.len() as i64 == size / slide;
                late.push(i as u32, t, w, missed, !all);
                if all {
                    continue;
                }
            }
            let j = i + PREFETCH_AHEAD;
            if prefetch
                && j < n
                && let Some(ahead) = self.panes.get(&floor_to(batch.times[j], slide))
            {
                ahead.prefetch(key_hashes[j]);
            }
            let key = &key_buf[key_ends[i] as usize..key_ends[i + 1] as usize];
            let (slot, new_pane) = self.slot_for(pane, key, key_hashes[i], w);
            slots[i] = slot;
            if new_pane {
                next_event = next_event.min(self.next_event());
            }
            if self.core.revisions && pane + slide - 1 <= w {
                // The record reached a window that already fired: apply it now and re-emit
                // that window's row for its group (allowed lateness).
                self.core.accs.update(
                    &slots[applied..=i],
                    applied,
                    &args,
                    self.core.seq + applied as u64,
                );
                applied = i + 1;
                let key = key.to_vec();
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
        self.key_buf = key_buf;
        self.key_ends = key_ends;
        self.key_hashes = key_hashes;
        self.core.route_late(&batch, late, out);
        Ok(())
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Emitter) -> Result<()> {
        if watermark > self.watermark {
            self.advance(watermark, out);
        }
        Ok(())
    }

    fn output_watermark(&self, input: i64) -> i64 {
        self.core.firing_watermark(input)
    }

    fn open_windows(&self) -> usize {
        self.panes.len()
    }

    fn open_groups(&self) -> usize {
        self.panes.values().map(Pane::len).sum()
    }

    fn state_bytes(&self) -> usize {
        self.panes
            .values()
            .chain(self.spare.as_ref())
            .map(Pane::state_bytes)
            .sum::<usize>()
            + self.core.accs.state_bytes()
            // A revision entry: its window end, a boxed key and the map's node share.
            + self.revisions.len() * 80
    }

    /// Panes in time order, each group's key and aggregate state in order of appearance: the
    /// same state always writes the same bytes (a restored pane keeps that order).
    fn snapshot(&self, w: &mut StateWriter) {
        w.i64(self.size);
        w.i64(self.slide);
        w.i64(self.fired_until);
        w.i64(self.watermark);
        w.u64(self.core.seq);
        w.usize(self.panes.len());
        for (&start, pane) in &self.panes {
            w.i64(start);
            w.usize(pane.len());
            for (i, &slot) in pane.slots.iter().enumerate() {
                w.bytes(pane.key(i));
                self.core.accs.snapshot_slot(slot, w);
            }
        }
        w.usize(self.revisions.len());
        for ((end, key), revision) in &self.revisions {
            w.i64(*end);
            w.bytes(key);
            w.u64(u64::from(*revision));
        }
    }

    fn restore(&mut self, r: &mut StateReader<'_>) -> StateResult<()> {
        let (size, slide) = (r.i64()?, r.i64()?);
        if (size, slide) != (self.size, self.slide) {
            return Err(StateError(format!(
                "window size/slide {size}/{slide} ms in the checkpoint, {}/{} ms now",
                self.size, self.slide
            )));
        }
        self.fired_until = r.i64()?;
        self.watermark = r.i64()?;
        self.core.seq = r.u64()?;
        for _ in 0..r.count(2)? {
            let start = r.i64()?;
            for _ in 0..r.count(2)? {
                let key = r.bytes()?;
                self.restore_entry(start, key, r)?;
            }
        }
        for _ in 0..r.count(3)? {
            let end = r.i64()?;
            let key: Box<[u8]> = r.bytes()?.into();
            let revision = u32::try_from(r.u64()?)
                .map_err(|_| StateError("a window revision out of range".to_string()))?;
            self.revisions.insert((end, key), revision);
        }
        self.core.metrics.open_windows.store(
            self.panes.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key is found after any number of growths, with its index, and a cleared pane
    /// keeps its room and finds nothing.
    #[test]
    fn pane_finds_every_group_through_growth_and_clear() {
        let hasher = KeyHasher::default();
        let key = |i: u32| {
            let mut k = vec![1u8];
            k.extend_from_slice(&i.to_le_bytes());
            // Some keys longer than INLINE, some sharing their first INLINE bytes.
            if i.is_multiple_of(7) {
                k.extend_from_slice(&[9u8; INLINE]);
                k.extend_from_slice(&i.to_le_bytes());
            }
            k
        };
        let mut pane = Pane::default();
        for i in 0..5000u32 {
            let k = key(i);
            let padded = pad(&k);
            let hash = hasher.hash_padded(&k, &padded);
            match pane.probe(hash, &k, &padded) {
                Probe::Vacant(b, p) => pane.insert_at((b, p), hash, &k, padded, i + 100),
                Probe::Found(_) => panic!("key {i} found before it was added"),
            }
        }
        assert_eq!(pane.len(), 5000);
        assert_eq!(pane.table.iter().count(), 5000);
        for i in 0..5000u32 {
            let k = key(i);
            let padded = pad(&k);
            let found = pane.find(hasher.hash_padded(&k, &padded), &k, &padded);
            assert_eq!(found, Some(i as usize));
            assert_eq!(pane.key(i as usize), &k[..]);
            assert_eq!(pane.slots[i as usize], i + 100);
        }
        let capacity = pane.capacity();
        assert!(capacity >= 5000);
        pane.clear();
        assert_eq!(pane.capacity(), capacity);
        let k = key(3);
        let padded = pad(&k);
        assert_eq!(
            pane.find(hasher.hash_padded(&k, &padded), &k, &padded),
            None
        );
    }
}
