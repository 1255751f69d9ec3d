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
//!   [`Kind`](crate::world::Kind) and belong to exactly one instance.
//!
//! Neither counts when the receiver may see the owner (a grant), when the
//! receiver itself sent the value in the request (an echo is not a leak), or
//! when the request carried the owner's canary: such a request acts for the
//! owner (a login with their email and another's session header), so its
//! answer may be about them.

use std::collections::HashSet;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde::Serialize;
use serde_json::Value;

use std::sync::Arc;

use crate::canary::{CANARY_LEN, Encoding, base64_fragments};
use crate::transport::{Request, Response};
use crate::world::{DISTINCTIVE_LEN, InstanceId, Ledger};

/// A canary seen in some bytes: whose, how encoded, where.
type Sighting = (InstanceId, Encoding, std::ops::Range<usize>);

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

impl Evidence {
    /// Canaries say most (they are the victim's own words), then long
    /// identifiers, then short ones.
    pub fn rank(&self) -> u8 {
        match &self.what {
            Marker::Canary { .. } => 0,
            Marker::Identifier { .. } if self.excerpt.len() >= DISTINCTIVE_LEN => 1,
            Marker::Identifier { .. } => 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Marker {
    Canary { encoding: Encoding },
    Identifier { var: String },
}

/// The canary search, built once per world.
pub struct Oracle {
    plain: AhoCorasick,
    encoded: AhoCorasick,
    /// Pattern index → instance, for the base64 fragments (several per
    /// canary); the plain automaton's pattern `i` is `own.start + i`.
    encoded_owner: Vec<InstanceId>,
    /// Canaries of other worlds sharing the ledger (other programs of a
    /// fuzz run), found by the run id they all start with.
    others: Option<Others>,
    /// This world's instances.
    own: std::ops::Range<InstanceId>,
}

struct Others {
    prefix: AhoCorasick,
    ledger: Arc<Ledger>,
}

impl Oracle {
    /// The search for the canaries of `ids`, the instances of one world.
    pub fn new(ledger: &Ledger, ids: std::ops::Range<InstanceId>) -> Self {
        let canaries: Vec<String> = ids
            .clone()
            .map(|id| ledger.instance(id).canary.clone())
            .collect();
        let mut encoded_patterns = Vec::new();
        let mut encoded_owner = Vec::new();
        for (id, canary) in ids.clone().zip(&canaries) {
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
            encoded_owner,
            others: None,
            own: ids,
        }
    }

    /// Also finds the canaries (plain, case-changed, JSON-escaped or
    /// percent-encoded; not inside base64) of every other instance of
    /// `ledger` whose canary starts with `run_id`, as they are added.
    pub fn with_others(mut self, ledger: Arc<Ledger>, run_id: &str) -> Self {
        let prefix = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .build([run_id])
            .expect("a run id makes a valid automaton");
        self.others = Some(Others { prefix, ledger });
        self
    }

    /// Canaries in `bytes`: (owner, encoding, byte range).
    fn scan(&self, bytes: &[u8]) -> Vec<Sighting> {
        let mut hits = Vec::new();
        for m in self.plain.find_iter(bytes) {
            hits.push((
                self.own.start + m.pattern().as_usize(),
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
        if let Some(others) = &self.others {
            others.scan(bytes, &self.own, &mut hits);
        }
        hits
    }

    /// Whose canaries a request carries (plainly, in its path or body).
    pub fn canaries_in(&self, path: &str, body: &[u8]) -> Vec<InstanceId> {
        let mut owners: Vec<InstanceId> = self
            .plain
            .find_iter(path.as_bytes())
            .chain(self.plain.find_iter(body))
            .map(|m| self.own.start + m.pattern().as_usize())
            .collect();
        owners.sort_unstable();
        owners.dedup();
        owners
    }

    /// Everything in `response` that `observer` should not have seen.
    pub fn inspect(
        &self,
        ledger: &Ledger,
        observer: InstanceId,
        request: &Request,
        response: &Response,
    ) -> Vec<Evidence> {
        let json = serde_json::from_slice::<Value>(&response.body).ok();
        self.inspect_parsed(ledger, observer, request, response, json.as_ref())
    }

    /// As [`Oracle::inspect`], with the body already parsed (`None`: not JSON).
    pub fn inspect_parsed(
        &self,
        ledger: &Ledger,
        observer: InstanceId,
        request: &Request,
        response: &Response,
        json: Option<&Value>,
    ) -> Vec<Evidence> {
        let mut found = Found::default();
        for (name, value) in &response.headers {
            self.header(ledger, name, value, &mut found);
        }
        // The raw body: every encoding, and the only view of non-JSON bytes.
        let raw = self.scan(&response.body);
        match json {
            Some(json) => {
                let mut leaves = Vec::new();
                let root = "$".to_string();
                collect_leaves(json, root.clone(), root, None, &[], &mut leaves);
                for leaf in &leaves {
                    self.leaf(ledger, leaf, &raw, &mut found);
                }
            }
            None if response.body.contains(&b'%') => {
                let decoded = percent_decode(&String::from_utf8_lossy(&response.body));
                let encoding = Some(Encoding::UrlEncoded);
                self.sight(decoded.as_bytes(), encoding, "body", "body", &mut found);
            }
            None => {}
        }
        // Raw sightings of victims not already placed at a JSON path (a JSON
        // key, or a body that is not JSON at all).
        for (victim, encoding, range) in raw {
            if !found.has_canary_of(victim) {
                let excerpt = excerpt(&response.body, range);
                found.canary(victim, encoding, "body", "body", excerpt);
            }
        }
        self.admissible(ledger, observer, request, found)
    }

    /// Canaries in a header, plainly or percent-encoded, and owned values
    /// among its tokens.
    fn header(&self, ledger: &Ledger, name: &str, value: &str, found: &mut Found) {
        let location = format!("header {name}");
        self.sight(value.as_bytes(), None, &location, &location, found);
        if value.contains('%') {
            let decoded = percent_decode(value);
            let encoding = Some(Encoding::UrlEncoded);
            self.sight(decoded.as_bytes(), encoding, &location, &location, found);
        }
        let tokens = value.split(|c: char| !(c.is_ascii_alphanumeric() || "-_.@".contains(c)));
        for token in tokens.filter(|t| t.len() >= DISTINCTIVE_LEN) {
            found.identifier(ledger, token, None, &[], &location, &location);
        }
    }

    /// One JSON leaf: canaries in a string (unescaped, it gives the path; a
    /// canary seen only there was escaped in the raw bytes), and the leaf
    /// as a whole owned value.
    fn leaf(&self, ledger: &Ledger, leaf: &Leaf<'_>, raw: &[Sighting], found: &mut Found) {
        let location = format!("body {}", leaf.path);
        let pattern = format!("body {}", leaf.pattern);
        if let Value::String(text) = leaf.value {
            for (victim, encoding, range) in self.scan(text.as_bytes()) {
                let plain_in_raw = raw
                    .iter()
                    .any(|(v, e, _)| *v == victim && *e == Encoding::Plain);
                let encoding = match encoding {
                    Encoding::Plain if !plain_in_raw => Encoding::JsonEscaped,
                    other => other,
                };
                let excerpt = excerpt(text.as_bytes(), range);
                found.canary(victim, encoding, &location, &pattern, excerpt);
            }
            if text.contains('%') {
                let decoded = percent_decode(text);
                let encoding = Some(Encoding::UrlEncoded);
                self.sight(decoded.as_bytes(), encoding, &location, &pattern, found);
            }
        }
        let text = match leaf.value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return,
        };
        let (key, siblings) = (leaf.key.as_deref(), &leaf.siblings);
        found.identifier(ledger, &text, key, siblings, &location, &pattern);
    }

    /// The candidates that are evidence: not the observer's own, not granted,
    /// not something the request itself carried.
    fn admissible(
        &self,
        ledger: &Ledger,
        observer: InstanceId,
        request: &Request,
        found: Found,
    ) -> Vec<Evidence> {
        let echo = Echo::of(request);
        found
            .candidates
            .into_iter()
            .filter(|c| {
                c.evidence.victim != observer && !ledger.visible(observer, c.evidence.victim)
            })
            // Another world's instance counts once its world is over: until
            // then a grant of its may still be on its way (two programs run
            // at once against one server).
            .filter(|c| self.own.contains(&c.evidence.victim) || ledger.settled(c.evidence.victim))
            // A request that carries the victim's own words acts for the
            // victim (a login with their email): its answer may be about them.
            .filter(|c| !echo.has_canary(&ledger.instance(c.evidence.victim).canary))
            .filter(|c| match &c.evidence.what {
                Marker::Canary { .. } => !ledger.exposed(c.evidence.victim),
                Marker::Identifier { .. } => !echo.has_value(&c.value),
            })
            .map(|c| c.evidence)
            .collect()
    }

    /// Records the canaries in `bytes`; `decoded` names the decoding that
    /// produced them, if any.
    fn sight(
        &self,
        bytes: &[u8],
        decoded: Option<Encoding>,
        location: &str,
        pattern: &str,
        found: &mut Found,
    ) {
        for (victim, encoding, range) in self.scan(bytes) {
            let encoding = match (encoding, decoded) {
                (Encoding::Plain, Some(decoding)) => decoding,
                (encoding, _) => encoding,
            };
            found.canary(victim, encoding, location, pattern, excerpt(bytes, range));
        }
    }
}

impl Others {
    /// Canaries of instances outside `own` (whose search found them
    /// already): the run id, then a known canary.
    fn scan(&self, bytes: &[u8], own: &std::ops::Range<InstanceId>, hits: &mut Vec<Sighting>) {
        for m in self.prefix.find_iter(bytes) {
            let end = m.start() + CANARY_LEN;
            let Some(text) = bytes
                .get(m.start()..end)
                .and_then(|b| std::str::from_utf8(b).ok())
            else {
                continue;
            };
            if let Some(id) = self.ledger.by_canary(text)
                && !own.contains(&id)
            {
                hits.push((id, Encoding::Plain, m.start()..end));
            }
        }
    }
}

/// A candidate before the echo and grant filters.
struct Candidate {
    value: String,
    evidence: Evidence,
}

#[derive(Default)]
struct Found {
    candidates: Vec<Candidate>,
    seen: HashSet<(InstanceId, String)>,
}

impl Found {
    fn has_canary_of(&self, victim: InstanceId) -> bool {
        self.candidates.iter().any(|c| {
            c.evidence.victim == victim && matches!(c.evidence.what, Marker::Canary { .. })
        })
    }

    fn canary(
        &mut self,
        victim: InstanceId,
        encoding: Encoding,
        location: &str,
        pattern: &str,
        excerpt: String,
    ) {
        if !self.seen.insert((victim, location.to_string())) {
            return;
        }
        self.candidates.push(Candidate {
            value: String::new(),
            evidence: Evidence {
                victim,
                what: Marker::Canary { encoding },
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
        // A value that several instances own identifies none of them.
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
        self.candidates.push(Candidate {
            value: text.to_string(),
            evidence: Evidence {
                victim: owned.owner,
                what: Marker::Identifier {
                    var: owned.kind.var.clone(),
                },
                location: location.to_string(),
                location_pattern: pattern.to_string(),
                excerpt: truncate(text, 120),
            },
        });
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

/// A key as it appears in a path: `.name`, or `["odd key"]`.
fn key_segment(key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        format!(".{key}")
    } else {
        format!("[{}]", serde_json::to_string(key).unwrap_or_default())
    }
}

/// Where each of `paths` (a scenario's JSONPaths) points in `json`, written
/// as the oracle and the witness write locations (`$.items[2].title`).
pub fn located(json: &Value, paths: &[(String, serde_json_path::JsonPath)]) -> Vec<String> {
    use serde_json_path::PathElement;
    let mut out = Vec::new();
    for (_, path) in paths {
        for node in path.query_located(json).all() {
            let mut text = "$".to_string();
            for element in node.location().iter() {
                match element {
                    PathElement::Name(name) => text.push_str(&key_segment(name)),
                    PathElement::Index(index) => text.push_str(&format!("[{index}]")),
                }
            }
            out.push(text);
        }
    }
    out
}

/// Whether `path` (`$.a[0].b`) lies at or under `prefix` (`$.a[0]`).
pub fn within(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
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
                let segment = key_segment(k);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_paths_are_located_as_the_oracle_writes_locations() {
        let json = serde_json::json!({"items": [{"seen": 1}, {"seen": 2}], "odd key": 3});
        let paths = ["$.items[*].seen", "$['odd key']"]
            .map(|p| (p.to_string(), serde_json_path::JsonPath::parse(p).unwrap()));
        assert_eq!(
            located(&json, &paths),
            ["$.items[0].seen", "$.items[1].seen", "$[\"odd key\"]"]
        );
    }

    #[test]
    fn a_path_lies_within_its_own_prefixes_only() {
        assert!(within("$.updated_at", "$.updated_at"));
        assert!(within("$.items[0].seen", "$.items[0]"));
        assert!(within("$.items[0].seen", "$.items"));
        assert!(!within("$.updated_at_by", "$.updated_at"));
        assert!(!within("$.items", "$.items[0]"));
    }
}
