//! The fuzzer: programs over a scenario's vocabulary, built from bytes.
//!
//! A program is a sequence of operations, each one step of the scenario sent
//! by one instance, drawn from `arbitrary` bytes so the same bytes always give
//! the same program. The bytes mostly walk each instance through its own flow
//! in a chosen interleaving, and mutate it the ways that break authorization:
//! borrow another instance's captured value, drop or swap credentials, repeat
//! or reorder a step, skip a precondition, run two steps at once, switch an
//! enum value (audio/video). A program is written out as an ordinary scenario
//! file (one step per operation, pinned to its instance) and run by the same
//! executor and oracle as `crosstalk run`, so a shrunk program *is* its
//! reproduction. [`fuzz_one`] is the body both fronts share: `crosstalk fuzz`
//! on stable Rust and the cargo-fuzz targets.

pub mod documented;
mod program;
mod vocabulary;

pub use documented::Added;
pub use program::{Flip, Identity, Op, Program, Setting};
pub use vocabulary::Vocabulary;

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::canary::mix;
use crate::executor::{Executor, Issued, RunOptions};
use crate::findings::{Finding, FindingKind, FindingSink};
use crate::safety::Redactor;
use crate::scenario::{Scenario, ScenarioError};
use crate::transport::Transport;
use crate::world::Ledger;

/// At most this many operations a program.
pub const MAX_OPS: usize = 80;
/// Bytes each operation reads.
pub const OP_BYTES: usize = 16;
/// Instances of each population actor in a program (others keep at most 2).
pub const POPULATION: usize = 3;

/// A leak, bucketed the same way across programs: kind, scenario, step and
/// location in the response.
pub fn bucket(finding: &Finding) -> String {
    let step = step_name(&finding.step);
    format!(
        "{} in {} at `{step}` in {}",
        finding.kind.as_str(),
        finding.scenario,
        finding.location_pattern
    )
}

/// What one program run gave.
#[derive(Default)]
pub struct Outcome {
    /// Leak and server-error findings.
    pub findings: Vec<Finding>,
    /// (step, status) pairs seen: the novelty signal that grows the corpus.
    pub signature: BTreeSet<(String, u16)>,
    pub requests: u64,
    pub order: Vec<Issued>,
    /// Each instance's label and canary.
    pub identities: Vec<(String, String)>,
    /// The program's name in the run's world (`p17`), when it ran in one.
    pub world: Option<String>,
}

/// Runs `replay` makes of a reproduction before calling it fixed: a
/// program confirmed with these shows again under `crosstalk replay`.
pub const REPLAY_ATTEMPTS: u32 = 20;
/// As [`REPLAY_ATTEMPTS`], for a race (steps sent at the same moment),
/// its simultaneous requests sent both ways round in turn.
pub const REPLAY_RACE_ATTEMPTS: u32 = 100;

/// Makes a fresh target for each program (a new in-process clinic), or
/// hands back the same remote one.
pub type TargetFactory = Arc<dyn Fn() -> Arc<dyn Transport> + Send + Sync>;

/// Where and how programs run; shared by a fuzz session, its shrinker and
/// its reproductions.
#[derive(Clone)]
pub struct Runner {
    pub target: TargetFactory,
    pub seed: u64,
    /// Requests in flight at most, per program.
    pub concurrency: usize,
    /// The run's world, for a target that keeps its data between programs;
    /// `None` when every program meets a fresh target.
    pub world: Option<Arc<RunWorld>>,
}

/// The ledger a fuzz run's programs share: every identity created in the
/// run stays known, so one program's data reaching another program's
/// identity is a leak and no earlier account is taken for a new one.
pub struct RunWorld {
    /// What every canary of the run starts with.
    run_id: String,
    ledger: std::sync::Mutex<Arc<Ledger>>,
    /// Programs run so far: each names its world (`p17`).
    programs: std::sync::atomic::AtomicU64,
    /// Serials handed out so far: `serial` never repeats within the run,
    /// so user names made from it stay unique against a server that keeps
    /// every program's accounts (runs from scratch included).
    serials: std::sync::atomic::AtomicU64,
    /// The latest programs by number (`p17` → 17): a leak of an earlier
    /// program's data is confirmed by running that program first.
    ran: std::sync::Mutex<std::collections::BTreeMap<u64, (String, Program)>>,
}

impl RunWorld {
    /// Identities a run world keeps at most: then it starts over, so that
    /// memory stays bounded on a run of hours (older identities are then
    /// unknown: never evidence, never misattributed).
    pub const MAX_INSTANCES: usize = 200_000;
    /// Programs a run world remembers (the latest ones), to confirm a
    /// leak of their data: a few megabytes.
    pub const MAX_PROGRAMS: usize = 20_000;

    pub fn new(nonce: u64) -> RunWorld {
        RunWorld {
            run_id: crate::canary::run_id(nonce),
            ledger: std::sync::Mutex::default(),
            programs: Default::default(),
            serials: Default::default(),
            ran: Default::default(),
        }
    }

    /// The scenario and program that ran as world `name` (`p17`), while
    /// it is remembered.
    pub fn program(&self, name: &str) -> Option<(String, Program)> {
        let n: u64 = name.strip_prefix('p')?.parse().ok()?;
        let ran = self.ran.lock().unwrap_or_else(|p| p.into_inner());
        ran.get(&n).cloned()
    }

    /// Numbers the next program and remembers it.
    fn next_program(&self, scenario: &str, program: &Program) -> String {
        let n = self
            .programs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let mut ran = self.ran.lock().unwrap_or_else(|p| p.into_inner());
        ran.insert(n, (scenario.to_string(), program.clone()));
        while ran.len() > Self::MAX_PROGRAMS {
            ran.pop_first();
        }
        format!("p{n}")
    }

    fn ledger(&self) -> Arc<Ledger> {
        let mut ledger = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
        if ledger.len() > Self::MAX_INSTANCES {
            *ledger = Arc::default();
        }
        ledger.clone()
    }
}

impl Runner {
    /// A runner of programs against `target`, each on a fresh target.
    pub fn new(target: TargetFactory, seed: u64) -> Runner {
        Runner {
            target,
            seed,
            concurrency: 16,
            world: None,
        }
    }

    /// Runs `program` with identities made from `nonce`, in the run's
    /// world if it has one.
    pub async fn run(&self, vocab: &Vocabulary, program: &Program, nonce: u64) -> Outcome {
        let mut options = self.options(nonce);
        if let Some(world) = &self.world {
            options.run_id = world.run_id.clone();
            options.ledger = Some(world.ledger());
            options.world_name = Some(world.next_program(&vocab.scenario, program));
        }
        let serials = self.world.as_ref().map(|w| &w.serials);
        let world = options.world_name.clone();
        let plan = match program.to_plan(vocab) {
            Ok(plan) => plan,
            Err(err) => return unplanned(&err),
        };
        let outcome = run_plan(plan, (self.target)(), options, serials).await;
        Outcome { world, ..outcome }
    }

    /// Runs `program` from scratch: fresh identities in a ledger of their
    /// own, so whatever it shows comes from its own operations alone (a
    /// target that keeps its data holds older programs' records, which
    /// count for nothing here). `record` keeps every request for a script;
    /// `reversed` sends each batch's requests in reverse order.
    pub async fn run_alone(
        &self,
        vocab: &Vocabulary,
        program: &Program,
        record: bool,
        reversed: bool,
    ) -> Outcome {
        let options = RunOptions {
            record,
            reversed,
            ..self.options(crate::canary::fresh_nonce())
        };
        let plan = match program.to_plan(vocab) {
            Ok(plan) => plan,
            Err(err) => return unplanned(&err),
        };
        let serials = self.world.as_ref().map(|w| &w.serials);
        run_plan(plan, (self.target)(), options, serials).await
    }

    /// Whether `program` shows the bucket `key` the way `crosstalk replay`
    /// runs its reproduction: planned from the file it is written as, with
    /// replay's options, up to [`REPLAY_ATTEMPTS`] runs (a race
    /// [`REPLAY_RACE_ATTEMPTS`], both ways round in turn, and twice at
    /// least), each from scratch.
    pub async fn replays(
        &self,
        vocab: &Vocabulary,
        program: &Program,
        key: &str,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> bool {
        let text = program.to_toml(vocab, "replay");
        let plan = Scenario::from_str(&vocab.scenario, &text)
            .and_then(|s| crate::plan::Plan::build(&s, &Default::default()));
        let plan = match plan {
            Ok(plan) => plan,
            Err(err) => {
                tracing::error!("a reproduction does not plan (a fuzzer bug): {err}");
                return false;
            }
        };
        let race = plan.steps.iter().any(|s| s.concurrent);
        let attempts = if race {
            REPLAY_RACE_ATTEMPTS
        } else {
            REPLAY_ATTEMPTS
        };
        // A race kept must show more than once: one show in a hundred runs
        // is a reproduction that `replay` then misses about as often.
        let needed = if race { 2 } else { 1 };
        let mut shows = 0;
        let nonce = crate::canary::fresh_nonce();
        for attempt in 0..attempts {
            if stop() {
                return false;
            }
            let options = RunOptions {
                concurrency: 16,
                stop_without_credential: false,
                probes: false,
                reversed: race && attempt % 2 == 1,
                nonce: mix(nonce, &[u64::from(attempt)]),
                ..RunOptions::new(self.seed, nonce)
            };
            let serials = self.world.as_ref().map(|w| &w.serials);
            let outcome = run_plan(plan.clone(), (self.target)(), options, serials).await;
            shows += usize::from(outcome.findings.iter().any(|f| bucket(f) == key));
            if shows >= needed {
                return true;
            }
        }
        false
    }

    fn options(&self, nonce: u64) -> RunOptions {
        RunOptions {
            concurrency: self.concurrency,
            // A program explores: an instance without a credential still sends.
            stop_without_credential: false,
            // A program chooses its own identities, and its mutations cover them.
            probes: false,
            // Nothing compares a program's response shapes.
            contracts: false,
            // Names collide across thousands of programs; canaries do not.
            own_names: false,
            ..RunOptions::new(self.seed, nonce)
        }
    }
}

/// A program that does not plan: a bug of the generator, never the target's.
fn unplanned(err: &ScenarioError) -> Outcome {
    tracing::error!("a generated program does not plan (a fuzzer bug): {err}");
    Outcome::default()
}

/// Runs `plan` against `transport`, its serials after those of the run's
/// earlier programs (`serials`) when it has any.
async fn run_plan(
    plan: crate::plan::Plan,
    transport: Arc<dyn Transport>,
    mut options: RunOptions,
    serials: Option<&std::sync::atomic::AtomicU64>,
) -> Outcome {
    let plan = Arc::new(plan);
    if let Some(serials) = serials {
        let count = plan.instances() as u64;
        options.serial_base = serials.fetch_add(count, std::sync::atomic::Ordering::Relaxed);
    }
    let sink = Arc::new(FindingSink::new(None).expect("an in-memory sink"));
    let executor = Executor::new(
        plan,
        transport,
        sink.clone(),
        Arc::new(Redactor::default()),
        options,
    );
    let stats = executor.run().await;
    let world = executor.world();
    let identities = world
        .ids()
        .map(|id| {
            (
                world.label(id).to_string(),
                world.instance(id).canary.clone(),
            )
        })
        .collect();
    let signature = stats
        .order
        .iter()
        .filter_map(|i| i.status.map(|s| (step_name(&i.step).to_string(), s)))
        .collect();
    let findings = sink
        .buckets()
        .into_iter()
        .map(|b| b.first)
        .filter(|f| f.kind != FindingKind::Expectation)
        .collect();
    Outcome {
        findings,
        signature,
        requests: stats.requests,
        order: stats.order,
        identities,
        world: None,
    }
}

/// A program step's scenario step: `book [3]` → `book`.
fn step_name(step: &str) -> &str {
    step.rsplit_once(" [").map_or(step, |(name, _)| name)
}

/// A program step's operation: `book [3]` → 3.
pub(crate) fn op_index(step: &str) -> Option<usize> {
    step.rsplit_once(" [")?.1.strip_suffix(']')?.parse().ok()
}

/// The shared body of both fuzzing fronts: runs the program `bytes` stand
/// for against a fresh target and returns its leaks and tampering (empty
/// when clean).
pub fn fuzz_one(
    runtime: &tokio::runtime::Runtime,
    vocabularies: &[Vocabulary],
    runner: &Runner,
    bytes: &[u8],
) -> Vec<Finding> {
    let Some((&first, rest)) = bytes.split_first() else {
        return Vec::new();
    };
    let vocab = &vocabularies[first as usize % vocabularies.len()];
    let program = Program::from_bytes(vocab, rest);
    // Deterministic per input, as a coverage-guided engine wants; the
    // in-process clinic is fresh for every input anyway.
    let nonce = mix(1, &bytes.iter().map(|b| u64::from(*b)).collect::<Vec<_>>());
    let outcome = runtime.block_on(runner.run(vocab, &program, nonce));
    outcome
        .findings
        .into_iter()
        .filter(|f| f.kind.harm())
        .collect()
}

/// The vocabularies of every scenario in `paths`.
pub fn vocabularies(
    paths: &[std::path::PathBuf],
    overrides: &crate::plan::Overrides,
) -> Result<Vec<Vocabulary>, ScenarioError> {
    crate::scenario::files(paths)?
        .iter()
        .map(|f| Vocabulary::new(&Scenario::load(f)?, overrides))
        .collect()
}

/// As [`vocabularies`], each scenario with a step for every operation of
/// the OpenAPI document `openapi` (its text) it never sends, and what was
/// added and left out.
pub fn documented_vocabularies(
    paths: &[std::path::PathBuf],
    overrides: &crate::plan::Overrides,
    openapi: &str,
) -> Result<Vec<(Vocabulary, Added)>, String> {
    let files = crate::scenario::files(paths).map_err(|e| e.to_string())?;
    files
        .iter()
        .map(|f| {
            let mut scenario = Scenario::load(f).map_err(|e| e.to_string())?;
            let added = documented::extend(&mut scenario, openapi, overrides)?;
            let vocab = Vocabulary::new(&scenario, overrides).map_err(|e| e.to_string())?;
            Ok((vocab, added))
        })
        .collect()
}

/// One input per vocabulary that walks its scripted flow unmutated, as
/// `run` does: every step in file order, sent by every instance of its
/// actor at once. The first byte selects the vocabulary, as in [`fuzz_one`].
pub fn seed_inputs(vocabularies: &[Vocabulary]) -> Vec<Vec<u8>> {
    (vocabularies.iter().enumerate())
        .map(|(v, vocab)| walk(v, vocab, false))
        .collect()
}

/// As [`seed_inputs`], with the last instance of each actor sending every
/// step with the first instance's values, as `run`'s probes do: the write
/// that reaches another's record deep in a flow is where programs start,
/// not a mutation away.
pub fn probe_inputs(vocabularies: &[Vocabulary]) -> Vec<Vec<u8>> {
    (vocabularies.iter().enumerate())
        .map(|(v, vocab)| walk(v, vocab, true))
        .collect()
}

/// The bytes of vocabulary `v`'s scripted walk; with `probe`, the last
/// instance of each actor borrows the first's values throughout.
fn walk(v: usize, vocab: &Vocabulary, probe: bool) -> Vec<u8> {
    let mut bytes = vec![v as u8];
    let instances = vocab.instances();
    for info in vocab.steps.iter().filter(|s| !s.late) {
        let mut senders: Vec<(usize, usize)> = (instances.iter().enumerate())
            .filter(|(_, (r, _))| *r == info.role)
            .map(|(pick, (_, i))| (pick, *i))
            .collect();
        // The prober goes first, alone: the owners' reads before it and
        // after it are theirs alone, and its write is seen as foreign.
        let prober = probe && senders.len() > 1;
        if prober {
            senders.rotate_right(1);
        }
        for (k, (pick, _)) in senders.into_iter().enumerate() {
            // As `run` sends a step: by every instance at once.
            let alone = k == 0 || (prober && k == 1);
            // A borrow byte of 0 borrows, from the first other instance.
            let borrow = if prober && k == 0 { 0 } else { 1 };
            bytes.extend([
                pick as u8,
                19,
                0,
                borrow,
                0,
                15,
                0,
                1,
                0,
                0,
                u8::from(alone),
                1,
                0,
                0,
                1,
                0,
            ]);
        }
    }
    bytes
}

/// Seeded input bytes: the stable front's source of programs.
pub fn random_bytes(seed: u64, counter: u64, len: usize) -> Vec<u8> {
    (0..len.div_ceil(8))
        .flat_map(|i| mix(seed, &[counter, i as u64]).to_le_bytes())
        .take(len)
        .collect()
}

/// A mutation of a corpus entry that keeps its operation records aligned:
/// change a byte of one record, duplicate, drop or swap whole records, or
/// append fresh ones. The first byte (the vocabulary) stays.
pub fn mutate(seed: u64, counter: u64, input: &[u8]) -> Vec<u8> {
    let Some((&vocab, records)) = input.split_first() else {
        return random_bytes(seed, counter, 64);
    };
    let mut ops: Vec<Vec<u8>> = records.chunks(OP_BYTES).map(<[u8]>::to_vec).collect();
    let r = |k: u64| mix(seed, &[counter, 0x6d, k]);
    for k in 0..1 + r(0) % 4 {
        let h = r(k + 1);
        let at = |n: usize| (h >> 8) as usize % n.max(1);
        match h % 6 {
            0 | 1 if !ops.is_empty() => {
                let i = at(ops.len());
                let byte = (h >> 24) as usize % ops[i].len();
                ops[i][byte] = (h >> 40) as u8;
            }
            2 if !ops.is_empty() => {
                let i = at(ops.len());
                let copy = ops[i].clone();
                ops.insert(i, copy);
            }
            3 if ops.len() > 1 => {
                ops.remove(at(ops.len()));
            }
            4 if ops.len() > 1 => {
                let (i, j) = (at(ops.len()), (h >> 32) as usize % ops.len());
                ops.swap(i, j);
            }
            _ => ops.extend(
                random_bytes(seed, counter ^ h, OP_BYTES * 4)
                    .chunks(OP_BYTES)
                    .map(<[u8]>::to_vec),
            ),
        }
    }
    ops.truncate(MAX_OPS * 2);
    std::iter::once(vocab)
        .chain(ops.into_iter().flatten())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Overrides, Plan};
    use crate::template::Expr;

    fn vocabularies() -> Vec<Vocabulary> {
        let shipped =
            std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios"));
        super::vocabularies(&[shipped], &Overrides::default()).unwrap()
    }

    fn vocabulary(name: &str) -> Vocabulary {
        let found = vocabularies().into_iter().find(|v| v.scenario == name);
        found.expect("a shipped scenario")
    }

    /// Confirmation tries a race's program without its simultaneous sends
    /// first: the same steps, with the same mutations, one at a time.
    #[test]
    fn a_program_s_sequential_twin_sends_the_same_steps_one_at_a_time() {
        let vocabs = vocabularies();
        for (vocab, seed) in vocabs.iter().zip(seed_inputs(&vocabs)) {
            let mut program = Program::from_bytes(vocab, &seed[1..]);
            program.ops.iter_mut().for_each(|op| op.concurrent = true);
            let (raced, twin) = (program.to_plan(vocab).unwrap(), program.sequential());
            let plan = twin.to_plan(vocab).unwrap();
            assert!(
                raced.steps.iter().any(|s| s.concurrent),
                "{}",
                vocab.scenario
            );
            assert!(
                plan.steps.iter().all(|s| !s.concurrent),
                "{}",
                vocab.scenario
            );
            let names = |p: &Plan| p.steps.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
            assert_eq!(names(&plan), names(&raced), "{}", vocab.scenario);
            assert_eq!(twin.sequential(), twin);
        }
    }

    #[test]
    fn any_bytes_give_a_program_that_plans() {
        for vocab in vocabularies() {
            for i in 0..300 {
                let bytes = random_bytes(9, i, 16 + (i as usize * 7) % 1500);
                let program = Program::from_bytes(&vocab, &bytes);
                assert!(program.ops.len() <= MAX_OPS);
                if let Err(err) = program.to_plan(&vocab) {
                    panic!(
                        "{}: input {i} gives a program that does not plan: {err}\n{}",
                        vocab.scenario,
                        program.to_toml(&vocab, "x")
                    );
                }
            }
        }
    }

    /// The shrinker removes operations; what is left must still plan, an
    /// operation whose inputs went with them left out, or shrinking stops
    /// at the first operation another one needs.
    #[test]
    fn a_program_with_operations_removed_still_plans() {
        let mut removed = 0;
        for vocab in vocabularies() {
            for i in 0..40 {
                let program = Program::from_bytes(&vocab, &random_bytes(12, i, 900));
                for k in 0..program.ops.len() {
                    let mut ops = program.ops.clone();
                    ops.remove(k);
                    let shrunk = Program { ops };
                    if let Err(err) = shrunk.to_plan(&vocab) {
                        panic!("{}: input {i} without operation {k}: {err}", vocab.scenario);
                    }
                    removed += 1;
                }
            }
        }
        assert!(removed > 1000, "only {removed} programs shrunk");
    }

    /// Every operation sent at the same moment as the one before it: a
    /// step that needs what a step of its own batch captures (a booking
    /// needs the token its sender's log-in gives) waits for that batch
    /// instead of depending on which answer comes first; the others (two
    /// instances' log-ins) still race.
    #[test]
    fn a_step_never_needs_what_its_batch_captures() {
        use crate::plan::{Credentials, PlanStep};
        let vocabs = vocabularies();
        let (mut waited, mut raced) = (0, 0);
        for (vocab, seed) in vocabs.iter().zip(seed_inputs(&vocabs)) {
            let mut program = Program::from_bytes(vocab, &seed[1..]);
            program.ops.iter_mut().for_each(|op| op.concurrent = true);
            let plan = program.to_plan(vocab).unwrap();
            let role = |name: &str| plan.roles.iter().position(|r| r.name == name);
            // (actor, instance: None for any, variable) the step uses.
            let uses = |step: &PlanStep| {
                let me = step.instance;
                let credential = match step.credentials {
                    Credentials::Own => Some((step.role, me)),
                    Credentials::Of(r, i) | Credentials::Unsigned(r, i) => Some((r, Some(i))),
                    Credentials::Anonymous | Credentials::Picked(_) => None,
                };
                let auth = credential.into_iter().flat_map(|(r, i)| {
                    let header = plan.roles[r].auth.header.iter();
                    header.flat_map(move |(_, t)| t.exprs().map(move |e| (r, i, e.clone())))
                });
                let templates = step.templates().into_iter();
                let mine = templates.flat_map(|t| t.exprs().map(|e| (step.role, me, e.clone())));
                (mine.chain(auth))
                    .filter_map(|(r, i, expr)| match expr {
                        Expr::Var(var) => Some((Some(r), i, var)),
                        Expr::Peer(var) => Some((Some(r), None, var)),
                        Expr::Pick { role: r, var } => Some((role(&r), None, var)),
                        Expr::Of {
                            role: r,
                            index,
                            var,
                        } => Some((role(&r), Some(index), var)),
                        Expr::Env(_) => None,
                    })
                    .collect::<Vec<_>>()
            };
            let mut batch: Vec<(usize, Option<usize>, String)> = Vec::new();
            for (n, step) in plan.steps.iter().enumerate() {
                if !step.concurrent {
                    waited += usize::from(n > 0);
                    batch.clear();
                }
                for (r, i, var) in uses(step) {
                    let captured = (batch.iter()).any(|(br, bi, bv)| {
                        Some(*br) == r && *bv == var && (i.is_none() || i == *bi)
                    });
                    assert!(
                        !captured,
                        "{}: step `{}` needs `{var}`, which a step of its batch captures",
                        vocab.scenario, step.name
                    );
                }
                raced += usize::from(step.concurrent);
                batch.extend(
                    (step.captures.iter()).map(|c| (step.role, step.instance, c.var.clone())),
                );
            }
        }
        assert!(waited > 0 && raced > 0, "waited {waited}, raced {raced}");
    }

    #[test]
    fn seed_inputs_walk_the_scripted_flow() {
        let vocabs = vocabularies();
        for (vocab, seed) in vocabs.iter().zip(seed_inputs(&vocabs)) {
            let program = Program::from_bytes(vocab, &seed[1..]);
            let expected: usize = vocab
                .steps
                .iter()
                .filter(|s| !s.late)
                .map(|s| vocab.count(s.role))
                .sum();
            assert_eq!(
                program.ops.len(),
                expected.min(MAX_OPS),
                "{}",
                vocab.scenario
            );
            assert!(program.ops.iter().all(|op| op.identity == Identity::Own
                && op.borrow.is_none()
                && op.flip.is_none()
                && op.set.is_none()
                && op.alias.is_none()));
        }
    }

    /// Over many programs, the bytes ask for every mutation drawn from the
    /// scenario: a booking's slot set to another patient's, a field added
    /// to a write, a query parameter repeated with another of its values.
    #[test]
    fn mutations_set_shared_values_add_fields_and_repeat_parameters() {
        let vocab = &vocabulary("booking");
        let (mut slot, mut added, mut repeated) = (false, false, false);
        for i in 0..400 {
            let program = Program::from_bytes(vocab, &random_bytes(5, i, 900));
            let text = program.to_toml(vocab, "m");
            for op in &program.ops {
                let body = vocab.steps[op.step].step.body.as_ref();
                let sends = |f: &str| body.is_some_and(|b| b.get(f).is_some());
                if let Some(set) = &op.set {
                    let actor = &vocab.actors[set.role].0;
                    let hole = format!("{{{{{actor}#{}.{}}}}}", set.from, set.var);
                    assert!(text.contains(&hole), "{hole} missing from\n{text}");
                    slot |= set.field == "slot" && set.var == "slot" && sends("slot");
                    added |= !sends(&set.field);
                }
                if let Some(flip) = op.flip.as_ref().filter(|f| f.repeat) {
                    repeated |= text.contains(&format!("&{}={}", flip.field, flip.value));
                }
            }
        }
        assert!(slot, "no booking ever took another patient's slot");
        assert!(added, "no write ever got a field it does not send");
        assert!(repeated, "no query parameter was ever repeated");
    }

    /// And the ones about who is asking: another's e-mail in capitals,
    /// another's claims unsigned, a credential used after its account was
    /// deleted.
    #[test]
    fn mutations_alias_e_mails_forge_claims_and_go_on_after_a_teardown() {
        let vocab = &vocabulary("booking");
        let (mut alias, mut unsigned, mut stale) = (false, false, false);
        for i in 0..400 {
            let program = Program::from_bytes(vocab, &random_bytes(6, i, 900));
            let text = program.to_toml(vocab, "m");
            for (n, op) in program.ops.iter().enumerate() {
                if let Some(of) = op.alias {
                    let hole = format!("\"{{{{patient#{of}.canary}}}}@PATIENTS.TEST\"");
                    assert!(text.contains(&hole), "{hole} missing from\n{text}");
                    alias = true;
                }
                if let Identity::Unsigned(of) = op.identity {
                    unsigned |= text.contains(&format!("credentials = \"unsigned patient#{of}\""));
                }
                let late = vocab.steps[op.step].late;
                stale |= late
                    && program.ops[n + 1..]
                        .iter()
                        .any(|o| o.instance == op.instance);
            }
        }
        assert!(alias && unsigned && stale, "{alias} {unsigned} {stale}");
    }

    /// A victim's program then an observer's: the observer's instances
    /// are numbered after the victim's, its borrowings with them, and it
    /// starts once the victim's program is done.
    #[test]
    fn a_program_after_another_has_instances_of_its_own() {
        let vocab = &vocabulary("booking");
        let mut checked = 0;
        for i in 0..50 {
            let victim = Program::from_bytes(vocab, &random_bytes(21, i, 400));
            let observer = Program::from_bytes(vocab, &random_bytes(22, i, 400));
            let both = victim.then(vocab, &observer);
            assert_eq!(both.ops[..victim.ops.len()], victim.ops[..]);
            let later = &both.ops[victim.ops.len()..];
            assert_eq!(later.len(), observer.ops.len());
            let mut offsets = std::collections::BTreeMap::new();
            for (op, was) in later.iter().zip(&observer.ops) {
                let role = vocab.role_of(op);
                let taken = victim.ops.iter().filter(|o| vocab.role_of(o) == role);
                let below = taken.map(|o| o.instance + 1).max().unwrap_or(0);
                let offset = op.instance - was.instance;
                assert!(offset >= below, "{offset} < {below}");
                assert_eq!(*offsets.entry(role).or_insert(offset), offset);
                assert_eq!(op.borrow.map(|b| b - offset), was.borrow);
                checked += 1;
            }
            assert!(later.first().is_none_or(|op| !op.concurrent));
        }
        assert!(checked > 100, "{checked}");
    }

    #[test]
    fn the_same_bytes_give_the_same_program() {
        let vocab = &vocabulary("booking");
        let bytes = random_bytes(4, 4, 600);
        assert_eq!(
            Program::from_bytes(vocab, &bytes),
            Program::from_bytes(vocab, &bytes)
        );
        assert_ne!(
            Program::from_bytes(vocab, &bytes),
            Program::from_bytes(vocab, &random_bytes(4, 5, 600))
        );
    }

    /// The scenario a program runs as is the one its file reads as: what
    /// a reproduction replays is what the fuzzer ran.
    #[test]
    fn a_program_runs_as_the_scenario_its_file_holds() {
        use crate::scenario::Located;
        use std::collections::BTreeMap;
        fn values<T: Clone>(located: &BTreeMap<String, Located<T>>) -> BTreeMap<String, T> {
            located
                .iter()
                .map(|(k, v)| (k.clone(), v.value.clone()))
                .collect()
        }
        fn steps<T: Clone>(located: &[Located<T>]) -> Vec<T> {
            located.iter().map(|s| s.value.clone()).collect()
        }
        // Everything planning reads, spans aside.
        fn as_json(s: &Scenario) -> serde_json::Value {
            serde_json::to_value((
                (&s.name, &s.description, s.seed),
                (values(&s.vars), values(&s.actors)),
                [steps(&s.setup), steps(&s.steps), steps(&s.teardown)],
                (&s.redact_fields, &s.volatile, &s.public),
            ))
            .unwrap()
        }
        let mut mutated = 0;
        for vocab in vocabularies() {
            for i in 0..60 {
                let program =
                    Program::from_bytes(&vocab, &random_bytes(11, i, 64 + i as usize * 23));
                let text = program.to_toml(&vocab, "fuzz program");
                let read = Scenario::from_str(&vocab.scenario, &text).unwrap();
                let made = program.to_scenario(&vocab);
                assert_eq!(
                    as_json(&made),
                    as_json(&read),
                    "{}: input {i}\n{text}",
                    vocab.scenario
                );
                mutated += program
                    .ops
                    .iter()
                    .filter(|op| op.set.is_some() || op.flip.is_some())
                    .count();
            }
        }
        assert!(mutated > 0, "the programs compared hold no mutated step");
    }

    #[test]
    fn programs_round_trip_through_their_scenario_file() {
        let vocab = &vocabulary("clinician-side");
        let program = Program::from_bytes(vocab, &random_bytes(2, 2, 800));
        let text = program.to_toml(vocab, "round trip");
        let again = Scenario::from_str("again", &text).unwrap();
        let plan = Plan::build(&again, &Overrides::default()).unwrap();
        assert_eq!(plan.steps.len(), text.matches("[[steps]]").count());
        assert!(plan.steps.iter().all(|s| s.instance.is_some()));
    }
}
