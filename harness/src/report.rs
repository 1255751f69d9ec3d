//! Reports: the terminal summary, JSON, and JUnit XML for CI.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::executor::RunStats;
use crate::findings::{Bucket, FindingKind};

/// The files a run's report is written to.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    pub json: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
    /// A file the Markdown summary is appended to (`$GITHUB_STEP_SUMMARY`).
    pub step_summary: Option<PathBuf>,
}

impl Outputs {
    /// Writes every requested file; `steps` are each scenario's step names,
    /// the JUnit cases. The first file that cannot be written is the error.
    pub fn write(
        &self,
        report: &RunReport,
        steps: &[(String, Vec<String>)],
    ) -> Result<(), (PathBuf, std::io::Error)> {
        let markdown = report.markdown();
        let at = |path: &Path| {
            let path = path.to_path_buf();
            move |err| (path, err)
        };
        if let Some(path) = &self.markdown {
            std::fs::write(path, &markdown).map_err(at(path))?;
        }
        if let Some(path) = &self.step_summary {
            use std::io::Write;
            let appended = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(markdown.as_bytes()));
            if let Err(err) = appended {
                eprintln!("warning: cannot append to {}: {err}", path.display());
            }
        }
        if let Some(path) = &self.json {
            report.write_json(path).map_err(at(path))?;
        }
        if let Some(path) = &self.junit {
            std::fs::write(path, report.junit(steps)).map_err(at(path))?;
        }
        Ok(())
    }
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub seed: u64,
    pub target: String,
    pub scenarios: Vec<RunStats>,
    /// Scenario name of each bucket's first finding is in the finding.
    pub buckets: Vec<Bucket>,
    pub total_findings: usize,
    pub findings_file: Option<String>,
    /// Buckets found that the baseline accepts: reported, not failing.
    pub accepted: Vec<String>,
    /// Baseline entries this run did not produce.
    pub stale: Vec<String>,
    /// Contract snapshots written as `.snap.new`, waiting for review.
    pub pending_snapshots: Vec<String>,
}

impl RunReport {
    /// A plain-words summary for a terminal.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let requests: u64 = self.scenarios.iter().map(|s| s.requests).sum();
        let _ = writeln!(
            out,
            "crosstalk run {} (seed {}) against {}",
            self.run_id, self.seed, self.target
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "  {:<28} {:>9} {:>9} {:>9} {:>8}",
            "scenario", "instances", "requests", "findings", "time"
        );
        for s in &self.scenarios {
            let findings = self.findings_in(&s.scenario);
            let _ = writeln!(
                out,
                "  {:<28} {:>9} {:>9} {:>9} {:>7.1}s{}",
                s.scenario,
                s.instances,
                s.requests,
                findings,
                s.elapsed.as_secs_f64(),
                if s.interrupted { "  (interrupted)" } else { "" }
            );
        }
        let _ = writeln!(out);
        if self.buckets.is_empty() {
            let _ = writeln!(
                out,
                "clean: {requests} requests, no response showed anyone another's data."
            );
            self.tail(&mut out);
            return out;
        }
        let _ = writeln!(
            out,
            "{} finding(s) in {} bucket(s), {} accepted by the baseline:",
            self.total_findings,
            self.buckets.len(),
            self.accepted.len()
        );
        for bucket in &self.buckets {
            self.describe(bucket, &mut out);
        }
        if let Some(file) = &self.findings_file {
            let _ = writeln!(out);
            let _ = writeln!(out, "every finding is in {file}");
        }
        self.tail(&mut out);
        out
    }

    /// One bucket in plain words: what, how often, the exchange and the trace.
    fn describe(&self, bucket: &Bucket, out: &mut String) {
        let f = &bucket.first;
        let accepted = if self.accepted.contains(&bucket.key) {
            " [accepted by baseline]"
        } else {
            ""
        };
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "[{}] {} ({}×, scenario {}){accepted}",
            f.kind.as_str(),
            bucket.key,
            bucket.count,
            f.scenario
        );
        let _ = writeln!(out, "  {}", f.summary);
        if f.kind == FindingKind::Drift {
            for line in f.exchange.response_excerpt.lines() {
                let _ = writeln!(out, "    {line}");
            }
            return;
        }
        let _ = writeln!(
            out,
            "  request:  {} {} → {}",
            f.exchange.method, f.exchange.path, f.exchange.status
        );
        if !f.exchange.response_excerpt.is_empty() {
            let _ = writeln!(
                out,
                "  response: {}",
                f.exchange.response_excerpt.replace('\n', "\\n")
            );
        }
        if !f.trace.is_empty() {
            let _ = writeln!(out, "  trace of {}:", f.observer);
            for line in &f.trace {
                let _ = writeln!(out, "    {line}");
            }
        }
    }

    /// How many findings `scenario` gave.
    fn findings_in(&self, scenario: &str) -> usize {
        self.buckets
            .iter()
            .filter(|b| b.first.scenario == scenario)
            .map(|b| b.count)
            .sum()
    }

    /// No finding outside the baseline.
    pub fn clean(&self) -> bool {
        self.new_buckets().next().is_none()
    }

    /// Buckets the baseline does not accept.
    pub fn new_buckets(&self) -> impl Iterator<Item = &Bucket> {
        self.buckets
            .iter()
            .filter(|b| !self.accepted.contains(&b.key))
    }

    fn tail(&self, out: &mut String) {
        if !self.stale.is_empty() {
            let _ = writeln!(
                out,
                "\nstale baseline entries (no longer found; remove them):"
            );
            for key in &self.stale {
                let _ = writeln!(out, "  {key}");
            }
        }
        if !self.pending_snapshots.is_empty() {
            let _ = writeln!(
                out,
                "\n{} contract snapshot(s) new or changed, written as .snap.new: review with `cargo insta review`, or accept them all with `crosstalk snapshots accept`",
                self.pending_snapshots.len()
            );
        }
    }

    /// A Markdown summary for a pull request or `$GITHUB_STEP_SUMMARY`.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let verdict = if self.clean() { "passed" } else { "failed" };
        let _ = writeln!(out, "## crosstalk {verdict}\n");
        let _ = writeln!(
            out,
            "Run `{}`, seed `{}`, against {}.\n",
            self.run_id, self.seed, self.target
        );
        let _ = writeln!(out, "| scenario | instances | requests | findings |");
        let _ = writeln!(out, "|---|---:|---:|---:|");
        for s in &self.scenarios {
            let findings = self.findings_in(&s.scenario);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                s.scenario, s.instances, s.requests, findings
            );
        }
        let tick = |text: &str| text.replace('`', "'");
        let new: Vec<&Bucket> = self.new_buckets().collect();
        if !new.is_empty() {
            let _ = writeln!(out, "\n### New findings\n");
            for b in &new {
                let _ = writeln!(
                    out,
                    "- **{}** `{}` ({}×): {}",
                    b.first.kind.as_str(),
                    tick(&b.key),
                    b.count,
                    tick(&b.first.summary)
                );
                if b.first.kind == FindingKind::Drift {
                    let _ = writeln!(out, "\n```diff\n{}```\n", b.first.exchange.response_excerpt);
                }
            }
        }
        for (title, keys) in [
            ("Accepted by the baseline", &self.accepted),
            ("Stale baseline entries", &self.stale),
        ] {
            if !keys.is_empty() {
                let _ = writeln!(out, "\n### {title}\n");
                for key in keys {
                    let _ = writeln!(out, "- `{}`", tick(key));
                }
            }
        }
        if !self.pending_snapshots.is_empty() {
            let _ = writeln!(
                out,
                "\n{} contract snapshot(s) await review (`cargo insta review` or `crosstalk snapshots accept`).",
                self.pending_snapshots.len()
            );
        }
        out
    }

    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).expect("reports serialize");
        std::fs::write(path, text)
    }

    /// JUnit XML: a suite per scenario, a test case per step × check kind.
    pub fn junit(&self, steps: &[(String, Vec<String>)]) -> String {
        let mut report = quick_junit::Report::new("crosstalk");
        for (scenario, step_names) in steps {
            let mut suite = quick_junit::TestSuite::new(scenario.as_str());
            let stats = self.scenarios.iter().find(|s| &s.scenario == scenario);
            if let Some(stats) = stats {
                suite.set_time(stats.elapsed);
            }
            for step in step_names {
                for kind in [
                    FindingKind::Leak,
                    FindingKind::ServerError,
                    FindingKind::Expectation,
                ] {
                    let hits: Vec<&Bucket> = self
                        .buckets
                        .iter()
                        .filter(|b| {
                            &b.first.scenario == scenario
                                && &b.first.step == step
                                && b.first.kind == kind
                        })
                        .collect();
                    let name = format!("{step} [{}]", kind.as_str());
                    let status = if hits.is_empty() {
                        quick_junit::TestCaseStatus::success()
                    } else {
                        let mut status = quick_junit::TestCaseStatus::non_success(
                            quick_junit::NonSuccessKind::Failure,
                        );
                        status.set_message(hits[0].first.summary.as_str());
                        let details: Vec<String> = hits
                            .iter()
                            .map(|b| format!("{} ({}×): {}", b.key, b.count, b.first.summary))
                            .collect();
                        status.set_description(details.join("\n"));
                        status
                    };
                    let mut case = quick_junit::TestCase::new(name, status);
                    case.set_classname(scenario.as_str());
                    suite.add_test_case(case);
                }
            }
            report.add_test_suite(suite);
        }
        report.to_string().expect("JUnit serializes")
    }
}
