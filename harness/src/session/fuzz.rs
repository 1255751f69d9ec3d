//! `crosstalk fuzz`: the stable-Rust front of the fuzzer. Programs come from
//! seeded random bytes and mutated corpus entries. Against the embedded
//! clinic every program meets a fresh one; against a remote target, which
//! keeps its data, every program's identities are fresh and all of them
//! stay in one ledger for the run. Whatever a program finds is appended to
//! `candidates.jsonl` at once; a new bucket counts (in `findings.jsonl`,
//! with a reproduction) only once it shows again from scratch, and is then
//! shrunk. Stops at the time limit, after `max_findings` buckets, or when
//! cancelled, with everything found so far on disk. A session that ran no
//! program to the end, or got no answer, is incomplete, never clean: a
//! target that hangs must not pass as one without leaks.

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
use crate::shrinker::shrink;

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
    /// Stop after this many new leak buckets.
    pub max_findings: Option<usize>,
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
    /// An OpenAPI document: report which of its operations programs reached.
    pub openapi: Option<PathBuf>,
    /// An HTML page of what the session confirmed ([`crate::html`]).
    pub html: Option<PathBuf>,
}

/// How long after the deadline (or after being found, when later) a new
/// bucket may still be confirmed and shrunk.
const SHRINK_GRACE: Duration = Duration::from_secs(60);

/// What a fuzzing session gave.
pub struct FuzzOutcome {
    pub seed: u64,
    /// Which operations of `--openapi` the programs reached.
    pub coverage: Option<Coverage>,
    /// Leak and server-error buckets found that no earlier session had found.
    pub new_buckets: u64,
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
            _ if self.new_buckets == 0 => {
                "no new leak, tampering or server error found".to_string()
            }
            _ => format!(
                "{} new bucket(s) of leaks, tampering or server errors; reproductions in {}",
                self.new_buckets,
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

/// What the workers share.
struct Shared {
    vocabularies: Vec<Vocabulary>,
    runner: Runner,
    seed: u64,
    started: Instant,
    deadline: Instant,
    /// The target, as reports name it.
    target: String,
    cancel: tokio_util::sync::CancellationToken,
    corpus_dir: PathBuf,
    findings_dir: PathBuf,
    corpus: Mutex<Vec<Vec<u8>>>,
    seen: Mutex<BTreeSet<(String, String, u16)>>,
    buckets: Mutex<HashMap<String, usize>>,
    /// Confirmed findings, one per new bucket.
    sink: FindingSink,
    /// Everything found, as found, confirmed or not.
    candidates: JsonLines,
    max_findings: Option<usize>,
    /// New buckets confirmed or being confirmed, against `max_findings`.
    claimed: AtomicU64,
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
        let outputs = Outputs {
            html: self.html.clone(),
            ..Outputs::default()
        };
        outputs.prepare().map_err(|(path, err)| {
            SessionError::Input(format!("cannot write {}: {err}", path.display()))
        })?;
        let started = Instant::now();
        let shared = Arc::new(self.prepare(started, self.time).await?);
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
                    one_program(&shared).await;
                }
            });
        }
        report_progress(&shared, started, tasks).await;
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
            interrupted,
            findings: self.findings.clone(),
            programs,
            requests: count(&shared.requests),
            answered,
            exit: exit(new_buckets, interrupted, programs, answered),
        };
        if let Err(err) = self.write_page(&outputs, &shared, &outcome) {
            eprintln!("error: {err}");
            if outcome.exit != Exit::Found {
                outcome.exit = Exit::BadInput;
            }
        }
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
        let buckets = shared.sink.buckets();
        let total = shared.sink.total();
        let reproductions = (buckets.iter())
            .map(|b| {
                // Named as `write_out` names it: by the fuzzer's bucket.
                let file = self
                    .findings
                    .join(format!("{}.toml", slug(&bucket(&b.first))));
                (b.key.clone(), file.display().to_string())
            })
            .collect();
        let report = RunReport {
            run_id: "fuzz".into(),
            seed: shared.seed,
            target: shared.target.clone(),
            scenarios: Vec::new(),
            buckets,
            total_findings: total,
            findings_file: (total > 0)
                .then(|| self.findings.join("findings.jsonl").display().to_string()),
            unwritten_findings: shared.sink.unwritten(),
            accepted: Vec::new(),
            stale: Vec::new(),
            pending_snapshots: Vec::new(),
            coverage: outcome.coverage.clone(),
        };
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

    /// Loads the vocabularies, connects the target, opens the corpus and
    /// the findings file.
    async fn prepare(&self, started: Instant, time: Duration) -> Result<Shared, SessionError> {
        let vocabularies = fuzzer::vocabularies(&self.scenarios, &self.overrides)?;
        let operations = match &self.openapi {
            Some(path) => Some(Operations::load(path).map_err(SessionError::Input)?),
            None => None,
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
        // The scripted flows come first, then what earlier runs kept.
        let mut corpus = fuzzer::seed_inputs(&vocabularies);
        corpus.extend(load_corpus(&self.corpus));
        let known = known_buckets(&self.findings);
        eprintln!(
            "crosstalk fuzz (seed {seed}) against {describe}: {} scenario(s), {} corpus input(s), {} known bucket(s), for {}",
            vocabularies.len(),
            corpus.len(),
            known.len(),
            humantime::format_duration(self.time)
        );
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
            deadline: started + time,
            target: describe,
            cancel: self.stop.cancel.clone(),
            corpus_dir: self.corpus.clone(),
            findings_dir: self.findings.clone(),
            corpus: Mutex::new(corpus),
            seen: Mutex::default(),
            buckets: Mutex::new(known),
            sink,
            candidates,
            max_findings: self.max_findings,
            claimed: AtomicU64::new(0),
            quiet: tokio::sync::RwLock::new(()),
            programs: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            counter: AtomicU64::new(0),
            new_buckets: AtomicU64::new(0),
        })
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

    /// `--max-findings` new buckets are confirmed.
    fn found_enough(&self) -> bool {
        let found = self.new_buckets.load(Ordering::Relaxed) as usize;
        self.max_findings.is_some_and(|max| found >= max)
    }

    /// A place among `--max-findings` for one more bucket, if one is left.
    fn claim(&self) -> bool {
        let max = self.max_findings.unwrap_or(usize::MAX);
        self.claimed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| {
                ((c as usize) < max).then_some(c + 1)
            })
            .is_ok()
    }
}

fn forget_bucket(shared: &Shared, key: &str) {
    shared
        .buckets
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(key);
}

/// A status line while the workers run: every half second on a terminal,
/// every 15 seconds in a log.
async fn report_progress(shared: &Shared, started: Instant, mut tasks: tokio::task::JoinSet<()>) {
    let terminal = std::io::stderr().is_terminal();
    let every = if terminal {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(15)
    };
    let mut last_line = Instant::now();
    while !tasks.is_empty() {
        tokio::select! {
            _ = tasks.join_next() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                if last_line.elapsed() >= every {
                    last_line = Instant::now();
                    let line = status_line(shared, started);
                    if terminal { eprint!("\r{line}   ") } else { eprintln!("{line}") }
                }
            }
        }
    }
    if terminal {
        eprintln!();
    }
    eprintln!("{}", status_line(shared, started));
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

/// Buckets that already have a reproduction from an earlier run.
fn known_buckets(dir: &Path) -> HashMap<String, usize> {
    let Ok(text) = std::fs::read_to_string(dir.join("findings.jsonl")) else {
        return HashMap::new();
    };
    text.lines()
        .filter_map(|line| serde_json::from_str::<Finding>(line).ok())
        .map(|f| (bucket(&f), 0))
        .collect()
}

fn status_line(shared: &Shared, started: Instant) -> String {
    let programs = shared.programs.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64().max(0.001);
    format!(
        "{:>6.0}s  {programs} programs ({:.0} execs/s), {} requests, corpus {}, new buckets {}",
        secs,
        programs as f64 / secs,
        shared.requests.load(Ordering::Relaxed),
        shared
            .corpus
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len(),
        shared.new_buckets.load(Ordering::Relaxed),
    )
}

/// The next input: each corpus entry once as it is (the scripted flows
/// first), then mostly mutations of corpus entries, and some fresh bytes.
fn next_input(shared: &Shared) -> Vec<u8> {
    let i = shared.counter.fetch_add(1, Ordering::Relaxed);
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

/// Runs one program; keeps its input if it reached new behaviour, and
/// confirms, shrinks and writes out every bucket it is the first to find.
async fn one_program(shared: &Shared) {
    let input = next_input(shared);
    let Some((&first, rest)) = input.split_first() else {
        return;
    };
    let vocab = &shared.vocabularies[first as usize % shared.vocabularies.len()];
    let program = Program::from_bytes(vocab, rest);
    let nonce = crate::canary::fresh_nonce();
    // A program still waiting on the target at the deadline is dropped,
    // its requests with it.
    let run = async {
        let _exploring = shared.quiet.read().await;
        shared.runner.run(vocab, &program, nonce).await
    };
    let Ok(outcome) = tokio::time::timeout_at(shared.deadline.into(), run).await else {
        return;
    };
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
        if first_in_bucket(shared, &key) {
            if !shared.claim() {
                // `--max-findings` is reached: the finding stays a candidate.
                forget_bucket(shared, &key);
                continue;
            }
            let found_after = shared.started.elapsed();
            write_out(shared, vocab, &program, finding, &key, found_after).await;
        }
    }
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

fn first_in_bucket(shared: &Shared, key: &str) -> bool {
    let mut buckets = shared.buckets.lock().unwrap_or_else(|p| p.into_inner());
    let count = buckets.entry(key.to_string()).or_insert(0);
    *count += 1;
    *count == 1
}

/// Confirms the finding from scratch, shrinks it, writes the smallest
/// program that still shows it as a reproduction and only then counts the
/// bucket. One that does not show again from scratch (it needed an older
/// program's records, or a race that did not recur) stays in
/// `candidates.jsonl` and is named on the terminal; its bucket stays open.
async fn write_out(
    shared: &Shared,
    vocab: &Vocabulary,
    program: &Program,
    finding: &Finding,
    key: &str,
    found_after: Duration,
) {
    let _alone = shared.quiet.write().await;
    let until = shared.deadline.max(Instant::now()) + SHRINK_GRACE;
    let stop = || shared.cancel.is_cancelled() || Instant::now() > until;
    let Some(small) = shrink(&shared.runner, vocab, program, key, &stop).await else {
        forget_bucket(shared, key);
        shared.claimed.fetch_sub(1, Ordering::SeqCst);
        eprintln!(
            "\nnot confirmed (did not show again from scratch): {}",
            terminal_safe(&finding.summary)
        );
        return;
    };
    let name = slug(key);
    // The reproduction's finding, whole: its summary and its fields name
    // the same instances (those of the shrunk program).
    let shown = reproduce(shared, vocab, &small, finding, &name).await;
    let summary = shown.summary.clone();
    shared.sink.record(shown);
    shared.new_buckets.fetch_add(1, Ordering::Relaxed);
    eprintln!(
        "\n{}: {}\n  found after {:.1}s, confirmed and shrunk from {} to {} operation(s): {}",
        finding.kind.as_str(),
        terminal_safe(&summary),
        found_after.as_secs_f64(),
        program.ops.len(),
        small.ops.len(),
        shared.findings_dir.join(format!("{name}.toml")).display()
    );
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
    let mut recorded = shared.runner.run_alone(vocab, program, true, false).await;
    for attempt in 1..6 {
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
