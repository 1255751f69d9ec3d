//! `crosstalk run`: every scenario against the target, then the reports and
//! the verdict.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::baseline::Baseline;
use crate::coverage::Operations;
use crate::executor::{Executor, RunOptions, RunStats};
use crate::findings::{FindingSink, JsonLines};
use crate::html::Page;
use crate::plan::{Overrides, Plan};
use crate::report::{Conclusion, Outputs, RunReport};
use crate::safety::Redactor;
use crate::self_test::SelfTest;
use crate::shard::Shard;
use crate::transport::Transport;

use super::snapshots::Contracts;
use super::{Exit, SessionError, Stop, Target, TargetSpec};

/// A scripted run of scenario files.
pub struct Run {
    /// Scenario files or directories (empty: `scenarios/`).
    pub scenarios: Vec<PathBuf>,
    pub target: TargetSpec,
    /// Every choice of the run; random (and reported) when `None`.
    pub seed: Option<u64>,
    pub overrides: Overrides,
    /// Findings and the request log go to `<findings>/<run id>/`.
    pub findings: PathBuf,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Accepted finding buckets.
    pub baseline: Option<PathBuf>,
    /// Write every bucket found to this baseline file.
    pub write_baseline: Option<PathBuf>,
    pub outputs: Outputs,
    /// Drive only this shard's slice of every actor ([`crate::shard`]).
    pub shard: Option<Shard>,
    /// The run every shard belongs to (`--run-id`): its canaries, names and
    /// times, and the seed when none is given. A shard takes the CI's
    /// pipeline id when none is given; an unsharded run a random one.
    pub run: Option<String>,
    /// Which contract snapshots the responses are compared with.
    pub contracts: Contracts,
    /// CI mode: a missing snapshot is drift, not a pending review.
    pub ci: bool,
    /// Cancel to stop early; counts findings as they are recorded.
    pub stop: Stop,
    /// Stop the flow when this much time has passed (teardown still runs).
    pub time_limit: Option<std::time::Duration>,
    /// Show a progress line on a terminal.
    pub progress: bool,
    /// Send [probes](crate::probe).
    pub probes: bool,
    /// An OpenAPI document: report which of its operations the run reached.
    pub openapi: Option<PathBuf>,
    /// An operation of `openapi` never reached leaves the run incomplete.
    pub require_coverage: bool,
    /// Plant defects and measure whether the judges name them
    /// ([`self_test`](crate::self_test)): the minimum sensitivity.
    pub self_test: Option<f64>,
}

/// What a run gave.
pub struct RunOutcome {
    pub report: RunReport,
    pub exit: Exit,
    /// Why the run could not do its work, when that decided the exit code.
    pub problem: Option<String>,
}

impl Run {
    /// A run of `scenarios` against `target` with the command line's defaults.
    pub fn new(scenarios: Vec<PathBuf>, target: TargetSpec) -> Run {
        Run {
            scenarios,
            target,
            seed: None,
            overrides: Overrides::default(),
            findings: PathBuf::from("crosstalk-findings"),
            concurrency: 64,
            baseline: None,
            write_baseline: None,
            outputs: Outputs::default(),
            shard: None,
            run: None,
            contracts: Contracts::BesideSuites,
            ci: false,
            stop: Stop::default(),
            time_limit: None,
            progress: false,
            probes: true,
            openapi: None,
            require_coverage: false,
            self_test: None,
        }
    }

    pub async fn execute(mut self) -> Result<RunOutcome, SessionError> {
        // A self-test changes the traffic it judges (a redirected write
        // answers its two instances otherwise): its shapes are no contract.
        if self.self_test.is_some() {
            self.contracts = Contracts::Off;
        }
        // Fail before the work, not after it.
        self.outputs
            .prepare()
            .map_err(|(path, err)| cannot_write(&path, err))?;
        let plans = self.plans()?;
        self.contracts.prepare(&plans)?;
        let operations = match &self.openapi {
            Some(path) => Some(Operations::load(path).map_err(SessionError::Input)?),
            None => None,
        };
        let baseline = match &self.baseline {
            Some(path) => Baseline::load(path)?,
            None => Baseline::default(),
        };
        let run = self.run()?;
        let seed = (self.seed.or(plans.iter().find_map(|p| p.seed)))
            .or(self.shard.and(run.as_deref()).map(crate::shard::seed_of))
            .unwrap_or_else(crate::canary::fresh_nonce);
        let nonce =
            (run.as_deref()).map_or_else(crate::canary::fresh_nonce, crate::shard::nonce_of);
        let run_id = crate::canary::run_id(nonce);
        let run_dir = match self.shard {
            Some(shard) => {
                (self.findings.join(&run_id)).join(format!("shard-{}-of-{}", shard.index, shard.of))
            }
            None => self.findings.join(&run_id),
        };
        let cannot = |err| {
            let dir = self.findings.display();
            SessionError::Input(format!("cannot write findings to {dir}: {err}"))
        };
        let sink = FindingSink::new(Some(&run_dir.join("findings.jsonl"))).map_err(cannot)?;
        let sink = sink.counting(self.stop.found.clone());
        let test = (self.self_test).map(|min| Arc::new(SelfTest::new(seed, min)));
        let sink = Arc::new(match &test {
            Some(test) => sink.planted_by(test.clone()),
            None => sink,
        });
        let log = Arc::new(JsonLines::buffered(&run_dir.join("requests.jsonl")).map_err(cannot)?);
        // The first request: everything else was checked before it.
        let transport = Target::connect(&self.target).await?.run_transport();
        if let Some(limit) = self.time_limit {
            let cancel = self.stop.cancel.clone();
            tokio::spawn(async move {
                tokio::time::sleep(limit).await;
                cancel.cancel();
            });
        }
        let mut ran = self
            .run_plans(
                &plans,
                &transport,
                &sink,
                &log,
                (seed, nonce),
                test.as_ref(),
            )
            .await;
        // A failed flush is counted in the log itself, reported just below.
        let _ = log.flush();
        ran.problems.extend(unwritten(&run_dir, &sink, &log));
        let buckets = sink.buckets();
        let seen: BTreeSet<String> = buckets.iter().map(|b| b.key.clone()).collect();
        // Work not done is never accepted: it says nothing of the target.
        let accepted = buckets
            .iter()
            .filter(|b| !b.first.kind.incomplete() && baseline.accepts(&b.key))
            .map(|b| b.key.clone())
            .collect();
        let total = sink.total();
        let coverage =
            (operations.as_ref()).map(|ops| ops.cover(ran.stats.iter().flat_map(|s| &s.order)));
        let report = RunReport {
            coverage,
            run_id,
            seed,
            target: transport.describe(),
            scenarios: ran.stats,
            buckets,
            total_findings: total,
            findings_file: sink
                .path()
                .filter(|_| total > 0)
                .map(|p| p.display().to_string()),
            unwritten_findings: sink.unwritten(),
            accepted,
            stale: baseline.stale(&seen),
            pending_snapshots: ran.pending,
            self_test: test.map(|t| t.sensitivity()),
            shard: (self.shard.zip(run)).map(|(shard, run)| crate::shard::Part {
                shard,
                run,
                steps: step_names(&plans),
            }),
            merged: None,
        };
        let written = self.write_outputs(&report, &plans, &seen);
        let mut outcome = verdict(report);
        self.require_coverage(&mut outcome);
        let problems = ran
            .problems
            .into_iter()
            .chain(written.err().map(|e| e.to_string()));
        harness_failed(&mut outcome, problems.collect());
        write_page(&self.outputs, "run", &mut outcome);
        Ok(outcome)
    }

    /// With `--require-coverage`, a run that reached every operation but
    /// found nothing is clean only if it reached every operation.
    fn require_coverage(&self, outcome: &mut RunOutcome) {
        let unreached = match &outcome.report.coverage {
            Some(coverage) if self.require_coverage => coverage.unreached.len(),
            _ => 0,
        };
        if unreached > 0 && outcome.exit == Exit::Clean {
            outcome.exit = Exit::Incomplete;
            outcome.problem = Some(format!(
                "{unreached} operation(s) of the OpenAPI document were never reached (--require-coverage)"
            ));
        }
    }

    /// The plans this run executes (every shard all of them).
    fn plans(&self) -> Result<Vec<Plan>, SessionError> {
        Ok(Plan::load_all(&self.scenarios, &self.overrides)?)
    }

    /// The run id given, or a shard's CI pipeline id; a shard needs one,
    /// else its canaries and choices would be its own, not the run's.
    fn run(&self) -> Result<Option<String>, SessionError> {
        let run = self
            .run
            .clone()
            .or_else(|| self.shard.and_then(|_| crate::shard::ci_run_id()));
        if let Some(shard) = self.shard {
            if run.is_none() {
                return Err(SessionError::Input(format!(
                    "--shard {shard} needs --run-id ID, the same for every shard of the run (in CI it defaults to the pipeline's run id)"
                )));
            }
            if self.self_test.is_some() {
                return Err(SessionError::Input(
                    "--self-test plants defects between the instances of one process: run it without --shard".into(),
                ));
            }
        }
        match run {
            Some(run) if run.trim().is_empty() || run.len() > 200 => Err(SessionError::Input(
                format!("--run-id {run:?}: give 1 to 200 characters"),
            )),
            run => Ok(run),
        }
    }

    /// Every plan in turn; stops after one that was interrupted.
    async fn run_plans(
        &self,
        plans: &[Plan],
        transport: &Arc<dyn Transport>,
        sink: &Arc<FindingSink>,
        log: &Arc<JsonLines>,
        (seed, nonce): (u64, u64),
        test: Option<&Arc<SelfTest>>,
    ) -> Ran {
        let redactor = Arc::new(Redactor::default());
        let progress = (self.progress)
            .then(|| progress_bar(plans, self.shard))
            .flatten();
        let mut ran = Ran::default();
        // `serial` goes on from one scenario file to the next, and so do
        // the identities: one file's patients seeing another's data is a
        // leak like any other.
        let mut serial_base = 0;
        let ledger = Arc::new(match self.shard {
            Some(shard) => crate::world::Ledger::sharded(shard),
            None => crate::world::Ledger::default(),
        });
        for (i, plan) in plans.iter().enumerate() {
            if let Some(bar) = &progress {
                bar.set_message(plan.scenario.clone());
            }
            let options = RunOptions {
                nonce: crate::canary::mix(nonce, &[i as u64]),
                serial_base,
                concurrency: self.concurrency,
                progress: progress.clone(),
                // Only the coverage of an OpenAPI document reads them again.
                keep_order: self.openapi.is_some(),
                requests: Some(log.clone()),
                cancel: self.stop.cancel.clone(),
                probes: self.probes,
                contracts: self.contracts != Contracts::Off,
                ledger: Some(ledger.clone()),
                world_name: Some(plan.scenario.clone()),
                self_test: test.cloned(),
                ..RunOptions::new(seed, nonce)
            };
            let executor = Executor::new(
                Arc::new(plan.clone()),
                transport.clone(),
                sink.clone(),
                redactor.clone(),
                options,
            );
            serial_base += plan.instances() as u64;
            let stats = executor.run().await;
            if !stats.interrupted {
                self.compare_contracts(&executor, sink, &mut ran);
            }
            let interrupted = stats.interrupted;
            ran.stats.push(stats);
            if interrupted {
                break;
            }
        }
        if let Some(bar) = &progress {
            bar.finish_and_clear();
        }
        ran
    }

    /// Records a drift finding for every contract that changed; notes the
    /// snapshots waiting for review.
    fn compare_contracts(&self, executor: &Executor, sink: &FindingSink, ran: &mut Ran) {
        let observed = executor.contracts().take();
        match self.contracts.compare(executor.world(), observed, self.ci) {
            Ok(compared) => {
                ran.pending.extend(compared.pending);
                compared.findings.into_iter().for_each(|f| sink.record(f));
            }
            Err(err) => ran.problems.push(err.to_string()),
        }
    }

    fn write_outputs(
        &self,
        report: &RunReport,
        plans: &[Plan],
        seen: &BTreeSet<String>,
    ) -> Result<(), SessionError> {
        if let Some(path) = &self.write_baseline {
            Baseline::of(seen.iter().cloned())
                .write(path)
                .map_err(|err| cannot_write(path, err))?;
        }
        self.outputs
            .write(report, &step_names(plans))
            .map_err(|(path, err)| cannot_write(&path, err))
    }
}

/// Each scenario's step names: its JUnit test cases.
fn step_names(plans: &[Plan]) -> Vec<(String, Vec<String>)> {
    plans
        .iter()
        .map(|p| {
            let names = p.steps.iter().chain(&p.teardown);
            (p.scenario.clone(), names.map(|s| s.name.clone()).collect())
        })
        .collect()
}

/// What the scenarios of a run gave, before the report.
#[derive(Default)]
struct Ran {
    stats: Vec<RunStats>,
    pending: Vec<String>,
    /// What went wrong on the harness's side (snapshots or files it could
    /// not write).
    problems: Vec<String>,
}

/// The exit code a report stands for.
pub(super) fn verdict(report: RunReport) -> RunOutcome {
    let unreachable = report
        .scenarios
        .iter()
        .all(|s| s.requests > 0 && s.transport_errors == s.requests);
    let (exit, problem) = if unreachable {
        let problem = format!("no request got an answer from {}", report.target);
        (Exit::BadInput, Some(problem))
    } else {
        let exit = match report.conclusion() {
            Conclusion::Clean => Exit::Clean,
            Conclusion::Found => Exit::Found,
            Conclusion::Incomplete => Exit::Incomplete,
            Conclusion::Interrupted => Exit::Interrupted,
        };
        (exit, None)
    };
    RunOutcome {
        report,
        exit,
        problem,
    }
}

/// Notes what the harness could not do. The report is still shown; the
/// exit code is 2 unless something was found: a finding outranks a file
/// the harness could not write (the findings are on stderr at worst), and a
/// CI gate must fail on it, not retry or blame its input.
pub(super) fn harness_failed(outcome: &mut RunOutcome, problems: Vec<String>) {
    if problems.is_empty() {
        return;
    }
    if outcome.exit != Exit::Found {
        outcome.exit = Exit::BadInput;
    }
    let all: Vec<String> = outcome.problem.take().into_iter().chain(problems).collect();
    outcome.problem = Some(all.join("; "));
}

/// What a failed write kept out of the run's files, as problems.
fn unwritten(run_dir: &Path, sink: &FindingSink, log: &JsonLines) -> Vec<String> {
    let findings = sink.unwritten().map(|u| {
        format!(
            "cannot append to {}: {}; {} finding(s) are not in it, each printed to stderr as a JSON line",
            run_dir.join("findings.jsonl").display(),
            u.error,
            u.count
        )
    });
    let requests = log.unwritten().map(|u| {
        format!(
            "cannot append to {}: {}; it ends at its last whole line, without the last {} request(s)",
            run_dir.join("requests.jsonl").display(),
            u.error,
            u.count
        )
    });
    findings.into_iter().chain(requests).collect()
}

pub(super) fn cannot_write(path: &Path, err: std::io::Error) -> SessionError {
    SessionError::Input(format!("cannot write {}: {err}", path.display()))
}

/// A progress line counting requests, on a terminal only.
fn progress_bar(plans: &[Plan], shard: Option<Shard>) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    // The instances of a role this process drives.
    let driven = |role: &crate::plan::Role| match shard {
        Some(shard) => (0..role.count)
            .filter(|i| shard.drives(*i, role.count, role.population))
            .count(),
        None => role.count,
    };
    let total: u64 = plans
        .iter()
        .flat_map(|p| (p.steps.iter().chain(&p.teardown)).map(|s| driven(&p.roles[s.role]) as u64))
        .sum();
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {pos}/{len} requests, {per_sec}",
        )
        .expect("a valid progress template")
        .progress_chars("=> "),
    );
    Some(bar)
}

/// The HTML page of a run or a merge (`--html`), last: it shows the exit
/// code the rest decided, and every finding of the findings file.
pub(super) fn write_page(outputs: &Outputs, command: &str, outcome: &mut RunOutcome) {
    if outputs.html.is_none() {
        return;
    }
    let page = Page {
        problem: outcome.problem.clone(),
        findings: crate::html::read_findings(&outcome.report),
        ..Page::new(command, &outcome.report, outcome.exit)
    };
    if let Err((path, err)) = outputs.write_html(&page) {
        harness_failed(outcome, vec![cannot_write(&path, err).to_string()]);
    }
}
