//! `fuzz --openapi`: the operations of the clinic's document that a suite
//! never sends become vocabulary. A suite of sign-up, login and bookings
//! alone (no profile, password or recording step) is fuzzed with a fixed
//! seed and a bounded number of programs: it finds the faults of the
//! operations only the document names, each through a documented step,
//! with a reproduction that replays against the faulty clinic and not the
//! clean one; the clean clinic stays clean with the same bound, its
//! programs reaching those operations.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crosstalk::session::{Exit, Fuzz, FuzzOutcome, TargetSpec};

/// Programs a clean session runs.
const PROGRAMS: u64 = 600;

/// Programs a session looking for a fault runs at most: each fault of
/// these shows within a few hundred, but programs run concurrently, so
/// which one shows it first varies from run to run.
const PROGRAMS_TO_FIND: u64 = 5000;

fn suite() -> PathBuf {
    support::root().join("harness/tests/fixtures/booking-only")
}

/// Fuzzes the booking-only suite with the clinic's document against the
/// clinic with `faults`; until the first finding when `faults` has one.
async fn fuzz(dir: &Path, faults: &[&str]) -> FuzzOutcome {
    let document = dir.join("clinic-openapi.json");
    std::fs::write(&document, clinic::openapi::document_json()).unwrap();
    Fuzz {
        seed: Some(1),
        programs: Some(match faults.is_empty() {
            true => PROGRAMS,
            false => PROGRAMS_TO_FIND,
        }),
        max_findings: (!faults.is_empty()).then_some(1),
        // Ceilings for a loaded machine: the programs end the run.
        time: Duration::from_secs(900),
        shrink_time: Duration::from_secs(900),
        corpus: dir.join("corpus"),
        findings: dir.join("found"),
        openapi: Some(document),
        ..Fuzz::new(vec![suite()], TargetSpec::embedded(faults))
    }
    .execute()
    .await
    .unwrap()
}

/// `fault` is found through the documented operation `request`, and its
/// reproduction replays against the faulty clinic only.
async fn finds(fault: &str, request: &str) {
    let suite_text = std::fs::read_to_string(suite().join("booking.toml")).unwrap();
    assert!(!suite_text.contains(request), "the suite sends {request}");
    let dir = support::tempdir(&format!("fuzz-openapi-{fault}"));
    let outcome = fuzz(&dir, &[fault]).await;
    assert_eq!(outcome.exit, Exit::Found, "{fault}: {}", outcome.describe());
    let files: Vec<PathBuf> = support::walk(&dir.join("found"))
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "toml"))
        .collect();
    assert_eq!(files.len(), 1, "{fault}: {files:?}");
    let reproduction = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        reproduction.contains(request),
        "{fault}: the reproduction does not send {request}:\n{reproduction}"
    );
    let still = support::replay(&files[0], &[fault], &dir)
        .execute()
        .await
        .unwrap();
    assert_eq!(still.exit, Exit::Found, "{fault}: {}", still.describe());
    let fixed = support::replay(&files[0], &[], &dir)
        .execute()
        .await
        .unwrap();
    assert_eq!(fixed.exit, Exit::Clean, "{fault}: {}", fixed.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mass_assignment_is_found_through_the_profile_update() {
    finds("mass-assignment", "PATCH /v1/me\"").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_update_idor_is_found_through_the_patient_update() {
    finds("profile-update-idor", "PATCH /v1/patients/").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_change_idor_is_found_through_the_password_change() {
    finds("password-change-idor", "POST /v1/me/password").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_delete_idor_is_found_through_the_recording_deletion() {
    finds("recording-delete-idor", "DELETE /v1/recordings/").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clean_clinic_stays_clean_and_the_documented_operations_are_reached() {
    let dir = support::tempdir("fuzz-openapi-clean");
    let outcome = fuzz(&dir, &[]).await;
    assert_eq!(outcome.exit, Exit::Clean, "{}", outcome.describe());
    assert_eq!(outcome.programs, PROGRAMS);
    let reached = outcome.coverage.expect("coverage of --openapi").reached;
    for operation in [
        "PATCH /v1/me",
        "PATCH /v1/patients/{id}",
        "POST /v1/me/password",
        "DELETE /v1/recordings/{id}",
        "POST /v1/consultations/{id}/switch",
    ] {
        assert!(
            reached.iter().any(|r| r == operation),
            "{operation} never reached: {reached:?}"
        );
    }
}
