//! `crosstalk fuzz`: the stable-Rust front of the fuzzer. Programs come from
//! seeded random bytes and mutated corpus entries; every program runs against
//! a fresh target; each new leak bucket is shrunk and written out as a
//! reproduction at once. Stops at the time limit, after `--max-findings`
//! buckets, or on Ctrl-C, with everything found so far on disk.

use std::collections::{BTreeSet, HashMap};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use crosstalk::canary::mix;
use crosstalk::findings::{FindingKind, FindingSink};
use crosstalk::fuzzer::{
    self, Program, TargetFactory, Vocabulary, bucket, mutate, random_bytes, run_program,
};
use crosstalk::shrinker::{shrink, write_reproduction};
use tokio_util::sync::CancellationToken;

use crate::{
    BAD_INPUT, CLEAN, FOUND, Target, TargetArgs, random_u64, report_scenario_error,
    spawn_interrupt_handler,
};

#[derive(Args)]
pub struct FuzzArgs {
    /// Scenario files or directories whose steps make the vocabulary (default: scenarios/).
    scenarios: Vec<PathBuf>,
    #[command(flatten)]
    target: TargetArgs,
    /// Seed of the input generator (random when absent; printed).
    #[arg(long)]
    seed: Option<u64>,
    /// How long to fuzz, e.g. 90s, 10m, 8h.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    time: Duration,
    /// Stop after this many distinct leak buckets.
    #[arg(long)]
    max_findings: Option<usize>,
    /// Inputs that reached new behaviour, kept between runs.
    #[arg(long, default_value = "crosstalk-corpus")]
    corpus: PathBuf,
    /// Reproductions (.toml, .sh) and findings.jsonl.
    #[arg(long, default_value = "crosstalk-findings/fuzz")]
    findings: PathBuf,
}

struct Shared {
    vocabularies: Vec<Vocabulary>,
    factory: TargetFactory,
    seed: u64,
    corpus_dir: PathBuf,
    findings_dir: PathBuf,
    corpus: Mutex<Vec<Vec<u8>>>,
    seen: Mutex<BTreeSet<(String, String, u16)>>,
    buckets: Mutex<HashMap<String, usize>>,
    sink: FindingSink,
    programs: AtomicU64,
    requests: AtomicU64,
    counter: AtomicU64,
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
        .filter_map(|line| serde_json::from_str::<crosstalk::findings::Finding>(line).ok())
        .map(|f| (bucket(&f), 0))
        .collect()
}

pub async fn fuzz(args: FuzzArgs) -> u8 {
    let vocabularies = match fuzzer::vocabularies(&args.scenarios) {
        Ok(v) => v,
        Err(err) => return report_scenario_error(err),
    };
    let target = match Target::new(&args.target).await {
        Ok(target) => Arc::new(target),
        Err(message) => {
            eprintln!("error: {message}");
            return BAD_INPUT;
        }
    };
    let factory: TargetFactory = {
        let target = target.clone();
        Arc::new(move || target.transport())
    };
    let describe = factory().describe();
    let sink = match FindingSink::new(Some(&args.findings.join("findings.jsonl"))) {
        Ok(sink) => sink,
        Err(err) => {
            eprintln!("error: cannot write to {}: {err}", args.findings.display());
            return BAD_INPUT;
        }
    };
    if let Err(err) = std::fs::create_dir_all(&args.corpus) {
        eprintln!("error: cannot use corpus {}: {err}", args.corpus.display());
        return BAD_INPUT;
    }
    let seed = args.seed.unwrap_or_else(random_u64);
    // The scripted flows come first, then what earlier runs kept.
    let mut corpus = fuzzer::seed_inputs(&vocabularies);
    corpus.extend(load_corpus(&args.corpus));
    let known = known_buckets(&args.findings);
    eprintln!(
        "crosstalk fuzz (seed {seed}) against {describe}: {} scenario(s), {} corpus input(s), {} known bucket(s), for {}",
        vocabularies.len(),
        corpus.len(),
        known.len(),
        humantime::format_duration(args.time)
    );
    let shared = Arc::new(Shared {
        vocabularies,
        factory,
        seed,
        corpus_dir: args.corpus.clone(),
        findings_dir: args.findings.clone(),
        corpus: Mutex::new(corpus),
        seen: Mutex::default(),
        buckets: Mutex::new(known),
        sink,
        programs: AtomicU64::new(0),
        requests: AtomicU64::new(0),
        counter: AtomicU64::new(0),
    });
    let cancel = CancellationToken::new();
    spawn_interrupt_handler(cancel.clone());
    let started = Instant::now();
    let deadline = started + args.time;
    let new_found = Arc::new(AtomicU64::new(0));

    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(1);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (shared, cancel, new_found) = (shared.clone(), cancel.clone(), new_found.clone());
        let max = args.max_findings;
        tasks.spawn(async move {
            while Instant::now() < deadline && !cancel.is_cancelled() {
                if let Some(max) = max
                    && new_found.load(Ordering::Relaxed) as usize >= max
                {
                    break;
                }
                if one_program(&shared).await {
                    new_found.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let terminal = std::io::stderr().is_terminal();
    let mut last_line = Instant::now();
    while !tasks.is_empty() {
        tokio::select! {
            _ = tasks.join_next() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                let every = if terminal { Duration::from_millis(500) } else { Duration::from_secs(15) };
                if last_line.elapsed() >= every {
                    last_line = Instant::now();
                    let line = status_line(&shared, started, new_found.load(Ordering::Relaxed));
                    if terminal { eprint!("\r{line}   ") } else { eprintln!("{line}") }
                }
            }
        }
    }
    if terminal {
        eprintln!();
    }
    let found = new_found.load(Ordering::Relaxed);
    eprintln!("{}", status_line(&shared, started, found));
    if cancel.is_cancelled() {
        eprintln!(
            "interrupted: everything found so far is in {}",
            args.findings.display()
        );
    }
    if found == 0 {
        println!("no new leak found");
        CLEAN
    } else {
        println!(
            "{found} new leak bucket(s); reproductions in {}",
            args.findings.display()
        );
        FOUND
    }
}

fn status_line(shared: &Shared, started: Instant, found: u64) -> String {
    let programs = shared.programs.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64().max(0.001);
    format!(
        "{:>6.0}s  {programs} programs ({:.0} execs/s), {} requests, corpus {}, new leak buckets {found}",
        secs,
        programs as f64 / secs,
        shared.requests.load(Ordering::Relaxed),
        shared
            .corpus
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len(),
    )
}

/// Runs one program; returns whether it found a new bucket.
async fn one_program(shared: &Shared) -> bool {
    let i = shared.counter.fetch_add(1, Ordering::Relaxed);
    let input = {
        let corpus = shared.corpus.lock().unwrap_or_else(|p| p.into_inner());
        let n = corpus.len() as u64;
        if n > 0 && i / 2 < n && i % 2 == 0 {
            // Each corpus entry (the scripted flows first) runs once as it is.
            corpus[(i / 2) as usize].clone()
        } else if n > 0 && i % 4 != 1 {
            mutate(
                shared.seed,
                i,
                &corpus[(mix(shared.seed, &[i, 0xc0]) % n) as usize],
            )
        } else {
            let len = 64 + (mix(shared.seed, &[i, 0x1e]) % 960) as usize;
            random_bytes(shared.seed, i, len)
        }
    };
    let Some((&first, rest)) = input.split_first() else {
        return false;
    };
    let vocab = &shared.vocabularies[first as usize % shared.vocabularies.len()];
    let program = Program::from_bytes(vocab, rest);
    let outcome = run_program(vocab, &program, (shared.factory)(), shared.seed, false).await;
    shared.programs.fetch_add(1, Ordering::Relaxed);
    shared
        .requests
        .fetch_add(outcome.requests, Ordering::Relaxed);

    let novel = {
        let mut seen = shared.seen.lock().unwrap_or_else(|p| p.into_inner());
        let before = seen.len();
        seen.extend(
            outcome
                .signature
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
        let _ = std::fs::write(shared.corpus_dir.join(name), &input);
        shared
            .corpus
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(input.clone());
    }

    let mut new_bucket = false;
    for finding in outcome
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Leak)
    {
        let key = bucket(finding);
        let first_time = {
            let mut buckets = shared.buckets.lock().unwrap_or_else(|p| p.into_inner());
            let count = buckets.entry(key.clone()).or_insert(0);
            *count += 1;
            *count == 1
        };
        if !first_time {
            continue;
        }
        new_bucket = true;
        let small = shrink(vocab, &program, &shared.factory, &key, shared.seed).await;
        let recorded = run_program(vocab, &small, (shared.factory)(), shared.seed, true).await;
        let shown = recorded
            .findings
            .iter()
            .find(|f| bucket(f) == key)
            .unwrap_or(finding)
            .clone();
        let name = slug(&key);
        match write_reproduction(
            &shared.findings_dir,
            &name,
            vocab,
            &small,
            &shown.summary,
            shared.seed,
            &recorded.order,
        ) {
            Ok(repro) => eprintln!(
                "\nleak: {}\n  shrunk from {} to {} operation(s): {}",
                shown.summary,
                program.ops.len(),
                small.ops.len(),
                repro.scenario.display()
            ),
            Err(err) => eprintln!(
                "\nleak: {} (cannot write its reproduction: {err})",
                shown.summary
            ),
        }
        shared.sink.record(shown);
    }
    new_bucket
}

/// A file name for a bucket.
fn slug(key: &str) -> String {
    let short: String = crosstalk::contract::slug(key).chars().take(80).collect();
    format!(
        "{short}-{:08x}",
        mix(0, &key.bytes().map(u64::from).collect::<Vec<_>>()) as u32
    )
}
