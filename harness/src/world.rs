//! The world: every instance of a run, what each has captured, its cookies
//! and its trace, and the ledger of who owns what and who may see whom.
//!
//! Every instance owns its canary and every value it captures, unless the
//! scenario marks the capture shared or the run has seen that the value is
//! everyone's (every instance read the same one from the same step: a
//! directory's entry). A captured identifier keeps its *kind*:
//! the variable it was captured into, the JSON key it sat under and the keys
//! of the object around it. That is what lets the oracle tell one patient's
//! appointment 3 from another's recording 3. Grants record the visibility
//! that the API legitimately gives (a clinician sees who booked with them).
//!
//! The executor reads the world to build requests; the judges update it.
//!
//! The ledger may outlive a world: a fuzz run against a target that keeps
//! its data gives every program's world the same ledger, so every identity
//! the run created stays known (program 5's patient's data reaching program
//! 9's patient is a leak) and instances that log in to the same account (a
//! seeded clinician, in every program) are one identity to it.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use serde_json::Value;
use smallvec::SmallVec;

use crate::canary;
use crate::plan::{Plan, PlanStep, StepRef};
use crate::safety::Redactor;
use crate::texts::TextMap;

/// An instance, by its index across all roles of a run.
pub type InstanceId = usize;

/// Lines of an instance's trace kept: as many as a finding quotes.
pub const TRACE_KEPT: usize = 20;

/// Values at least this long are distinctive enough (UUIDs, tokens, emails
/// with canaries) to be evidence wherever they appear as a whole value.
pub const DISTINCTIVE_LEN: usize = 16;

/// A plan's instances and everything the run has learnt about them.
pub struct World {
    /// The run id every canary carries.
    pub run_id: String,
    /// Drives every seeded choice (picks, names, times).
    pub seed: u64,
    /// Makes canaries and times unique to this run.
    pub nonce: u64,
    /// Added to every instance's `serial`: the instances of the run's
    /// earlier scenario files, so serials never repeat within a run.
    pub serial_base: u64,
    plan: Arc<Plan>,
    ledger: Arc<Ledger>,
    /// This world's instances are `base..base + states.len()` in the ledger.
    base: InstanceId,
    states: Vec<Mutex<InstanceState>>,
    /// The first instance of each role.
    role_offsets: Vec<usize>,
    /// What the steps sent once (`[[setup]]`) captured: every instance's.
    fixtures: std::sync::RwLock<HashMap<String, Value>>,
}

/// What one instance has learnt so far.
#[derive(Debug, Default)]
pub struct InstanceState {
    /// Its captured variables: each request renders from a copy of them,
    /// taken as it is built, so they are shared and written copy-on-write.
    pub vars: Arc<HashMap<String, Value>>,
    /// Its session cookies (actors with `cookies = true`).
    pub cookies: BTreeMap<String, String>,
    /// Its latest steps, quoted by its findings ([`TRACE_KEPT`] at most).
    pub trace: VecDeque<Told>,
    /// The step after which it stopped its flow, left with no credential.
    pub stopped: Option<String>,
    /// Bumped at every new credential it is given (a login, a rotated
    /// session): a request built before went out with an older one.
    pub session: u64,
}

/// One line of an instance's trace: 24 bytes, for every line of every
/// instance of a scenario file.
#[derive(Debug)]
pub enum Told {
    /// Said as it is: a step not sent, a login again.
    Said(Box<str>),
    /// A step answered: written out (its path redacted) only if a finding
    /// quotes it, which most never are. Its method is its step's: a
    /// request is always built with its step's method.
    Answered {
        step: TracedStep,
        status: u16,
        path: Box<str>,
    },
}

const _: () = assert!(std::mem::size_of::<Told>() == 24);

/// A [`StepRef`] in four bytes.
#[derive(Debug, Clone, Copy)]
pub struct TracedStep(u32);

impl TracedStep {
    const TEARDOWN: u32 = 1 << 31;

    pub fn of(step: StepRef) -> Self {
        let (index, flag) = match step {
            StepRef::Flow(i) => (i, 0),
            StepRef::Teardown(i) => (i, Self::TEARDOWN),
        };
        let index = u32::try_from(index).expect("fewer than 2^31 steps");
        assert!(index < Self::TEARDOWN, "fewer than 2^31 steps");
        TracedStep(index | flag)
    }

    pub fn step(self) -> StepRef {
        let index = (self.0 & !Self::TEARDOWN) as usize;
        match self.0 & Self::TEARDOWN {
            0 => StepRef::Flow(index),
            _ => StepRef::Teardown(index),
        }
    }
}

impl World {
    /// Every instance of `plan`, each with a canary unique to `run_id` and
    /// `nonce`, in a ledger of its own; `seed` drives the run's choices.
    pub fn new(plan: Arc<Plan>, run_id: &str, seed: u64, nonce: u64) -> World {
        World::in_ledger(plan, Arc::new(Ledger::default()), run_id, seed, nonce, "")
    }

    /// As [`World::new`], with the instances added to `ledger`, which
    /// already knows every identity of the run so far.
    /// `name` (a scenario's, a fuzz program's) qualifies its instances'
    /// labels where another world's findings name them.
    pub fn in_ledger(
        plan: Arc<Plan>,
        ledger: Arc<Ledger>,
        run_id: &str,
        seed: u64,
        nonce: u64,
        name: &str,
    ) -> World {
        let mut instances = Vec::new();
        let mut role_offsets = Vec::new();
        let world: Arc<str> = name.into();
        for (r, role) in plan.roles.iter().enumerate() {
            role_offsets.push(instances.len());
            for index in 0..role.count {
                instances.push(Instance {
                    role: r,
                    index,
                    label: format!("{}#{index}", role.name),
                    world: world.clone(),
                    canary: canary::canary(run_id, nonce, instances.len() as u64),
                });
            }
        }
        let states = instances.iter().map(|_| Mutex::default()).collect();
        let base = ledger.register(instances);
        if let Some(slices) = &ledger.slices {
            let roles = plan.roles.iter().map(|r| (r.count, r.population));
            slices.add(base, roles.collect());
        }
        World {
            run_id: run_id.to_string(),
            seed,
            nonce,
            serial_base: 0,
            plan,
            ledger,
            base,
            states,
            role_offsets,
            fixtures: Default::default(),
        }
    }

    /// A value a step sent once captured.
    pub fn fixture(&self, name: &str) -> Option<Value> {
        let fixtures = self.fixtures.read().unwrap_or_else(|p| p.into_inner());
        fixtures.get(name).cloned()
    }

    pub fn set_fixture(&self, name: String, value: Value) {
        let mut fixtures = self.fixtures.write().unwrap_or_else(|p| p.into_inner());
        fixtures.insert(name, value);
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// `id`'s place among this world's instances: what seeded choices are
    /// drawn from, so that a world makes the same choices wherever its
    /// instances sit in a ledger shared with other worlds.
    pub fn local(&self, id: InstanceId) -> u64 {
        (id - self.base) as u64
    }

    /// This world's instances (ids in the ledger).
    pub fn ids(&self) -> std::ops::Range<InstanceId> {
        self.base..self.base + self.states.len()
    }

    pub fn instance(&self, id: InstanceId) -> &Instance {
        self.ledger.instance(id)
    }

    /// `patient#3`; an instance of another world (another scenario file,
    /// another fuzz program) with its world's name: `p17/patient#3`, so
    /// that two instances never read alike.
    /// An instance another shard drives says so: `patient#3 (shard 2/4)`.
    pub fn label(&self, id: InstanceId) -> std::borrow::Cow<'_, str> {
        let instance = self.ledger.instance(id);
        let label = if self.ids().contains(&id) || instance.world.is_empty() {
            std::borrow::Cow::Borrowed(instance.label.as_str())
        } else {
            std::borrow::Cow::Owned(format!("{}/{}", instance.world, instance.label))
        };
        match self.ledger.driven_elsewhere(id) {
            Some(shard) => std::borrow::Cow::Owned(format!("{label} (shard {shard})")),
            None => label,
        }
    }

    /// Whether this process drives `id` (always, unless sharded).
    pub fn here(&self, id: InstanceId) -> bool {
        self.ledger.driven_elsewhere(id).is_none()
    }

    /// The instance `index` of `role`.
    pub fn id(&self, role: usize, index: usize) -> InstanceId {
        self.base + self.role_offsets[role] + index
    }

    /// Every instance of `role`.
    pub fn of_role(&self, role: usize) -> std::ops::Range<InstanceId> {
        let first = self.base + self.role_offsets[role];
        first..first + self.plan.roles[role].count
    }

    /// The instances that send `step`: one when it pins an instance, else
    /// every instance of its actor; of those, the ones this shard drives.
    pub fn senders(&self, step: &PlanStep) -> impl Iterator<Item = InstanceId> + '_ {
        let all = match step.instance {
            Some(index) => {
                let id = self.id(step.role, index);
                id..id + 1
            }
            None => self.of_role(step.role),
        };
        all.filter(|id| self.here(*id))
    }

    /// What `id` has learnt; hold the guard briefly.
    pub fn state(&self, id: InstanceId) -> MutexGuard<'_, InstanceState> {
        self.states[id - self.base]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// A variable `id` has captured.
    pub fn var(&self, id: InstanceId, name: &str) -> Option<Value> {
        self.state(id).vars.get(name).cloned()
    }

    /// How many instances have stopped their flow.
    pub fn stopped(&self) -> usize {
        self.ids()
            .filter(|id| self.state(*id).stopped.is_some())
            .count()
    }

    /// Appends a line to `id`'s trace.
    pub fn trace(&self, id: InstanceId, line: String) {
        self.tell(id, Told::Said(line.into()));
    }

    /// Appends to `id`'s trace, forgetting what no finding would quote.
    pub fn tell(&self, id: InstanceId, told: Told) {
        let trace = &mut self.state(id).trace;
        if trace.len() == TRACE_KEPT {
            trace.pop_front();
        }
        // Grown a line at a time up to its final size: grown by doubling it
        // would hold 32, and sized at once 20 also where a flow is shorter,
        // for every instance of the world.
        trace.reserve_exact(1);
        trace.push_back(told);
    }

    /// `id`'s trace, oldest first, with every secret known by now redacted.
    pub fn recent_trace(&self, id: InstanceId, redactor: &Redactor) -> Vec<String> {
        let state = self.state(id);
        let line = |told: &Told| match told {
            Told::Said(line) => line.to_string(),
            Told::Answered { step, path, status } => {
                let step = self.plan.step(step.step());
                let (name, method) = (&step.name, &step.method);
                format!("{name}: {method} {} → {status}", redactor.redact(path))
            }
        };
        state.trace.iter().map(line).collect()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.ledger.settle(self.ids());
    }
}

#[derive(Debug, Clone)]
pub struct Instance {
    pub role: usize,
    pub index: usize,
    /// `patient#7`.
    pub label: String,
    /// The world it belongs to (a scenario, a fuzz program), when a
    /// ledger holds several; empty otherwise. One copy for all its instances.
    pub world: Arc<str>,
    pub canary: String,
}

/// Where a captured value sat in the response it came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Kind {
    pub var: String,
    /// The JSON key it was under (`id`), if any.
    pub key: Option<String>,
    /// The sorted keys of the object around it.
    pub siblings: Vec<String>,
    /// A value the harness generated (a name), not captured: it matches
    /// under any key that names its kind (`fullName`, `patient_name`).
    pub generated: bool,
}

impl Kind {
    /// Whether a JSON leaf under `key`, in an object with keys `siblings`,
    /// holds a value of this kind: it is under the variable's own name
    /// (`appointment_id`), or under the same key in an object of the same shape.
    pub fn matches<S: AsRef<str>>(&self, key: &str, siblings: &[S]) -> bool {
        if key == self.var {
            return true;
        }
        if self.generated {
            return names_kind(key, &self.var);
        }
        if !self.by_shape(key) {
            return false;
        }
        let known = |k: &S| (self.siblings).binary_search_by(|s| s.as_str().cmp(k.as_ref()));
        let same = siblings.iter().filter(|k| known(k).is_ok()).count();
        let union = siblings.len() + self.siblings.len() - same;
        union > 0 && same * 2 >= union
    }

    /// Whether [`Kind::matches`] would compare the keys around `key`.
    pub fn by_shape(&self, key: &str) -> bool {
        key != self.var && self.key.as_deref() == Some(key)
    }
}

/// Whether a JSON key names a generated value of kind `var`: a name under
/// any key with `name` in it.
fn names_kind(key: &str, var: &str) -> bool {
    key.to_ascii_lowercase().contains(var)
}

#[derive(Debug, Clone)]
pub struct Owned {
    pub owner: InstanceId,
    /// Shared by every value of the kind: a run holds millions of values
    /// and a few dozen kinds.
    pub kind: Arc<Kind>,
    /// The set that owns the value together (a look-alike pair's shared
    /// name): its first instance. Evidence only for an observer outside it.
    pub group: Option<InstanceId>,
}

#[derive(Debug, Default)]
struct Values {
    /// Every value captured or generated, each held once.
    known: TextMap<Known>,
    /// Each kind once.
    kinds: HashSet<Arc<Kind>>,
    /// Values every instance read alike (see [`Ledger::publish`]): a later
    /// capture does not make them anyone's.
    public: TextMap<()>,
}

/// What the ledger knows of one value.
#[derive(Debug)]
struct Known {
    /// The first instance that captured it, shared values included: whom a
    /// `grant_to` names (none for a generated value).
    first_capturer: Option<InstanceId>,
    /// Its owners: nearly always one, held in place (a run knows millions
    /// of values, and a list of one on its own cost as much again).
    owned: SmallVec<[Owned; 1]>,
}

impl Values {
    /// `text`'s entry, created.
    fn entry(&mut self, text: &str) -> &mut Known {
        self.known.entry(text, || Known {
            first_capturer: None,
            owned: SmallVec::new(),
        })
    }

    /// The one shared copy of `kind`.
    fn kind(&mut self, kind: Kind) -> Arc<Kind> {
        if let Some(known) = self.kinds.get(&kind) {
            return known.clone();
        }
        let kind = Arc::new(kind);
        self.kinds.insert(kind.clone());
        kind
    }
}

/// A read of who owns which value: see [`Ledger::owned_values`].
pub struct OwnedValues<'a>(std::sync::RwLockReadGuard<'a, Values>);

impl OwnedValues<'_> {
    /// The instances that own `text`.
    pub fn of(&self, text: &str) -> &[Owned] {
        self.0.known.get(text).map_or(&[], |k| k.owned.as_slice())
    }
}

/// Who owns what and who may see whom, for every instance of a run.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Append-only: a world's instances are added as one block.
    instances: boxcar::Vec<Instance>,
    adding: Mutex<()>,
    /// Canary (lowercase) → its instance, for canaries no world's own
    /// search knows (another program's).
    canaries: RwLock<TextMap<InstanceId>>,
    values: RwLock<Values>,
    grants: RwLock<HashSet<(InstanceId, InstanceId)>>,
    /// Instances whose canary was sent under another identity.
    exposed: RwLock<HashSet<InstanceId>>,
    /// Value → the writers that put it (another's) in an accepted write's
    /// body of their own; coming back to one of them, it is an echo, not a
    /// leak. By value: a set per writer cost more than its one or two values.
    written: RwLock<TextMap<SmallVec<[InstanceId; 1]>>>,
    identities: crate::identity::Identities,
    /// A shard's run: which instances other shards drive.
    slices: Option<crate::shard::Slices>,
    /// Instances whose world is still running: their grants are not all
    /// known yet.
    open: RwLock<HashSet<InstanceId>>,
}

impl Ledger {
    /// A ledger holding `instances` (ids `0..`).
    pub fn new(instances: Vec<Instance>) -> Self {
        let ledger = Ledger::default();
        ledger.register(instances);
        ledger
    }

    /// The ledger of shard `shard` of a run: its worlds hold every instance
    /// of the run, and know which ones other shards drive.
    pub fn sharded(shard: crate::shard::Shard) -> Self {
        Ledger {
            slices: Some(crate::shard::Slices::new(shard)),
            ..Ledger::default()
        }
    }

    /// The shard that drives `id`, when it is another than this one.
    pub fn driven_elsewhere(&self, id: InstanceId) -> Option<crate::shard::Shard> {
        let slices = self.slices.as_ref()?;
        let instance = self.instance(id);
        let owner = slices.owner(id, instance.role, instance.index)?;
        let shard = crate::shard::Shard {
            index: owner,
            of: slices.shard.of,
        };
        (shard != slices.shard).then_some(shard)
    }

    /// Whether `id` is driven by every shard of a sharded run (an actor
    /// too small to split).
    pub fn driven_everywhere(&self, id: InstanceId) -> bool {
        let Some(slices) = &self.slices else {
            return false;
        };
        let instance = self.instance(id);
        slices.owner(id, instance.role, instance.index).is_none()
    }

    /// Adds `instances` as one block; the id of the first.
    pub fn register(&self, instances: Vec<Instance>) -> InstanceId {
        let _one_block = self.adding.lock().unwrap_or_else(|p| p.into_inner());
        let base = self.instances.count();
        let mut canaries = self.canaries.write().unwrap_or_else(|p| p.into_inner());
        let mut open = self.open.write().unwrap_or_else(|p| p.into_inner());
        for (i, instance) in instances.into_iter().enumerate() {
            canaries.insert(&instance.canary.to_ascii_lowercase(), base + i);
            open.insert(base + i);
            self.instances.push(instance);
        }
        base
    }

    /// The world of `ids` is over: what they may see is all known.
    pub fn settle(&self, ids: std::ops::Range<InstanceId>) {
        let mut open = self.open.write().unwrap_or_else(|p| p.into_inner());
        ids.for_each(|id| {
            open.remove(&id);
        });
    }

    /// Whether `id`'s world is over.
    pub fn settled(&self, id: InstanceId) -> bool {
        !self
            .open
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&id)
    }

    /// How many instances the run has had.
    pub fn len(&self) -> usize {
        self.instances.count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn instance(&self, id: InstanceId) -> &Instance {
        &self.instances[id]
    }

    /// Every instance, in id order.
    pub fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.instances.iter().map(|(_, instance)| instance)
    }

    /// The instance whose canary is `text` (any case).
    pub fn by_canary(&self, text: &str) -> Option<InstanceId> {
        let canaries = self.canaries.read().unwrap_or_else(|p| p.into_inner());
        canaries.get(&text.to_ascii_lowercase()).copied()
    }

    /// Who is whom: claimed account names, issued credentials, accounts.
    pub fn identities(&self) -> &crate::identity::Identities {
        &self.identities
    }

    /// The first instance of `id`'s account.
    fn account(&self, id: InstanceId) -> InstanceId {
        self.identities.account(id)
    }

    /// Records a value captured by `owner`; whether it made `owner` an
    /// owner it was not (as that kind) before.
    pub fn capture(&self, owner: InstanceId, text: String, kind: Kind, shared: bool) -> bool {
        let mut values = self.values.write().unwrap_or_else(|p| p.into_inner());
        let public = shared || values.public.contains_key(&text);
        let kind = (!public).then(|| values.kind(kind));
        let known = values.entry(&text);
        known.first_capturer.get_or_insert(owner);
        let Some(kind) = kind else {
            return false;
        };
        if known
            .owned
            .iter()
            .any(|o| o.owner == owner && o.kind == kind)
        {
            return false;
        }
        known.owned.push(Owned {
            owner,
            kind,
            group: None,
        });
        true
    }

    /// `text` is everyone's: each of `readers` captured it into `var` from
    /// the same answer everyone got. Those captures own it no longer, nor
    /// will later ones; whoever owned it before (its creator) still does.
    pub fn publish(&self, text: &str, var: &str, readers: &[InstanceId]) {
        let mut values = self.values.write().unwrap_or_else(|p| p.into_inner());
        values.public.insert(text, ());
        if let Some(known) = values.known.get_mut(text) {
            (known.owned)
                .retain(|o| o.kind.generated || o.kind.var != var || !readers.contains(&o.owner));
        }
    }

    /// Whether the run has seen that `text` is everyone's.
    pub fn is_public(&self, text: &str) -> bool {
        let values = self.values.read().unwrap_or_else(|p| p.into_inner());
        values.public.contains_key(text)
    }

    /// A value the harness generated for `owners` (one instance, or a
    /// look-alike pair that shares it): owned by them together, of
    /// generated kind `var`.
    pub fn generated(&self, owners: &[InstanceId], text: String, var: &str) {
        let group = (owners.len() > 1).then(|| owners[0]);
        let mut values = self.values.write().unwrap_or_else(|p| p.into_inner());
        let kind = values.kind(Kind {
            var: var.to_string(),
            key: None,
            siblings: Vec::new(),
            generated: true,
        });
        let known = &mut values.entry(&text).owned;
        for owner in owners {
            if !known.iter().any(|o| o.owner == *owner && o.kind == kind) {
                known.push(Owned {
                    owner: *owner,
                    kind: kind.clone(),
                    group,
                });
            }
        }
    }

    /// Who owns which value, read at once for many look-ups (a response's
    /// leaves). Captures wait until it is dropped.
    pub fn owned_values(&self) -> OwnedValues<'_> {
        OwnedValues(self.values.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Who owns `text`, if anyone.
    pub fn owners(&self, text: &str) -> Vec<Owned> {
        self.owned_values().of(text).to_vec()
    }

    /// The instance that first captured `text`.
    pub fn first_capturer(&self, text: &str) -> Option<InstanceId> {
        let values = self.values.read().unwrap_or_else(|p| p.into_inner());
        values.known.get(text).and_then(|k| k.first_capturer)
    }

    /// From now on `viewer` may see `owner`'s data.
    pub fn grant(&self, viewer: InstanceId, owner: InstanceId) {
        let pair = (self.account(viewer), self.account(owner));
        self.grants
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(pair);
    }

    /// `owner`'s canary went out under another identity (a borrowed value
    /// or credential), so it may now sit in records others legitimately
    /// see: from now on it is no evidence of a leak.
    pub fn expose(&self, owner: InstanceId) {
        self.exposed
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(owner);
    }

    /// `writer` put `value` (another's) in an accepted write of its own.
    pub fn wrote(&self, writer: InstanceId, value: String) {
        let mut written = self.written.write().unwrap_or_else(|p| p.into_inner());
        let writers = written.entry(&value, SmallVec::new);
        if !writers.contains(&writer) {
            writers.push(writer);
        }
    }

    /// Whether `observer` itself wrote `value` into a record before.
    pub fn written_by(&self, observer: InstanceId, value: &str) -> bool {
        let written = self.written.read().unwrap_or_else(|p| p.into_inner());
        written
            .get(value)
            .is_some_and(|writers| writers.contains(&observer))
    }

    pub fn exposed(&self, owner: InstanceId) -> bool {
        self.exposed
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&owner)
    }

    pub fn visible(&self, viewer: InstanceId, owner: InstanceId) -> bool {
        if viewer == owner {
            return true;
        }
        let (viewer, owner) = (self.account(viewer), self.account(owner));
        viewer == owner
            || self
                .grants
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&(viewer, owner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_keeps_what_findings_quote_and_redacts_what_is_known_when_quoted() {
        let text = "[actors.a]\ncount = 1\n[[steps]]\nname = \"read\"\nactor = \"a\"\nrequest = \"GET /x\"\n";
        let scenario = crate::scenario::Scenario::from_str("t", text).unwrap();
        let plan = Plan::build(&scenario, &crate::plan::Overrides::default()).unwrap();
        let world = World::new(Arc::new(plan), "run", 1, 1);
        world.trace(0, "said first".into());
        for i in 0..TRACE_KEPT + 4 {
            let told = Told::Answered {
                step: TracedStep::of(StepRef::Flow(0)),
                path: format!("/x?n={i}&t=tok-secret-value").into(),
                status: 200,
            };
            world.tell(0, told);
        }
        // Taught after the lines were told: still redacted when quoted.
        let redactor = Redactor::default();
        redactor.add("tok-secret-value");
        let trace = world.recent_trace(0, &redactor);
        assert_eq!(trace.len(), TRACE_KEPT, "{trace:?}");
        assert_eq!(trace[0], "read: GET /x?n=4&t=[redacted] → 200");
        assert!(trace.last().unwrap().starts_with("read: GET /x?n=23&"));
        assert!(
            trace
                .iter()
                .all(|l| !l.contains("tok-secret") && l != "said first")
        );
    }

    fn kind(var: &str, key: &str, siblings: &[&str]) -> Kind {
        let mut siblings: Vec<String> = siblings.iter().map(|s| s.to_string()).collect();
        siblings.sort();
        Kind {
            var: var.into(),
            key: Some(key.into()),
            siblings,
            generated: false,
        }
    }

    #[test]
    fn kinds_match_by_variable_name_or_object_shape() {
        let appointment = kind(
            "appointment_id",
            "id",
            &["id", "patient_id", "slot", "reason", "status"],
        );
        let owned = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(appointment.matches("appointment_id", &owned(&["id", "mode"])));
        assert!(appointment.matches(
            "id",
            &owned(&["id", "patient_id", "slot", "reason", "status", "updated_at"])
        ));
        assert!(!appointment.matches(
            "id",
            &owned(&["id", "consultation_id", "mode", "leg", "title"])
        ));
        assert!(!appointment.matches(
            "leg",
            &owned(&["id", "patient_id", "slot", "reason", "status"])
        ));
    }

    #[test]
    fn a_published_value_is_no_reader_s_but_still_its_creator_s() {
        let ledger = Ledger::new(Vec::new());
        let id = "booking-0000000000000001".to_string();
        assert!(ledger.capture(0, id.clone(), kind("booking_id", "id", &[]), false));
        for reader in [0, 1, 2] {
            assert!(ledger.capture(reader, id.clone(), kind("latest", "id", &[]), false));
        }
        ledger.publish(&id, "latest", &[0, 1, 2]);
        let owners: Vec<_> = ledger.owners(&id).iter().map(|o| o.owner).collect();
        assert_eq!(owners, [0], "the creator keeps it");
        assert!(ledger.is_public(&id));
        // A later capture owns it no more.
        assert!(!ledger.capture(3, id.clone(), kind("latest", "id", &[]), false));
        assert_eq!(ledger.owners(&id).len(), 1);
    }

    #[test]
    fn grants_are_directional_and_the_first_capturer_is_remembered() {
        let ledger = Ledger::new(Vec::new());
        ledger.capture(
            2,
            "dr-uuid-0000000000000".into(),
            kind("id", "user_id", &[]),
            true,
        );
        ledger.capture(
            0,
            "dr-uuid-0000000000000".into(),
            kind("clinician_id", "clinician_id", &[]),
            true,
        );
        assert_eq!(ledger.first_capturer("dr-uuid-0000000000000"), Some(2));
        assert!(
            ledger.owners("dr-uuid-0000000000000").is_empty(),
            "shared values have no owner"
        );
        ledger.grant(2, 0);
        assert!(ledger.visible(2, 0) && !ledger.visible(0, 2) && ledger.visible(1, 1));
    }
}
