//! `crosstalk replay`: reruns one reproduction against the target until it
//! shows its finding again, or gives up after a few runs (races do not show
//! every time). It judges what the fuzzer judged: a reproduction says what
//! it reproduces (`reproduces = { kind, step }`), so a server error's
//! reproduces when that error shows, and a leak's or tampering's when any
//! leak or tampering does.

use std::path::PathBuf;
use std::sync::Arc;

use crate::executor::{Executor, RunOptions};
use crate::findings::{Bucket, Finding, FindingKind, FindingSink};
use crate::html::Page;
use crate::plan::{Overrides, Plan};
use crate::report::{Outputs, RunReport};
use crate::safety::Redactor;

use super::{Exit, SessionError, Target, TargetSpec};

/// A replay of one scenario file.
pub struct Replay {
    /// A reproduction written by `crosstalk fuzz` (or any scenario file).
    pub file: PathBuf,
    pub target: TargetSpec,
    /// Findings go to `<findings>/<run id>/findings.jsonl`.
    pub findings: PathBuf,
    /// Runs before calling it fixed; `None`: 20, or 100 when steps are
    /// sent at the same moment (a race shows only sometimes).
    pub attempts: Option<u32>,
    /// `--var` values: a reproduction's secret variables come from here.
    pub overrides: Overrides,
    /// An HTML page of what the replay showed ([`crate::html`]).
    pub html: Option<PathBuf>,
}

/// What a replay gave.
pub struct ReplayOutcome {
    /// The file replayed.
    pub file: PathBuf,
    /// What the reproduction looks for: a leak or tampering, a server
    /// error, an expectation failure.
    pub kind: FindingKind,
    /// The buckets of that kind of the run that showed one; empty when
    /// none did.
    pub found: Vec<Bucket>,
    /// Runs made.
    pub runs: u32,
    pub requests: u64,
    /// Where the requests went.
    pub target: String,
    /// What could not be sent, when nothing leaked and no run sent every
    /// step (a wrong secret variable fails every sign-up): then the replay
    /// says nothing of a fix.
    pub unsent: Vec<String>,
    pub exit: Exit,
}

impl ReplayOutcome {
    /// What the replay showed, in plain words.
    pub fn describe(&self) -> String {
        let file = self.file.display();
        if let Some(first) = self.unsent.first().filter(|_| self.found.is_empty()) {
            return format!(
                "{file}: did not run through against {}: {} step(s) could not be sent, e.g. {first}\n  (check the secret variables: --var or CROSSTALK_VAR_*); no verdict\n",
                self.target,
                self.unsent.len()
            );
        }
        let what = what(self.kind);
        if self.found.is_empty() {
            return format!(
                "{file}: no {what} against {} in {} run(s), {} requests: fixed, or not reproducible here\n",
                self.target, self.runs, self.requests
            );
        }
        let mut out = format!("{file}: the {what} reproduces against {}:\n", self.target);
        for bucket in &self.found {
            out.push_str(&format!("  {}\n", bucket.first.summary));
        }
        out
    }
}

/// The kind of finding in plain words.
fn what(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::Leak | FindingKind::Tamper => "leak or tampering",
        FindingKind::ServerError => "server error",
        FindingKind::Expectation => "expectation failure",
        FindingKind::Access => "access to another's data",
        FindingKind::Drift => "contract drift",
        FindingKind::TransportError | FindingKind::Skipped => "unanswered request",
    }
}

/// What a reproduction file looks for: its `reproduces` kind and step (a
/// leak or tampering anywhere when it names none).
fn wanted(
    plan: &Plan,
    file: &std::path::Path,
) -> Result<(FindingKind, Option<String>), SessionError> {
    let Some(reproduces) = &plan.reproduces else {
        return Ok((FindingKind::Leak, None));
    };
    let kind = FindingKind::ALL
        .into_iter()
        .find(|k| k.as_str() == reproduces.kind)
        .ok_or_else(|| {
            SessionError::Input(format!(
                "{}: reproduces.kind `{}` is not a finding kind (leak, tamper, server-error, expectation, …)",
                file.display(),
                reproduces.kind
            ))
        })?;
    Ok((kind, reproduces.step.clone()))
}

/// Whether `found` is what the reproduction looks for: for a leak or
/// tampering, any leak or tampering; else that kind at that step.
fn shows(found: &Finding, kind: FindingKind, step: Option<&str>) -> bool {
    if kind.harm() {
        return found.kind.harm();
    }
    found.kind == kind && step.is_none_or(|step| found.step == step)
}

impl Replay {
    pub async fn execute(self) -> Result<ReplayOutcome, SessionError> {
        if !self.file.is_file() {
            let file = self.file.display();
            return Err(SessionError::Input(format!(
                "{file}: replay takes one reproduction file"
            )));
        }
        let outputs = Outputs {
            html: self.html.clone(),
            ..Outputs::default()
        };
        outputs.prepare().map_err(|(path, err)| {
            SessionError::Input(format!("cannot write {}: {err}", path.display()))
        })?;
        let plans = Plan::load_all(std::slice::from_ref(&self.file), &self.overrides)?;
        let target = Target::connect(&self.target).await?;
        let plan = Arc::new(plans.into_iter().next().expect("one file gives one plan"));
        let (kind, step) = wanted(&plan, &self.file)?;
        let seed = plan.seed.unwrap_or(0);
        let nonce = crate::canary::fresh_nonce();
        let run_id = crate::canary::run_id(nonce);
        let dir = self.findings.join(&run_id);
        let sink = FindingSink::new(Some(&dir.join("findings.jsonl"))).map_err(|err| {
            SessionError::Input(format!(
                "cannot write findings to {}: {err}",
                self.findings.display()
            ))
        })?;
        let sink = Arc::new(sink);
        let mut outcome = ReplayOutcome {
            file: self.file.clone(),
            kind,
            found: Vec::new(),
            runs: 0,
            requests: 0,
            target: String::new(),
            unsent: Vec::new(),
            exit: Exit::Clean,
        };
        let race = plan.steps.iter().any(|s| s.concurrent);
        let attempts = self.attempts.unwrap_or(if race { 100 } else { 20 });
        // A verdict of "fixed" needs at least one run that sent every step.
        let mut ran_through = false;
        for attempt in 0..attempts.max(1) {
            // A fresh embedded clinic each time; the same remote target.
            let transport = target.transport();
            outcome.target = transport.describe();
            let options = RunOptions {
                concurrency: 16,
                // As the program it reproduces: every step is sent, also
                // after an instance's failed sign-up left it no credential.
                stop_without_credential: false,
                // The reproduction's requests, and no others.
                probes: false,
                // A race, both ways round in turn.
                reversed: race && attempt % 2 == 1,
                nonce: crate::canary::mix(nonce, &[u64::from(attempt)]),
                ..RunOptions::new(seed, nonce)
            };
            let redactor = Arc::new(Redactor::default());
            let executor = Executor::new(plan.clone(), transport, sink.clone(), redactor, options);
            let stats = executor.run().await;
            outcome.requests += stats.requests;
            outcome.runs += 1;
            ran_through |= stats.skipped == 0 && stats.transport_errors == 0;
            outcome.found = sink
                .buckets()
                .into_iter()
                .filter(|b| shows(&b.first, kind, step.as_deref()))
                .collect();
            if !outcome.found.is_empty() {
                outcome.exit = Exit::Found;
                break;
            }
        }
        if outcome.exit != Exit::Found && !ran_through {
            outcome.unsent = sink
                .buckets()
                .into_iter()
                .filter(|b| b.first.kind.incomplete())
                .map(|b| b.first.summary)
                .collect();
            if !outcome.unsent.is_empty() {
                outcome.exit = Exit::Incomplete;
            }
        }
        let report = RunReport::of_findings(run_id, seed, outcome.target.clone(), &sink, &dir);
        let written = self.write_page(&outputs, &report, &outcome);
        super::page_written(written, &mut outcome.exit);
        Ok(outcome)
    }

    /// The HTML page (`--html`): every finding of every attempt, each bucket
    /// reproduced by the file replayed.
    fn write_page(
        &self,
        outputs: &Outputs,
        report: &RunReport,
        outcome: &ReplayOutcome,
    ) -> Result<(), String> {
        if outputs.html.is_none() {
            return Ok(());
        }
        let file = self.file.display().to_string();
        let page = Page {
            headline: outcome.describe().trim_end().to_string(),
            findings: crate::html::read_findings(report),
            figures: vec![
                ("runs".into(), outcome.runs.to_string()),
                ("requests".into(), outcome.requests.to_string()),
            ],
            reproductions: (report.buckets.iter())
                .map(|b| (b.key.clone(), file.clone()))
                .collect(),
            ..Page::new("replay", report, outcome.exit)
        };
        (outputs.write_html(&page))
            .map_err(|(path, err)| format!("cannot write {}: {err}", path.display()))
    }
}
