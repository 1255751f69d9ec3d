//! The secret index: every credential a run has seen, found in a text at a
//! cost that does not grow with how many there are.
//!
//! A run at scale holds tens of thousands of tokens and redacts every path it
//! logs; testing each secret in turn made that quadratic in the number of
//! instances. Here secrets are grouped by length and kept by a rolling hash,
//! so a text of `n` bytes costs `n` bit tests per distinct length (a
//! handful: tokens of one API share a length), a table look-up only where
//! a bit is set, and inserting one is O(1),
//! which matters because logins add secrets all through a run. A hash hit is
//! confirmed by a second hash of the window, independent of the first: the
//! secrets themselves are not kept (tens of megabytes of tokens at 100,000
//! patients), and two texts of one length agreeing in both 64-bit hashes
//! by chance would only redact a window too many.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;

/// The rolling hash's multiplier (odd, so no byte's weight vanishes).
const BASE: u64 = 0x0000_0100_0000_01b3;

#[derive(Debug, Default)]
pub(super) struct SecretIndex {
    /// Length → the secrets of that length.
    by_len: BTreeMap<usize, SameLength>,
}

/// The secrets of one length, as hashes: a run holds hundreds of
/// thousands of tokens.
#[derive(Debug, Default)]
struct SameLength {
    /// Per secret, its [`check`] hash.
    checks: Vec<u64>,
    /// Mixed hash → the latest secret with that hash.
    table: HashMap<u64, u32, Mixed>,
    /// Per secret, the one before it with the same hash ([`NONE`] ends).
    chain: Vec<u32>,
    /// One bit per secret: taught as it is, not only as another's encoding.
    taught: Vec<u64>,
    /// One bit per value of a hash's top bits, set for each secret: most
    /// windows of a text are told apart by one bit test, before any
    /// mixing or table look-up.
    filter: Vec<u64>,
}

/// The end of a chain of secrets with one hash.
const NONE: u32 = u32::MAX;

/// Top bits of a hash the filter keeps one bit for (8 KiB per length).
const FILTER_BITS: u32 = 16;

/// The filter's word and bit for hash `h`.
fn filter_bit(h: u64) -> (usize, u64) {
    let bit = h >> (64 - FILTER_BITS);
    ((bit / 64) as usize, 1 << (bit % 64))
}

impl SameLength {
    fn may_hold(&self, h: u64) -> bool {
        let (word, bit) = filter_bit(h);
        self.filter.get(word).is_some_and(|w| w & bit != 0)
    }

    /// Which secret `secret` (of hash `h`) is, if known; its second hash
    /// is taken only once the first is found.
    fn position(&self, h: u64, secret: &[u8]) -> Option<u32> {
        let first = *self.table.get(&mix(h))?;
        self.walk(first, check(secret))
    }

    /// The secret of check hash `check` on the chain from `at`.
    fn walk(&self, mut at: u32, check: u64) -> Option<u32> {
        while at != NONE {
            if self.checks[at as usize] == check {
                return Some(at);
            }
            at = self.chain[at as usize];
        }
        None
    }

    /// Adds `secret` (of hash `h`) unless known; which one it is.
    fn insert(&mut self, h: u64, secret: &[u8]) -> u32 {
        let check = check(secret);
        let first = self.table.get(&mix(h)).copied();
        if let Some(known) = first.and_then(|at| self.walk(at, check)) {
            return known;
        }
        if self.filter.is_empty() {
            self.filter = vec![0; (1 << FILTER_BITS) / 64];
        }
        let (word, bit) = filter_bit(h);
        self.filter[word] |= bit;
        let at = u32::try_from(self.chain.len()).expect("fewer than 2^32 secrets of one length");
        self.checks.push(check);
        let before = self.table.insert(mix(h), at);
        self.chain.push(before.unwrap_or(NONE));
        if at % 64 == 0 {
            self.taught.push(0);
        }
        at
    }

    fn taught(&self, at: u32) -> bool {
        self.taught[at as usize / 64] & (1 << (at % 64)) != 0
    }

    fn teach(&mut self, at: u32) {
        self.taught[at as usize / 64] |= 1 << (at % 64);
    }
}

impl SecretIndex {
    /// Adds `secret`: `taught` as it is, or only as another's encoding.
    pub fn insert(&mut self, secret: &[u8], taught: bool) {
        if secret.is_empty() {
            return;
        }
        let same_length = self.by_len.entry(secret.len()).or_default();
        let at = same_length.insert(hash(secret), secret);
        if taught {
            same_length.teach(at);
        }
    }

    /// Whether `secret` was taught as it is.
    pub fn taught(&self, secret: &[u8]) -> bool {
        let Some(same_length) = self.by_len.get(&secret.len()) else {
            return false;
        };
        (same_length.position(hash(secret), secret)).is_some_and(|at| same_length.taught(at))
    }

    /// The byte ranges of `text` covered by secrets, in order, overlapping
    /// ones merged so that no byte of any secret is left out.
    pub fn find(&self, text: &[u8]) -> Vec<Range<usize>> {
        if self.by_len.is_empty() || text.is_empty() {
            return Vec::new();
        }
        let prefix = prefix_hashes(text);
        let mut hits = Vec::new();
        for (&len, same_length) in self.by_len.range(..=text.len()) {
            let weight = BASE.wrapping_pow(len as u32);
            for start in 0..=text.len() - len {
                let window = prefix[start + len].wrapping_sub(prefix[start].wrapping_mul(weight));
                if !same_length.may_hold(window) {
                    continue;
                }
                if (same_length.position(window, &text[start..start + len])).is_some() {
                    hits.push(start..start + len);
                }
            }
        }
        merge(hits)
    }
}

/// `prefix[i]` is the hash of `text[..i]`.
fn prefix_hashes(text: &[u8]) -> Vec<u64> {
    let mut prefix = Vec::with_capacity(text.len() + 1);
    let mut h = 0u64;
    prefix.push(h);
    for &b in text {
        h = step(h, b);
        prefix.push(h);
    }
    prefix
}

fn hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |h, &b| step(h, b))
}

fn step(h: u64, byte: u8) -> u64 {
    h.wrapping_mul(BASE).wrapping_add(u64::from(byte) + 1)
}

/// The second hash a secret is told by, independent of the rolling one.
fn check(bytes: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    const SEED: u64 = 0x9e37_79b9_7f4a_7c15;
    foldhash::quality::FixedState::with_seed(SEED).hash_one(bytes)
}

/// The polynomial hash's low bits depend only on the bytes' low bits; a
/// finaliser spreads every bit before the table uses them.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

fn merge(mut ranges: Vec<Range<usize>>) -> Vec<Range<usize>> {
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

/// Keys are already mixed hashes: the table uses them as they are.
type Mixed = BuildHasherDefault<AsIs>;

#[derive(Default)]
struct AsIs(u64);

impl Hasher for AsIs {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys reach this table; anything else is folded in.
        for &b in bytes {
            self.0 = step(self.0, b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(secrets: &[&str]) -> SecretIndex {
        let mut index = SecretIndex::default();
        for s in secrets {
            index.insert(s.as_bytes(), true);
        }
        index
    }

    #[test]
    fn finds_every_occurrence_of_every_length() {
        let index = index(&["tok-123456", "pw-xy", "tok-123456"]);
        let text = b"a tok-123456 b pw-xy c tok-123456";
        assert_eq!(index.find(text), vec![2..12, 15..20, 23..33]);
        assert!(index.find(b"tok-12345 pw-x").is_empty());
    }

    #[test]
    fn overlapping_secrets_are_covered_whole() {
        let index = index(&["abcdef", "defghi", "cd"]);
        assert_eq!(index.find(b"xxabcdefghiyy"), vec![2..11]);
    }

    #[test]
    fn many_secrets_are_told_apart() {
        let mut index = SecretIndex::default();
        for i in 0..20_000 {
            index.insert(format!("token-{i:08}").as_bytes(), true);
        }
        assert_eq!(index.find(b"/v1/x?t=token-00012345&u=1"), vec![8..22]);
        assert!(index.find(b"/v1/x?t=token-00020000").is_empty());
    }

    #[test]
    fn a_window_with_a_secret_s_rolling_hash_is_not_taken_for_it() {
        // A Thue–Morse string of 2,048 bytes and its complement share the
        // rolling hash whatever its odd multiplier; the second hash tells
        // them apart.
        let thue_morse: Vec<u8> = (0..2048u32)
            .map(|i| if i.count_ones() % 2 == 0 { b'a' } else { b'b' })
            .collect();
        let complement: Vec<u8> = (thue_morse.iter())
            .map(|b| if *b == b'a' { b'b' } else { b'a' })
            .collect();
        assert_eq!(hash(&thue_morse), hash(&complement));
        let mut index = SecretIndex::default();
        index.insert(&thue_morse, true);
        assert_eq!(index.find(&thue_morse), vec![0..2048]);
        assert!(index.find(&complement).is_empty());
        assert!(!index.taught(&complement));
    }
}
