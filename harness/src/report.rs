//! Reports: the terminal summary, JSON, and JUnit XML for CI.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::executor::RunStats;
use crate::findings::{Bucket, FindingKind};

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
}

impl RunReport {
    pub fn clean(&self) -> bool {
        self.total_findings == 0
    }

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
            let findings = self
                .buckets
                .iter()
                .filter(|b| b.first.scenario == s.scenario)
                .map(|b| b.count)
                .sum::<usize>();
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
            return out;
        }
        let _ = writeln!(
            out,
            "{} finding(s) in {} bucket(s):",
            self.total_findings,
            self.buckets.len()
        );
        for bucket in &self.buckets {
            let f = &bucket.first;
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "[{}] {} ({}×, scenario {})",
                f.kind.as_str(),
                bucket.key,
                bucket.count,
                f.scenario
            );
            let _ = writeln!(out, "  {}", f.summary);
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
        if let Some(file) = &self.findings_file {
            let _ = writeln!(out);
            let _ = writeln!(out, "every finding is in {file}");
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
