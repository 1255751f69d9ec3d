//! The HTML report (`--html FILE`): one self-contained page for the people
//! who must act on a leak. A verdict banner that agrees with the exit code,
//! the exposure graph (who saw or changed whose data), a card per bucket
//! with the evidence marked in place, the foreign writes, the OpenAPI
//! coverage and any section a command adds (the self-test's sensitivity).
//!
//! Everything is inline (CSS, SVG, a little script) and nothing is fetched,
//! so the file reads as a CI artifact and in a mail client that blocks
//! scripts: the script only filters the cards when an edge is clicked.
//! Every string is escaped by the template (`maud`), so a response holding
//! `<script>` shows as text; findings carry credentials already redacted,
//! as every other report does. The page is rendered from a [`RunReport`]
//! and the findings behind it, so any command that has those (`run`,
//! `fuzz`, `replay`, a merge of shards) renders the same page.

pub mod evidence;
pub mod graph;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::findings::{Bucket, Finding, FindingKind};
use crate::report::RunReport;
use crate::session::Exit;

pub use graph::Graph;

/// Buckets shown as full cards; past them a card says what and how often.
const FULL_CARDS: usize = 150;
/// Buckets with a card at all (the gravest kinds come first); the rest are
/// counted, and are in the JSON report and the findings file. A page of
/// thousands of cards is too slow to open and too long to read.
const MAX_CARDS: usize = 500;
/// Findings listed under one bucket's card.
const ROWS_PER_BUCKET: usize = 25;
/// Findings listed over the whole page; the findings file has the rest.
const ROWS_PER_PAGE: usize = 1_000;
/// Foreign writes listed.
const WRITES_SHOWN: usize = 500;
/// Response headers shown on a card.
const HEADERS_SHOWN: usize = 12;

const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("filter.js");

/// A section a command adds to the page: a heading, a sentence and a
/// table (the self-test's sensitivity table, with id `sensitivity`).
#[derive(Debug, Clone, Default)]
pub struct Section {
    pub id: String,
    pub title: String,
    pub intro: String,
    pub head: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// A self-test's sensitivity as a section: a line per kind, then per step.
fn sensitivity(test: &crate::self_test::Sensitivity) -> Section {
    let ratio = |r: crate::self_test::Ratio| match r.value() {
        Some(v) => format!("{v:.2}"),
        None => "-".into(),
    };
    let kinds = (test.by_kind.iter()).map(|(defect, r)| {
        let cells = [defect.as_str().to_string(), String::new()];
        let figures = [r.planted.to_string(), r.detected.to_string(), ratio(*r)];
        cells
            .into_iter()
            .chain(figures)
            .chain([String::new()])
            .collect()
    });
    let steps = test.steps.iter().map(|line| {
        let missed = match &line.not_planted {
            Some(reason) => format!("not planted: {reason}"),
            None => (line.missed.iter())
                .map(|(r, n)| format!("{r} ×{n}"))
                .collect::<Vec<_>>()
                .join("; "),
        };
        vec![
            format!("{} `{}`", line.scenario, line.step),
            line.endpoint.clone(),
            line.ratio.planted.to_string(),
            line.ratio.detected.to_string(),
            ratio(line.ratio),
            missed,
        ]
    });
    Section {
        id: "sensitivity".into(),
        title: "Self-test".into(),
        intro: format!(
            "Defects planted in the run's traffic, none a finding of the target: sensitivity {} (minimum {:.2}), {} of {} named by a judge.",
            ratio(test.overall),
            test.min,
            test.overall.detected,
            test.overall.planted
        ),
        head: [
            "planted as",
            "endpoint",
            "planted",
            "detected",
            "share",
            "missed, and why",
        ]
        .map(String::from)
        .to_vec(),
        rows: kinds.chain(steps).collect(),
    }
}

/// What one page shows.
pub struct Page<'a> {
    /// The command reported: `run`, `fuzz`, `replay`, `merge`.
    pub command: &'a str,
    pub report: &'a RunReport,
    /// Every finding behind the report's buckets, in the order found.
    pub findings: Vec<Finding>,
    /// The exit code the command returns: the banner says it.
    pub exit: Exit,
    /// What the run established, in a line (the terminal's last line).
    pub headline: String,
    /// What went wrong on the harness's side, when it decided the exit code.
    pub problem: Option<String>,
    /// Figures the command adds (`programs run`), after the report's own.
    pub figures: Vec<(String, String)>,
    /// The reproduction file of a bucket, by bucket key.
    pub reproductions: BTreeMap<String, String>,
    /// Sections the command adds, after the report's own.
    pub sections: Vec<Section>,
}

impl<'a> Page<'a> {
    /// The page of `report` for `command`, which exits with `exit`, with
    /// the buckets' first findings (see [`read_findings`] for every one).
    pub fn new(command: &'a str, report: &'a RunReport, exit: Exit) -> Page<'a> {
        Page {
            command,
            report,
            findings: report.buckets.iter().map(|b| b.first.clone()).collect(),
            exit,
            headline: report.verdict_line(),
            problem: None,
            figures: Vec::new(),
            reproductions: BTreeMap::new(),
            sections: report.self_test.iter().map(sensitivity).collect(),
        }
    }

    /// The page as one HTML document.
    pub fn render(&self) -> String {
        let graph = Graph::of(&self.findings);
        let title = format!("crosstalk {} {}", self.command, word(self.exit));
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    // Nothing leaves the file: no fetch, no font, no frame.
                    meta http-equiv="Content-Security-Policy"
                        content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) }
                    style { (PreEscaped(STYLE)) }
                }
                body {
                    (self.banner(&title))
                    main {
                        (self.scenarios())
                        (self.exposure(&graph))
                        (self.bucket_table())
                        (self.cards(&graph))
                        (self.writes())
                        (self.coverage())
                        @for section in &self.sections { (table_section(section)) }
                        (self.baseline())
                    }
                    footer {
                        "crosstalk " (env!("CARGO_PKG_VERSION")) " · run " code { (self.report.run_id) }
                        " · seed " code { (self.report.seed) } " · against " (self.report.target)
                        ". Credentials are redacted; everything the target sent is shown as text."
                    }
                    script { (PreEscaped(SCRIPT)) }
                }
            }
        }
        .into_string()
    }

    /// The verdict: the word and exit code, the headline and the figures.
    fn banner(&self, title: &str) -> Markup {
        let harm: Vec<&Finding> = self.findings.iter().filter(|f| f.kind.harm()).collect();
        let distinct = |f: fn(&Finding) -> Option<&str>| {
            harm.iter()
                .filter_map(|x| f(x))
                .collect::<BTreeSet<_>>()
                .len()
        };
        let victims = distinct(|f| f.victim.as_deref());
        let observers = distinct(|f| (f.kind == FindingKind::Leak).then_some(f.observer.as_str()));
        let endpoints = distinct(|f| Some(f.endpoint.as_str()));
        let requests: u64 = self.report.scenarios.iter().map(|s| s.requests).sum();
        let blind: Vec<&String> = (self.report.scenarios.iter())
            .flat_map(|s| &s.health.blind)
            .collect();
        let mut figures = vec![
            (
                "findings".to_string(),
                self.report.total_findings.to_string(),
            ),
            ("buckets".into(), self.report.buckets.len().to_string()),
            (
                "new buckets".into(),
                self.report.new_buckets().count().to_string(),
            ),
            (
                "identities whose data was seen or changed".into(),
                victims.to_string(),
            ),
            (
                "identities that saw another's data".into(),
                observers.to_string(),
            ),
            ("endpoints".into(), endpoints.to_string()),
        ];
        if !self.report.scenarios.is_empty() {
            figures.insert(0, ("requests".into(), requests.to_string()));
        }
        figures.extend(self.figures.iter().cloned());
        html! {
            header #verdict class=(format!("verdict {}", word(self.exit))) role="status" {
                h1 { (title) }
                p.exit { "exit code " strong { (self.exit.code()) } }
                p.headline { (self.headline) }
                @if let Some(problem) = &self.problem { p.problem { (problem) } }
                @if !self.report.scenarios.is_empty() { p.health {
                    @if blind.is_empty() {
                        "Detection health: the judges could see in every scenario."
                    } @else {
                        "Detection health: BLIND. " @for b in &blind { (b) ". " }
                    }
                } }
                dl.figures {
                    @for (name, value) in &figures { div { dt { (name) } dd { (value) } } }
                }
                p.run { "Run " code { (self.report.run_id) } ", seed " code { (self.report.seed) } ", against " (self.report.target) }
            }
        }
    }

    /// Each scenario's figures and detection health.
    fn scenarios(&self) -> Markup {
        let scenarios = &self.report.scenarios;
        if scenarios.is_empty() {
            return html! {};
        }
        let findings = |name: &str| -> usize {
            (self.report.buckets.iter())
                .filter(|b| b.first.scenario == name)
                .map(|b| b.count)
                .sum()
        };
        html! {
            section #scenarios {
                h2 { "Scenarios" }
                table {
                    thead { tr { th { "scenario" } th.n { "instances" } th.n { "requests" } th.n { "probes" } th.n { "findings" } th.n { "time" } th { "detection health" } } }
                    tbody {
                        @for s in scenarios {
                            tr {
                                td { (s.scenario) @if s.interrupted { " (interrupted)" } }
                                td.n { (s.instances) } td.n { (s.requests) } td.n { (s.probes) }
                                td.n { (findings(&s.scenario)) }
                                td.n { (format!("{:.1}s", s.elapsed.as_secs_f64())) }
                                td {
                                    ul.health {
                                        @for line in s.health.lines() {
                                            li class=[line.starts_with("BLIND").then_some("blind")] { (line) }
                                        }
                                        @if let Some(why) = &s.gave_up { li.blind { "gave up: " (why) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The exposure graph, and the same edges as a table for readers that
    /// show no SVG.
    fn exposure(&self, graph: &Graph) -> Markup {
        html! {
            section #graph {
                h2 { "Who saw or changed whose data" }
                @if graph.is_empty() {
                    p { "No leak and no tampering: nothing to draw." }
                } @else {
                    p {
                        "An arrow from each identity whose data was exposed to the one that saw it (leak, red), and from each writer to the identity whose data it changed (tamper, purple); thicker for more findings."
                        @if graph.grouped { " More than " (graph::MAX_NODES) " identities: shown by actor." }
                        span.js-only { " Click an arrow or a row to show only its findings." }
                    }
                    p #filter hidden { span #filter-what {} " " button #show-all type="button" { "show every finding" } }
                    figure { (graph.svg()) }
                    table #edges {
                        thead { tr { th { "whose data" } th { "seen or changed by" } th { "kind" } th.n { "findings" } } }
                        tbody {
                            @for (i, (edge, weight)) in graph.edges.iter().enumerate() {
                                tr data-edge=(format!("e{i}")) tabindex="0" {
                                    @let (owner, other) = if edge.kind == FindingKind::Tamper { (&edge.to, &edge.from) } else { (&edge.from, &edge.to) };
                                    td { (owner) } td { (other) } td { (edge.kind.as_str()) } td.n { (weight) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Every bucket in a line, linked to its card.
    fn bucket_table(&self) -> Markup {
        let buckets = &self.report.buckets;
        html! {
            section #buckets {
                h2 { "Buckets" }
                @if buckets.is_empty() {
                    p { "Nothing was found." }
                } @else {
                    p { (self.report.total_findings) " finding(s) in " (buckets.len()) " bucket(s) (scenario × endpoint × kind × location); " (self.report.accepted.len()) " accepted by the baseline." }
                    table {
                        thead { tr { th { "kind" } th { "bucket" } th.n { "findings" } th { "baseline" } } }
                        tbody {
                            @for (i, b) in self.carded().iter().enumerate() {
                                tr {
                                    td { span class=(format!("kind {}", b.first.kind.as_str())) { (b.first.kind.as_str()) } }
                                    td { a href=(format!("#b{i}")) { (b.key) } }
                                    td.n { (b.count) }
                                    td { @if self.accepted(b) { "accepted" } @else { "new" } }
                                }
                            }
                        }
                    }
                    (self.uncarded())
                }
            }
        }
    }

    /// The buckets that get a card.
    fn carded(&self) -> &[Bucket] {
        let buckets = &self.report.buckets;
        &buckets[..buckets.len().min(MAX_CARDS)]
    }

    /// What the buckets past [`MAX_CARDS`] hold, by kind.
    fn uncarded(&self) -> Markup {
        let rest = &self.report.buckets[self.carded().len()..];
        if rest.is_empty() {
            return html! {};
        }
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for b in rest {
            *kinds.entry(b.first.kind.as_str()).or_default() += b.count;
        }
        let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
        html! {
            p.more {
                (rest.len()) " more bucket(s), with " (kinds.join(", ")) " finding(s), have no card here: every one is in the JSON report and the findings file."
            }
        }
    }

    fn accepted(&self, bucket: &Bucket) -> bool {
        self.report.accepted.contains(&bucket.key)
    }

    /// A card per bucket: full for the first [`FULL_CARDS`], a line after.
    /// Each card names the graph's edges its findings stand for.
    fn cards(&self, graph: &Graph) -> Markup {
        let mut by_bucket: BTreeMap<String, Vec<&Finding>> = BTreeMap::new();
        for finding in &self.findings {
            by_bucket.entry(finding.bucket()).or_default().push(finding);
        }
        let mut rows_left = ROWS_PER_PAGE;
        let mut cards = Vec::with_capacity(self.report.buckets.len());
        for (i, bucket) in self.carded().iter().enumerate() {
            let found =
                (by_bucket.get(&bucket.key).cloned()).unwrap_or_else(|| vec![&bucket.first]);
            let edges: BTreeSet<usize> = found.iter().filter_map(|f| graph.edge_for(f)).collect();
            let edges: Vec<String> = edges.iter().map(|e| format!("e{e}")).collect();
            let rows = found.len().min(ROWS_PER_BUCKET).min(rows_left);
            rows_left -= rows;
            cards.push(html! {
                article.card id=(format!("b{i}")) data-edges=(edges.join(" "))
                    data-kind=(bucket.first.kind.as_str()) {
                    (self.card_head(bucket))
                    @if i < FULL_CARDS { (self.card_body(bucket)) }
                    (finding_rows(graph, &found[..rows], found.len()))
                }
            });
        }
        html! {
            section #findings {
                h2 { "Findings" }
                @for card in cards { (card) }
                (self.uncarded())
            }
        }
    }

    fn card_head(&self, bucket: &Bucket) -> Markup {
        let f = &bucket.first;
        html! {
            h3 {
                span class=(format!("kind {}", f.kind.as_str())) { (f.kind.as_str()) } " "
                (bucket.key) " "
                span.count { "(" (bucket.count) "×" @if self.accepted(bucket) { ", accepted by the baseline" } ")" }
            }
            p.sentence { (f.summary) }
        }
    }

    /// The first finding of a bucket in full: where, the exchange with the
    /// evidence marked, the observer's trace, how to ask again.
    fn card_body(&self, bucket: &Bucket) -> Markup {
        let f = &bucket.first;
        let x = &f.exchange;
        // The trace ends with the finding's own request, or it is added.
        let sent = format!("{} {} → {}", x.method, x.path, x.status);
        let own = f.trace.last().is_some_and(|l| l.ends_with(&sent));
        html! {
            dl.where {
                div { dt { "scenario" } dd { (f.scenario) } }
                div { dt { "step" } dd { (f.step) } }
                div { dt { "endpoint" } dd { code { (f.endpoint) } } }
                @if !f.location.is_empty() { div { dt { "location" } dd { code { (f.location) } } } }
                @if !f.also.is_empty() { div { dt { "also at" } dd { (f.also.join(", ")) } } }
            }
            @if f.kind == FindingKind::Drift {
                h4 { "Contract difference" }
                pre.diff { (x.response_excerpt) }
            } @else {
                h4 { "Request" }
                pre.request {
                    (x.method) " " (evidence::with_canaries(&x.path, &f.run_id))
                    @if x.status > 0 { " → " (x.status) }
                    @if !x.request_body.is_empty() { "\n\n" (evidence::with_canaries(&x.request_body, &f.run_id)) }
                }
                @if !x.response_excerpt.is_empty() {
                    h4 { "Response" @if f.kind == FindingKind::Leak { " (excerpt at " (f.location) ")" } }
                    pre.response { (evidence::response(f)) }
                }
                @if !x.response_headers.is_empty() {
                    details {
                        summary { "response headers" }
                        pre { @for (name, value) in x.response_headers.iter().take(HEADERS_SHOWN) { (name) ": " (value) "\n" } }
                    }
                }
            }
            (witnessed(f))
            @if !f.trace.is_empty() {
                h4 { "Trace of " (f.observer) }
                ol.timeline {
                    @for line in &f.trace[..f.trace.len() - usize::from(own)] { li { (line) } }
                    @if own {
                        li.here { (f.trace[f.trace.len() - 1]) }
                    } @else if x.status > 0 {
                        li.here { "then: " (x.method) " " (x.path) " → " (x.status) }
                    }
                }
            }
            @if !f.curl.is_empty() {
                h4 { "Ask again" }
                pre.curl { code { (f.curl) } }
            }
            @if let Some(file) = self.reproductions.get(&bucket.key) {
                p.repro { "Reproduction: " code { (file) } }
            }
        }
    }

    /// The writes that named another identity's data, with the witness's
    /// verdict on each.
    fn writes(&self) -> Markup {
        let writes: Vec<_> = (self.report.scenarios.iter())
            .flat_map(|s| &s.foreign_writes)
            .collect();
        if writes.is_empty() {
            return html! {};
        }
        html! {
            section #writes {
                h2 { "Writes to another identity's data" }
                p { (writes.len()) " write(s) went through (or changed data); the owner's own reads before and after say whether its data changed." }
                table {
                    thead { tr { th { "verdict" } th { "request" } th.n { "status" } th { "writer" } th { "owner" } th { "step" } th { "why" } } }
                    tbody {
                        @for w in writes.iter().take(WRITES_SHOWN) {
                            tr {
                                td { span class=(format!("verdict-{}", w.verdict.as_str())) { (w.verdict.as_str()) } }
                                td { code { (w.request) } } td.n { (w.status) }
                                td { (w.writer) } td { (w.victim) } td { (w.step) } td { (w.reason) }
                            }
                        }
                    }
                }
                @if writes.len() > WRITES_SHOWN { p { "… and " (writes.len() - WRITES_SHOWN) " more in the JSON report." } }
            }
        }
    }

    fn coverage(&self) -> Markup {
        let Some(coverage) = &self.report.coverage else {
            return html! {};
        };
        let all = coverage.reached.len() + coverage.unreached.len();
        html! {
            section #coverage {
                h2 { "OpenAPI coverage" }
                p { (coverage.reached.len()) " of " (all) " operations of the document reached." }
                @if !coverage.unreached.is_empty() {
                    h4 { "Never reached" }
                    ul { @for op in &coverage.unreached { li { code { (op) } } } }
                }
                details {
                    summary { "reached" }
                    ul { @for op in &coverage.reached { li { code { (op) } } } }
                }
            }
        }
    }

    fn baseline(&self) -> Markup {
        let r = self.report;
        html! {
            section #files {
                h2 { "Baseline and files" }
                @if let Some(file) = &r.findings_file { p { "Every finding: " code { (file) } } }
                @if let Some(unwritten) = &r.unwritten_findings {
                    p.problem { (unwritten.count) " finding(s) could not be written to the findings file (" (unwritten.error) "); they were printed to stderr." }
                }
                @if self.findings.len() < r.total_findings {
                    p { "This page was rendered from " (self.findings.len()) " of the " (r.total_findings) " findings." }
                }
                @for (title, keys) in [("Accepted by the baseline", &r.accepted), ("Stale baseline entries (no longer found)", &r.stale)] {
                    @if !keys.is_empty() { h4 { (title) } ul { @for key in keys { li { code { (key) } } } } }
                }
                @if !r.pending_snapshots.is_empty() {
                    p { (r.pending_snapshots.len()) " contract snapshot(s) new or changed, written as .snap.new, await review." }
                }
            }
        }
    }
}

/// A bucket's findings, one row each, with the edge each stands for;
/// `all` of them in the bucket.
fn finding_rows(graph: &Graph, shown: &[&Finding], all: usize) -> Markup {
    if all <= 1 {
        return html! {};
    }
    if shown.is_empty() {
        return html! { p.more { (all) " finding(s): listed in the findings file." } };
    }
    html! {
        details.rows open[all <= ROWS_PER_BUCKET] {
            summary { (all) " finding(s)" @if shown.len() < all { ", " (shown.len()) " listed (the rest in the findings file)" } }
            table {
                thead { tr { th { "observer" } th { "whose data" } th { "location" } th { "request" } th.n { "status" } } }
                tbody {
                    @for f in shown {
                        tr data-e=[graph.edge_for(f).map(|e| format!("e{e}"))] {
                            td { (f.observer) } td { (f.victim.as_deref().unwrap_or("")) } td { code { (f.location) } }
                            td { code { (f.exchange.method) " " (f.exchange.path) } } td.n { (f.exchange.status) }
                        }
                    }
                }
            }
        }
    }
}

/// What the integrity witness saw change (tampering).
fn witnessed(finding: &Finding) -> Markup {
    use crate::findings::Witnessed;
    match &finding.witnessed {
        Some(Witnessed::Change {
            read,
            path,
            before,
            after,
        }) => html! {
            h4 { "What the owner read" }
            p { "Its read " code { (read) } " at " code { (path) } ":" }
            pre.change { (before) "\n→ " mark.foreign { (after) } }
        },
        Some(Witnessed::Lockout { login, status }) => html! {
            h4 { "What the owner saw" }
            p { "Its login " code { (login) } " worked before the write and answered " mark.foreign { (status) } " after it." }
        },
        None => html! {},
    }
}

fn table_section(section: &Section) -> Markup {
    html! {
        section id=(section.id) {
            h2 { (section.title) }
            @if !section.intro.is_empty() { p { (section.intro) } }
            table {
                thead { tr { @for h in &section.head { th { (h) } } } }
                tbody { @for row in &section.rows { tr { @for cell in row { td { (cell) } } } } }
            }
        }
    }
}

/// How the banner says an exit code.
pub fn word(exit: Exit) -> &'static str {
    match exit {
        Exit::Clean => "passed",
        Exit::Found => "failed",
        Exit::Incomplete => "incomplete",
        Exit::Interrupted => "interrupted",
        Exit::BadInput => "error",
    }
}

/// Every finding in the report's findings file; the buckets' first
/// findings when it cannot be read (or holds none).
pub fn read_findings(report: &RunReport) -> Vec<Finding> {
    let from_file = report
        .findings_file
        .as_deref()
        .map(|file| findings_in(Path::new(file)))
        .unwrap_or_default();
    if from_file.is_empty() {
        return report.buckets.iter().map(|b| b.first.clone()).collect();
    }
    from_file
}

/// The findings of a JSON Lines file; lines that are not one are skipped.
pub fn findings_in(path: &Path) -> Vec<Finding> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(i: usize) -> Finding {
        serde_json::from_value(serde_json::json!({
            "kind": "leak", "run_id": "ctabcdef", "seed": 1, "scenario": "s",
            "step": "read", "endpoint": format!("GET /v1/things/{i}"),
            "observer": "patient#1", "victim": "patient#2",
            "location": "body $.a", "location_pattern": "body $.a",
            "summary": "patient#1 received patient#2's canary",
            "exchange": { "method": "GET", "path": "/v1/things/1", "request_body": "",
                "status": 200, "response_headers": [], "response_excerpt": "</pre><script>x</script>" },
            "trace": [],
        }))
        .unwrap()
    }

    fn report(findings: &[Finding]) -> RunReport {
        RunReport {
            run_id: "ctabcdef".into(),
            seed: 1,
            target: "embedded".into(),
            scenarios: Vec::new(),
            buckets: (findings.iter())
                .map(|f| Bucket {
                    key: f.bucket(),
                    count: 1,
                    first: f.clone(),
                })
                .collect(),
            total_findings: findings.len(),
            findings_file: None,
            unwritten_findings: None,
            accepted: Vec::new(),
            stale: Vec::new(),
            pending_snapshots: Vec::new(),
            coverage: None,
            self_test: None,
            shard: None,
            merged: None,
        }
    }

    #[test]
    fn past_the_card_limit_buckets_are_counted_not_carded() {
        let findings: Vec<Finding> = (0..MAX_CARDS + 20).map(finding).collect();
        let report = report(&findings);
        let html = Page::new("run", &report, Exit::Found).render();
        assert_eq!(html.matches("<article").count(), MAX_CARDS);
        assert!(html.contains("20 more bucket(s), with 20 leak finding(s)"));
        assert!(!html.contains("<script>x"), "the excerpt is escaped");
    }

    #[test]
    fn an_added_section_is_rendered_escaped() {
        let report = report(&[finding(0)]);
        let section = Section {
            id: "sensitivity".into(),
            title: "Sensitivity".into(),
            intro: "Planted defects the judges named.".into(),
            head: vec!["defect".into(), "named".into()],
            rows: vec![vec![
                "<b>a read answered with another's</b>".into(),
                "yes".into(),
            ]],
        };
        let page = Page {
            sections: vec![section],
            ..Page::new("run", &report, Exit::Found)
        };
        let html = page.render();
        assert!(html.contains("<section id=\"sensitivity\">"));
        assert!(html.contains("&lt;b&gt;a read answered with another's&lt;/b&gt;"));
    }
}
