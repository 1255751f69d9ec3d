//! The HTML report at scale: 10,000 findings rendered into one page, its
//! size against 5 MB, the time to render it, and the time headless
//! Chromium takes to open it against 2 s (the page's load less an empty
//! page's, so the browser's own start-up is not counted). Two shapes: a
//! run's usual one (10,000 findings in 40 buckets, 260 identities) and the
//! worst (every finding its own bucket).
//!
//! `cargo bench -p crosstalk --bench html`; Chromium is `/usr/bin/chromium`
//! (without it the browser figures are left out, and the bench says so).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crosstalk::executor::RunStats;
use crosstalk::findings::{Bucket, Finding};
use crosstalk::html::Page;
use crosstalk::report::RunReport;
use crosstalk::session::Exit;
use crosstalk::witness::{ForeignWrite, WriteVerdict};

const FINDINGS: usize = 10_000;
const PATIENTS: usize = 250;
const CLINICIANS: usize = 10;
const RUN_ID: &str = "ctbench2";

fn main() {
    let dir = std::env::temp_dir().join(format!("crosstalk-bench-html-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let chromium = Path::new("/usr/bin/chromium");
    let empty = dir.join("empty.html");
    std::fs::write(&empty, "<!DOCTYPE html><title>empty</title><p>empty").expect("written");
    let baseline = chromium.exists().then(|| open_time(chromium, &empty, &dir));
    if baseline.is_none() {
        println!("no /usr/bin/chromium: the time to open each page is left out");
    }
    for (shape, buckets) in [
        ("usual: 40 buckets", 40),
        ("worst: a bucket per finding", FINDINGS),
    ] {
        let findings = findings(buckets);
        let report = report(&findings);
        let started = Instant::now();
        let page = Page {
            findings,
            ..Page::new("run", &report, Exit::Found)
        };
        let html = page.render();
        let rendered = started.elapsed();
        let file = dir.join(format!("report-{buckets}.html"));
        std::fs::write(&file, &html).expect("written");
        let size = html.len() as f64 / (1024.0 * 1024.0);
        println!(
            "{FINDINGS} findings, {shape}: {size:.2} MB (limit 5 MB{}), rendered in {:.0} ms",
            if size < 5.0 {
                ", under it"
            } else {
                ", OVER IT"
            },
            rendered.as_secs_f64() * 1000.0
        );
        if let Some(baseline) = baseline {
            let open = open_time(chromium, &file, &dir);
            let load = open.saturating_sub(baseline);
            println!(
                "  headless Chromium: {:.2} s to open it, {:.2} s for an empty page: {:.2} s for the report (limit 2 s{})",
                open.as_secs_f64(),
                baseline.as_secs_f64(),
                load.as_secs_f64(),
                if load < Duration::from_secs(2) {
                    ", under it"
                } else {
                    ", OVER IT"
                }
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The median of three runs of headless Chromium loading `file` and
/// printing its DOM (which it does once the page has loaded).
fn open_time(chromium: &Path, file: &Path, dir: &Path) -> Duration {
    let mut times: Vec<Duration> = (0..3)
        .map(|i| {
            let profile = dir.join(format!("profile-{i}"));
            let started = Instant::now();
            let out = Command::new(chromium)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--window-size=1200,1600",
                    "--dump-dom",
                ])
                .arg(format!("--user-data-dir={}", profile.display()))
                .arg(format!("file://{}", file.display()))
                .stderr(Stdio::null())
                .output()
                .expect("chromium runs");
            let elapsed = started.elapsed();
            assert!(!out.stdout.is_empty(), "chromium printed no DOM");
            let _ = std::fs::remove_dir_all(&profile);
            elapsed
        })
        .collect();
    times.sort();
    times[1]
}

fn label(i: usize) -> String {
    if i % 26 == 25 {
        format!("clinician#{}", i % CLINICIANS)
    } else {
        format!("patient#{}", i % PATIENTS)
    }
}

fn canary(i: usize) -> String {
    format!("{RUN_ID}{:014}", i)
        .replace('0', "a")
        .replace('1', "b")
}

/// `FINDINGS` findings over `buckets` buckets: leaks, tamperings and
/// expectations, with excerpts, traces and curl commands as a run writes them.
fn findings(buckets: usize) -> Vec<Finding> {
    (0..FINDINGS)
        .map(|i| {
            let b = i % buckets;
            let kind = ["leak", "leak", "tamper", "expectation"][b % 4];
            let (observer, victim) = (label(i * 7 + 1), label(i * 13 + 2));
            let json = serde_json::json!({
                "kind": kind,
                "run_id": RUN_ID,
                "seed": 7,
                "scenario": format!("scenario-{}", b % 5),
                "step": format!("step {b}"),
                "endpoint": format!("GET /v1/things/{{id}}/part-{b}"),
                "observer": observer,
                "victim": (kind != "expectation").then_some(&victim),
                "location": format!("body $.items[{}].title", i % 9),
                "location_pattern": format!("body $.items[*].title-{b}"),
                "summary": format!("{observer} received {victim}'s canary (plain) in body $.items[{}].title of GET /v1/things/{{id}}/part-{b} at step `step {b}`", i % 9),
                "exchange": {
                    "method": "GET",
                    "path": format!("/v1/things/{i}/part-{b}"),
                    "request_body": "",
                    "status": 200,
                    "response_headers": [["content-type", "application/json"], ["x-request-id", format!("req-{i}")]],
                    "response_excerpt": format!("{{\"id\":{i},\"title\":\"Audio consultation · {} <b>notes</b>\",\"clinician\":\"Dr Example\"}}", canary(i)),
                },
                "trace": (0..10).map(|s| format!("step {s}: GET /v1/things/{s} → 200")).collect::<Vec<_>>(),
                "curl": format!("curl -sS -X GET \"$TARGET/v1/things/{i}/part-{b}\" -H \"authorization: $AUTHORIZATION\""),
            });
            serde_json::from_value(json).expect("a finding")
        })
        .collect()
}

/// A run's report of `findings`: buckets as the sink makes them, 2,000
/// foreign writes.
fn report(findings: &[Finding]) -> RunReport {
    let mut buckets: std::collections::BTreeMap<String, Bucket> = Default::default();
    for f in findings {
        buckets
            .entry(f.bucket())
            .or_insert_with(|| Bucket {
                key: f.bucket(),
                count: 0,
                first: f.clone(),
            })
            .count += 1;
    }
    let writes = (0..2_000)
        .map(|i| ForeignWrite {
            scenario: "scenario-0".into(),
            step: "cancel another's".into(),
            writer: label(i),
            victim: label(i + 1),
            request: format!("DELETE /v1/things/{i}"),
            status: 204,
            verdict: WriteVerdict::Confirmed,
            reason: "its own read changed".into(),
        })
        .collect();
    RunReport {
        run_id: RUN_ID.into(),
        seed: 7,
        target: "http://127.0.0.1:8080".into(),
        scenarios: vec![RunStats {
            scenario: "scenario-0".into(),
            instances: PATIENTS + CLINICIANS,
            requests: 250_000,
            foreign_writes: writes,
            ..RunStats::default()
        }],
        buckets: buckets.into_values().collect(),
        total_findings: findings.len(),
        findings_file: Some(PathBuf::from("findings.jsonl").display().to_string()),
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
