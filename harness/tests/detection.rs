//! The shipped suite against the in-process reference clinic: clean, it
//! finds nothing; with each fault a scripted flow can reach, it finds a leak
//! at the right endpoint and names the right victim.

use std::path::PathBuf;
use std::sync::Arc;

use clinic::{Clinic, Fault, Faults};
use crosstalk::executor::{Executor, RunOptions};
use crosstalk::findings::{Bucket, FindingKind, FindingSink};
use crosstalk::oracle::Marker;
use crosstalk::plan::{Overrides, Plan};
use crosstalk::safety::Redactor;
use crosstalk::transport::{InProcess, Transport};

/// Runs the shipped scenarios; returns the buckets and, for each leak, whether
/// the victim's own canary is in the evidence (the victim is named right).
async fn run_suite(faults: Faults, seed: u64) -> Vec<(Bucket, bool)> {
    let plans = Plan::load_all(&[PathBuf::from("../scenarios")], &Overrides::default())
        .expect("the suite plans");
    let clinic = Clinic::in_memory(faults).unwrap();
    let transport: Arc<dyn Transport> = Arc::new(InProcess::new(clinic.router(), "clinic"));
    let sink = Arc::new(FindingSink::new(None).unwrap());
    let mut victims_right = std::collections::HashMap::new();
    for (i, plan) in plans.into_iter().enumerate() {
        let options = RunOptions::new(seed, seed.wrapping_mul(31).wrapping_add(i as u64));
        let executor = Executor::new(
            Arc::new(plan),
            transport.clone(),
            sink.clone(),
            Arc::new(Redactor::default()),
            options,
        );
        executor.run().await;
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
    sink.buckets()
        .into_iter()
        .map(|b| {
            let right = victims_right.get(&b.key).copied().unwrap_or(true);
            (b, right)
        })
        .collect()
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

async fn assert_detects(fault: Fault, endpoint: &str) {
    let buckets = run_suite(Faults::none().with(fault), 7).await;
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
