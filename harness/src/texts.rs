//! Texts: a map from text to a value, for what a run's ledger remembers by
//! text: every value captured or generated, every account name claimed,
//! every credential issued, every canary. A run of 100,000 patients holds
//! millions of them, most a UUID or a token.
//!
//! A `String` key costs its length again in pointer, length, capacity and
//! the allocator's rounding, and its slot in a hash table holds the key and
//! the value side by side, half empty after each growth. Here the texts sit
//! one after another in one buffer, the values in a vector beside them,
//! and the table that finds them holds a 4-byte index each.

use std::hash::BuildHasher;

use hashbrown::HashTable;

/// Text → value. Looked up for every leaf of every response: a fast hash,
/// seeded per process so that a target cannot choose texts that collide.
pub struct TextMap<V> {
    /// Every text, one after another.
    bytes: String,
    /// Where each text ends in `bytes`.
    ends: Vec<usize>,
    values: Vec<V>,
    /// Indices into `ends` and `values`, by the hash of their text.
    table: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
}

impl<V> Default for TextMap<V> {
    fn default() -> Self {
        TextMap {
            bytes: String::new(),
            ends: Vec::new(),
            values: Vec::new(),
            table: HashTable::new(),
            hasher: Default::default(),
        }
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for TextMap<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Text `i` of `bytes` ending at `ends`.
fn text<'a>(bytes: &'a str, ends: &[usize], i: u32) -> &'a str {
    let i = i as usize;
    let start = if i == 0 { 0 } else { ends[i - 1] };
    &bytes[start..ends[i]]
}

impl<V> TextMap<V> {
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The index of `key`, if it is there.
    fn find(&self, key: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        let (bytes, ends) = (&self.bytes, &self.ends);
        self.table
            .find(hash, |&i| text(bytes, ends, i) == key)
            .copied()
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.find(key).map(|i| &self.values[i as usize])
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.find(key).map(|i| &mut self.values[i as usize])
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_some()
    }

    /// The value of `key`, added with `value()` when it is not there.
    pub fn entry(&mut self, key: &str, value: impl FnOnce() -> V) -> &mut V {
        let hash = self.hasher.hash_one(key);
        let (bytes, ends, hasher) = (&self.bytes, &self.ends, &self.hasher);
        let found = self.table.entry(
            hash,
            |&i| text(bytes, ends, i) == key,
            |&i| hasher.hash_one(text(bytes, ends, i)),
        );
        let i = match found {
            hashbrown::hash_table::Entry::Occupied(entry) => *entry.get(),
            hashbrown::hash_table::Entry::Vacant(entry) => {
                let i = u32::try_from(self.values.len()).expect("fewer than 2^32 texts");
                entry.insert(i);
                self.bytes.push_str(key);
                self.ends.push(self.bytes.len());
                self.values.push(value());
                i
            }
        };
        &mut self.values[i as usize]
    }

    /// Sets `key`'s value.
    pub fn insert(&mut self, key: &str, value: V) {
        let mut value = Some(value);
        let slot = self.entry(key, || value.take().expect("taken once"));
        if let Some(value) = value {
            *slot = value;
        }
    }

    /// Every text and its value, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        (0..self.values.len() as u32)
            .map(|i| (text(&self.bytes, &self.ends, i), &self.values[i as usize]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_found_again_after_the_table_grows() {
        let mut map = TextMap::default();
        for i in 0..10_000u32 {
            *map.entry(&format!("value-{i}"), || 0) += i;
        }
        map.insert("value-7", 70);
        map.insert("", 1);
        assert_eq!(map.len(), 10_001);
        assert_eq!(map.get("value-9999"), Some(&9999));
        assert_eq!(map.get("value-7"), Some(&70));
        assert_eq!(map.get(""), Some(&1));
        assert!(!map.contains_key("value-10000") && map.get("value-").is_none());
        *map.get_mut("value-3").unwrap() = 33;
        assert_eq!(map.iter().nth(3), Some(("value-3", &33)));
    }
}
