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

use std::collections::{HashMap, HashSet};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde::Serialize;
use serde_json::Value;

use std::sync::Arc;

use crate::canary::{CANARY_LEN, Encoding, RUN_ID_LEN, base64_fragments};
use crate::texts::TextMap;
use crate::transport::{Request, Response};
use crate::world::{DISTINCTIVE_LEN, InstanceId, Ledger, Owned, OwnedValues};

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
///
/// Every canary starts with its run id, and every base64 alignment of a
/// canary with the same ten characters: the bytes are searched for those few
/// prefixes only (at memory speed, whatever the number of instances), and a
/// prefix found is looked up whole in a table.
pub struct Oracle {
    /// Run ids, any case.
    plain: AhoCorasick,
    plain_prefixes: Vec<String>,
    /// The first characters of the base64 fragments.
    encoded: AhoCorasick,
    encoded_prefixes: Vec<String>,
    /// Encoded pattern index → the lengths of the fragments it starts.
    encoded_lengths: Vec<Vec<usize>>,
    canaries: HashMap<[u8; CANARY_LEN], InstanceId>,
    /// Six per instance: packed.
    fragments: TextMap<InstanceId>,
    /// Canaries of other worlds sharing the ledger (other programs of a
    /// fuzz run), found by the run id they all start with.
    others: Option<Arc<Ledger>>,
    /// This world's instances.
    own: std::ops::Range<InstanceId>,
    /// Bytes of the shortest prefix: a shorter text (most header values)
    /// holds no canary.
    shortest: usize,
}

/// Characters of a base64 fragment that depend on the run id alone.
const ENCODED_PREFIX: usize = 10;

impl Oracle {
    /// The search for the canaries of `ids`, the instances of one world.
    pub fn new(ledger: &Ledger, ids: std::ops::Range<InstanceId>) -> Self {
        let mut canaries = HashMap::with_capacity(ids.len());
        let mut fragments = TextMap::default();
        let mut plain_prefixes: Vec<String> = Vec::new();
        let mut encoded_prefixes: Vec<(String, Vec<usize>)> = Vec::new();
        for id in ids.clone() {
            let canary = ledger.instance(id).canary.to_ascii_lowercase();
            let Ok(key) = <[u8; CANARY_LEN]>::try_from(canary.as_bytes()) else {
                continue;
            };
            canaries.insert(key, id);
            add_prefix(&mut plain_prefixes, &canary[..RUN_ID_LEN]);
            for fragment in base64_fragments(&canary) {
                let prefix = &fragment[..ENCODED_PREFIX.min(fragment.len())];
                match encoded_prefixes.iter_mut().find(|(p, _)| p == prefix) {
                    Some((_, lengths)) if lengths.contains(&fragment.len()) => {}
                    Some((_, lengths)) => lengths.push(fragment.len()),
                    None => encoded_prefixes.push((prefix.to_string(), vec![fragment.len()])),
                }
                fragments.insert(&fragment, id);
            }
        }
        let (encoded_patterns, encoded_lengths): (Vec<_>, Vec<_>) =
            encoded_prefixes.into_iter().unzip();
        let shortest = (plain_prefixes.iter().chain(&encoded_patterns))
            .map(String::len)
            .min()
            .unwrap_or(0);
        Self {
            plain: prefix_search(&plain_prefixes, true),
            plain_prefixes,
            encoded: prefix_search(&encoded_patterns, false),
            encoded_prefixes: encoded_patterns,
            encoded_lengths,
            canaries,
            fragments,
            others: None,
            own: ids,
            shortest,
        }
    }

    /// Also finds the canaries (plain, case-changed, JSON-escaped or
    /// percent-encoded; not inside base64) of every other instance of
    /// `ledger` whose canary starts with `run_id`, as they are added.
    pub fn with_others(mut self, ledger: Arc<Ledger>, run_id: &str) -> Self {
        add_prefix(&mut self.plain_prefixes, &run_id.to_ascii_lowercase());
        self.plain = prefix_search(&self.plain_prefixes, true);
        self.shortest = self.shortest.min(run_id.len());
        self.others = Some(ledger);
        self
    }

    /// Canaries in `bytes`: (owner, encoding, byte range).
    fn scan(&self, bytes: &[u8]) -> Vec<Sighting> {
        let mut hits = Vec::new();
        if bytes.len() < self.shortest {
            return hits;
        }
        // Case is changed by what handles text; bytes that are not text
        // (media) carry a canary as it was written, and are searched for
        // its prefixes exactly, one memmem pass each, at memory speed.
        let text = std::str::from_utf8(bytes).is_ok();
        let plain: Vec<usize> = if text {
            self.plain
                .find_overlapping_iter(bytes)
                .map(|m| m.start())
                .collect()
        } else {
            exact_starts(bytes, &self.plain_prefixes)
                .map(|(_, at)| at)
                .collect()
        };
        for start in plain {
            let range = start..start + CANARY_LEN;
            if let Some(id) = bytes.get(range.clone()).and_then(|c| self.canary(c)) {
                hits.push((id, Encoding::Plain, range));
            }
        }
        let encoded: Vec<(usize, usize)> = if text {
            (self.encoded.find_overlapping_iter(bytes))
                .map(|m| (m.pattern().as_usize(), m.start()))
                .collect()
        } else {
            exact_starts(bytes, &self.encoded_prefixes).collect()
        };
        for (pattern, start) in encoded {
            for len in &self.encoded_lengths[pattern] {
                let range = start..start + len;
                let fragment = bytes.get(range.clone()).map(std::str::from_utf8);
                let owner = fragment
                    .and_then(Result::ok)
                    .and_then(|f| self.fragments.get(f));
                if let Some(&id) = owner {
                    hits.push((id, Encoding::Base64, range));
                    break;
                }
            }
        }
        hits
    }

    /// Whose canary `text` (a canary's length of bytes, any case) is.
    fn canary(&self, text: &[u8]) -> Option<InstanceId> {
        let mut key: [u8; CANARY_LEN] = text.try_into().ok()?;
        key.make_ascii_lowercase();
        if let Some(&id) = self.canaries.get(&key) {
            return Some(id);
        }
        let other = self
            .others
            .as_ref()?
            .by_canary(std::str::from_utf8(&key).ok()?)?;
        (!self.own.contains(&other)).then_some(other)
    }

    /// Whose canaries a request carries (plainly, in its path or body).
    pub fn canaries_in(&self, path: &str, body: &[u8]) -> Vec<InstanceId> {
        let mut owners: Vec<InstanceId> = [path.as_bytes(), body]
            .into_iter()
            .flat_map(|bytes| self.scan(bytes))
            .filter(|(id, encoding, _)| *encoding == Encoding::Plain && self.own.contains(id))
            .map(|(id, ..)| id)
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
        for (name, value) in response.header_pairs() {
            self.header(ledger, name, &value, &mut found);
        }
        // The raw body: every encoding, and the only view of non-JSON bytes.
        // What the observer may see anyway is dropped before anything else.
        let mut raw = self.scan(&response.body);
        raw.retain(|(victim, ..)| !ledger.visible(observer, *victim));
        match json {
            Some(json) => {
                let body = &response.body;
                let mut walk = Walk {
                    oracle: self,
                    ledger,
                    owned: ledger.owned_values(),
                    observer,
                    raw: &raw,
                    found: &mut found,
                    // Unescaped strings differ from the raw bytes only where
                    // the body has a backslash; otherwise the raw scan saw
                    // everything, and strings are read only to place it.
                    strings: !raw.is_empty() || memchr::memchr(b'\\', body).is_some(),
                    percent: memchr::memchr(b'%', body).is_some(),
                    segments: Vec::new(),
                };
                walk.value(json, None, None);
            }
            // Text only: media bytes hold `%` by chance, never a form.
            None if memchr::memchr(b'%', &response.body).is_some()
                && let Ok(text) = std::str::from_utf8(&response.body) =>
            {
                let decoded = percent_decode(text);
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
        let decoded = value.contains('%').then(|| percent_decode(value));
        let plain = self.scan(value.as_bytes());
        let encoded = (decoded.as_ref()).map_or_else(Vec::new, |d| self.scan(d.as_bytes()));
        let tokens = value.split(|c: char| !(c.is_ascii_alphanumeric() || "-_.@".contains(c)));
        let owned_values = ledger.owned_values();
        let owned: Vec<(&str, Owned)> = (tokens.filter(|t| t.len() >= DISTINCTIVE_LEN))
            .filter_map(|token| {
                let owned = sole_owner(owned_values.of(token), token, None, Vec::new).cloned();
                owned.map(|owned| (token, owned))
            })
            .collect();
        drop(owned_values);
        // Most headers show nothing: their location is named only if needed.
        if plain.is_empty() && encoded.is_empty() && owned.is_empty() {
            return;
        }
        let location = format!("header {name}");
        self.sighted(value.as_bytes(), plain, None, &location, &location, found);
        if let Some(decoded) = &decoded {
            let encoding = Some(Encoding::UrlEncoded);
            self.sighted(
                decoded.as_bytes(),
                encoded,
                encoding,
                &location,
                &location,
                found,
            );
        }
        for (token, owned) in owned {
            found.identifier(&owned, token, &location, &location);
        }
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
        if found.candidates.is_empty() {
            return Vec::new();
        }
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
                Marker::Identifier { .. } => {
                    !echo.has_value(&c.value) && !exposed_generated(ledger, &c.value)
                }
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
        self.sighted(bytes, self.scan(bytes), decoded, location, pattern, found);
    }

    /// As [`Oracle::sight`], with `bytes` already scanned.
    fn sighted(
        &self,
        bytes: &[u8],
        hits: Vec<Sighting>,
        decoded: Option<Encoding>,
        location: &str,
        pattern: &str,
        found: &mut Found,
    ) {
        for (victim, encoding, range) in hits {
            let encoding = match (encoding, decoded) {
                (Encoding::Plain, Some(decoding)) => decoding,
                (encoding, _) => encoding,
            };
            found.canary(victim, encoding, location, pattern, excerpt(bytes, range));
        }
    }
}

/// Whether `value` is a value the harness generated (a name, a birth
/// date) for an owner, or one of a pair, that sent it with another's words:
/// like its canary, it may now sit in that other's records.
fn exposed_generated(ledger: &Ledger, value: &str) -> bool {
    (ledger.owners(value).iter()).any(|o| o.kind.generated && ledger.exposed(o.owner))
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

    fn identifier(&mut self, owned: &Owned, text: &str, location: &str, pattern: &str) {
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

/// The one instance that owns `text` as a value of its kind, if exactly
/// one does. A short value must sit under its kind's key (`siblings` are
/// asked for only then); a value several instances own identifies none.
fn sole_owner<'o, 'k>(
    owners: &'o [Owned],
    text: &str,
    key: Option<&str>,
    siblings: impl FnOnce() -> Vec<&'k str>,
) -> Option<&'o Owned> {
    if owners.is_empty() {
        return None;
    }
    let distinctive = text.len() >= DISTINCTIVE_LEN;
    let by_shape = |k: &str| owners.iter().any(|o| o.kind.by_shape(k));
    let siblings = if !distinctive && key.is_some_and(by_shape) {
        siblings()
    } else {
        Vec::new()
    };
    let mut matching = owners
        .iter()
        .filter(|o| distinctive || key.is_some_and(|k| o.kind.matches(k, &siblings)));
    let first = matching.next()?;
    let together =
        |o: &Owned| o.owner == first.owner || (o.group.is_some() && o.group == first.group);
    matching.all(together).then_some(first)
}

/// The walk over a JSON body: every leaf looked up as an owned value (a
/// hash look-up; its path is written only when it is someone's), and
/// strings searched for canaries when the raw bytes could not say it all.
struct Walk<'a, 'f> {
    oracle: &'a Oracle,
    ledger: &'a Ledger,
    owned: OwnedValues<'a>,
    observer: InstanceId,
    /// Raw sightings of canaries the observer may not see.
    raw: &'a [Sighting],
    found: &'f mut Found,
    strings: bool,
    percent: bool,
    segments: Vec<Segment<'a>>,
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

type Object = serde_json::Map<String, Value>;

impl<'a> Walk<'a, '_> {
    /// `value`, under `key` (an array's elements are under the array's),
    /// in the object `holder`.
    fn value(&mut self, value: &'a Value, key: Option<&'a str>, holder: Option<&'a Object>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    self.segments.push(Segment::Key(k));
                    self.value(v, Some(k), Some(map));
                    self.segments.pop();
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    self.segments.push(Segment::Index(i));
                    self.value(v, key, holder);
                    self.segments.pop();
                }
            }
            Value::String(text) => {
                self.canaries(text);
                self.identifier(text, key, holder);
            }
            Value::Number(n) => {
                // As serde_json writes it, without a String per number.
                let mut digits = itoa::Buffer::new();
                let written;
                let text = match (n.as_i64(), n.as_u64()) {
                    (Some(i), _) => digits.format(i),
                    (_, Some(u)) => digits.format(u),
                    _ => {
                        written = n.to_string();
                        &written
                    }
                };
                self.identifier(text, key, holder);
            }
            _ => {}
        }
    }

    /// Canaries in a string (unescaped, it gives the path; a canary seen
    /// only there was escaped in the raw bytes), and after percent-decoding.
    fn canaries(&mut self, text: &str) {
        if self.strings {
            let hits = self.oracle.scan(text.as_bytes());
            for (victim, encoding, range) in hits {
                if victim == self.observer {
                    continue;
                }
                let plain_in_raw =
                    (self.raw.iter()).any(|(v, e, _)| *v == victim && *e == Encoding::Plain);
                let encoding = match encoding {
                    Encoding::Plain if !plain_in_raw => Encoding::JsonEscaped,
                    other => other,
                };
                let (location, pattern) = self.place();
                let excerpt = excerpt(text.as_bytes(), range);
                self.found
                    .canary(victim, encoding, &location, &pattern, excerpt);
            }
        }
        if self.percent && text.contains('%') {
            let decoded = percent_decode(text);
            let hits = self.oracle.scan(decoded.as_bytes());
            if hits.iter().any(|(v, ..)| *v != self.observer) {
                let (location, pattern) = self.place();
                let encoding = Some(Encoding::UrlEncoded);
                (self.oracle).sight(
                    decoded.as_bytes(),
                    encoding,
                    &location,
                    &pattern,
                    self.found,
                );
            }
        }
    }

    /// The leaf as a whole owned value.
    fn identifier(&mut self, text: &str, key: Option<&str>, holder: Option<&Object>) {
        let siblings = || {
            (holder.into_iter())
                .flat_map(|m| m.keys().map(String::as_str))
                .collect()
        };
        let owners = self.owned.of(text);
        // A generated name is unique to its world only: another world's
        // (another fuzz program's) is the same by chance.
        let generated_elsewhere =
            |o: &Owned| o.kind.generated && !self.oracle.own.contains(&o.owner);
        if owners.iter().any(generated_elsewhere) {
            return;
        }
        // A value the observer owns is its own; one a set owns together
        // (a look-alike pair's name) is the observer's to see when it is
        // in the set or may see one of it (a clinician, the twin who
        // booked).
        let (observer, ledger) = (self.observer, self.ledger);
        let mine = |owned: &&Owned| {
            owned.owner == observer
                || (owners.iter()).any(|o| {
                    o.group.is_some() && o.group == owned.group && ledger.visible(observer, o.owner)
                })
        };
        // What the observer wrote into a record of its own comes back as an echo.
        let owned = (sole_owner(owners, text, key, siblings))
            .filter(|o| !mine(o) && !ledger.written_by(observer, text))
            .cloned();
        if let Some(owned) = owned {
            let (location, pattern) = self.place();
            self.found.identifier(&owned, text, &location, &pattern);
        }
    }

    /// Where the walk is: `body $.items[2].title`, and with `[*]`.
    fn place(&self) -> (String, String) {
        let (mut location, mut pattern) = ("body $".to_string(), "body $".to_string());
        for segment in &self.segments {
            match segment {
                Segment::Key(k) => {
                    let k = key_segment(k);
                    location.push_str(&k);
                    pattern.push_str(&k);
                }
                Segment::Index(i) => {
                    location.push_str(&format!("[{i}]"));
                    pattern.push_str("[*]");
                }
            }
        }
        (location, pattern)
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
            leaf_values(&json, &mut values);
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

/// Every string and number in `json`, as text.
fn leaf_values(json: &Value, out: &mut HashSet<String>) {
    match json {
        Value::Object(map) => map.values().for_each(|v| leaf_values(v, out)),
        Value::Array(items) => items.iter().for_each(|v| leaf_values(v, out)),
        Value::String(s) => {
            out.insert(s.clone());
        }
        Value::Number(n) => {
            out.insert(n.to_string());
        }
        _ => {}
    }
}

/// Adds `prefix` to `prefixes` unless it is there.
fn add_prefix(prefixes: &mut Vec<String>, prefix: &str) {
    if !prefixes.iter().any(|p| p == prefix) {
        prefixes.push(prefix.to_string());
    }
}

/// Where each of `prefixes` occurs in `bytes`: (prefix index, start).
fn exact_starts<'b>(
    bytes: &'b [u8],
    prefixes: &'b [String],
) -> impl Iterator<Item = (usize, usize)> + 'b {
    (prefixes.iter().enumerate()).flat_map(move |(i, p)| {
        memchr::memmem::find_iter(bytes, p.as_bytes()).map(move |at| (i, at))
    })
}

/// A search for every occurrence of `prefixes`, overlapping ones too.
fn prefix_search(prefixes: &[String], any_case: bool) -> AhoCorasick {
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(any_case)
        .match_kind(MatchKind::Standard)
        .build(prefixes)
        .expect("canary prefixes make a valid automaton")
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
