//! Shards of one run against one served clinic: each drives its slice of
//! the patients, recognises every canary of the run, and `merge` makes
//! one verdict of them.

mod support;

use std::path::{Path, PathBuf};

use support::{command, root, tempdir, text};

const CROSSTALK: &str = env!("CARGO_BIN_EXE_crosstalk");

fn scenario() -> PathBuf {
    root().join("harness/tests/fixtures/shards/booked.toml")
}

/// A clinic served on 127.0.0.1 with `faults`; its URL.
fn clinic(faults: &str) -> String {
    let faults = faults.to_string();
    support::serve(move || {
        let faults = clinic::Faults::parse_list(&faults).unwrap();
        clinic::Clinic::in_memory(faults).unwrap().router()
    })
}

/// `crosstalk run` of the shards' scenario into `dir`: exit code, report.
fn run(dir: &Path, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let scenario = scenario();
    let mut all = vec![scenario.to_str().unwrap(), "--patients", "8"];
    all.extend(args);
    support::run_report(dir, &all)
}

/// Shards `ks` of 4 of run `run_id`, one after another against `target`,
/// each in its own directory under `dir` (a CI job's artifact each).
fn shards(dir: &Path, target: &str, run_id: &str, ks: &[usize]) -> Vec<PathBuf> {
    ks.iter()
        .map(|k| {
            let shard_dir = dir.join(format!("shard-{k}"));
            let shard = format!("{k}/4");
            let (code, report) = run(
                &shard_dir,
                &["--target", target, "--shard", &shard, "--run-id", run_id],
            );
            assert!(matches!(code, Some(0 | 1)), "shard {k}: {code:?} {report}");
            assert_eq!(report["shard"]["shard"]["index"], *k);
            assert_eq!(report["shard"]["run"], run_id);
            shard_dir
        })
        .collect()
}

/// `crosstalk merge DIRS` writing every report into `out`: exit code and
/// the merged JSON report.
fn merge(out: &Path, dirs: &[PathBuf]) -> (Option<i32>, serde_json::Value) {
    let json = out.join("merged.json");
    let output = command(CROSSTALK)
        .arg("merge")
        .args(dirs)
        .arg("--json")
        .arg(&json)
        .arg("--junit")
        .arg(out.join("merged.xml"))
        .arg("--markdown")
        .arg(out.join("merged.md"))
        .arg("--html")
        .arg(out.join("merged.html"))
        .arg("--findings")
        .arg(out.join("findings"))
        .output()
        .unwrap();
    let report = std::fs::read_to_string(&json)
        .unwrap_or_else(|_| panic!("no merged report: {}", text(&output.stderr)));
    (output.status.code(), serde_json::from_str(&report).unwrap())
}

fn requests(report: &serde_json::Value) -> u64 {
    let scenarios = report["scenarios"].as_array().unwrap();
    scenarios
        .iter()
        .map(|s| s["requests"].as_u64().unwrap())
        .sum()
}

/// The merged findings, one JSON value each.
fn merged_findings(out: &Path) -> Vec<serde_json::Value> {
    let file = support::walk(&out.join("findings"))
        .into_iter()
        .find(|p| p.ends_with("findings.jsonl"))
        .expect("a merged findings file");
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `patient#3 (shard 2/4)` → 2.
fn shard_of(label: &str) -> Option<u64> {
    let (_, rest) = label.split_once("(shard ")?;
    rest.split('/').next()?.parse().ok()
}

#[test]
fn leaks_across_shards_are_named_and_merged_into_one_failing_verdict() {
    let dir = tempdir("shards-leak");
    let target = clinic("status-filter");
    let dirs = shards(&dir, &target, "leaky-run", &[1, 2, 3, 4]);
    let (code, merged) = merge(&dir, &dirs);
    assert_eq!(code, Some(1), "{merged}");
    assert_eq!(merged["conclusion"], "found");
    assert_eq!(merged["merged"]["missing"], serde_json::json!([]));
    let findings = merged_findings(&dir);
    let across: Vec<(u64, u64)> = (findings.iter())
        .filter(|f| f["kind"] == "leak")
        .filter_map(|f| {
            let observer = shard_of(f["observer"].as_str()?)?;
            let victim = shard_of(f["victim"].as_str()?)?;
            Some((observer, victim))
        })
        .collect();
    // Shards ran one after another and kept their bookings: every later
    // shard's lists showed every earlier shard's patients.
    for later in 2..=4 {
        for earlier in 1..later {
            assert!(
                across.contains(&(later, earlier)),
                "no leak from shard {earlier} to shard {later}: {across:?}"
            );
        }
    }
    assert!(across.iter().all(|(o, v)| o != v), "{across:?}");
    let junit = std::fs::read_to_string(dir.join("merged.xml")).unwrap();
    assert!(junit.contains("<failure"), "{junit}");
    let markdown = std::fs::read_to_string(dir.join("merged.md")).unwrap();
    assert!(markdown.starts_with("## crosstalk failed"), "{markdown}");
    assert!(markdown.contains("on shard 1/4: patient#"), "{markdown}");
    assert!(dir.join("merged.html").is_file());
}

#[test]
fn clean_shards_merge_clean_with_the_requests_of_one_unsharded_run() {
    let dir = tempdir("shards-clean");
    let target = clinic("");
    let dirs = shards(&dir, &target, "clean-run", &[1, 2, 3, 4]);
    let seed = {
        let report = std::fs::read_to_string(dirs[0].join("report.json")).unwrap();
        let report: serde_json::Value = serde_json::from_str(&report).unwrap();
        report["seed"].as_u64().unwrap()
    };
    let (code, merged) = merge(&dir, &dirs);
    assert_eq!(code, Some(0), "{merged}");
    assert_eq!(merged["conclusion"], "clean");
    let whole_dir = tempdir("shards-whole");
    let seed = seed.to_string();
    let (code, whole) = run(&whole_dir, &["--target", &clinic(""), "--seed", &seed]);
    assert_eq!(code, Some(0), "{whole}");
    assert!(requests(&whole) > 0);
    assert_eq!(requests(&merged), requests(&whole));
    let instances = |r: &serde_json::Value| r["scenarios"][0]["instances"].as_u64();
    assert_eq!(instances(&merged), instances(&whole));
    let probes = |r: &serde_json::Value| r["scenarios"][0]["probes"].as_u64();
    assert_eq!(probes(&merged), probes(&whole));
}

#[test]
fn what_an_actor_every_shard_drives_sees_of_other_shards_is_no_finding() {
    // Two clinicians over four shards: every shard drives both, and their
    // lists show the bookings other shards' patients made with them, a
    // grant only those shards saw.
    let dir = tempdir("shards-whole-actor");
    let target = clinic("");
    let dirs: Vec<PathBuf> = (1..=4)
        .map(|k| {
            let shard_dir = dir.join(format!("shard-{k}"));
            let json = shard_dir.join("report.json");
            let out = command(CROSSTALK)
                .arg("run")
                .arg(root().join("harness/tests/fixtures/shards/clinicians.toml"))
                .args([
                    "--no-snapshots",
                    "--target",
                    &target,
                    "--run-id",
                    "whole-actor",
                ])
                .args(["--shard", &format!("{k}/4"), "--json"])
                .arg(&json)
                .arg("--findings")
                .arg(shard_dir.join("findings"))
                .output()
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(0),
                "shard {k}: {}",
                text(&out.stdout)
            );
            shard_dir
        })
        .collect();
    let (code, merged) = merge(&dir, &dirs);
    assert_eq!(code, Some(0), "{merged}");
    // Both clinicians worked on every shard.
    assert_eq!(merged["scenarios"][0]["instances"], 8 + 2 * 4);
}

#[test]
fn a_missing_shard_leaves_the_merge_incomplete() {
    let dir = tempdir("shards-missing");
    let target = clinic("");
    let dirs = shards(&dir, &target, "short-run", &[1, 2, 4]);
    let (code, merged) = merge(&dir, &dirs);
    assert_eq!(code, Some(3), "{merged}");
    assert_eq!(merged["conclusion"], "incomplete");
    assert_eq!(merged["merged"]["missing"], serde_json::json!([3]));
    let junit = std::fs::read_to_string(dir.join("merged.xml")).unwrap();
    assert!(junit.contains("no report of shard(s) 3/4"), "{junit}");
    // All four: clean.
    let all = [dirs, shards(&dir.join("late"), &target, "short-run", &[3])].concat();
    assert_eq!(merge(&dir, &all).0, Some(0));
}

#[test]
fn a_shard_needs_one_run_id_and_a_merge_one_run() {
    let dir = tempdir("shards-bad");
    let out = command(CROSSTALK)
        .arg("run")
        .arg(scenario())
        .args(["--no-snapshots", "--shard", "1/2"])
        .arg("--findings")
        .arg(dir.join("findings"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--run-id"),
        "{}",
        text(&out.stderr)
    );
    let target = clinic("");
    let a = shards(&dir.join("a"), &target, "run-a", &[1]);
    let b = shards(&dir.join("b"), &target, "run-b", &[2]);
    let out = command(CROSSTALK)
        .arg("merge")
        .args(a.iter().chain(&b))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not shards of one run"),
        "{}",
        text(&out.stderr)
    );
    let empty = tempdir("shards-empty");
    let out = command(CROSSTALK)
        .arg("merge")
        .arg(&empty)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no shard report"));
}
