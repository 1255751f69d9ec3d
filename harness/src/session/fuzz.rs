//! `crosstalk fuzz`: the stable-Rust front of the fuzzer. Programs come from
//! seeded random bytes and mutated corpus entries. Against the embedded
//! clinic every program meets a fresh one; against a remote target, which
//! keeps its data, every program's identities are fresh and all of them
//! stay in one ledger for the run. Whatever a program finds is appended to
//! `candidates.jsonl` at once; a new bucket counts (in `findings.jsonl`,
//! with a reproduction) only once it shows again, and is then shrunk: from
//! scratch, or, when its victim is another program's identity, by running
//! that program first and then the observer's, with fresh identities.
//!
//! Privacy first: leaks and tampering have their own `--max-findings`;
//! server errors are buckets of their own (`--max-errors`) that never take
//! a leak's place, reported after them. `--time` is a hard deadline for the
//! whole command, confirmation and shrinking included (`--shrink-time`
//! adds to it). A session that ran no program to the end, or got no
//! answer, is incomplete, never clean: a target that hangs must not pass
//! as one without leaks.

use std::collections::{BTreeSet, HashMap};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::canary::mix;
use crate::coverage::{Coverage, Operations};
use crate::findings::{Finding, FindingKind, FindingSink, JsonLines};
use crate::fuzzer::{
    self, Program, RunWorld, Runner, TargetFactory, Vocabulary, bucket, mutate, random_bytes,
};
use crate::html::Page;
use crate::report::{Outputs, RunReport};
use crate::reproduction::{Recording, write_reproduction};
use crate::safety::terminal_safe;
use crate::shrinker::{Limits, shrink};

use super::{Exit, SessionError, Stop, Target, TargetSpec};

/// Programs run at once per core by default. A program mostly waits on its
/// own requests, one batch at a time: with one program per core the cores
/// were 40% idle, and four per core made 2.3 times as many programs a
/// second on the embedded clinic.
pub const PROGRAMS_PER_CORE: usize = 4;

/// A fuzzing session.
pub struct Fuzz {
    /// Scenario files or directories whose steps make the vocabulary.
    pub scenarios: Vec<PathBuf>,
    pub target: TargetSpec,
    /// Seed of the input generator; random (and reported) when `None`.
    pub seed: Option<u64>,
    pub time: Duration,
    /// Stop after this many new leak and tampering buckets.
    pub max_findings: Option<usize>,
    /// Confirm at most this many new server-error buckets (they never
    /// take a place of `max_findings`); the rest stay candidates.
    pub max_errors: Option<usize>,
    /// Time for confirming and shrinking beyond `time`; with none, the
    /// last fifth of `time` (at most five minutes) is kept for them.
    pub shrink_time: Duration,
    /// Stop after this many programs (a bounded, seeded run: tests).
    pub programs: Option<u64>,
    /// Promote the buckets of these candidates (`candidates.jsonl` lines)
    /// to findings, by hand, instead of fuzzing.
    pub confirm_candidates: Option<PathBuf>,
    /// Inputs that reached new behaviour, kept between runs.
    pub corpus: PathBuf,
    /// Reproductions (.toml, .sh) and findings.jsonl.
    pub findings: PathBuf,
    /// Cancel to stop early; counts new leak buckets as they are found.
    pub stop: Stop,
    /// `--var` values and `--patients` (instances of population actors in
    /// each program).
    pub overrides: crate::plan::Overrides,
    /// Programs run at once (each sends its operations in order);
    /// [`PROGRAMS_PER_CORE`] per core when `None`.
    pub concurrency: Option<usize>,
    /// An OpenAPI document: the operations the scenarios never send join
    /// their vocabulary, and the session reports which of its operations
    /// programs reached.
    pub openapi: Option<PathBuf>,
    /// An HTML page of what the session confirmed ([`crate::html`]).
    pub html: Option<PathBuf>,
}

/// How long one bucket may take to be confirmed and shrunk, at most
/// (`--shrink-time` when longer): the others wait meanwhile.
const SHRINK_EACH: Duration = Duration::from_secs(60);

/// Programs tried to confirm one bucket before its tries are spaced out:
/// after these, only its 8th, 16th, 32nd… candidate seen is tried, so a
/// bucket whose first programs cannot show it again stays within reach at
/// a cost that grows with the logarithm of how often it is seen.
const CONFIRM_TRIES: u32 = 5;

/// The time kept at the end of `time` for confirming and shrinking when
/// no `--shrink-time` is given.
fn reserve(time: Duration) -> Duration {
    (time / 5).min(Duration::from_secs(300))
}

/// What a fuzzing session gave.
pub struct FuzzOutcome {
    pub seed: u64,
    /// Which operations of `--openapi` the programs reached.
    pub coverage: Option<Coverage>,
    /// Leak, tampering and server-error buckets confirmed that no earlier
    /// session had found.
    pub new_buckets: u64,
    /// Of those, server errors.
    pub new_errors: u64,
    /// Buckets found but not confirmed, each with how many candidates.
    pub candidates: Vec<(String, u64)>,
    pub interrupted: bool,
    /// Where the reproductions are.
    pub findings: PathBuf,
    /// Programs run to the end, and the requests they sent and got an
    /// answer to.
    pub programs: u64,
    pub requests: u64,
    pub answered: u64,
    pub exit: Exit,
}

impl FuzzOutcome {
    /// What the session established, in a line.
    pub fn describe(&self) -> String {
        match self.exit {
            Exit::Incomplete if self.programs == 0 => format!(
                "incomplete: no program ran to the end ({} requests sent, {} answered); no verdict on the target",
                self.requests, self.answered
            ),
            Exit::Incomplete => format!(
                "incomplete: {} program(s) ran but none of their {} requests got an answer; no verdict on the target",
                self.programs, self.requests
            ),
            _ if self.new_buckets == 0 && self.candidates.is_empty() => {
                "no new leak, tampering or server error found".to_string()
            }
            _ if self.new_buckets == 0 => format!(
                "nothing confirmed; {} bucket(s) of unconfirmed candidates in {}",
                self.candidates.len(),
                self.findings.join("candidates.jsonl").display()
            ),
            _ => format!(
                "{} new bucket(s) of leaks or tampering, {} of server errors; reproductions in {}",
                self.new_buckets.saturating_sub(self.new_errors),
                self.new_errors,
                self.findings.display()
            ),
        }
    }
}

/// The exit code of a session: a finding wins, then a stop, then work not
/// done (no program ran to the end, or nothing answered).
fn exit(new_buckets: u64, interrupted: bool, programs: u64, answered: u64) -> Exit {
    if new_buckets > 0 {
        Exit::Found
    } else if interrupted {
        Exit::Interrupted
    } else if programs == 0 || answered == 0 {
        Exit::Incomplete
    } else {
        Exit::Clean
    }
}

/// Where a bucket stands in this session.
#[derive(Default)]
struct BucketState {
    /// Candidates seen in this session.
    seen: u64,
    /// Programs tried to confirm it.
    tries: u32,
    /// Being confirmed, confirmed, or known from an earlier session.
    busy: bool,
    done: bool,
}

impl BucketState {
    /// Counts a candidate; whether it is tried (see [`CONFIRM_TRIES`]),
    /// marking the bucket busy if so.
    fn take_try(&mut self) -> bool {
        self.seen += 1;
        let due = self.tries < CONFIRM_TRIES || self.seen.is_power_of_two();
        let open = !self.busy && !self.done && due;
        if open {
            self.busy = true;
            self.tries += 1;
        }
        open
    }
}

/// What the workers share.
struct Shared {
    vocabularies: Vec<Vocabulary>,
    runner: Runner,
    seed: u64,
    started: Instant,
    /// No program starts after this.
    deadline: Instant,
    /// Nothing runs after this: confirmation and shrinking included.
    end: Instant,
    /// What one bucket's confirmation and shrinking may take.
    shrink_each: Duration,
    /// Programs to run at most.
    program_limit: Option<u64>,
    /// The target, as reports name it.
    target: String,
    cancel: tokio_util::sync::CancellationToken,
    corpus_dir: PathBuf,
    findings_dir: PathBuf,
    corpus: Mutex<Vec<Vec<u8>>>,
    seen: Mutex<BTreeSet<(String, String, u16)>>,
    buckets: Mutex<HashMap<String, BucketState>>,
    /// Confirmed buckets, as printed: leaks and tampering, then errors.
    confirmed: Mutex<Vec<(FindingKind, String)>>,
    /// Confirmed findings, one per new bucket.
    sink: FindingSink,
    /// Everything found, as found, confirmed or not.
    candidates: JsonLines,
    max_findings: Option<usize>,
    max_errors: Option<usize>,
    /// New leak and tampering buckets confirmed or being confirmed,
    /// against `max_findings`; server errors, against `max_errors`.
    claimed: AtomicU64,
    claimed_errors: AtomicU64,
    /// Programs explore under the read side; a finding is confirmed and
    /// shrunk under the write side, alone in the process as a replay will
    /// be, so a race that shows only under load does not count.
    quiet: tokio::sync::RwLock<()>,
    /// The operations of `--openapi`, and those programs reached so far.
    operations: Option<Operations>,
    reached: Mutex<BTreeSet<String>>,
    programs: AtomicU64,
    requests: AtomicU64,
    /// Requests of finished programs that got an answer (any status).
    answered: AtomicU64,
    counter: AtomicU64,
    new_buckets: AtomicU64,
    new_errors: AtomicU64,
}

impl Fuzz {
    /// A fuzzing session over `scenarios` against `target` with the command
    /// line's defaults: ten minutes, a random seed, [`PROGRAMS_PER_CORE`]
    /// programs per core.
    pub fn new(scenarios: Vec<PathBuf>, target: TargetSpec) -> Fuzz {
        Fuzz {
            scenarios,
            target,
            seed: None,
            time: Duration::from_secs(600),
            max_findings: None,
            max_errors: None,
            shrink_time: Duration::ZERO,
            programs: None,
            confirm_candidates: None,
            corpus: PathBuf::from("crosstalk-corpus"),
            findings: PathBuf::from("crosstalk-findings/fuzz"),
            stop: Stop::default(),
            overrides: crate::plan::Overrides::default(),
            concurrency: None,
            openapi: None,
            html: None,
        }
    }

    pub async fn execute(self) -> Result<FuzzOutcome, SessionError> {
        // Zero would stop before the first program and call that clean.
        if self.max_findings == Some(0) {
            return Err(SessionError::Input(
                "--max-findings must be at least 1 (leave it out to fuzz until --time)".into(),
            ));
        }
        if self.max_errors == Some(0) {
            return Err(SessionError::Input(
                "--max-errors must be at least 1 (leave it out to confirm every server error)"
                    .into(),
            ));
        }
        if let Some(file) = &self.confirm_candidates {
            return self.promote(file);
        }
        let outputs = Outputs {
            html: self.html.clone(),
            ..Outputs::default()
        };
        outputs.prepare().map_err(|(path, err)| {
            SessionError::Input(format!("cannot write {}: {err}", path.display()))
        })?;
        let started = Instant::now();
        let shared = Arc::new(self.prepare(started).await?);
        let workers = self.concurrency.unwrap_or_else(|| {
            PROGRAMS_PER_CORE * std::thread::available_parallelism().map_or(2, |n| n.get())
        });
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..workers.max(1) {
            let shared = shared.clone();
            tasks.spawn(async move {
                while !shared.cancel.is_cancelled()
                    && Instant::now() < shared.deadline
                    && !shared.found_enough()
                {
                    let Some(i) = shared.next_program() else {
                        break;
                    };
                    one_program(&shared, i).await;
                }
            });
        }
        report_progress(&shared, started, tasks).await;
        shared.print_confirmed();
        let candidates = shared.unconfirmed();
        print_candidates(&candidates, &self.findings);
        let interrupted = self.stop.cancel.is_cancelled();
        if interrupted {
            eprintln!(
                "interrupted: everything found so far is in {}",
                self.findings.display()
            );
        }
        let coverage = shared.coverage();
        if let Some(coverage) = &coverage {
            print_coverage(coverage);
        }
        let count = |n: &AtomicU64| n.load(Ordering::Relaxed);
        let (new_buckets, programs) = (count(&shared.new_buckets), count(&shared.programs));
        let answered = count(&shared.answered);
        let mut outcome = FuzzOutcome {
            coverage,
            seed: shared.seed,
            new_buckets,
            new_errors: count(&shared.new_errors),
            candidates,
            interrupted,
            findings: self.findings.clone(),
            programs,
            requests: count(&shared.requests),
            answered,
            exit: exit(new_buckets, interrupted, programs, answered),
        };
        let written = self.write_page(&outputs, &shared, &outcome);
        super::page_written(written, &mut outcome.exit);
        Ok(outcome)
    }

    /// The HTML page (`--html`) of what the session confirmed: a bucket per
    /// confirmed finding, each with its reproduction.
    fn write_page(
        &self,
        outputs: &Outputs,
        shared: &Shared,
        outcome: &FuzzOutcome,
    ) -> Result<(), String> {
        if outputs.html.is_none() {
            return Ok(());
        }
        let report = RunReport {
            coverage: outcome.coverage.clone(),
            ..RunReport::of_findings(
                "fuzz".into(),
                shared.seed,
                shared.target.clone(),
                &shared.sink,
                &self.findings,
            )
        };
        let reproductions = (report.buckets.iter())
            .map(|b| {
                // Named as `write_out` names it: by the fuzzer's bucket.
                let file = self
                    .findings
                    .join(format!("{}.toml", slug(&bucket(&b.first))));
                (b.key.clone(), file.display().to_string())
            })
            .collect();
        let figures = [
            ("programs run", outcome.programs),
            ("requests", outcome.requests),
            ("answered", outcome.answered),
            ("seconds", shared.started.elapsed().as_secs()),
        ];
        let page = Page {
            headline: outcome.describe(),
            figures: figures.map(|(n, v)| (n.to_string(), v.to_string())).into(),
            reproductions,
            ..Page::new("fuzz", &report, outcome.exit)
        };
        (outputs.write_html(&page))
            .map_err(|(path, err)| format!("cannot write {}: {err}", path.display()))
    }

    /// The vocabularies, each with the operations of the document at
    /// `path` its scenario never sends; what was added and left out is
    /// said on the terminal.
    fn documented(&self, path: &Path) -> Result<Vec<Vocabulary>, SessionError> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            SessionError::Input(format!(
                "cannot read OpenAPI document {}: {err}",
                path.display()
            ))
        })?;
        let found = fuzzer::documented_vocabularies(&self.scenarios, &self.overrides, &text)
            .map_err(|err| SessionError::Input(format!("{}: {err}", path.display())))?;
        let mut vocabularies = Vec::new();
        for (vocab, added) in found {
            eprintln!(
                "{}: {} step(s) from {} for the operations it never sends",
                vocab.scenario,
                added.steps.len(),
                path.display()
            );
            for why in &added.left_out {
                eprintln!("  left out: {}", terminal_safe(why));
            }
            vocabularies.push(vocab);
        }
        Ok(vocabularies)
    }

    /// Loads the vocabularies, connects the target, opens the corpus and
    /// the findings file.
    async fn prepare(&self, started: Instant) -> Result<Shared, SessionError> {
        let (vocabularies, operations) = match &self.openapi {
            Some(path) => {
                let operations = Operations::load(path).map_err(SessionError::Input)?;
                (self.documented(path)?, Some(operations))
            }
            None => (
                fuzzer::vocabularies(&self.scenarios, &self.overrides)?,
                None,
            ),
        };
        let target = Arc::new(Target::connect(&self.target).await?);
        let keeps_data = matches!(*target, Target::Remote(_));
        let factory: TargetFactory = Arc::new(move || target.transport());
        let describe = factory().describe();
        let cannot_write = |err: std::io::Error| {
            let dir = self.findings.display();
            SessionError::Input(format!("cannot write to {dir}: {err}"))
        };
        let sink = FindingSink::new(Some(&self.findings.join("findings.jsonl")))
            .map_err(cannot_write)?
            .counting(self.stop.found.clone());
        let candidates =
            JsonLines::append(&self.findings.join("candidates.jsonl")).map_err(cannot_write)?;
        std::fs::create_dir_all(&self.corpus).map_err(|err| {
            SessionError::Input(format!(
                "cannot use corpus {}: {err}",
                self.corpus.display()
            ))
        })?;
        let seed = self.seed.unwrap_or_else(crate::canary::fresh_nonce);
        // The scripted flows come first (with `--openapi`, probing too),
        // then what earlier runs kept.
        let mut corpus = fuzzer::seed_inputs(&vocabularies);
        if self.openapi.is_some() {
            // The documented operations put writes deep in the flows.
            corpus.extend(fuzzer::probe_inputs(&vocabularies));
        }
        corpus.extend(load_corpus(&self.corpus));
        let known = known_buckets(&self.findings);
        eprintln!(
            "crosstalk fuzz (seed {seed}) against {describe}: {} scenario(s), {} corpus input(s), {} known bucket(s), for {}{}",
            vocabularies.len(),
            corpus.len(),
            known.len(),
            humantime::format_duration(self.time + self.shrink_time),
            match self.programs {
                Some(n) => format!(" or {n} programs"),
                None => String::new(),
            }
        );
        let explore = if self.shrink_time.is_zero() {
            self.time - reserve(self.time)
        } else {
            self.time
        };
        let runner = Runner {
            world: keeps_data.then(|| Arc::new(RunWorld::new(crate::canary::fresh_nonce()))),
            ..Runner::new(factory, seed)
        };
        Ok(Shared {
            operations,
            reached: Mutex::default(),
            vocabularies,
            runner,
            seed,
            started,
            deadline: started + explore,
            end: started + self.time + self.shrink_time,
            shrink_each: SHRINK_EACH.max(self.shrink_time),
            program_limit: self.programs,
            target: describe,
            cancel: self.stop.cancel.clone(),
            corpus_dir: self.corpus.clone(),
            findings_dir: self.findings.clone(),
            corpus: Mutex::new(corpus),
            seen: Mutex::default(),
            buckets: Mutex::new(known),
            confirmed: Mutex::default(),
            sink,
            candidates,
            max_findings: self.max_findings,
            max_errors: self.max_errors,
            claimed: AtomicU64::new(0),
            claimed_errors: AtomicU64::new(0),
            quiet: tokio::sync::RwLock::new(()),
            programs: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            counter: AtomicU64::new(0),
            new_buckets: AtomicU64::new(0),
            new_errors: AtomicU64::new(0),
        })
    }

    /// `--confirm-candidates FILE`: each bucket of the candidates in FILE
    /// (lines of `candidates.jsonl`) that no session has confirmed is
    /// recorded in `findings.jsonl` as confirmed by hand, without a
    /// reproduction. Exit 1 when any was promoted.
    fn promote(&self, file: &Path) -> Result<FuzzOutcome, SessionError> {
        let text = std::fs::read_to_string(file).map_err(|err| {
            SessionError::Input(format!("cannot read candidates {}: {err}", file.display()))
        })?;
        let mut promoted: Vec<Finding> = Vec::new();
        let known = known_buckets(&self.findings);
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let finding: Finding = serde_json::from_str(line).map_err(|err| {
                SessionError::Input(format!(
                    "{}:{}: not a candidate (a line of candidates.jsonl): {err}",
                    file.display(),
                    n + 1
                ))
            })?;
            let key = bucket(&finding);
            if !known.contains_key(&key) && !promoted.iter().any(|f| bucket(f) == key) {
                promoted.push(finding);
            }
        }
        let sink =
            FindingSink::new(Some(&self.findings.join("findings.jsonl"))).map_err(|err| {
                SessionError::Input(format!(
                    "cannot write to {}: {err}",
                    self.findings.display()
                ))
            })?;
        for finding in &promoted {
            eprintln!(
                "promoted (confirmed by hand, no reproduction): {}: {}",
                finding.kind.as_str(),
                terminal_safe(&finding.summary)
            );
            sink.record(finding.clone());
        }
        let errors = promoted.iter().filter(|f| !f.kind.harm()).count() as u64;
        let new_buckets = promoted.len() as u64;
        Ok(FuzzOutcome {
            seed: self.seed.unwrap_or(0),
            coverage: None,
            new_buckets,
            new_errors: errors,
            candidates: Vec::new(),
            interrupted: false,
            findings: self.findings.clone(),
            programs: 0,
            requests: 0,
            answered: 0,
            exit: if new_buckets > 0 {
                Exit::Found
            } else {
                Exit::Clean
            },
        })
    }
}

/// Buckets found but not confirmed, at the end of a session.
fn print_candidates(candidates: &[(String, u64)], dir: &Path) {
    if candidates.is_empty() {
        return;
    }
    eprintln!(
        "not confirmed ({} bucket(s); in {}; promote one with --confirm-candidates FILE):",
        candidates.len(),
        dir.join("candidates.jsonl").display()
    );
    for (key, count) in candidates {
        eprintln!("  {count} candidate(s): {}", terminal_safe(key));
    }
}

fn print_coverage(coverage: &Coverage) {
    let all = coverage.reached.len() + coverage.unreached.len();
    eprintln!(
        "coverage: {} of {all} operations of the OpenAPI document reached",
        coverage.reached.len()
    );
    for op in &coverage.unreached {
        eprintln!("  never reached: {op}");
    }
}

impl Shared {
    /// Reached and unreached operations of `--openapi`, in document order.
    fn coverage(&self) -> Option<Coverage> {
        let operations = self.operations.as_ref()?;
        let reached = self.reached.lock().unwrap_or_else(|p| p.into_inner());
        let (hit, missed) = operations.names().partition(|op| reached.contains(op));
        Some(Coverage {
            reached: hit,
            unreached: missed,
        })
    }

    /// `--max-findings` new leak and tampering buckets are confirmed
    /// (server errors never end a session).
    fn found_enough(&self) -> bool {
        let found = (self.new_buckets.load(Ordering::Relaxed))
            .saturating_sub(self.new_errors.load(Ordering::Relaxed));
        self.max_findings.is_some_and(|max| found as usize >= max)
    }

    /// The number of the next program, unless `--programs` have run.
    fn next_program(&self) -> Option<u64> {
        let i = self.counter.fetch_add(1, Ordering::Relaxed);
        self.program_limit.is_none_or(|n| i < n).then_some(i)
    }

    /// A place for one more bucket of `kind`, if one is left: among
    /// `--max-findings` for leaks and tampering, `--max-errors` else.
    fn claim(&self, kind: FindingKind) -> bool {
        let (claimed, max) = self.places(kind);
        let max = max.unwrap_or(usize::MAX);
        claimed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| {
                ((c as usize) < max).then_some(c + 1)
            })
            .is_ok()
    }

    fn unclaim(&self, kind: FindingKind) {
        self.places(kind).0.fetch_sub(1, Ordering::SeqCst);
    }

    fn places(&self, kind: FindingKind) -> (&AtomicU64, Option<usize>) {
        if kind.harm() {
            (&self.claimed, self.max_findings)
        } else {
            (&self.claimed_errors, self.max_errors)
        }
    }

    /// Counts a candidate of `key`; whether this one should be confirmed
    /// (its bucket is open and a try is due), marking it busy if so.
    fn to_confirm(&self, key: &str) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets.entry(key.to_string()).or_default().take_try()
    }

    /// The bucket is confirmed (`done`) or open again for a later program.
    fn settle(&self, key: &str, done: bool, tried: bool) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let state = buckets.entry(key.to_string()).or_default();
        state.busy = false;
        state.done = done;
        if !tried {
            state.tries -= 1;
        }
    }

    /// Buckets seen in this session and never confirmed, most seen first.
    fn unconfirmed(&self) -> Vec<(String, u64)> {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let mut open: Vec<(String, u64)> = buckets
            .iter()
            .filter(|(_, s)| !s.done && s.seen > 0)
            .map(|(k, s)| (k.clone(), s.seen))
            .collect();
        open.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        open
    }

    /// The confirmed buckets: leaks and tampering first, then errors.
    fn print_confirmed(&self) {
        let mut confirmed = self
            .confirmed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if confirmed.is_empty() {
            return;
        }
        confirmed.sort_by_key(|(kind, _)| !kind.harm());
        eprintln!("confirmed, privacy first:");
        for (kind, line) in confirmed {
            eprintln!("  {}: {}", kind.as_str(), terminal_safe(&line));
        }
    }
}

/// A status line while the workers run: every half second on a terminal,
/// every 15 seconds in a log.
async fn report_progress(shared: &Shared, started: Instant, mut tasks: tokio::task::JoinSet<()>) {
    let terminal = std::io::stderr().is_terminal();
    let every = if terminal {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(15)
    };
    let first = Tally {
        at: started,
        programs: 0,
        requests: 0,
    };
    let mut last = first;
    while !tasks.is_empty() {
        tokio::select! {
            _ = tasks.join_next() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                if last.at.elapsed() >= every {
                    let line = status_line(shared, last);
                    last = shared.tally();
                    if terminal { eprint!("\r{line}   ") } else { eprintln!("{line}") }
                }
            }
        }
    }
    if terminal {
        eprintln!();
    }
    eprintln!("{}", status_line(shared, first));
}

fn load_corpus(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// Buckets that already have a reproduction (or were promoted) in an
/// earlier run: never confirmed again.
fn known_buckets(dir: &Path) -> HashMap<String, BucketState> {
    let Ok(text) = std::fs::read_to_string(dir.join("findings.jsonl")) else {
        return HashMap::new();
    };
    text.lines()
        .filter_map(|line| serde_json::from_str::<Finding>(line).ok())
        .map(|f| {
            let known = BucketState {
                done: true,
                ..BucketState::default()
            };
            (bucket(&f), known)
        })
        .collect()
}

/// Programs and requests finished at a moment: rates are measured between two.
#[derive(Clone, Copy)]
struct Tally {
    at: Instant,
    programs: u64,
    requests: u64,
}

impl Shared {
    fn tally(&self) -> Tally {
        Tally {
            at: Instant::now(),
            programs: self.programs.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
        }
    }
}

/// The progress line: totals, and rates since `since` (the last line, or
/// the start for the last line of all).
fn status_line(shared: &Shared, since: Tally) -> String {
    let now = shared.tally();
    let secs = now.at.duration_since(since.at).as_secs_f64().max(0.001);
    let rate = |n: u64, before: u64| n.saturating_sub(before) as f64 / secs;
    let errors = shared.new_errors.load(Ordering::Relaxed);
    let harm = (shared.new_buckets.load(Ordering::Relaxed)).saturating_sub(errors);
    let open = shared.unconfirmed().len();
    format!(
        "{:>6.0}s  {} programs ({:.1}/s), {} requests ({:.0}/s), corpus {}, confirmed {harm} leak/tamper + {errors} error bucket(s), {open} open",
        shared.started.elapsed().as_secs_f64(),
        now.programs,
        rate(now.programs, since.programs),
        now.requests,
        rate(now.requests, since.requests),
        shared
            .corpus
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len(),
    )
}

/// Input `i`: each corpus entry once as it is (the scripted flows first),
/// then mostly mutations of corpus entries, and some fresh bytes.
fn next_input(shared: &Shared, i: u64) -> Vec<u8> {
    let corpus = shared.corpus.lock().unwrap_or_else(|p| p.into_inner());
    let n = corpus.len() as u64;
    if n > 0 && i / 2 < n && i % 2 == 0 {
        corpus[(i / 2) as usize].clone()
    } else if n > 0 && i % 4 != 1 {
        let parent = &corpus[(mix(shared.seed, &[i, 0xc0]) % n) as usize];
        mutate(shared.seed, i, parent)
    } else {
        let len = 64 + (mix(shared.seed, &[i, 0x1e]) % 960) as usize;
        random_bytes(shared.seed, i, len)
    }
}

/// Runs program `i`; keeps its input if it reached new behaviour, and
/// confirms, shrinks and writes out every bucket it is the first to find.
async fn one_program(shared: &Shared, i: u64) {
    let input = next_input(shared, i);
    let Some((&first, rest)) = input.split_first() else {
        return;
    };
    let vocab = &shared.vocabularies[first as usize % shared.vocabularies.len()];
    let program = Program::from_bytes(vocab, rest);
    // A fresh embedded clinic meets only this program: its identities may
    // follow from the seed, so a seeded run is repeatable. A target that
    // keeps its data must never meet the same canary twice.
    let nonce = match shared.runner.world {
        None => mix(shared.seed, &[i, 0x6e6f6e6365]),
        Some(_) => crate::canary::fresh_nonce(),
    };
    // A program still waiting on the target at the deadline is dropped,
    // its requests with it.
    let run = async {
        let _exploring = shared.quiet.read().await;
        shared.runner.run(vocab, &program, nonce).await
    };
    let Ok(outcome) = tokio::time::timeout_at(shared.deadline.into(), run).await else {
        return;
    };
    let found_at = shared.started.elapsed();
    shared.programs.fetch_add(1, Ordering::Relaxed);
    shared
        .requests
        .fetch_add(outcome.requests, Ordering::Relaxed);
    let answered = outcome.order.iter().filter(|i| i.status.is_some()).count();
    shared
        .answered
        .fetch_add(answered as u64, Ordering::Relaxed);
    keep_if_novel(shared, vocab, &outcome.signature, &input);
    if let Some(operations) = &shared.operations {
        let reached = operations.cover(&outcome.order).reached;
        shared
            .reached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(reached);
    }
    // A leak, tampering, and a server that fails where it should say no:
    // each new bucket is confirmed, shrunk and written out. Skips and
    // transport errors are what programs that break flows meet by design.
    let reported = |kind: FindingKind| kind.harm() || kind == FindingKind::ServerError;
    for finding in outcome.findings.iter().filter(|f| reported(f.kind)) {
        let _ = shared.candidates.write(finding);
        let key = bucket(finding);
        if !shared.to_confirm(&key) {
            continue;
        }
        if !shared.claim(finding.kind) {
            // Its places are taken: the finding stays a candidate.
            shared.settle(&key, false, false);
            continue;
        }
        let found = Found {
            vocab,
            program: &program,
            finding,
            key: &key,
            found_at,
        };
        let confirmed = tokio::time::timeout_at(shared.end.into(), write_out(shared, &found))
            .await
            .unwrap_or(false);
        if !confirmed {
            shared.unclaim(finding.kind);
        }
        shared.settle(&key, confirmed, true);
    }
}

/// A candidate to confirm: the program that found it, and when.
struct Found<'a> {
    vocab: &'a Vocabulary,
    program: &'a Program,
    finding: &'a Finding,
    key: &'a str,
    found_at: Duration,
}

/// Adds `input` to the corpus when it reached a (step, status) not seen before.
fn keep_if_novel(
    shared: &Shared,
    vocab: &Vocabulary,
    signature: &BTreeSet<(String, u16)>,
    input: &[u8],
) {
    let novel = {
        let mut seen = shared.seen.lock().unwrap_or_else(|p| p.into_inner());
        let before = seen.len();
        seen.extend(
            signature
                .iter()
                .map(|(step, status)| (vocab.scenario.clone(), step.clone(), *status)),
        );
        seen.len() > before
    };
    if novel {
        let name = format!(
            "{:016x}",
            mix(0, &input.iter().map(|b| *b as u64).collect::<Vec<_>>())
        );
        let _ = std::fs::write(shared.corpus_dir.join(name), input);
        shared
            .corpus
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(input.to_vec());
    }
}

/// The programs that may show a candidate again, in the order to try
/// them: when its victim is an identity of an earlier program of this
/// run (against a target that keeps its data), that program followed by
/// the observer's, with fresh identities (the leak may need the victim's
/// records); then the observer's program alone, from scratch. Each comes
/// first without its simultaneous sends, when it has some: a leak that
/// needs no race then shows every time instead of in the orders a
/// loaded machine happens to give (three times out of three, for a race).
fn to_try(shared: &Shared, found: &Found<'_>) -> Vec<Program> {
    let mut programs = Vec::new();
    let earlier = found
        .finding
        .victim
        .as_deref()
        .and_then(|victim| victim.split_once('/'))
        .zip(shared.runner.world.as_ref())
        .and_then(|((name, _), world)| world.program(name));
    if let Some((scenario, victims)) = earlier
        && scenario == found.vocab.scenario
    {
        programs.push(victims.then(found.vocab, found.program));
    }
    programs.push(found.program.clone());
    programs
        .into_iter()
        .flat_map(|program| {
            let sequential = program.sequential();
            let race = sequential != program;
            race.then_some(sequential).into_iter().chain([program])
        })
        .collect()
}

/// Confirms the finding (see [`to_try`]), shrinks it, writes the smallest
/// program that still shows it as a reproduction and only then counts the
/// bucket; alone in the process, as a replay runs, within the session's
/// end. One that does not show again stays in `candidates.jsonl`, is named
/// on the terminal and its bucket stays open. Whether it was confirmed.
async fn write_out(shared: &Shared, found: &Found<'_>) -> bool {
    let _alone = shared.quiet.write().await;
    let (finding, key) = (found.finding, found.key);
    let now = Instant::now();
    let until = shared.end.min(now + shared.shrink_each);
    // Shrinking leaves a quarter of its time to check what it kept the
    // way `replay` will run it.
    let shrink_until = until - (until.saturating_duration_since(now) / 4);
    let cancelled = || shared.cancel.is_cancelled();
    let shrinking = || cancelled() || Instant::now() > shrink_until;
    let checking = || cancelled() || Instant::now() > until;
    let mut small = None;
    for program in to_try(shared, found) {
        if checking() {
            break;
        }
        let limits = Limits {
            shrink: &shrinking,
            check: &checking,
        };
        if let Some(shown) = shrink(&shared.runner, found.vocab, &program, key, limits).await {
            small = Some((program, shown));
            break;
        }
    }
    let Some((confirmed_from, small)) = small else {
        eprintln!(
            "\nnot confirmed (did not show again with the programs it needs, within the time left): {}",
            terminal_safe(&finding.summary)
        );
        return false;
    };
    let name = slug(key);
    // The reproduction's finding, whole: its summary and its fields name
    // the same instances (those of the shrunk program).
    let shown = reproduce(shared, found.vocab, &small, finding, &name).await;
    let summary = shown.summary.clone();
    shared.sink.record(shown);
    shared.new_buckets.fetch_add(1, Ordering::Relaxed);
    if !finding.kind.harm() {
        shared.new_errors.fetch_add(1, Ordering::Relaxed);
    }
    let file = shared.findings_dir.join(format!("{name}.toml"));
    let with = if confirmed_from.ops.len() > found.program.ops.len() {
        " (with the earlier program whose data it showed)"
    } else {
        ""
    };
    eprintln!(
        "\n{}: {}\n  found at {:.1}s, confirmed{with} at {:.1}s and shrunk from {} to {} operation(s): {}",
        finding.kind.as_str(),
        terminal_safe(&summary),
        found.found_at.as_secs_f64(),
        shared.started.elapsed().as_secs_f64(),
        confirmed_from.ops.len(),
        small.ops.len(),
        file.display()
    );
    let line = format!("{summary} ({})", file.display());
    let mut confirmed = shared.confirmed.lock().unwrap_or_else(|p| p.into_inner());
    confirmed.push((finding.kind, line));
    true
}

/// Runs `program` from scratch recording its requests and writes it out
/// as `name`; the finding as it showed there (a race may not show on this
/// run: then the one first found).
async fn reproduce(
    shared: &Shared,
    vocab: &Vocabulary,
    program: &Program,
    finding: &Finding,
    name: &str,
) -> Finding {
    let key = bucket(finding);
    // A race shows in one of its orders: the script sends the one seen.
    // It was confirmed three times out of three, but a loaded machine can
    // close its window for a while: a race gets more runs to show in.
    let race = program.ops.iter().any(|op| op.concurrent);
    let attempts = if race { 20 } else { 6 };
    let mut recorded = shared.runner.run_alone(vocab, program, true, false).await;
    for attempt in 1..attempts {
        if recorded.findings.iter().any(|f| bucket(f) == key) {
            break;
        }
        let reversed = attempt % 2 == 1;
        recorded = shared
            .runner
            .run_alone(vocab, program, true, reversed)
            .await;
    }
    let shown = recorded.findings.iter().find(|f| bucket(f) == key);
    let summary = shown.unwrap_or(finding).summary.clone();
    let recording = Recording {
        order: &recorded.order,
        identities: &recorded.identities,
        finding: shown,
    };
    let written = write_reproduction(
        &shared.findings_dir,
        name,
        vocab,
        program,
        &summary,
        shared.seed,
        &recording,
    );
    if let Err(err) = written {
        let summary = terminal_safe(&summary);
        eprintln!("\nleak: {summary} (cannot write its reproduction: {err})");
    }
    shown.unwrap_or(finding).clone()
}

/// A file name for a bucket.
fn slug(key: &str) -> String {
    let short: String = crate::contract::slug(key).chars().take(80).collect();
    format!(
        "{short}-{:08x}",
        mix(0, &key.bytes().map(u64::from).collect::<Vec<_>>()) as u32
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bucket whose first candidates all fail is still tried, more and
    /// more rarely, however often it is seen.
    #[test]
    fn a_bucket_that_keeps_failing_is_tried_ever_more_rarely_never_dropped() {
        let mut state = BucketState::default();
        let mut tried = Vec::new();
        for candidate in 1..=1000u64 {
            if state.take_try() {
                tried.push(candidate);
                state.busy = false;
            }
        }
        assert_eq!(tried, [1, 2, 3, 4, 5, 8, 16, 32, 64, 128, 256, 512]);
    }

    #[test]
    fn a_bucket_being_tried_or_confirmed_is_not_tried_again() {
        let mut state = BucketState::default();
        assert!(state.take_try());
        assert!(!state.take_try(), "busy");
        state.busy = false;
        state.done = true;
        assert!(!state.take_try(), "confirmed");
    }
}
