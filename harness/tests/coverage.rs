//! Coverage of an OpenAPI document: the shipped suite against the clinic
//! lists every operation of the clinic's document as reached or not, and
//! `--require-coverage` leaves a run that missed some incomplete (exit 3).

mod support;

use serde_json::Value;
use support::{root, tempdir};

fn clinic_document(dir: &std::path::Path) -> String {
    let path = dir.join("openapi.json");
    std::fs::write(&path, clinic::openapi::document_json()).unwrap();
    path.to_str().unwrap().to_string()
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_shipped_suite_lists_every_operation_of_the_clinic_as_reached_or_not() {
    let dir = tempdir("coverage");
    let document = clinic_document(&dir);
    let suite = root().join("scenarios");
    let args = [
        "--seed",
        "1",
        "--openapi",
        &document,
        suite.to_str().unwrap(),
    ];
    let (code, report) = support::run_report(&dir, &args);
    assert_eq!(code, Some(0), "{:#}", report["buckets"]);
    let (reached, unreached) = (
        names(&report["coverage"]["reached"]),
        names(&report["coverage"]["unreached"]),
    );
    let spec: Value = serde_json::from_str(&clinic::openapi::document_json()).unwrap();
    let mut all: Vec<String> = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            all.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    let mut listed: Vec<String> = reached.iter().chain(&unreached).cloned().collect();
    listed.sort();
    all.sort();
    assert_eq!(listed, all, "every operation, once");
    for op in [
        "POST /v1/patients",
        "GET /v1/appointments/{id}",
        "POST /v1/consultations/{id}/switch",
    ] {
        assert!(reached.contains(&op.to_string()), "{op}: {reached:?}");
    }
    assert!(
        unreached.contains(&"GET /v1/clinicians".to_string()),
        "{unreached:?}"
    );
}

#[test]
fn require_coverage_leaves_a_run_that_missed_operations_incomplete() {
    let dir = tempdir("coverage-required");
    let document = clinic_document(&dir);
    let one = root().join("scenarios/account.toml");
    let args = [
        "--seed",
        "1",
        "--openapi",
        &document,
        "--require-coverage",
        one.to_str().unwrap(),
    ];
    let (code, report) = support::run_report(&dir, &args);
    assert_eq!(code, Some(3));
    assert!(report["total_findings"] == 0 && !names(&report["coverage"]["unreached"]).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_reports_the_operations_its_programs_reached() {
    use crosstalk::session::{Fuzz, TargetSpec};
    let dir = tempdir("coverage-fuzz");
    let document = clinic_document(&dir);
    let fuzz = Fuzz {
        seed: Some(3),
        programs: Some(200),
        time: std::time::Duration::from_secs(3600),
        corpus: dir.join("corpus"),
        findings: dir.join("found"),
        openapi: Some(document.into()),
        ..Fuzz::new(
            vec![root().join("scenarios/booking.toml")],
            TargetSpec::embedded(&[]),
        )
    };
    let outcome = fuzz.execute().await.unwrap();
    let coverage = outcome.coverage.expect("coverage was asked for");
    assert_eq!(coverage.reached.len() + coverage.unreached.len(), 31);
    assert!(
        coverage
            .reached
            .contains(&"POST /v1/appointments".to_string()),
        "{coverage:?}"
    );
    // An operation the suite never sends is vocabulary too.
    assert!(
        coverage.reached.contains(&"GET /v1/me/export".to_string()),
        "{coverage:?}"
    );
    // What no step captures a value for stays out of reach.
    assert!(
        (coverage.unreached).contains(&"POST /v1/auth/refresh".to_string()),
        "{coverage:?}"
    );
}

/// Coverage reads the order of requests issued, and snapshots the response
/// shapes; a run that reads neither keeps neither, or a run of 100,000
/// patients would hold every request (and a fuzz program build shapes no
/// one compares).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_of_requests_and_response_shapes_are_kept_only_when_asked_for() {
    use std::sync::Arc;

    use crosstalk::executor::{Executor, RunOptions};
    use crosstalk::findings::FindingSink;
    use crosstalk::plan::{Overrides, Plan};
    use crosstalk::safety::Redactor;
    use crosstalk::transport::InProcess;

    let account = root().join("scenarios/account.toml");
    let plans = Plan::load_all(&[account], &Overrides::default()).unwrap();
    let mut kept = Vec::new();
    for asked in [true, false] {
        let clinic = clinic::Clinic::in_memory(clinic::Faults::none()).unwrap();
        let options = RunOptions {
            keep_order: asked,
            contracts: asked,
            ..RunOptions::new(1, 7)
        };
        let executor = Executor::new(
            Arc::new(plans[0].clone()),
            Arc::new(InProcess::new(clinic.router(), "clinic")),
            Arc::new(FindingSink::new(None).unwrap()),
            Arc::new(Redactor::default()),
            options,
        );
        let stats = executor.run().await;
        assert!(stats.requests > 0);
        kept.push((stats.requests, stats.order, executor.contracts().take()));
    }
    let (requests, order, shapes) = &kept[0];
    // Every request the run counts is there once, in the order issued.
    assert_eq!(order.len() as u64, *requests);
    assert!(order.windows(2).all(|w| w[0].batch <= w[1].batch));
    // A shape for every step of the flow.
    let flow = plans[0].steps.iter().map(|s| &s.name);
    assert!(
        flow.into_iter().all(|name| shapes.contains_key(name)),
        "{:?}",
        shapes.keys()
    );
    assert!(kept[1].1.is_empty(), "{} kept", kept[1].1.len());
    assert!(kept[1].2.is_empty(), "{:?} kept", kept[1].2.keys());
}
