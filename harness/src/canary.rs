//! Canaries: unique, high-entropy markers that each instance embeds in
//! everything it creates, and the encoded forms in which a real API may
//! return them.
//!
//! A canary is `ct` + 6 characters of run id + 14 of instance, lowercase
//! letters and digits only: JSON and URL encoding leave it alone, case
//! folding is undone by matching case-insensitively, and every base64
//! alignment is precomputed so it is found inside a JWT or a data URL.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// A deterministic 64-bit mix (SplitMix64) of `seed` and `parts`: the one
/// source of seeded choices, independent of the order tasks run in.
pub fn mix(seed: u64, parts: &[u64]) -> u64 {
    let mut z = seed ^ 0x9e37_79b9_7f4a_7c15;
    for part in parts {
        z = z.wrapping_add(*part).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
    }
    z
}

fn letters(mut bits: u64, n: usize, out: &mut String) {
    for _ in 0..n {
        out.push(ALPHABET[(bits % ALPHABET.len() as u64) as usize] as char);
        bits /= ALPHABET.len() as u64;
    }
}

/// The length of a run id, the start of each of its canaries.
pub const RUN_ID_LEN: usize = 8;

/// The length of a canary: a run id and 14 characters.
pub const CANARY_LEN: usize = 22;

/// A run id: `ct` and six characters, drawn from `nonce`.
pub fn run_id(nonce: u64) -> String {
    let mut id = String::from("ct");
    letters(mix(nonce, &[0x52]), 6, &mut id);
    id
}

/// The canary of instance `global_index` in run `run_id` (with `nonce`).
pub fn canary(run_id: &str, nonce: u64, global_index: u64) -> String {
    let mut canary = run_id.to_string();
    letters(mix(nonce, &[0xca, global_index]), 7, &mut canary);
    letters(mix(nonce, &[0xcb, global_index]), 7, &mut canary);
    canary
}

/// A nonce no other run, program, shrink attempt or replay has: fresh
/// canaries, e-mails and run ids every time, so that on a target that keeps
/// its data nothing meets an older run's accounts (a sign-up answering 409,
/// a login into someone else's account). Also the random seed when none is
/// given.
pub fn fresh_nonce() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0
}

/// How a canary was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// As is, or with its case changed.
    Plain,
    /// Inside base64 or base64url (a JWT payload, a data URL).
    Base64,
    /// After percent-decoding (a URL, a form body).
    UrlEncoded,
    /// After JSON string unescaping (`\u0063...`).
    JsonEscaped,
}

impl Encoding {
    /// The name reports use (as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Plain => "plain",
            Encoding::Base64 => "base64",
            Encoding::UrlEncoded => "url-encoded",
            Encoding::JsonEscaped => "json-escaped",
        }
    }
}

/// The base64 and base64url fragments that appear whenever `canary` is
/// encoded at any byte alignment within a larger payload.
pub fn base64_fragments(canary: &str) -> Vec<String> {
    let bytes = canary.as_bytes();
    let mut fragments = Vec::new();
    for offset in 0..3usize {
        let mut input = vec![0u8; offset];
        input.extend_from_slice(bytes);
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let encoded = engine.encode(&input);
            // Characters whose six bits come only from the canary's bytes.
            let start = (offset * 8).div_ceil(6);
            let end = ((offset + bytes.len()) * 8) / 6;
            let fragment = encoded[start..end].to_string();
            if !fragments.contains(&fragment) {
                fragments.push(fragment);
            }
        }
    }
    fragments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canaries_are_unique_lowercase_and_carry_the_run_id() {
        let run = run_id(7);
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000 {
            let c = canary(&run, 7, i);
            assert_eq!(c.len(), 22);
            assert!(c.starts_with(&run));
            assert!(
                c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit())
            );
            assert!(seen.insert(c));
        }
        assert_ne!(run_id(7), run_id(8));
    }

    #[test]
    fn base64_fragments_are_found_at_every_alignment() {
        let c = canary(&run_id(1), 1, 3);
        let fragments = base64_fragments(&c);
        for prefix in ["", "x", "xy", "{\"sub\":\"", "{\"name\":\"Ann "] {
            let payload = format!("{prefix}{c}\"}}");
            for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
                let encoded = engine.encode(payload.as_bytes());
                assert!(
                    fragments.iter().any(|f| encoded.contains(f.as_str())),
                    "{prefix:?} {encoded}"
                );
            }
        }
    }

    #[test]
    fn mix_is_deterministic_and_spreads() {
        assert_eq!(mix(1, &[2, 3]), mix(1, &[2, 3]));
        assert_ne!(mix(1, &[2, 3]), mix(1, &[3, 2]));
        assert_ne!(mix(1, &[2]), mix(2, &[2]));
    }
}
