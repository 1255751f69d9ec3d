//! The shipped suite against the in-process reference clinic: clean, it
//! finds nothing; with each fault a scripted flow can reach, it finds a leak
//! at the right endpoint and names the right victim.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use clinic::{Clinic, Fault, Faults};
use crosstalk::executor::{Executor, RunOptions, WAVE};
use crosstalk::findings::{Bucket, FindingKind, FindingSink};
use crosstalk::oracle::Marker;
use crosstalk::plan::{Overrides, Plan};
use crosstalk::safety::Redactor;
use crosstalk::transport::{InProcess, Transport};

/// Runs the shipped scenarios; returns the buckets and, for each leak, whether
/// the victim's own canary is in the evidence (the victim is named right).
async fn run_suite(faults: Faults, seed: u64) -> Vec<(Bucket, bool)> {
    run_suite_in_waves(faults, seed, WAVE).await.0
}

/// How many times each step was sent, by `scenario: step` (a probe's
/// without its prober).
type Sent = BTreeMap<String, usize>;

/// As [`run_suite`], each batch sent in waves of at most `wave` requests;
/// also how many times each step was sent.
async fn run_suite_in_waves(faults: Faults, seed: u64, wave: usize) -> (Vec<(Bucket, bool)>, Sent) {
    let plans = Plan::load_all(&[PathBuf::from("../scenarios")], &Overrides::default())
        .expect("the suite plans");
    let clinic = Clinic::in_memory(faults).unwrap();
    let transport: Arc<dyn Transport> = Arc::new(InProcess::new(clinic.router(), "clinic"));
    let sink = Arc::new(FindingSink::new(None).unwrap());
    let mut victims_right = std::collections::HashMap::new();
    let mut sent = Sent::new();
    for (i, plan) in plans.into_iter().enumerate() {
        let options = RunOptions {
            wave,
            ..RunOptions::new(seed, seed.wrapping_mul(31).wrapping_add(i as u64))
        };
        let executor = Executor::new(
            Arc::new(plan),
            transport.clone(),
            sink.clone(),
            Arc::new(Redactor::default()),
            options,
        );
        for issued in executor.run().await.order {
            let step = issued.step.split(" as ").next().unwrap_or_default();
            *sent
                .entry(format!("{}: {step}", issued.scenario))
                .or_default() += 1;
        }
        for bucket in sink.buckets() {
            let f = &bucket.first;
            if f.kind != FindingKind::Leak || victims_right.contains_key(&bucket.key) {
                continue;
            }
            let Some(victim) = executor
                .ledger()
                .instances()
                .find(|i| Some(&i.label) == f.victim.as_ref())
            else {
                continue;
            };
            let right = match &f.marker {
                Some(Marker::Canary { .. }) => f
                    .exchange
                    .response_excerpt
                    .to_lowercase()
                    .contains(&victim.canary),
                _ => true,
            };
            victims_right.insert(bucket.key.clone(), right);
        }
    }
    let buckets = (sink.buckets().into_iter())
        .map(|b| {
            let right = victims_right.get(&b.key).copied().unwrap_or(true);
            (b, right)
        })
        .collect();
    (buckets, sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clean_clinic_gives_no_finding() {
    for seed in [1, 2] {
        let buckets = run_suite(Faults::none(), seed).await;
        let keys: Vec<_> = buckets
            .iter()
            .map(|(b, _)| format!("{}: {}", b.key, b.first.summary))
            .collect();
        assert!(keys.is_empty(), "seed {seed}: {keys:#?}");
    }
}

/// Batches of 50 patients sent in waves of 7: the clean clinic still gives
/// nothing, and every step is sent as often as in one wave, the witness's
/// reads and the probes included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clean_clinic_gives_no_finding_when_batches_go_in_waves() {
    let (whole, sent) = run_suite_in_waves(Faults::none(), 1, WAVE).await;
    assert!(whole.is_empty());
    let (buckets, sent_in_waves) = run_suite_in_waves(Faults::none(), 1, 7).await;
    let keys: Vec<_> = buckets.iter().map(|(b, _)| &b.first.summary).collect();
    assert!(keys.is_empty(), "{keys:#?}");
    let by_witness = |sent: &Sent| sent.keys().filter(|k| k.contains(": witness ")).count();
    let by_probes = |sent: &Sent| sent.keys().filter(|k| k.contains(": probe: ")).count();
    assert!(by_witness(&sent) > 0 && by_probes(&sent) > 0);
    assert_eq!(sent_in_waves, sent);
}

/// A batch sent in waves still shows each fault: an answer may show the
/// data of an earlier wave (the ledger knows it) or of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_found_when_batches_go_in_waves() {
    for (fault, endpoint) in [
        (Fault::StatusFilter, "GET /v1/appointments?status=booked"),
        (Fault::ProfileCache, "GET /v1/me"),
        (
            Fault::AppointmentIdor,
            "GET /v1/appointments/{peer.appointment_id}",
        ),
    ] {
        assert_detects_in_waves(fault, endpoint, 7).await;
    }
}

async fn assert_detects(fault: Fault, endpoint: &str) {
    assert_detects_in_waves(fault, endpoint, WAVE).await;
}

async fn assert_detects_in_waves(fault: Fault, endpoint: &str, wave: usize) {
    let (buckets, _) = run_suite_in_waves(Faults::none().with(fault), 7, wave).await;
    let leaks: Vec<&(Bucket, bool)> = buckets
        .iter()
        .filter(|(b, _)| b.first.kind == FindingKind::Leak)
        .collect();
    let hit = leaks.iter().find(|(b, _)| b.first.endpoint == endpoint);
    let listed: Vec<_> = leaks.iter().map(|(b, _)| b.key.as_str()).collect();
    let (bucket, victim_right) =
        hit.unwrap_or_else(|| panic!("{fault}: no leak at {endpoint}; leaks: {listed:#?}"));
    assert!(
        victim_right,
        "{fault}: the victim named is not the one whose data leaked: {}",
        bucket.first.summary
    );
    assert_ne!(Some(&bucket.first.observer), bucket.first.victim.as_ref());
    for (b, right) in &leaks {
        assert!(right, "{fault}: wrong victim in {}", b.first.summary);
    }
}

macro_rules! detects {
    ($($test:ident: $fault:expr => $endpoint:literal;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            assert_detects($fault, $endpoint).await;
        }
    )*};
}

detects! {
    detects_switch_owner: Fault::SwitchOwner => "GET /v1/me/recordings?limit=2";
    detects_appointment_idor: Fault::AppointmentIdor => "GET /v1/appointments/{peer.appointment_id}";
    detects_media_idor: Fault::MediaIdor => "GET /v1/recordings/{peer.recording_id}/media";
    detects_profile_cache: Fault::ProfileCache => "GET /v1/me";
    detects_status_filter: Fault::StatusFilter => "GET /v1/appointments?status=booked";
    detects_cursor_pagination: Fault::CursorPagination => "GET /v1/me/recordings?limit=2&after={next_after}";
    detects_conflict_message: Fault::ConflictMessage => "POST /v1/appointments";
    detects_switch_race: Fault::SwitchRace => "GET /v1/recordings/{recording_id}";
    detects_mass_assignment: Fault::MassAssignment => "PATCH /v1/me";
    detects_export_demographics: Fault::ExportDemographics => "GET /v1/me/export";
    detects_document_idor: Fault::DocumentIdor => "GET /v1/patients/{patient_id}/documents/{document_id}";
}
