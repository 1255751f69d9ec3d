//! `run --self-test`: defects planted in real traffic, and whether the
//! judges name them. The shipped suite sees every kind (embedded, and in
//! cookie mode over HTTP against a clinic that keeps its data); suites
//! that cannot see are told so with the reason, and fail as incomplete;
//! planted defects are never the target's findings, and a real fault is
//! still one.

use std::path::Path;

use serde_json::Value;

use clinic::auth::Sessions;
use clinic::{Clinic, Config, Faults};

mod support;

use support::{root, run_report, tempdir};

/// The self-test's section of a JSON report.
fn sensitivity(report: &Value) -> &Value {
    report
        .get("self_test")
        .unwrap_or_else(|| panic!("no self_test in {report}"))
}

/// Every kind's share of detected plants, at least `min`, each kind
/// planted at least once; every plant named with its finding.
fn sees_every_kind(report: &Value, min: f64) {
    let test = sensitivity(report);
    assert!(test["sensitivity"].as_f64().unwrap() >= min, "{test:#}");
    for kind in [
        "response-swap",
        "foreign-item",
        "session-swap",
        "write-redirect",
    ] {
        let ratio = &test["by_kind"][kind];
        let (planted, detected) = (ratio["planted"].as_u64(), ratio["detected"].as_u64());
        let (planted, detected) = (planted.unwrap_or(0), detected.unwrap_or(0));
        assert!(planted > 0, "{kind} never planted: {test:#}");
        assert!(detected as f64 >= min * planted as f64, "{kind}: {test:#}");
    }
    for plant in test["planted"].as_array().unwrap() {
        if plant["outcome"] == "detected" {
            assert!(
                plant["judge"].is_string() && plant["finding"].is_string(),
                "{plant}"
            );
        }
    }
}

fn buckets(report: &Value) -> Vec<&Value> {
    report["buckets"].as_array().unwrap().iter().collect()
}

fn self_test(dir: &Path, args: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec!["--self-test", "--seed", "3"];
    all.extend_from_slice(args);
    run_report(dir, &all)
}

#[test]
fn the_shipped_suite_sees_every_planted_kind_and_stays_clean() {
    let dir = tempdir("self-test-shipped");
    let scenarios = root().join("scenarios");
    let page = dir.join("report.html");
    let args = [
        scenarios.to_str().unwrap(),
        "--html",
        page.to_str().unwrap(),
    ];
    let (code, report) = self_test(&dir, &args);
    assert_eq!(code, Some(0), "{report:#}");
    assert!(buckets(&report).is_empty(), "{report:#}");
    sees_every_kind(&report, 0.95);
    // The HTML report carries the sensitivity table.
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains(r#"id="sensitivity""#),
        "no sensitivity section"
    );
    assert!(html.contains("write redirect"), "no line per kind");
}

#[test]
fn the_same_seed_plants_the_same_defects() {
    let scenarios = root().join("scenarios/booking.toml");
    let planted = |name: &str| {
        let (_, report) = self_test(&tempdir(name), &[scenarios.to_str().unwrap()]);
        let mut plants: Vec<String> = (sensitivity(&report)["planted"].as_array().unwrap())
            .iter()
            .map(|p| {
                format!(
                    "{} {} {} {}",
                    p["defect"], p["step"], p["observer"], p["victim"]
                )
            })
            .collect();
        plants.sort();
        plants
    };
    let first = planted("self-test-seed-a");
    assert!(!first.is_empty());
    assert_eq!(first, planted("self-test-seed-b"));
}

#[test]
fn a_real_fault_is_still_a_finding_beside_the_sensitivity() {
    let dir = tempdir("self-test-fault");
    let scenarios = root().join("scenarios/mid-call-switch.toml");
    let args = [scenarios.to_str().unwrap(), "--fault", "switch-owner"];
    let (code, report) = self_test(&dir, &args);
    assert_eq!(code, Some(1), "{report:#}");
    let leaks = buckets(&report)
        .into_iter()
        .filter(|b| b["first"]["kind"] == "leak")
        .count();
    assert!(leaks > 0, "{report:#}");
    assert!(sensitivity(&report)["sensitivity"].as_f64().unwrap() >= 0.95);
}

#[test]
fn records_with_no_canary_and_nothing_captured_are_a_blind_spot() {
    let dir = tempdir("self-test-blind");
    let suite = root().join("harness/tests/fixtures/self-test/blind.toml");
    let (code, report) = self_test(&dir, &[suite.to_str().unwrap()]);
    assert_eq!(code, Some(3), "{report:#}");
    let test = sensitivity(&report);
    assert!(test["sensitivity"].as_f64().unwrap() < 0.5, "{test:#}");
    let lists = (test["steps"].as_array().unwrap().iter())
        .filter(|line| line["step"].as_str().unwrap().starts_with("list "))
        .collect::<Vec<_>>();
    assert_eq!(lists.len(), 2, "{test:#}");
    for line in lists {
        assert_eq!(line["detected"], 0, "{line}");
        let reasons = line["missed"].as_object().unwrap();
        assert!(
            reasons.keys().all(|r| r.contains("carries nothing owned")),
            "{line}"
        );
    }
    assert!(buckets(&report).is_empty(), "{report:#}");
}

#[test]
fn patients_in_one_shared_account_are_a_blind_spot() {
    let dir = tempdir("self-test-shared");
    let suite = root().join("harness/tests/fixtures/self-test/shared-account.toml");
    let (code, report) = self_test(&dir, &[suite.to_str().unwrap()]);
    assert_eq!(code, Some(3), "{report:#}");
    let test = sensitivity(&report);
    assert!(test["sensitivity"].as_f64().unwrap() < 0.5, "{test:#}");
    let missed: Vec<&Value> = (test["planted"].as_array().unwrap().iter())
        .filter(|p| p["outcome"] == "missed")
        .collect();
    assert!(!missed.is_empty(), "{test:#}");
    for plant in missed {
        assert_eq!(
            plant["reason"], "observer and victim are one account",
            "{plant}"
        );
    }
}

#[test]
fn the_cookie_suite_over_http_sees_every_planted_kind() {
    let dir = tempdir("self-test-cookie");
    let db = dir.join("clinic.db");
    let target = support::serve(move || {
        let config = Config {
            db: Some(db),
            faults: Faults::none(),
            sessions: Sessions::Cookie,
        };
        Clinic::new(config).unwrap().router()
    });
    let scenarios = root().join("scenarios/cookie");
    let args = [scenarios.to_str().unwrap(), "--target", &target];
    let (code, report) = self_test(&dir, &args);
    assert_eq!(code, Some(0), "{report:#}");
    assert!(buckets(&report).is_empty(), "{report:#}");
    sees_every_kind(&report, 0.95);
}

/// A self-test leaves the suite's contract snapshots alone: what its
/// planted defects change is no drift of the target's.
#[test]
fn a_self_test_compares_no_contract_snapshot() {
    let dir = tempdir("self-test-snapshots");
    let suite = dir.join("scenarios");
    for file in support::walk(&root().join("scenarios")) {
        let relative = file.strip_prefix(root().join("scenarios")).unwrap();
        std::fs::create_dir_all(suite.join(relative).parent().unwrap()).unwrap();
        std::fs::copy(&file, suite.join(relative)).unwrap();
    }
    let out = support::command(env!("CARGO_BIN_EXE_crosstalk"))
        .args(["run", "--self-test", "--seed", "3"])
        .arg(&suite)
        .arg("--findings")
        .arg(dir.join("findings"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", support::text(&out.stdout));
    let pending: Vec<_> = (support::walk(&suite).into_iter())
        .filter(|p| p.to_string_lossy().ends_with(".snap.new"))
        .collect();
    assert!(pending.is_empty(), "{pending:?}");
}
