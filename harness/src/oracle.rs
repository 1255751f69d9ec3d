//! The oracle: does a response show its receiver someone else's data?
//!
//! Every response is checked whole: status, headers, body, error bodies and
//! media bytes alike. Two kinds of evidence:
//!
//! - **Canaries**, found anywhere in the bytes by one Aho-Corasick pass (its
//!   cost does not grow with the number of instances), case-insensitively,
//!   inside base64 at any alignment, after percent-decoding, and inside JSON
//!   strings after unescaping, where the JSON path is reported.
//! - **Owned identifiers**, matched structurally as whole JSON leaf values or
//!   header tokens, never as substrings: a short id must also match its
//!   [`Kind`](crate::ledger::Kind) and belong to exactly one instance.
//!
//! Neither counts when the receiver may see the owner (a grant), or when the
//! receiver itself sent the value in the request (an echo is not a leak).

use std::collections::HashSet;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde::Serialize;
use serde_json::Value;

use crate::canary::{Encoding, base64_fragments};
use crate::ledger::{DISTINCTIVE_LEN, InstanceId, Ledger};
use crate::transport::{Request, Response};

/// What was found, where, and whose it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub victim: InstanceId,
    pub what: Marker,
    /// `body $.items[2].title`, `header location`, `body` (raw bytes).
    pub location: String,
    /// The location with array indices as `[*]`: part of the bucket.
    pub location_pattern: String,
    /// Text around the match.
    pub excerpt: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Marker {
    Canary { encoding: Encoding },
    Identifier { var: String },
}

/// The canary search, built once per run.
pub struct Oracle {
    plain: AhoCorasick,
    encoded: AhoCorasick,
    /// Pattern index → instance, for each automaton.
    plain_owner: Vec<InstanceId>,
    encoded_owner: Vec<InstanceId>,
    canaries: Vec<String>,
}

impl Oracle {
    pub fn new(ledger: &Ledger) -> Self {
        let canaries: Vec<String> = ledger
            .instances()
            .iter()
            .map(|i| i.canary.clone())
            .collect();
        let mut encoded_patterns = Vec::new();
        let mut encoded_owner = Vec::new();
        for (id, canary) in canaries.iter().enumerate() {
            for fragment in base64_fragments(canary) {
                encoded_patterns.push(fragment);
                encoded_owner.push(id);
            }
        }
        let plain = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .build(&canaries)
            .expect("canaries make a valid automaton");
        let encoded = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostFirst)
            .build(&encoded_patterns)
            .expect("base64 fragments make a valid automaton");
        Self {
            plain,
            encoded,
            plain_owner: (0..canaries.len()).collect(),
            encoded_owner,
            canaries,
        }
    }

    /// Canaries in `bytes`: (owner, encoding, byte range).
    fn scan(&self, bytes: &[u8]) -> Vec<(InstanceId, Encoding, std::ops::Range<usize>)> {
        let mut hits = Vec::new();
        for m in self.plain.find_iter(bytes) {
            hits.push((
                self.plain_owner[m.pattern().as_usize()],
                Encoding::Plain,
                m.range(),
            ));
        }
        for m in self.encoded.find_iter(bytes) {
            hits.push((
                self.encoded_owner[m.pattern().as_usize()],
                Encoding::Base64,
                m.range(),
            ));
        }
        hits
    }

    /// Everything in `response` that `observer` should not have seen.
    pub fn inspect(
        &self,
        ledger: &Ledger,
        observer: InstanceId,
        request: &Request,
        response: &Response,
    ) -> Vec<Evidence> {
        let echo = Echo::of(request);
        let mut found = Found::default();

        for (name, value) in &response.headers {
            let location = format!("header {name}");
            self.scan_text(
                value.as_bytes(),
                Encoding::Plain,
                &location,
                &location,
                &mut found,
            );
            if value.contains('%') {
                let decoded = percent_decode(value);
                self.scan_text(
                    decoded.as_bytes(),
                    Encoding::UrlEncoded,
                    &location,
                    &location,
                    &mut found,
                );
            }
            for token in value.split(|c: char| {
                !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' || c == '@')
            }) {
                if token.len() >= DISTINCTIVE_LEN {
                    found.identifier(ledger, token, None, &[], &location, &location);
                }
            }
        }

        match serde_json::from_slice::<Value>(&response.body) {
            Ok(json) => {
                // Raw bytes first (base64 in any string), then each decoded
                // leaf, which also gives the JSON path.
                self.scan_text(&response.body, Encoding::Plain, "body", "body", &mut found);
                let mut leaves = Vec::new();
                collect_leaves(
                    &json,
                    "$".to_string(),
                    "$".to_string(),
                    None,
                    &[],
                    &mut leaves,
                );
                for leaf in &leaves {
                    let location = format!("body {}", leaf.path);
                    let pattern = format!("body {}", leaf.pattern);
                    if let Value::String(text) = leaf.value {
                        self.scan_text(
                            text.as_bytes(),
                            Encoding::JsonEscaped,
                            &location,
                            &pattern,
                            &mut found,
                        );
                        if text.contains('%') {
                            let decoded = percent_decode(text);
                            self.scan_text(
                                decoded.as_bytes(),
                                Encoding::UrlEncoded,
                                &location,
                                &pattern,
                                &mut found,
                            );
                        }
                    }
                    let text = match leaf.value {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        _ => continue,
                    };
                    found.identifier(
                        ledger,
                        &text,
                        leaf.key.as_deref(),
                        &leaf.siblings,
                        &location,
                        &pattern,
                    );
                }
            }
            Err(_) => {
                self.scan_text(&response.body, Encoding::Plain, "body", "body", &mut found);
                if response.body.contains(&b'%') {
                    let decoded = percent_decode(&String::from_utf8_lossy(&response.body));
                    self.scan_text(
                        decoded.as_bytes(),
                        Encoding::UrlEncoded,
                        "body",
                        "body",
                        &mut found,
                    );
                }
            }
        }

        found
            .evidence
            .into_iter()
            .filter(|e| e.victim != observer && !ledger.visible(observer, e.victim))
            .filter(|e| match &e.what {
                Marker::Canary { .. } => !echo.has_canary(&self.canaries[e.victim]),
                Marker::Identifier { .. } => !echo.has_value(&e.value),
            })
            .map(|e| e.evidence)
            .collect()
    }

    fn scan_text(
        &self,
        bytes: &[u8],
        decoded_as: Encoding,
        location: &str,
        pattern: &str,
        found: &mut Found,
    ) {
        for (victim, encoding, range) in self.scan(bytes) {
            let encoding = match (encoding, decoded_as) {
                (Encoding::Plain, other) => other,
                (base64, _) => base64,
            };
            found.canary(victim, encoding, location, pattern, excerpt(bytes, range));
        }
    }
}

/// A candidate before the echo and grant filters.
struct Candidate {
    victim: InstanceId,
    what: Marker,
    value: String,
    evidence: Evidence,
}

#[derive(Default)]
struct Found {
    evidence: Vec<Candidate>,
    seen: HashSet<(InstanceId, String)>,
}

impl Found {
    /// Keeps the most precise sighting of each victim's canary: a JSON path
    /// beats the raw body it was also found in.
    fn canary(
        &mut self,
        victim: InstanceId,
        encoding: Encoding,
        location: &str,
        pattern: &str,
        excerpt: String,
    ) {
        if let Some(existing) = self
            .evidence
            .iter_mut()
            .find(|c| {
                c.victim == victim
                    && matches!(c.what, Marker::Canary { .. })
                    && c.evidence.location == "body"
            })
            .filter(|_| location.starts_with("body $"))
        {
            // Refine the raw-body sighting with the path; the raw encoding
            // (plain or base64) says more than "found after unescaping".
            if let Marker::Canary { encoding: raw } = existing.what {
                let encoding = if raw == Encoding::Plain {
                    encoding_after_unescape(encoding)
                } else {
                    raw
                };
                existing.what = Marker::Canary { encoding };
            }
            existing.evidence.location = location.to_string();
            existing.evidence.location_pattern = pattern.to_string();
            existing.evidence.excerpt = excerpt;
            existing.evidence.what = existing.what.clone();
            self.seen.insert((victim, location.to_string()));
            return;
        }
        if !self.seen.insert((victim, location.to_string())) {
            return;
        }
        let what = Marker::Canary { encoding };
        self.evidence.push(Candidate {
            victim,
            what: what.clone(),
            value: String::new(),
            evidence: Evidence {
                victim,
                what,
                location: location.to_string(),
                location_pattern: pattern.to_string(),
                excerpt,
            },
        });
    }

    fn identifier(
        &mut self,
        ledger: &Ledger,
        text: &str,
        key: Option<&str>,
        siblings: &[String],
        location: &str,
        pattern: &str,
    ) {
        let owners = ledger.owners(text);
        if owners.is_empty() {
            return;
        }
        let distinctive = text.len() >= DISTINCTIVE_LEN;
        let matching: Vec<_> = owners
            .iter()
            .filter(|o| distinctive || key.is_some_and(|k| o.kind.matches(k, siblings)))
            .collect();
        let distinct_owners: HashSet<InstanceId> = matching.iter().map(|o| o.owner).collect();
        // A short value that several instances own is not an identifier.
        if distinct_owners.len() != 1 {
            return;
        }
        let owned = matching[0];
        if !self
            .seen
            .insert((owned.owner, format!("{location}={text}")))
        {
            return;
        }
        let what = Marker::Identifier {
            var: owned.kind.var.clone(),
        };
        self.evidence.push(Candidate {
            victim: owned.owner,
            what: what.clone(),
            value: text.to_string(),
            evidence: Evidence {
                victim: owned.owner,
                what,
                location: location.to_string(),
                location_pattern: pattern.to_string(),
                excerpt: truncate(text, 120),
            },
        });
    }
}

/// A canary found plainly in the raw bytes is plain even though the leaf
/// scan also saw it; one found only in the leaf was escaped.
fn encoding_after_unescape(leaf: Encoding) -> Encoding {
    match leaf {
        Encoding::JsonEscaped => Encoding::Plain,
        other => other,
    }
}

/// What the observer itself put in the request.
struct Echo {
    text: String,
    values: HashSet<String>,
}

impl Echo {
    fn of(request: &Request) -> Self {
        let mut values = HashSet::new();
        let decoded_path = percent_decode(&request.path);
        for token in decoded_path.split(['/', '?', '&', '=']) {
            if !token.is_empty() {
                values.insert(token.to_string());
            }
        }
        let body = String::from_utf8_lossy(&request.body).into_owned();
        if let Ok(json) = serde_json::from_str::<Value>(&body) {
            let mut leaves = Vec::new();
            collect_leaves(&json, String::new(), String::new(), None, &[], &mut leaves);
            for leaf in leaves {
                match leaf.value {
                    Value::String(s) => values.insert(s.clone()),
                    Value::Number(n) => values.insert(n.to_string()),
                    _ => false,
                };
            }
        }
        let text = format!("{decoded_path}\n{body}").to_ascii_lowercase();
        Self { text, values }
    }

    fn has_canary(&self, canary: &str) -> bool {
        self.text.contains(canary)
    }

    fn has_value(&self, value: &str) -> bool {
        self.values.contains(value)
    }
}

struct Leaf<'a> {
    path: String,
    pattern: String,
    key: Option<String>,
    siblings: Vec<String>,
    value: &'a Value,
}

fn collect_leaves<'a>(
    value: &'a Value,
    path: String,
    pattern: String,
    key: Option<String>,
    siblings: &[String],
    out: &mut Vec<Leaf<'a>>,
) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<String> = map.keys().cloned().collect();
            keys.sort();
            for (k, v) in map {
                let segment =
                    if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !k.is_empty() {
                        format!(".{k}")
                    } else {
                        format!("[{}]", serde_json::to_string(k).unwrap_or_default())
                    };
                collect_leaves(
                    v,
                    format!("{path}{segment}"),
                    format!("{pattern}{segment}"),
                    Some(k.clone()),
                    &keys,
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_leaves(
                    v,
                    format!("{path}[{i}]"),
                    format!("{pattern}[*]"),
                    key.clone(),
                    siblings,
                    out,
                );
            }
        }
        leaf => out.push(Leaf {
            path,
            pattern,
            key,
            siblings: siblings.to_vec(),
            value: leaf,
        }),
    }
}

/// The sorted keys of the object that holds the node at JSON pointer `pointer`.
pub fn siblings_at(json: &Value, pointer: &str) -> (Option<String>, Vec<String>) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return (None, Vec::new());
    };
    let key = last.replace("~1", "/").replace("~0", "~");
    match json.pointer(parent) {
        Some(Value::Object(map)) => {
            let mut keys: Vec<String> = map.keys().cloned().collect();
            keys.sort();
            (Some(key), keys)
        }
        // An element of an array: its kind is that of the array's key.
        Some(Value::Array(_)) => siblings_at(json, parent),
        _ => (None, Vec::new()),
    }
}

pub fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(&text.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn excerpt(bytes: &[u8], range: std::ops::Range<usize>) -> String {
    let start = range.start.saturating_sub(40);
    let end = (range.end + 40).min(bytes.len());
    truncate(&String::from_utf8_lossy(&bytes[start..end]), 200)
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut}…")
}
