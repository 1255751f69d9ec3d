//! Reports: the terminal summary, JSON, JUnit XML and Markdown for CI,
//! each file written whole or not at all.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::executor::RunStats;
use crate::findings::{Bucket, FindingKind, Unwritten};
use crate::witness::{ForeignWrite, WriteVerdict};

/// What a run established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Conclusion {
    /// Every step ran, every response was judged, nothing was found.
    Clean,
    /// At least one finding the baseline does not accept.
    Found,
    /// Nothing found, but some of the work was not done (no answer, steps
    /// not sent): no verdict on the target.
    Incomplete,
    /// Stopped before every step ran, nothing found so far.
    Interrupted,
}

impl Conclusion {
    /// How reports say it: `crosstalk passed`, `failed`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Conclusion::Clean => "passed",
            Conclusion::Found => "failed",
            Conclusion::Incomplete => "incomplete",
            Conclusion::Interrupted => "interrupted",
        }
    }
}

/// The files a run's report is written to. Each exists only whole: a CI
/// step that reads a report after a crash, a second Ctrl-C or bad input
/// must never read an empty or half-written one as the verdict.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    pub json: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
    /// The HTML page ([`crate::html`]), written last: it shows the exit code.
    pub html: Option<PathBuf>,
    /// A file the Markdown summary is appended to (`$GITHUB_STEP_SUMMARY`).
    pub step_summary: Option<PathBuf>,
}

impl Outputs {
    /// Creates each output's directory and checks a file can be written
    /// there, before any work is done, without creating the report itself:
    /// bad input then leaves no report file behind.
    pub fn prepare(&self) -> Result<(), (PathBuf, std::io::Error)> {
        for path in self.reports() {
            whole::check(path).map_err(|err| (path.clone(), err))?;
        }
        Ok(())
    }

    /// Writes every requested file; `steps` are each scenario's step names,
    /// the JUnit cases. Each report goes to a temporary file beside its
    /// target and is renamed over it, so a kill leaves the previous report
    /// or none. The first file that cannot be written is the error.
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
            whole::write(path, &markdown).map_err(at(path))?;
        }
        if let Some(path) = &self.step_summary {
            append(path, &markdown);
        }
        if let Some(path) = &self.json {
            whole::write(path, &report.json()).map_err(at(path))?;
        }
        if let Some(path) = &self.junit {
            whole::write(path, &report.junit(steps)).map_err(at(path))?;
        }
        Ok(())
    }

    /// Writes the HTML page, whole, when one was asked for.
    pub fn write_html(&self, page: &crate::html::Page) -> Result<(), (PathBuf, std::io::Error)> {
        match &self.html {
            Some(path) => whole::write(path, &page.render()).map_err(|err| (path.clone(), err)),
            None => Ok(()),
        }
    }

    /// The report files asked for (not the step summary, which is appended).
    fn reports(&self) -> impl Iterator<Item = &PathBuf> {
        [&self.json, &self.junit, &self.markdown, &self.html]
            .into_iter()
            .flatten()
    }
}

/// Appends to a file others write too (`$GITHUB_STEP_SUMMARY`); a failure
/// is only a warning, the reports proper are the verdict.
fn append(path: &Path, text: &str) {
    use std::io::Write;
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(err) = appended {
        eprintln!("warning: cannot append to {}: {err}", path.display());
    }
}

/// Files written whole: to a temporary file beside the target, synced,
/// then renamed over it. A rename within a directory is atomic, so a
/// reader sees the old file or the new one, never a part.
mod whole {
    use std::fs::{self, File, OpenOptions};
    use std::io::{self, Write};
    use std::path::{Path, PathBuf};

    /// Creates `path`'s directory and proves a file can be created beside
    /// `path`; leaves neither that file nor `path`.
    pub fn check(path: &Path) -> io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => Err(io::Error::other("is a directory")),
            // A terminal, pipe or device is written in place: it keeps no
            // partial file to read later.
            Ok(meta) if !meta.is_file() => OpenOptions::new().append(true).open(path).map(drop),
            _ => {
                let probe = temporary(&real(path))?;
                File::create(&probe)?;
                fs::remove_file(&probe)
            }
        }
    }

    /// Replaces `path` with `text` at once; in place for a terminal or pipe.
    pub fn write(path: &Path, text: &str) -> io::Result<()> {
        if fs::metadata(path).is_ok_and(|meta| !meta.is_file() && !meta.is_dir()) {
            return fs::write(path, text);
        }
        let target = real(path);
        let temporary = temporary(&target)?;
        let written = synced(&temporary, text).and_then(|()| fs::rename(&temporary, &target));
        if written.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        written
    }

    /// Writes `text` to a new file and waits for the disk: after a crash
    /// the rename must not land before the data it names.
    fn synced(path: &Path, text: &str) -> io::Result<()> {
        let mut file = File::create(path)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()
    }

    /// The file a symlink points to, so the link is written through and
    /// not replaced; `path` itself when it does not exist yet.
    fn real(path: &Path) -> PathBuf {
        fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
    }

    /// A hidden name beside `path`, this process's own so that two runs
    /// writing the same report do not share it.
    fn temporary(path: &Path) -> io::Result<PathBuf> {
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::other("not a file name"))?;
        let name = format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id());
        Ok(path.with_file_name(name))
    }
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    pub run_id: String,
    pub seed: u64,
    pub target: String,
    pub scenarios: Vec<RunStats>,
    /// Scenario name of each bucket's first finding is in the finding.
    pub buckets: Vec<Bucket>,
    pub total_findings: usize,
    pub findings_file: Option<String>,
    /// Findings a failed write kept out of `findings_file` (each one was
    /// printed to stderr instead).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unwritten_findings: Option<Unwritten>,
    /// Buckets found that the baseline accepts: reported, not failing.
    pub accepted: Vec<String>,
    /// Baseline entries this run did not produce.
    pub stale: Vec<String>,
    /// Contract snapshots written as `.snap.new`, waiting for review.
    pub pending_snapshots: Vec<String>,
    /// Which operations of an OpenAPI document were reached (`--openapi`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<crate::coverage::Coverage>,
    /// What the self-test planted and what the judges named (`--self-test`).
    /// Not read back: a shard runs no self-test.
    #[serde(skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub self_test: Option<crate::self_test::Sensitivity>,
    /// The shard of a run this report is (`--shard`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::Part>,
    /// The shards this report merges (`crosstalk merge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<crate::shard::Merged>,
}

impl RunReport {
    /// The report of a session that runs no scenario file of its own (a
    /// fuzz run, a replay): the findings `sink` kept in `dir`, nothing more.
    pub fn of_findings(
        run_id: String,
        seed: u64,
        target: String,
        sink: &crate::findings::FindingSink,
        dir: &Path,
    ) -> RunReport {
        let total = sink.total();
        RunReport {
            run_id,
            seed,
            target,
            scenarios: Vec::new(),
            buckets: sink.buckets(),
            total_findings: total,
            findings_file: (total > 0).then(|| dir.join("findings.jsonl").display().to_string()),
            unwritten_findings: sink.unwritten(),
            accepted: Vec::new(),
            stale: Vec::new(),
            pending_snapshots: Vec::new(),
            coverage: None,
            self_test: None,
            shard: None,
            merged: None,
        }
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
        if let Some(line) = self.shards_line() {
            let _ = writeln!(out, "{line}");
        }
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
        let _ = writeln!(out, "detection health:");
        for (scenario, lines) in self.health() {
            let _ = writeln!(out, "  {scenario}:");
            for line in lines {
                let _ = writeln!(out, "    {line}");
            }
        }
        if let Some(test) = &self.self_test {
            let _ = writeln!(
                out,
                "self-test (planted defects; none is a finding of the target):"
            );
            for line in test.lines() {
                let _ = writeln!(out, "  {line}");
            }
            let blind = test.blind_spots();
            if !test.passed() && !blind.is_empty() {
                let _ = writeln!(
                    out,
                    "BLIND SPOTS (see the README's self-test section for fixes):"
                );
                for line in blind {
                    let _ = writeln!(out, "  {line}");
                }
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "{}", self.headline(requests));
        if let Some(coverage) = &self.coverage {
            let (reached, all) = (
                coverage.reached.len(),
                coverage.reached.len() + coverage.unreached.len(),
            );
            let _ = writeln!(
                out,
                "coverage: {reached} of {all} operations of the OpenAPI document reached"
            );
            for op in &coverage.unreached {
                let _ = writeln!(out, "  never reached: {op}");
            }
        }
        if let Some((headline, lines)) = self.foreign_writes() {
            let _ = writeln!(out, "{headline}:");
            for line in lines {
                let _ = writeln!(out, "  {line}");
            }
        }
        if self.buckets.is_empty() {
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
        if let Some(whereabouts) = self.where_findings_are() {
            let _ = writeln!(out);
            let _ = writeln!(out, "{whereabouts}");
        }
        self.tail(&mut out);
        out
    }

    /// Where the findings are: the file, or, when writing to it failed,
    /// which of them only stderr holds. Never claims the file holds what a
    /// failed write kept out of it.
    fn where_findings_are(&self) -> Option<String> {
        let file = self.findings_file.as_ref()?;
        let Some(Unwritten { count, error }) = &self.unwritten_findings else {
            return Some(format!("every finding is in {file}"));
        };
        let total = self.total_findings;
        Some(if *count >= total {
            format!(
                "{count} finding(s) could not be written to {file} ({error}); every finding was printed to stderr as a JSON line"
            )
        } else {
            format!(
                "{count} of {total} finding(s) could not be written to {file} ({error}); those {count} were printed to stderr as JSON lines, the first {} are in the file",
                total - count
            )
        })
    }

    /// The writes that named another instance's data and went through (or
    /// changed it), by the witness's verdict: a headline and a line each
    /// (the first ten).
    fn foreign_writes(&self) -> Option<(String, Vec<String>)> {
        let writes: Vec<&ForeignWrite> = self
            .scenarios
            .iter()
            .flat_map(|s| &s.foreign_writes)
            .collect();
        if writes.is_empty() {
            return None;
        }
        let count = |v: WriteVerdict| writes.iter().filter(|w| w.verdict == v).count();
        let headline = format!(
            "{} write(s) to another instance's data went through: {} confirmed by the owner's reads (tamper), {} cleared (no change seen), {} unconfirmed (the owner wrote at the same moment, or no read of its own to compare)",
            writes.len(),
            count(WriteVerdict::Confirmed),
            count(WriteVerdict::Cleared),
            count(WriteVerdict::Unconfirmed)
        );
        let mut lines: Vec<String> = writes
            .iter()
            .take(10)
            .map(|w| {
                format!(
                    "{} {} → {} by {} to {}'s data at `{}`: {}",
                    w.verdict.as_str(),
                    w.request,
                    w.status,
                    w.writer,
                    w.victim,
                    w.step,
                    w.reason
                )
            })
            .collect();
        if writes.len() > 10 {
            lines.push(format!(
                "… and {} more in the JSON report",
                writes.len() - 10
            ));
        }
        Some((headline, lines))
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
        if !f.curl.is_empty() {
            let _ = writeln!(out, "  rerun:    {}", f.curl);
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

    /// No finding outside the baseline, every step sent, not interrupted.
    pub fn clean(&self) -> bool {
        self.conclusion() == Conclusion::Clean
    }

    /// What the run established; the exit code and every report follow it.
    pub fn conclusion(&self) -> Conclusion {
        let new: Vec<&Bucket> = self.new_buckets().collect();
        if new.iter().any(|b| !b.first.kind.incomplete()) {
            Conclusion::Found
        } else if self.interrupted() {
            Conclusion::Interrupted
        } else if !new.is_empty()
            || self
                .scenarios
                .iter()
                .any(|s| s.not_sent > 0 || !s.health.sees())
            || self.self_test_blind()
            || !self.missing_shards().is_empty()
        {
            Conclusion::Incomplete
        } else {
            Conclusion::Clean
        }
    }

    /// The line that says what the run established (the summary's last).
    pub fn verdict_line(&self) -> String {
        self.headline(self.scenarios.iter().map(|s| s.requests).sum())
    }

    /// One line that says what the run established.
    fn headline(&self, requests: u64) -> String {
        let sum = |f: fn(&RunStats) -> u64| self.scenarios.iter().map(f).sum::<u64>();
        let (errors, skipped) = (sum(|s| s.transport_errors), sum(|s| s.skipped));
        let not_sent = sum(|s| s.not_sent);
        let undone = format!(
            "{errors} request(s) without an answer, {skipped} step run(s) that could not be sent, {not_sent} not sent after their instance stopped"
        );
        let stopped = if self.interrupted() {
            " Interrupted before every step ran."
        } else {
            ""
        };
        let not_applicable = match sum(|s| s.not_applicable) {
            0 => String::new(),
            n => format!(" ({n} step run(s) did not apply: an optional value was absent)"),
        };
        let probes = match sum(|s| s.probes) {
            0 => String::new(),
            n => format!(" ({n} of them probes as identities that may not see the data they name)"),
        };
        let line = match self.conclusion() {
            Conclusion::Clean => format!(
                "clean: {requests} requests{probes}, every step ran{not_applicable}, no response showed anyone another's data, no write changed it."
            ),
            // A stop leaves steps unsent: only the stop's own words say so.
            Conclusion::Found if self.interrupted() => format!("failed: {requests} requests."),
            Conclusion::Found if errors + skipped + not_sent == 0 => {
                format!("failed: {requests} requests, every step ran.")
            }
            Conclusion::Found => format!("failed: {requests} requests; {undone}."),
            Conclusion::Incomplete if !self.missing_shards().is_empty() => format!(
                "incomplete: no report of {} shard(s) of the run, whose instances' work is not in this verdict; no verdict on the target.",
                self.missing_shards().len()
            ),
            Conclusion::Incomplete if self.blind() => format!(
                "incomplete: the judges could not see (see BLIND above){}; no verdict on the target.",
                if errors + skipped + not_sent > 0 {
                    format!(", and the run could not do all its work ({undone})")
                } else {
                    String::new()
                }
            ),
            Conclusion::Incomplete if self.self_test_blind() && errors + skipped + not_sent == 0 => {
                "incomplete: the self-test's sensitivity is below its minimum: the judges are blind where listed under BLIND SPOTS; no verdict on the target.".to_string()
            }
            Conclusion::Incomplete => format!(
                "incomplete: the run could not do all its work ({undone}); no verdict on the target."
            ),
            Conclusion::Interrupted => {
                return format!(
                    "interrupted: the run stopped before every step ran ({requests} requests judged); not a pass."
                );
            }
        };
        format!("{line}{stopped}")
    }

    /// Whether a self-test ran and its judges named too few of its plants.
    fn self_test_blind(&self) -> bool {
        self.self_test.as_ref().is_some_and(|s| !s.passed())
    }

    /// Whether some scenario's judges could not see.
    fn blind(&self) -> bool {
        self.scenarios.iter().any(|s| !s.health.sees())
    }

    /// Each scenario's detection health, a heading and its lines.
    fn health(&self) -> Vec<(String, Vec<String>)> {
        (self.scenarios.iter())
            .map(|s| (s.scenario.clone(), s.health.lines()))
            .collect()
    }

    /// The shards a merged report has no report of.
    pub fn missing_shards(&self) -> &[usize] {
        self.merged.as_ref().map_or(&[], |m| m.missing.as_slice())
    }

    /// Which shard of which run this is, or which shards it merges.
    fn shards_line(&self) -> Option<String> {
        if let Some(part) = &self.shard {
            return Some(format!(
                "shard {} of run `{}`: its slice of every population actor; every canary of the run recognised",
                part.shard, part.run
            ));
        }
        let merged = self.merged.as_ref()?;
        let list = |shards: &[usize]| {
            let names: Vec<String> = shards.iter().map(|k| k.to_string()).collect();
            names.join(", ")
        };
        let missing = match merged.missing.as_slice() {
            [] => String::new(),
            missing => format!("; MISSING shard(s) {} (work not done)", list(missing)),
        };
        Some(format!(
            "merged: shard(s) {} of {} of run `{}`{missing}",
            list(&merged.shards),
            merged.of,
            merged.run
        ))
    }

    /// Whether a stop cut the run short.
    pub fn interrupted(&self) -> bool {
        self.scenarios.iter().any(|s| s.interrupted)
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
        let verdict = self.conclusion().as_str();
        let _ = writeln!(out, "## crosstalk {verdict}\n");
        if self.interrupted() && self.conclusion() != Conclusion::Interrupted {
            let _ = writeln!(out, "Interrupted before every step ran.\n");
        }
        let _ = writeln!(
            out,
            "Run `{}`, seed `{}`, against {}.\n",
            self.run_id, self.seed, self.target
        );
        if let Some(line) = self.shards_line() {
            let _ = writeln!(out, "{}\n", line.replace('`', "'"));
        }
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
        let _ = writeln!(out, "\n### Detection health\n");
        for (scenario, lines) in self.health() {
            let _ = writeln!(out, "- **{scenario}**: {}", tick(&lines.join("; ")));
        }
        if let Some(test) = &self.self_test {
            out.push_str(&test.markdown());
        }
        if let Some((headline, lines)) = self.foreign_writes() {
            let _ = writeln!(out, "\n{headline}:\n");
            for line in lines {
                let _ = writeln!(out, "- {}", tick(&line));
            }
        }
        if let Some(whereabouts) = self
            .where_findings_are()
            .filter(|_| self.unwritten_findings.is_some())
        {
            let _ = writeln!(out, "\n**{}**", tick(&whereabouts));
        }
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

    /// The report as JSON, with its conclusion and the exit code it means.
    pub fn json(&self) -> String {
        let mut json = serde_json::to_value(self).expect("reports serialize");
        json["conclusion"] = serde_json::to_value(self.conclusion()).expect("serializes");
        json["interrupted"] = self.interrupted().into();
        serde_json::to_string_pretty(&json).expect("reports serialize")
    }

    /// Writes [`json`](Self::json) to `path`, whole (see [`Outputs`]).
    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        whole::write(path, &self.json())
    }

    /// JUnit XML: a suite per scenario, a test case per step × finding kind
    /// (a failure for what the target did, an error for work not done), and
    /// a case that fails when the scenario was interrupted.
    pub fn junit(&self, steps: &[(String, Vec<String>)]) -> String {
        let mut report = quick_junit::Report::new("crosstalk");
        for (scenario, step_names) in steps {
            let mut suite = quick_junit::TestSuite::new(scenario.as_str());
            let stats = self.scenarios.iter().find(|s| &s.scenario == scenario);
            if let Some(stats) = stats {
                suite.set_time(stats.elapsed);
                health_properties(&mut suite, &stats.health);
            }
            for step in step_names {
                for kind in FindingKind::ALL {
                    suite.add_test_case(self.junit_case(scenario, step, kind));
                }
            }
            let ran = stats.is_some_and(|s| !s.interrupted && s.not_sent == 0);
            if let Some(stats) = stats.filter(|s| !s.health.sees()) {
                let mut status =
                    quick_junit::TestCaseStatus::non_success(quick_junit::NonSuccessKind::Error);
                status.set_message(stats.health.blind.join("; "));
                status.set_type("blind");
                let mut case = quick_junit::TestCase::new("the judges could see", status);
                case.set_classname(scenario.as_str());
                suite.add_test_case(case);
            }
            let mut status = quick_junit::TestCaseStatus::success();
            if !ran {
                status =
                    quick_junit::TestCaseStatus::non_success(quick_junit::NonSuccessKind::Error);
                status.set_message("the scenario did not run every step (interrupted, not reached, or instances stopped)");
            }
            let mut case = quick_junit::TestCase::new("every step ran", status);
            case.set_classname(scenario.as_str());
            suite.add_test_case(case);
            report.add_test_suite(suite);
        }
        if let Some(merged) = &self.merged {
            report.add_test_suite(shards_suite(merged));
        }
        report.to_string().expect("JUnit serializes")
    }

    fn junit_case(&self, scenario: &str, step: &str, kind: FindingKind) -> quick_junit::TestCase {
        let hits: Vec<&Bucket> = self
            .new_buckets()
            .filter(|b| {
                b.first.scenario == scenario && b.first.step == step && b.first.kind == kind
            })
            .collect();
        let status = match hits.first() {
            None => quick_junit::TestCaseStatus::success(),
            Some(first) => {
                let failure = if kind.incomplete() {
                    quick_junit::NonSuccessKind::Error
                } else {
                    quick_junit::NonSuccessKind::Failure
                };
                let mut status = quick_junit::TestCaseStatus::non_success(failure);
                status.set_message(first.first.summary.as_str());
                status.set_type(kind.as_str());
                let details: Vec<String> = hits
                    .iter()
                    .map(|b| format!("{} ({}×): {}", b.key, b.count, b.first.summary))
                    .collect();
                status.set_description(details.join("\n"));
                status
            }
        };
        let mut case = quick_junit::TestCase::new(format!("{step} [{}]", kind.as_str()), status);
        case.set_classname(scenario);
        case
    }
}

/// A merge's suite: one case that fails when a shard's report is missing.
fn shards_suite(merged: &crate::shard::Merged) -> quick_junit::TestSuite {
    let mut suite = quick_junit::TestSuite::new("shards");
    let mut status = quick_junit::TestCaseStatus::success();
    if !merged.missing.is_empty() {
        status = quick_junit::TestCaseStatus::non_success(quick_junit::NonSuccessKind::Error);
        let missing: Vec<String> = (merged.missing.iter())
            .map(|k| format!("{k}/{}", merged.of))
            .collect();
        status.set_message(format!("no report of shard(s) {}", missing.join(", ")));
    }
    let mut case = quick_junit::TestCase::new("every shard reported", status);
    case.set_classname("shards");
    suite.add_test_case(case);
    suite
}

/// The detection health as a JUnit suite's properties.
fn health_properties(suite: &mut quick_junit::TestSuite, health: &crate::health::Health) {
    use quick_junit::Property;
    for pair in &health.probes {
        let name = format!("crosstalk.probes.{}->{}", pair.prober, pair.owner);
        suite.add_property(Property::new(
            name,
            format!("{}/{}", pair.answered, pair.sent),
        ));
    }
    let figures = [
        ("crosstalk.accounts.merged", health.merged.len() as u64),
        ("crosstalk.credentials.unattributed", health.unattributed),
        ("crosstalk.writes.watched", health.watched_writes),
    ];
    for (name, value) in figures {
        suite.add_property(Property::new(name, value.to_string()));
    }
    for (i, reason) in health.blind.iter().enumerate() {
        suite.add_property(Property::new(
            format!("crosstalk.blind.{i}"),
            reason.as_str(),
        ));
    }
}
