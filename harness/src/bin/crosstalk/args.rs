//! The command line's flags, and the sessions they stand for.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use crosstalk::plan::Overrides;
use crosstalk::report::Outputs;
use crosstalk::session::{Check, Contracts, Fuzz, Replay, Run, Stop, TargetSpec};

#[derive(Parser)]
#[command(
    name = "crosstalk",
    version,
    about = "Finds API responses that show one patient another patient's data"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run scenario files: many instances, every response checked for leaks, every foreign write for tampering.
    Run(RunArgs),
    /// Fuzz request sequences drawn from scenario files; shrink what leaks or tampers.
    Fuzz(FuzzArgs),
    /// Rerun a reproduction: exit 1 while it still leaks or tampers, 0 once fixed.
    Replay(ReplayArgs),
    /// Validate scenario files and print their plans; nothing is sent.
    Check(CheckArgs),
    /// Manage response-contract snapshots.
    Snapshots(SnapshotArgs),
    /// Print the JSON Schema of scenario files (docs/scenario.schema.json).
    Schema,
    /// Write a starter suite from an OpenAPI 3 document.
    Init(InitArgs),
    /// Merge the reports of a run's shards into one verdict.
    Merge(MergeArgs),
}

impl Command {
    /// The worker threads the command asks for; `None`: one per core.
    pub fn threads(&self) -> Option<usize> {
        match self {
            Command::Run(args) => args.target.threads(),
            Command::Fuzz(args) => args.target.threads(),
            Command::Replay(args) => args.target.threads(),
            Command::Check(_)
            | Command::Snapshots(_)
            | Command::Schema
            | Command::Init(_)
            | Command::Merge(_) => None,
        }
    }
}

#[derive(Args)]
pub struct MergeArgs {
    /// Directories holding the shards' reports (JSON) and findings, e.g.
    /// the shards' CI artifacts.
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Write the merged report as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write JUnit XML.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write a Markdown summary (also appended to $GITHUB_STEP_SUMMARY when set).
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Write one self-contained HTML page.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Directory the shards' findings are gathered into, one file.
    #[arg(long, default_value = "crosstalk-findings")]
    findings: PathBuf,
}

impl MergeArgs {
    pub fn session(self) -> crosstalk::session::Merge {
        crosstalk::session::Merge {
            dirs: self.dirs,
            findings: self.findings,
            outputs: Outputs {
                json: self.json,
                junit: self.junit,
                markdown: self.markdown,
                html: self.html,
                step_summary: std::env::var_os("GITHUB_STEP_SUMMARY").map(PathBuf::from),
            },
        }
    }
}

#[derive(Args)]
pub struct InitArgs {
    /// The document: a JSON or YAML file, or an http(s) URL.
    #[arg(long, value_name = "FILE|URL")]
    openapi: String,
    /// The directory to write the suite into.
    #[arg(long, default_value = "scenarios")]
    out: PathBuf,
    /// Replace a suite file of the same name.
    #[arg(long)]
    force: bool,
}

impl InitArgs {
    pub fn session(self) -> crosstalk::session::Init {
        crosstalk::session::Init {
            openapi: self.openapi,
            out: self.out,
            force: self.force,
        }
    }
}

#[derive(Args)]
pub struct CheckArgs {
    /// Scenario files or directories (default: scenarios/).
    scenarios: Vec<PathBuf>,
    /// Instances of each population actor.
    #[arg(long)]
    patients: Option<u32>,
    /// A scenario variable, NAME=VALUE (also CROSSTALK_VAR_NAME).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
}

impl CheckArgs {
    pub fn session(self) -> Result<Check, String> {
        Ok(Check {
            scenarios: self.scenarios,
            overrides: overrides(&self.vars, self.patients.map(|n| n as usize))?,
        })
    }
}

/// Where requests go.
#[derive(Args, Clone)]
pub struct TargetArgs {
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
    /// How long one request may take, e.g. 5s (network targets; default 30s).
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
    /// Bytes of one answer's body read at most, e.g. 64MiB (network targets).
    #[arg(long, value_parser = parse_size)]
    max_body: Option<usize>,
    /// Worker threads [default: 1 with --target, one per core for the
    /// embedded clinic, which runs in process].
    #[arg(long)]
    threads: Option<std::num::NonZeroUsize>,
}

/// A duration of at least a second.
fn at_least_a_second(text: &str) -> Result<Duration, String> {
    let time = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if time < Duration::from_secs(1) {
        return Err(format!("{text}: give at least 1s"));
    }
    Ok(time)
}

/// `--max-findings`, `--max-errors`: zero would confirm nothing.
fn at_least_one_finding(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err(format!(
            "{text}: give at least 1 (leave --max-findings or --max-errors out for no limit)"
        )),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text}: expected a number of findings, at least 1")),
    }
}

fn parse_size(text: &str) -> Result<usize, String> {
    let size: bytesize::ByteSize = text.parse()?;
    match usize::try_from(size.as_u64()) {
        Ok(0) | Err(_) => Err(format!("{text}: give a size from 1 byte, e.g. 64MiB")),
        Ok(n) => Ok(n),
    }
}

impl TargetArgs {
    /// A served target keeps the harness waiting on the network: one
    /// thread drives every connection, and a second would only add
    /// wake-ups between threads (about a tenth more CPU per request) and
    /// take a core from a target served on the same machine.
    fn threads(&self) -> Option<usize> {
        let served = self.target.is_some().then_some(1);
        self.threads.map(std::num::NonZeroUsize::get).or(served)
    }

    fn spec(self) -> TargetSpec {
        TargetSpec {
            url: self.target,
            faults: self.faults,
            allow_hosts: self.allow_hosts,
            rate: self.rate,
            timeout: self.timeout,
            max_body: self.max_body,
        }
    }
}

#[derive(Args)]
pub struct RunArgs {
    /// Scenario files or directories (default: scenarios/).
    scenarios: Vec<PathBuf>,
    #[command(flatten)]
    target: TargetArgs,
    /// Seed for every choice the run makes (random when absent; printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Instances of each population actor (the scenario's `population = true`).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    patients: Option<u32>,
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
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    concurrency: u32,
    /// Accepted finding buckets: fail only on findings not listed.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Write every bucket found to this baseline file.
    #[arg(long)]
    write_baseline: Option<PathBuf>,
    /// Write a Markdown summary (also appended to $GITHUB_STEP_SUMMARY when set).
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Write one self-contained HTML page: verdict, exposure graph, evidence.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Drive only shard K of N (1-based): its slice of every population
    /// actor's instances; every shard recognises every canary of the run.
    #[arg(long, value_name = "K/N", value_parser = crosstalk::shard::Shard::parse)]
    shard: Option<crosstalk::shard::Shard>,
    /// The run every shard belongs to: the same ID gives every shard the
    /// same canaries and choices (with --shard, default: the CI's pipeline
    /// run id, e.g. $GITHUB_RUN_ID; otherwise random).
    #[arg(long, value_name = "ID")]
    run_id: Option<String>,
    /// One directory for every suite's response-contract snapshots
    /// (default: `snapshots/` inside each suite directory).
    #[arg(long)]
    snapshots: Option<PathBuf>,
    /// Do not compare response contracts.
    #[arg(long, conflicts_with = "snapshots")]
    no_snapshots: bool,
    /// Stop the flow after this long, e.g. 15m, cancelling requests in
    /// flight; teardown still runs and the run counts as interrupted.
    #[arg(long, value_parser = at_least_a_second)]
    time_limit: Option<Duration>,
    /// CI mode: a missing contract snapshot fails the run (also when $CI is set).
    #[arg(long)]
    ci: bool,
    /// Do not probe: no step is sent again as identities that may not see
    /// the data it names.
    #[arg(long)]
    no_probes: bool,
    /// An OpenAPI 3 document (JSON or YAML): report which of its operations
    /// the run reached and which it never did.
    #[arg(long, value_name = "FILE")]
    openapi: Option<PathBuf>,
    /// With --openapi: an operation never reached leaves the run
    /// incomplete (exit 3) even when nothing was found.
    #[arg(long, requires = "openapi")]
    require_coverage: bool,
    /// Plant defects in the run's traffic (another's answer to a read,
    /// another's item in a list, a write redirected to another's record,
    /// another's login) and report which the judges name: the suite's
    /// sensitivity on this API and its blind spots. Planted defects are
    /// never findings of the target.
    #[arg(long)]
    self_test: bool,
    /// With --self-test: below this share of planted defects detected,
    /// the run is incomplete (exit 3) with its blind spots listed.
    #[arg(long, requires = "self_test", value_name = "SHARE", default_value_t = crosstalk::self_test::MIN_SENSITIVITY, value_parser = share)]
    min_sensitivity: f64,
}

/// A share between 0 and 1.
fn share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "`{text}` is not a share between 0 and 1 (e.g. 0.9)"
        )),
    }
}

impl RunArgs {
    pub fn session(self, stop: Stop) -> Result<Run, String> {
        Ok(Run {
            overrides: overrides(&self.vars, self.patients.map(|n| n as usize))?,
            seed: self.seed,
            findings: self.findings,
            concurrency: self.concurrency as usize,
            baseline: self.baseline,
            write_baseline: self.write_baseline,
            outputs: Outputs {
                json: self.json,
                junit: self.junit,
                markdown: self.markdown,
                html: self.html,
                step_summary: std::env::var_os("GITHUB_STEP_SUMMARY").map(PathBuf::from),
            },
            shard: self.shard,
            run: self.run_id,
            contracts: match (self.no_snapshots, self.snapshots) {
                (true, _) => Contracts::Off,
                (false, Some(dir)) => Contracts::In(dir),
                (false, None) => Contracts::BesideSuites,
            },
            ci: self.ci || in_ci(),
            progress: true,
            probes: !self.no_probes,
            openapi: self.openapi,
            require_coverage: self.require_coverage,
            self_test: self.self_test.then_some(self.min_sensitivity),
            time_limit: self.time_limit,
            stop,
            ..Run::new(self.scenarios, self.target.spec())
        })
    }
}

/// `--var` pairs and `CROSSTALK_VAR_*` variables (flags win), and `--patients`.
fn overrides(vars: &[String], patients: Option<usize>) -> Result<Overrides, String> {
    if patients == Some(0) {
        return Err("--patients must be at least 1".into());
    }
    let mut overrides = Overrides {
        population: patients,
        ..Default::default()
    };
    for (name, value) in std::env::vars() {
        if let Some(var) = name.strip_prefix("CROSSTALK_VAR_") {
            overrides.vars.insert(var.to_string(), value);
        }
    }
    for pair in vars {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("--var {pair}: expected NAME=VALUE"))?;
        overrides
            .vars
            .insert(name.trim().to_string(), value.to_string());
    }
    Ok(overrides)
}

/// Whether `$CI` says this is a CI system (set, and not `false` or `0`).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

#[derive(Args)]
pub struct FuzzArgs {
    /// Scenario files or directories whose steps make the vocabulary (default: scenarios/).
    scenarios: Vec<PathBuf>,
    #[command(flatten)]
    target: TargetArgs,
    /// Seed of the input generator (random when absent; printed).
    #[arg(long)]
    seed: Option<u64>,
    /// How long the whole command takes at most, e.g. 90s, 10m, 8h:
    /// confirming and shrinking included (its last fifth is kept for them).
    #[arg(long, default_value = "10m", value_parser = at_least_a_second)]
    time: Duration,
    /// More time, after --time, for confirming and shrinking (then all of
    /// --time explores).
    #[arg(long, value_parser = humantime::parse_duration)]
    shrink_time: Option<Duration>,
    /// Stop after this many distinct leak and tampering buckets (at least 1).
    #[arg(long, value_parser = at_least_one_finding)]
    max_findings: Option<usize>,
    /// Confirm at most this many server-error buckets; they never take a
    /// place of --max-findings (at least 1; default: all).
    #[arg(long, value_parser = at_least_one_finding)]
    max_errors: Option<usize>,
    /// Stop after this many programs (with --seed: a bounded, repeatable run).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    programs: Option<u64>,
    /// Promote the buckets of these candidates (lines of candidates.jsonl)
    /// to findings, by hand, instead of fuzzing.
    #[arg(long, value_name = "FILE")]
    confirm_candidates: Option<PathBuf>,
    /// Inputs that reached new behaviour, kept between runs.
    #[arg(long, default_value = "crosstalk-corpus")]
    corpus: PathBuf,
    /// Reproductions (.toml, .sh) and findings.jsonl.
    #[arg(long, default_value = "crosstalk-findings/fuzz")]
    findings: PathBuf,
    /// Instances of each population actor in a program (default 3).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    patients: Option<u32>,
    /// Scenario variables, NAME=VALUE (also CROSSTALK_VAR_NAME in the environment).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
    /// Programs run at once, each sending its operations in order (default: four per core).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    concurrency: Option<u32>,
    /// An OpenAPI 3 document: the operations the scenarios never send
    /// become vocabulary (called with the values the run captures), and
    /// the session reports which operations programs reached.
    #[arg(long, value_name = "FILE")]
    openapi: Option<PathBuf>,
    /// Write one self-contained HTML page of what was confirmed.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

impl FuzzArgs {
    pub fn session(self, stop: Stop) -> Result<Fuzz, String> {
        Ok(Fuzz {
            overrides: overrides(&self.vars, self.patients.map(|n| n as usize))?,
            scenarios: self.scenarios,
            target: self.target.spec(),
            seed: self.seed,
            time: self.time,
            shrink_time: self.shrink_time.unwrap_or_default(),
            max_findings: self.max_findings,
            max_errors: self.max_errors,
            programs: self.programs,
            confirm_candidates: self.confirm_candidates,
            corpus: self.corpus,
            findings: self.findings,
            concurrency: self.concurrency.map(|n| n as usize),
            openapi: self.openapi,
            html: self.html,
            stop,
        })
    }
}

#[derive(Args)]
pub struct ReplayArgs {
    /// A reproduction written by `crosstalk fuzz` (or any scenario file).
    file: PathBuf,
    #[command(flatten)]
    target: TargetArgs,
    /// Directory for the replay's findings.
    #[arg(long, default_value = "crosstalk-findings")]
    findings: PathBuf,
    /// Runs before calling it fixed: races do not show every time (default
    /// 20; 100 when steps are sent at the same moment).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    attempts: Option<u32>,
    /// Scenario variables, NAME=VALUE (also CROSSTALK_VAR_NAME): the
    /// reproduction's secret variables.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
    /// Write one self-contained HTML page of what the replay showed.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

impl ReplayArgs {
    pub fn session(self) -> Result<Replay, String> {
        Ok(Replay {
            overrides: overrides(&self.vars, None)?,
            file: self.file,
            target: self.target.spec(),
            findings: self.findings,
            attempts: self.attempts,
            html: self.html,
        })
    }
}

#[derive(Args)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    pub action: SnapshotAction,
}

#[derive(Subcommand)]
pub enum SnapshotAction {
    /// Turn every pending `.snap.new` under a directory into its snapshot.
    Accept {
        #[arg(long, default_value = "scenarios/snapshots")]
        snapshots: PathBuf,
    },
}
