//! A tiny least-recently-used cache, used per thread for compiled regular expressions and
//! date patterns: a pipeline almost always passes the same constant pattern on every row, so
//! the hit is the first entry and costs one string comparison.

pub(super) struct Lru<V> {
    /// Most recently used first.
    entries: Vec<(Box<str>, V)>,
    capacity: usize,
}

impl<V: Clone> Lru<V> {
    pub(super) const fn new(capacity: usize) -> Lru<V> {
        Lru {
            entries: Vec::new(),
            capacity,
        }
    }

    /// The cached value for `key`, computing and remembering it on a miss (errors are cached
    /// too, so a bad pattern in every row is not recompiled every row).
    pub(super) fn get_or_insert(&mut self, key: &str, make: impl FnOnce(&str) -> V) -> V {
        if let Some(i) = self.entries.iter().position(|(k, _)| &**k == key) {
            if i > 0 {
                self.entries[..=i].rotate_right(1);
            }
            return self.entries[0].1.clone();
        }
        let value = make(key);
        if self.entries.len() >= self.capacity {
            self.entries.pop();
        }
        self.entries.insert(0, (key.into(), value.clone()));
        value
    }

    #[cfg(test)]
    fn keys(&self) -> Vec<&str> {
        self.entries.iter().map(|(k, _)| &**k).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used() {
        let mut lru = Lru::new(2);
        let mut made = 0;
        let mut get = |lru: &mut Lru<usize>, k: &str| {
            lru.get_or_insert(k, |k| {
                made += 1;
                k.len()
            })
        };
        assert_eq!(get(&mut lru, "a"), 1);
        assert_eq!(get(&mut lru, "bb"), 2);
        assert_eq!(get(&mut lru, "a"), 1);
        assert_eq!(lru.keys(), ["a", "bb"]);
        get(&mut lru, "ccc");
        assert_eq!(lru.keys(), ["ccc", "a"]);
        get(&mut lru, "a");
        assert_eq!(made, 3);
    }
}
