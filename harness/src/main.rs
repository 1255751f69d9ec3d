//! The `crosstalk` command line. The library does the work; this file turns
//! flags into a run, picks the target (the embedded reference clinic unless
//! `--target` is given) and maps the outcome to exit codes:
//! 0 clean, 1 findings, 2 bad input or unreachable target.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use crosstalk::baseline::Baseline;
use crosstalk::executor::{Executor, RunOptions};
use crosstalk::findings::FindingSink;
use crosstalk::plan::{Overrides, Plan};
use crosstalk::report::RunReport;
use crosstalk::safety::{AllowList, Redactor};
use crosstalk::scenario::ScenarioError;
use crosstalk::transport::{Http, Request, Transport};

mod fuzz;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "crosstalk",
    version,
    about = "Finds API responses that show one patient another patient's data"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenario files: many instances, every response checked for leaks.
    Run(RunArgs),
    /// Fuzz request sequences drawn from scenario files; shrink what leaks.
    Fuzz(fuzz::FuzzArgs),
    /// Rerun a reproduction: exit 1 while it still leaks, 0 once fixed.
    Replay(ReplayArgs),
    /// Manage response-contract snapshots.
    Snapshots(SnapshotArgs),
}

/// Where requests go.
#[derive(Args, Clone)]
struct TargetArgs {
    /// Base URL of a running API; without it the reference clinic runs in process.
    #[arg(long)]
    target: Option<String>,
    /// Clinic faults to switch on (embedded target only).
    #[arg(long = "fault", value_name = "NAME")]
    faults: Vec<String>,
    /// Hosts besides loopback that may be targeted.
    #[arg(
        long = "allow-host",
        value_name = "HOST",
        env = "CROSSTALK_ALLOW_HOSTS",
        value_delimiter = ','
    )]
    allow_hosts: Vec<String>,
    /// Requests per second at most (network targets).
    #[arg(long)]
    rate: Option<std::num::NonZeroU32>,
}

#[derive(Args)]
struct RunArgs {
    /// Scenario files or directories (default: scenarios/).
    scenarios: Vec<PathBuf>,
    #[command(flatten)]
    target: TargetArgs,
    /// Seed for every choice the run makes (random when absent; printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Instances of each population actor (the scenario's `population = true`).
    #[arg(long)]
    patients: Option<usize>,
    /// Scenario variables, NAME=VALUE (also CROSSTALK_VAR_NAME in the environment).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
    /// Write the report as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write JUnit XML.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Directory for findings and the request log, appended as found.
    #[arg(long, default_value = "crosstalk-findings")]
    findings: PathBuf,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Accepted finding buckets: fail only on findings not listed.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Write every bucket found to this baseline file.
    #[arg(long)]
    write_baseline: Option<PathBuf>,
    /// Write a Markdown summary (also appended to $GITHUB_STEP_SUMMARY when set).
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Run only shard K of N (1-based): scenario i belongs to shard i mod N.
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    shard: Option<(usize, usize)>,
    /// Where response-contract snapshots live.
    #[arg(long, default_value = "snapshots/contracts")]
    snapshots: PathBuf,
    /// Do not compare response contracts.
    #[arg(long)]
    no_snapshots: bool,
}

fn parse_shard(text: &str) -> Result<(usize, usize), String> {
    let (k, n) = text.split_once('/').ok_or("expected K/N, e.g. 2/3")?;
    let (k, n): (usize, usize) = (
        k.trim().parse().map_err(|_| "K is not a number")?,
        n.trim().parse().map_err(|_| "N is not a number")?,
    );
    if n == 0 || k == 0 || k > n {
        return Err(format!("{text}: need 1 <= K <= N"));
    }
    Ok((k, n))
}

#[derive(Args)]
struct SnapshotArgs {
    #[command(subcommand)]
    action: SnapshotAction,
}

#[derive(Subcommand)]
enum SnapshotAction {
    /// Turn every pending `.snap.new` into its snapshot.
    Accept {
        #[arg(long, default_value = "snapshots/contracts")]
        snapshots: PathBuf,
    },
}

#[derive(Args)]
struct ReplayArgs {
    /// A reproduction written by `crosstalk fuzz` (or any scenario file).
    file: PathBuf,
    #[command(flatten)]
    target: TargetArgs,
    /// Directory for the replay's findings.
    #[arg(long, default_value = "crosstalk-findings")]
    findings: PathBuf,
    /// Runs before calling it fixed: races do not show every time.
    #[arg(long, default_value_t = 5)]
    attempts: u32,
}

/// Exit codes.
pub(crate) const CLEAN: u8 = 0;
pub(crate) const FOUND: u8 = 1;
pub(crate) const BAD_INPUT: u8 = 2;
/// Stopped by Ctrl-C before the flow finished, with nothing found so far.
const INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CROSSTALK_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let code = match cli.command {
        Command::Run(args) => runtime.block_on(run(args)),
        Command::Fuzz(args) => runtime.block_on(fuzz::fuzz(args)),
        Command::Replay(args) => runtime.block_on(replay(args)),
        Command::Snapshots(SnapshotArgs {
            action: SnapshotAction::Accept { snapshots },
        }) => match crosstalk::contract::accept(&snapshots) {
            Ok(n) => {
                println!("accepted {n} snapshot(s) in {}", snapshots.display());
                CLEAN
            }
            Err(err) => {
                eprintln!(
                    "error: cannot accept snapshots in {}: {err}",
                    snapshots.display()
                );
                BAD_INPUT
            }
        },
    };
    ExitCode::from(code)
}

/// Prints a bad-input error with its source snippet.
fn report_scenario_error(err: ScenarioError) -> u8 {
    // One unwrapped line for scripts and editors, then the annotated snippet.
    eprintln!("error: {err}");
    eprintln!("{:?}", miette::Report::new(err));
    BAD_INPUT
}

fn overrides(args: &RunArgs) -> Result<Overrides, String> {
    let mut overrides = Overrides {
        population: args.patients,
        ..Default::default()
    };
    for (name, value) in std::env::vars() {
        if let Some(var) = name.strip_prefix("CROSSTALK_VAR_") {
            overrides.vars.insert(var.to_string(), value);
        }
    }
    for pair in &args.vars {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("--var {pair}: expected NAME=VALUE"))?;
        overrides
            .vars
            .insert(name.trim().to_string(), value.to_string());
    }
    if args.patients == Some(0) {
        return Err("--patients must be at least 1".into());
    }
    Ok(overrides)
}

/// The target of a run: the embedded clinic (a fresh one on demand) or a
/// remote API.
enum Target {
    Embedded(clinic::Faults),
    Remote(Arc<Http>),
}

impl Target {
    async fn new(args: &TargetArgs) -> Result<Target, String> {
        let Some(target) = &args.target else {
            let faults = clinic::Faults::parse_list(&args.faults.join(","))
                .map_err(|err| format!("--fault: {err}"))?;
            return Ok(Target::Embedded(faults));
        };
        if !args.faults.is_empty() {
            return Err(
                "--fault switches faults of the embedded clinic; it cannot change a --target"
                    .into(),
            );
        }
        let mut url = url::Url::parse(target).map_err(|err| format!("--target {target}: {err}"))?;
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        AllowList::new(args.allow_hosts.clone()).check(&url)?;
        let http = Http::new(url.clone(), args.rate).map_err(|err| err.to_string())?;
        // Any answer at all proves the target is there.
        let probe = Request {
            method: http::Method::GET,
            path: "/".into(),
            headers: Vec::new(),
            body: Default::default(),
        };
        http.send(probe)
            .await
            .map_err(|err| format!("the target {url} is unreachable: {err}"))?;
        Ok(Target::Remote(Arc::new(http)))
    }

    /// A transport to the target; for the embedded clinic, a fresh clinic.
    fn transport(&self) -> Arc<dyn Transport> {
        match self {
            Target::Remote(http) => http.clone(),
            Target::Embedded(faults) => crosstalk::embedded::transport(faults),
        }
    }
}

fn random_u64() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0
}

async fn run(args: RunArgs) -> u8 {
    let overrides = match overrides(&args) {
        Ok(o) => o,
        Err(message) => {
            eprintln!("error: {message}");
            return BAD_INPUT;
        }
    };
    let plans = match Plan::load_all(&args.scenarios, &overrides) {
        Ok(plans) => plans,
        Err(err) => return report_scenario_error(err),
    };
    let plans: Vec<Plan> = match args.shard {
        Some((k, n)) => plans
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % n == k - 1)
            .map(|(_, p)| p)
            .collect(),
        None => plans,
    };
    let baseline = match &args.baseline {
        Some(path) => match Baseline::load(path) {
            Ok(baseline) => baseline,
            Err(err) => return report_scenario_error(err),
        },
        None => Baseline::default(),
    };
    let transport = match Target::new(&args.target).await {
        Ok(target) => target.transport(),
        Err(message) => {
            eprintln!("error: {message}");
            return BAD_INPUT;
        }
    };

    let file_seed = plans.iter().find_map(|p| p.seed);
    let seed = args.seed.or(file_seed).unwrap_or_else(random_u64);
    let nonce = random_u64();
    let run_id = crosstalk::canary::run_id(nonce);
    let run_dir = args.findings.join(&run_id);
    let sink = match FindingSink::new(Some(&run_dir.join("findings.jsonl"))) {
        Ok(sink) => Arc::new(sink),
        Err(err) => {
            eprintln!(
                "error: cannot write findings to {}: {err}",
                run_dir.display()
            );
            return BAD_INPUT;
        }
    };
    let redactor = Arc::new(Redactor::default());
    let cancel = CancellationToken::new();
    spawn_interrupt_handler(cancel.clone());

    let total: u64 = plans
        .iter()
        .map(|p| {
            p.steps
                .iter()
                .chain(&p.teardown)
                .map(|s| p.roles[s.role].count as u64)
                .sum::<u64>()
        })
        .sum();
    let progress = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {msg} [{bar:30}] {pos}/{len} requests, {per_sec}",
            )
            .expect("a valid progress template")
            .progress_chars("=> "),
        );
        bar
    });

    let mut scenarios = Vec::new();
    let mut order = Vec::new();
    let mut pending = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        if let Some(bar) = &progress {
            bar.set_message(plan.scenario.clone());
        }
        let options = RunOptions {
            seed,
            nonce: crosstalk::canary::mix(nonce, &[i as u64]),
            run_id: run_id.clone(),
            concurrency: args.concurrency,
            cancel: cancel.clone(),
            progress: progress.clone(),
            record: false,
        };
        let executor = Executor::new(
            Arc::new(plan.clone()),
            transport.clone(),
            sink.clone(),
            redactor.clone(),
            options,
        );
        let mut stats = executor.run().await;
        order.append(&mut stats.order);
        if !args.no_snapshots && !stats.interrupted {
            match crosstalk::contract::compare(
                &args.snapshots,
                &plan.scenario,
                executor.contracts().take(),
            ) {
                Ok(comparison) => {
                    pending.extend(comparison.pending.iter().map(|p| p.display().to_string()));
                    for drift in comparison.drifts {
                        sink.record(drift_finding(&run_id, seed, &plan.scenario, drift));
                    }
                }
                Err(err) => eprintln!(
                    "warning: cannot compare contract snapshots in {}: {err}",
                    args.snapshots.display()
                ),
            }
        }
        let interrupted = stats.interrupted;
        scenarios.push(stats);
        if interrupted {
            break;
        }
    }
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    write_order(&run_dir, &order);

    let buckets = sink.buckets();
    let seen: std::collections::BTreeSet<String> = buckets.iter().map(|b| b.key.clone()).collect();
    let report = RunReport {
        run_id: run_id.clone(),
        seed,
        target: transport.describe(),
        scenarios,
        buckets,
        total_findings: sink.total(),
        findings_file: sink
            .path()
            .filter(|_| sink.total() > 0)
            .map(|p| p.display().to_string()),
        accepted: seen
            .iter()
            .filter(|key| baseline.accepts(key))
            .cloned()
            .collect(),
        stale: baseline.stale(&seen),
        pending_snapshots: pending,
    };
    print!("{}", report.summary());
    if let Some(path) = &args.write_baseline
        && let Err(err) = Baseline::of(seen.iter().cloned()).write(path)
    {
        eprintln!("error: cannot write {}: {err}", path.display());
        return BAD_INPUT;
    }
    let markdown = report.markdown();
    if let Some(path) = &args.markdown
        && let Err(err) = std::fs::write(path, &markdown)
    {
        eprintln!("error: cannot write {}: {err}", path.display());
        return BAD_INPUT;
    }
    if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        use std::io::Write;
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&summary)
            .and_then(|mut f| f.write_all(markdown.as_bytes()));
        if let Err(err) = appended {
            eprintln!("warning: cannot append to $GITHUB_STEP_SUMMARY: {err}");
        }
    }
    if let Some(path) = &args.json
        && let Err(err) = report.write_json(path)
    {
        eprintln!("error: cannot write {}: {err}", path.display());
        return BAD_INPUT;
    }
    if let Some(path) = &args.junit {
        let steps: Vec<(String, Vec<String>)> = plans
            .iter()
            .map(|p| {
                (
                    p.scenario.clone(),
                    p.steps
                        .iter()
                        .chain(&p.teardown)
                        .map(|s| s.name.clone())
                        .collect(),
                )
            })
            .collect();
        if let Err(err) = std::fs::write(path, report.junit(&steps)) {
            eprintln!("error: cannot write {}: {err}", path.display());
            return BAD_INPUT;
        }
    }
    let unreachable = report
        .scenarios
        .iter()
        .all(|s| s.requests > 0 && s.transport_errors == s.requests);
    if unreachable {
        eprintln!(
            "error: no request got an answer from {}",
            transport.describe()
        );
        return BAD_INPUT;
    }
    if !report.clean() {
        FOUND
    } else if report.scenarios.iter().any(|s| s.interrupted) {
        // Clean so far, but not a full run: never let that pass as clean.
        INTERRUPTED
    } else {
        CLEAN
    }
}

/// The request order, for replaying a run step by step.
fn write_order(dir: &Path, order: &[crosstalk::executor::Issued]) {
    let mut sorted: Vec<_> = order.iter().collect();
    sorted.sort_by_key(|i| (i.scenario.clone(), i.seq));
    let lines: String = sorted
        .iter()
        .map(|i| serde_json::to_string(i).expect("serializes") + "\n")
        .collect();
    if let Err(err) =
        std::fs::create_dir_all(dir).and_then(|_| std::fs::write(dir.join("requests.jsonl"), lines))
    {
        eprintln!(
            "warning: cannot write the request log to {}: {err}",
            dir.display()
        );
    }
}

/// First Ctrl-C: stop the flow, run teardown, report. Second: stop now.
fn spawn_interrupt_handler(cancel: CancellationToken) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "\ninterrupted: finishing in-flight requests and running teardown (Ctrl-C again to stop now)"
            );
            cancel.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
}

/// Reruns one file against the target: 1 while it leaks, 0 once it does not.
async fn replay(args: ReplayArgs) -> u8 {
    let plans = match Plan::load_all(std::slice::from_ref(&args.file), &Overrides::default()) {
        Ok(plans) => plans,
        Err(err) => return report_scenario_error(err),
    };
    let target = match Target::new(&args.target).await {
        Ok(target) => target,
        Err(message) => {
            eprintln!("error: {message}");
            return BAD_INPUT;
        }
    };
    let plan = plans.into_iter().next().expect("one file gives one plan");
    let seed = plan.seed.unwrap_or(0);
    let nonce = random_u64();
    let run_id = crosstalk::canary::run_id(nonce);
    let sink = match FindingSink::new(Some(&args.findings.join(&run_id).join("findings.jsonl"))) {
        Ok(sink) => Arc::new(sink),
        Err(err) => {
            eprintln!(
                "error: cannot write findings to {}: {err}",
                args.findings.display()
            );
            return BAD_INPUT;
        }
    };
    let options = RunOptions {
        concurrency: 16,
        ..RunOptions::new(seed, nonce)
    };
    let plan = Arc::new(plan);
    let mut requests = 0;
    let mut transport_name = String::new();
    let mut leaks = Vec::new();
    for attempt in 0..args.attempts.max(1) {
        // A fresh embedded clinic each time; the same remote target.
        let transport = target.transport();
        transport_name = transport.describe();
        let options = RunOptions {
            nonce: crosstalk::canary::mix(nonce, &[u64::from(attempt)]),
            ..options.clone()
        };
        let stats = Executor::new(
            plan.clone(),
            transport,
            sink.clone(),
            Arc::new(Redactor::default()),
            options,
        )
        .run()
        .await;
        requests += stats.requests;
        leaks = sink
            .buckets()
            .into_iter()
            .filter(|b| b.first.kind == crosstalk::findings::FindingKind::Leak)
            .collect();
        if !leaks.is_empty() {
            break;
        }
    }
    if leaks.is_empty() {
        println!(
            "{}: no leak against {transport_name} in {} run(s), {requests} requests: fixed, or not reproducible here",
            args.file.display(),
            args.attempts.max(1)
        );
        return CLEAN;
    }
    println!(
        "{}: the leak reproduces against {transport_name}:",
        args.file.display()
    );
    for bucket in &leaks {
        println!("  {}", bucket.first.summary);
    }
    FOUND
}

/// A contract drift, as a finding of its own.
fn drift_finding(
    run_id: &str,
    seed: u64,
    scenario: &str,
    drift: crosstalk::contract::Drift,
) -> crosstalk::findings::Finding {
    let statuses: Vec<String> = drift.statuses.iter().map(u16::to_string).collect();
    crosstalk::findings::Finding {
        kind: crosstalk::findings::FindingKind::Drift,
        run_id: run_id.to_string(),
        seed,
        scenario: scenario.to_string(),
        step: drift.step.clone(),
        endpoint: drift.endpoint.clone(),
        observer: String::new(),
        victim: None,
        marker: None,
        location: format!("status {}", statuses.join(", ")),
        location_pattern: format!("status {}", statuses.join(", ")),
        also: Vec::new(),
        summary: format!(
            "the {} response of step `{}` ({}) no longer matches its contract snapshot; the new one is {}",
            statuses.join("/"),
            drift.step,
            drift.endpoint,
            drift.pending.display()
        ),
        exchange: crosstalk::findings::Exchange {
            method: drift
                .endpoint
                .split(' ')
                .next()
                .unwrap_or_default()
                .to_string(),
            path: drift
                .endpoint
                .split_once(' ')
                .map(|(_, p)| p.to_string())
                .unwrap_or_default(),
            request_body: String::new(),
            status: drift.statuses.first().copied().unwrap_or(0),
            response_headers: Vec::new(),
            response_excerpt: drift.diff,
        },
        trace: Vec::new(),
    }
}
