//! The `crosstalk` command line. The library does the work; this file turns
//! flags into a run, picks the target (the embedded reference clinic unless
//! `--target` is given) and maps the outcome to exit codes:
//! 0 clean, 1 findings, 2 bad input or unreachable target.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use crosstalk::executor::{Executor, RunOptions};
use crosstalk::findings::FindingSink;
use crosstalk::plan::{Overrides, Plan};
use crosstalk::report::RunReport;
use crosstalk::safety::{AllowList, Redactor};
use crosstalk::scenario::ScenarioError;
use crosstalk::transport::{Http, InProcess, Request, Transport};
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
}

#[derive(Args)]
struct RunArgs {
    /// Scenario files or directories (default: scenarios/).
    scenarios: Vec<PathBuf>,
    /// Base URL of a running API; without it the reference clinic runs in process.
    #[arg(long)]
    target: Option<String>,
    /// Clinic faults to switch on (embedded target only).
    #[arg(long = "fault", value_name = "NAME")]
    faults: Vec<String>,
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
    /// Hosts besides loopback that may be targeted.
    #[arg(
        long = "allow-host",
        value_name = "HOST",
        env = "CROSSTALK_ALLOW_HOSTS",
        value_delimiter = ','
    )]
    allow_hosts: Vec<String>,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Requests per second at most (network targets).
    #[arg(long)]
    rate: Option<std::num::NonZeroU32>,
}

/// Exit codes.
const CLEAN: u8 = 0;
const FOUND: u8 = 1;
const BAD_INPUT: u8 = 2;

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

async fn target(args: &RunArgs) -> Result<Arc<dyn Transport>, String> {
    match &args.target {
        Some(target) => {
            if !args.faults.is_empty() {
                return Err(
                    "--fault switches faults of the embedded clinic; it cannot change a --target"
                        .into(),
                );
            }
            let mut url =
                url::Url::parse(target).map_err(|err| format!("--target {target}: {err}"))?;
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
            Ok(Arc::new(http))
        }
        None => {
            let faults = clinic::Faults::parse_list(&args.faults.join(","))
                .map_err(|err| format!("--fault: {err}"))?;
            let clinic = clinic::Clinic::in_memory(faults.clone())
                .map_err(|err| format!("cannot start the embedded clinic: {err}"))?;
            let name = if faults.is_empty() {
                "embedded clinic".to_string()
            } else {
                format!("embedded clinic (faults: {faults})")
            };
            Ok(Arc::new(InProcess::new(clinic.router(), name)))
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
    let transport = match target(&args).await {
        Ok(t) => t,
        Err(message) => {
            eprintln!("error: {message}");
            return BAD_INPUT;
        }
    };

    let seed = args.seed.unwrap_or_else(random_u64);
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

    let report = RunReport {
        run_id: run_id.clone(),
        seed,
        target: transport.describe(),
        scenarios,
        buckets: sink.buckets(),
        total_findings: sink.total(),
        findings_file: sink
            .path()
            .filter(|_| sink.total() > 0)
            .map(|p| p.display().to_string()),
    };
    print!("{}", report.summary());
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
    if report.clean() { CLEAN } else { FOUND }
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
