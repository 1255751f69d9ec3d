//! The witness: the integrity oracle, for changes no response echoes.
//!
//! A write that changes another patient's data (cancels their booking,
//! ends their call, sets their password) often answers `204` or even `404`
//! and shows the writer nothing foreign, so the leak oracle cannot see it.
//! The witness asks the owner instead. Each instance's *own reads* (a read
//! it sent with its own credentials, carrying no one else's values, that
//! answered 2xx) and its *login* are noted as the flow runs. When a write is
//! about to go out naming another instance's owned value or canary, and the
//! writer may not see that instance's data (no grant), the witness first
//! re-reads the victim's state (the baseline, read twice: what differs
//! between two reads by the owner alone is volatile), lets the write go,
//! and once its batch has answered reads again. A change the owner did not
//! make, with nothing the owner or anyone it granted wrote in between, is a
//! `tamper` finding; a login that worked before and fails after is one too.
//!
//! What it may not conclude, it says so: a write between the two reads by
//! the owner or by someone it granted leaves the foreign write
//! *unconfirmed*; no change leaves it *cleared*; a change no accepted write
//! can explain is blamed on no one ([`blame`]). Every foreign write that
//! answered 2xx is reported with its verdict. A cleared write is read once
//! more at the end of the flow, for servers that apply writes late.
//!
//! The witness decides and remembers; it sends nothing. The executor reads
//! the victims when it says so and hands it what they answered
//! (`executor::witnessing`), so this module knows no executor.

mod change;

pub use change::{Change, Snapshot, changes};

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::oracle::{located, percent_decode, within};
use crate::plan::{PlanStep, StepRef};
use crate::transport::Request;
use crate::world::{DISTINCTIVE_LEN, InstanceId, World};

/// Own reads remembered per instance, the most recent kept.
const MAX_READS: usize = 8;
/// Changes a finding lists at most.
const MAX_CHANGES: usize = 8;

/// Whether `method` may change data on the server.
pub fn writes(method: &http::Method) -> bool {
    !matches!(
        *method,
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
    )
}

/// The instances of `world` whose data `request` names: whose canaries it
/// carries (`carried`, see
/// [`Exchange::carried`](crate::judge::Exchange::carried)), or whose owned
/// values it sends as a whole path segment, query value or JSON value (a
/// short value only where its kind fits: under the variable's own key, or
/// after a path segment named like it).
pub fn targets(world: &World, carried: &[InstanceId], request: &Request) -> Vec<InstanceId> {
    let ids = world.ids();
    let owned_values = world.ledger().owned_values();
    let mut found: Vec<InstanceId> = carried
        .iter()
        .copied()
        .filter(|id| ids.contains(id))
        .collect();
    let mut named = |value: &str, fits: &dyn Fn(&crate::world::Kind) -> bool| {
        // A generated name or birth date names a person, not a record.
        for owned in owned_values.of(value).iter().filter(|o| !o.kind.generated) {
            if ids.contains(&owned.owner)
                && (value.len() >= DISTINCTIVE_LEN || fits(&owned.kind))
                && !found.contains(&owned.owner)
            {
                found.push(owned.owner);
            }
        }
    };
    let (segments, query) = (request.path.split_once('?')).unwrap_or((&request.path, ""));
    let segments = percent_decode(segments);
    let mut previous = "";
    for segment in segments.split('/').filter(|s| !s.is_empty()) {
        let stem = previous.trim_end_matches('s').to_ascii_lowercase();
        named(segment, &|kind| {
            !stem.is_empty() && kind.var.contains(&stem)
        });
        previous = segment;
    }
    let query = url::form_urlencoded::parse(query.as_bytes());
    let mut fields: Vec<(String, String)> = query
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    fields.extend(crate::identity::body_fields(request));
    for (key, value) in fields {
        named(&value, &|kind| kind.matches::<&str>(&key, &[]));
    }
    found
}

/// Which of the writes aimed at a victim whose data changed to blame.
pub struct Blame {
    /// Indices into the writes: empty when none can be blamed.
    pub culprits: Vec<usize>,
    pub verdict: WriteVerdict,
    pub reason: &'static str,
}

/// Which writes made a change the owner did not make, given each write's
/// (sender, status) and how many writes of the batch the server accepted.
/// A write the server accepted (2xx) is blamed first. A write answered
/// otherwise is blamed only when nothing in its batch was accepted, so
/// nothing else can have made the change, and only if it was not refused
/// as unauthorised (`401`, `403`): a `404` that changed data all the same
/// is the bug. When several writers could have made the change, none is
/// confirmed.
pub fn blame(writes: &[(InstanceId, u16)], accepted: usize) -> Blame {
    let ok = |status: u16| (200..300).contains(&status);
    let mut culprits: Vec<usize> = (0..writes.len()).filter(|i| ok(writes[*i].1)).collect();
    if culprits.is_empty() && accepted == 0 {
        culprits = (0..writes.len())
            .filter(|i| !matches!(writes[*i].1, 401 | 403))
            .collect();
    }
    let mut writers: Vec<InstanceId> = culprits.iter().map(|i| writes[*i].0).collect();
    writers.sort_unstable();
    writers.dedup();
    let (verdict, reason) = match writers.len() {
        0 => (
            WriteVerdict::Unconfirmed,
            "the owner's data changed, but every write aimed at it was refused: the change came from elsewhere",
        ),
        1 => (WriteVerdict::Confirmed, "the owner's data changed"),
        _ => (
            WriteVerdict::Unconfirmed,
            "the owner's data changed, and more than one writer could have done it",
        ),
    };
    Blame {
        culprits,
        verdict,
        reason,
    }
}

/// Whose data a write named, split by what its writer may change.
#[derive(Debug)]
pub struct Aim {
    /// The identity the server acted as; `None`: no credential went out.
    pub writer: Option<InstanceId>,
    /// Named instances the writer may change: itself, or one a grant lets
    /// it see.
    pub allowed: Vec<InstanceId>,
    /// Named instances it may not: the witness watches them.
    pub victims: Vec<InstanceId>,
}

/// Splits a write's targets by what `writer` may change. With no
/// credential (`None`) every target is a victim.
pub fn aim(world: &World, writer: Option<InstanceId>, targets: &[InstanceId]) -> Aim {
    let may = |t: &InstanceId| writer.is_some_and(|w| world.ledger().visible(w, *t));
    let (allowed, victims) = targets.iter().copied().partition(may);
    Aim {
        writer,
        allowed,
        victims,
    }
}

/// What the witness concluded about one foreign write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteVerdict {
    /// The owner's data changed: a `tamper` finding.
    Confirmed,
    /// The owner's reads show no change.
    Cleared,
    /// The witness could not tell: it knows no read of the owner's, or the
    /// owner (or someone it granted) wrote at the same time.
    Unconfirmed,
}

impl WriteVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteVerdict::Confirmed => "confirmed",
            WriteVerdict::Cleared => "cleared",
            WriteVerdict::Unconfirmed => "unconfirmed",
        }
    }
}

/// A write that named another instance's data, as the report lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForeignWrite {
    pub scenario: String,
    pub step: String,
    pub writer: String,
    pub victim: String,
    /// `METHOD /path`, redacted.
    pub request: String,
    pub status: u16,
    pub verdict: WriteVerdict,
    /// Why, in a few words.
    pub reason: String,
}

/// What the witness knows of one instance.
#[derive(Debug, Default)]
struct Watch {
    /// Its own reads, oldest first.
    reads: Vec<StepRef>,
    /// The step that last gave it its credential.
    login: Option<StepRef>,
    /// Bumped by every write that may legitimately change its data.
    touched: u64,
    /// Shared: every write aimed at the victim in a batch compares with it.
    baseline: Option<Arc<Baseline>>,
}

/// The victim's state just before a foreign write.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// The batch it was read in.
    pub batch: u64,
    /// The victim's `touched` count when it was read.
    pub touched: u64,
    pub reads: Vec<(StepRef, Snapshot)>,
    /// The login step and whether it answered 2xx.
    pub login: Option<(StepRef, bool)>,
}

/// The witness of one world.
pub struct Witness {
    base: InstanceId,
    watches: Vec<Mutex<Watch>>,
    /// One baseline at a time per instance (held across its reads).
    turns: Vec<tokio::sync::Mutex<()>>,
    /// (step, path pattern) seen to change between two reads by the owner
    /// alone: never evidence.
    volatile: Mutex<HashSet<(String, String)>>,
    writes: Mutex<Vec<ForeignWrite>>,
    /// Foreign writes watched (a victim read before and after).
    watched: std::sync::atomic::AtomicU64,
}

impl Witness {
    pub fn new(world: &World) -> Witness {
        let ids = world.ids();
        Witness {
            base: ids.start,
            watches: ids.clone().map(|_| Mutex::default()).collect(),
            turns: ids.map(|_| tokio::sync::Mutex::default()).collect(),
            volatile: Mutex::default(),
            writes: Mutex::default(),
            watched: Default::default(),
        }
    }

    /// A witness of no one: the context of the witness's own requests
    /// (a fresh login it sends is not a change it must account for).
    pub fn detached() -> Witness {
        Witness {
            base: 0,
            watches: Vec::new(),
            turns: Vec::new(),
            volatile: Mutex::default(),
            writes: Mutex::default(),
            watched: Default::default(),
        }
    }

    fn watch(&self, id: InstanceId) -> Option<std::sync::MutexGuard<'_, Watch>> {
        let watch = self.watches.get(id.checked_sub(self.base)?)?;
        Some(watch.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// `id` read its own data with `step`.
    pub fn own_read(&self, id: InstanceId, step: StepRef) {
        if let Some(mut watch) = self.watch(id) {
            watch.reads.retain(|s| *s != step);
            watch.reads.push(step);
            if watch.reads.len() > MAX_READS {
                watch.reads.remove(0);
            }
        }
    }

    /// `id` got its credential from `step`.
    pub fn logged_in(&self, id: InstanceId, step: StepRef) {
        if let Some(mut watch) = self.watch(id) {
            watch.login = Some(step);
        }
    }

    /// Whether a login of `id`'s is known.
    pub fn has_login(&self, id: InstanceId) -> bool {
        self.watch(id).is_some_and(|w| w.login.is_some())
    }

    /// A write that may legitimately change `id`'s data was answered.
    pub fn touch(&self, id: InstanceId) {
        if let Some(mut watch) = self.watch(id) {
            watch.touched += 1;
        }
    }

    pub fn touched(&self, id: InstanceId) -> u64 {
        self.watch(id).map_or(0, |w| w.touched)
    }

    /// What the witness would re-read of `id`: its own reads and its login.
    pub fn reads_of(&self, id: InstanceId) -> (Vec<StepRef>, Option<StepRef>) {
        self.watch(id)
            .map_or((Vec::new(), None), |w| (w.reads.clone(), w.login))
    }

    /// The turn to take `id`'s baseline in.
    pub fn turn(&self, id: InstanceId) -> Option<&tokio::sync::Mutex<()>> {
        self.turns.get(id.checked_sub(self.base)?)
    }

    pub fn baseline(&self, id: InstanceId) -> Option<Arc<Baseline>> {
        self.watch(id)?.baseline.clone()
    }

    pub fn set_baseline(&self, id: InstanceId, baseline: Baseline) {
        if let Some(mut watch) = self.watch(id) {
            watch.baseline = Some(Arc::new(baseline));
        }
    }

    /// The two reads differ where the owner alone read: those places are
    /// volatile from now on.
    pub fn learn(&self, step: &PlanStep, first: &Snapshot, second: &Snapshot) {
        let mut volatile = self.volatile.lock().unwrap_or_else(|p| p.into_inner());
        for change in changes(first, second) {
            volatile.insert((step_stem(&step.name).to_string(), change.pattern));
        }
    }

    /// The changes between `before` and `after` that count: not volatile,
    /// learnt or declared by the step (`volatile = ["$.updated_at"]`).
    pub fn evidence(&self, step: &PlanStep, before: &Snapshot, after: &Snapshot) -> Vec<Change> {
        let changed = changes(before, after);
        if changed.is_empty() {
            return changed;
        }
        let volatile = self.volatile.lock().unwrap_or_else(|p| p.into_inner());
        let stem = step_stem(&step.name).to_string();
        // Declared volatile, or public: a list of everyone's e-mails
        // changes when anyone changes theirs.
        let mut declared = declared_locations(&step.volatile, before, after);
        declared.extend(declared_locations(&step.public, before, after));
        let mut found: Vec<Change> = changed
            .into_iter()
            .filter(|c| !volatile.contains(&(stem.clone(), c.pattern.clone())))
            .filter(|c| !declared.iter().any(|d| within(&c.path, d)))
            .collect();
        found.truncate(MAX_CHANGES);
        found
    }

    pub fn record(&self, write: ForeignWrite) {
        self.writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(write);
    }

    /// `writes` foreign writes were aimed at a victim the witness reads.
    pub fn watching(&self, writes: usize) {
        (self.watched).fetch_add(writes as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Foreign writes watched so far.
    pub fn watched(&self) -> u64 {
        self.watched.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Every foreign write recorded so far.
    pub fn foreign_writes(&self) -> Vec<ForeignWrite> {
        self.writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// A program's step name without its operation number: `book [3]` → `book`.
pub fn step_stem(name: &str) -> &str {
    name.rsplit_once(" [").map_or(name, |(stem, _)| stem)
}

/// The places `paths` name, in either read.
fn declared_locations(
    paths: &[(String, serde_json_path::JsonPath)],
    before: &Snapshot,
    after: &Snapshot,
) -> Vec<String> {
    [before.json(), after.json()]
        .into_iter()
        .flatten()
        .flat_map(|json| located(json, paths))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_accepted_write_is_blamed_unless_nothing_was_accepted() {
        // A refused visitor and an accepted stranger: the stranger.
        let both = blame(&[(1, 401), (2, 204)], 1);
        assert_eq!(
            (both.culprits, both.verdict),
            (vec![1], WriteVerdict::Confirmed)
        );
        // A refusal, while another write of the moment was accepted: no one.
        let elsewhere = blame(&[(1, 403)], 1);
        assert!(elsewhere.culprits.is_empty());
        assert_eq!(elsewhere.verdict, WriteVerdict::Unconfirmed);
        // Nothing accepted: a 404 that changed data is the bug, a 401 never.
        let lying = blame(&[(1, 401), (2, 404)], 0);
        assert_eq!(lying.culprits, vec![1]);
        // Two writers accepted: both named, neither confirmed.
        let two = blame(&[(1, 204), (2, 200), (1, 204)], 3);
        assert_eq!(
            (two.culprits, two.verdict),
            (vec![0, 1, 2], WriteVerdict::Unconfirmed)
        );
    }
}
