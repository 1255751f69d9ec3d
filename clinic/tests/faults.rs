//! Every fault in the catalog, shown by a fixed sequence of requests: with the
//! fault on, one patient receives another patient's private words; with it
//! off, the very same sequence shows them nothing foreign.

mod support;

use axum::http::{Method, StatusCode};
use clinic::Fault;
use serde_json::json;
use support::{Api, secret};

/// What a scenario's observer received, and the victim's private marker.
struct Seen {
    observed: String,
    victim_secret: String,
}

impl Seen {
    fn leaked(&self) -> bool {
        self.observed.contains(&self.victim_secret)
    }
}

/// Runs `scenario` against a clinic with `fault` on and one with it off.
async fn assert_leaks_only_with<F, Fut>(fault: Fault, scenario: F)
where
    F: Fn(Api) -> Fut,
    Fut: Future<Output = Seen>,
{
    let faulty = scenario(Api::new(&[fault])).await;
    assert!(
        faulty.leaked(),
        "{fault} on: expected `{}` in:\n{}",
        faulty.victim_secret,
        faulty.observed
    );
    let clean = scenario(Api::new(&[])).await;
    assert!(
        !clean.leaked(),
        "{fault} off: `{}` leaked in:\n{}",
        clean.victim_secret,
        clean.observed
    );
}

const SLOT_1: &str = "2027-03-01T09:00:00Z";
const SLOT_2: &str = "2027-03-01T09:30:00Z";

#[tokio::test]
async fn switch_owner_files_a_patients_recording_under_another_patient() {
    assert_leaks_only_with(Fault::SwitchOwner, |api| async move {
        let dr = api.clinician(1).await;
        let (alice, bob) = (
            api.patient("Alice", "1980-01-01").await,
            api.patient("Bob", "1981-02-02").await,
        );
        let alice_secret = secret("alice");
        let a = api.book(&alice, &dr, SLOT_1, &alice_secret).await;
        let b = api.book(&bob, &dr, SLOT_2, &secret("bob")).await;
        let alice_call = api.start_call(&alice, a, "audio").await;
        api.start_call(&bob, b, "audio").await; // the clinician's console moves to Bob's call
        let switched = api.switch(&alice, &alice_call, "video").await;
        assert_eq!(switched.status, StatusCode::OK, "{}", switched.text);
        Seen {
            observed: api.get("/v1/me/recordings", &bob).await.text,
            victim_secret: alice_secret,
        }
    })
    .await;
}

#[tokio::test]
async fn appointment_idor_shows_another_patients_booking_by_id() {
    assert_leaks_only_with(Fault::AppointmentIdor, |api| async move {
        let dr = api.clinician(1).await;
        let (alice, mallory) = (
            api.patient("Alice", "1980-01-01").await,
            api.patient("Mallory", "1990-05-05").await,
        );
        let alice_secret = secret("alice");
        let id = api.book(&alice, &dr, SLOT_1, &alice_secret).await;
        Seen {
            observed: api
                .get(&format!("/v1/appointments/{id}"), &mallory)
                .await
                .text,
            victim_secret: alice_secret,
        }
    })
    .await;
}

#[tokio::test]
async fn media_idor_streams_another_patients_recording() {
    assert_leaks_only_with(Fault::MediaIdor, |api| async move {
        let dr = api.clinician(2).await;
        let (alice, mallory) = (
            api.patient("Alice", "1980-01-01").await,
            api.patient("Mallory", "1990-05-05").await,
        );
        let alice_secret = secret("alice");
        let a = api.book(&alice, &dr, SLOT_1, &alice_secret).await;
        let call = api.start_call(&alice, a, "video").await;
        let ended = api.end(&alice, &call).await.json();
        let recording = ended["recording_id"].as_i64().unwrap();
        let media = api
            .get(&format!("/v1/recordings/{recording}/media"), &mallory)
            .await;
        Seen {
            observed: media.text,
            victim_secret: alice_secret,
        }
    })
    .await;
}

#[tokio::test]
async fn profile_cache_serves_one_patients_profile_to_the_next() {
    assert_leaks_only_with(Fault::ProfileCache, |api| async move {
        let (alice, bob) = (
            api.patient("Alice", "1980-01-01").await,
            api.patient("Bob", "1981-02-02").await,
        );
        assert_eq!(api.get("/v1/me", &alice).await.status, StatusCode::OK);
        Seen {
            observed: api.get("/v1/me", &bob).await.text,
            victim_secret: alice.email.clone(),
        }
    })
    .await;
}

#[tokio::test]
async fn status_filter_lists_every_patients_bookings() {
    assert_leaks_only_with(Fault::StatusFilter, |api| async move {
        let dr = api.clinician(1).await;
        let (alice, bob) = (
            api.patient("Alice", "1980-01-01").await,
            api.patient("Bob", "1981-02-02").await,
        );
        let alice_secret = secret("alice");
        api.book(&alice, &dr, SLOT_1, &alice_secret).await;
        api.book(&bob, &dr, SLOT_2, &secret("bob")).await;
        let unfiltered = api.get("/v1/appointments", &bob).await.text;
        assert!(
            !unfiltered.contains(&alice_secret),
            "the unfiltered list is scoped either way"
        );
        Seen {
            observed: api.get("/v1/appointments?status=booked", &bob).await.text,
            victim_secret: alice_secret,
        }
    })
    .await;
}

#[tokio::test]
async fn cursor_pagination_runs_past_the_patients_own_recordings() {
    assert_leaks_only_with(Fault::CursorPagination, |api| async move {
        let dr = api.clinician(3).await;
        let (alice, bob) = (
            api.patient("Alice", "1980-01-01").await,
            api.patient("Bob", "1981-02-02").await,
        );
        let a = api.book(&alice, &dr, SLOT_1, &secret("alice")).await;
        let call = api.start_call(&alice, a, "audio").await;
        api.switch(&alice, &call, "video").await;
        api.switch(&alice, &call, "audio").await;
        api.end(&alice, &call).await; // Alice has legs 1, 2 and 3
        let bob_secret = secret("bob");
        let b = api.book(&bob, &dr, SLOT_2, &bob_secret).await;
        let call = api.start_call(&bob, b, "video").await;
        api.end(&bob, &call).await;
        let first = api.get("/v1/me/recordings?limit=2", &alice).await.json();
        assert_eq!(first["items"].as_array().unwrap().len(), 2);
        let after = first["next_after"].as_i64().expect("a second page");
        let second = api
            .get(&format!("/v1/me/recordings?limit=2&after={after}"), &alice)
            .await;
        Seen {
            observed: second.text,
            victim_secret: bob_secret,
        }
    })
    .await;
}

#[tokio::test]
async fn conflict_message_quotes_the_existing_booking() {
    assert_leaks_only_with(Fault::ConflictMessage, |api| async move {
        let dr = api.clinician(1).await;
        let (alice, bob) = (
            api.patient("Alice", "1980-01-01").await,
            api.patient("Bob", "1981-02-02").await,
        );
        let alice_secret = secret("alice");
        api.book(&alice, &dr, SLOT_1, &alice_secret).await;
        let conflict = api
            .post(
                "/v1/appointments",
                &bob,
                json!({"clinician_id": dr.id, "slot": SLOT_1, "reason": "checkup"}),
            )
            .await;
        assert_eq!(conflict.status, StatusCode::CONFLICT, "{}", conflict.text);
        Seen {
            observed: conflict.text,
            victim_secret: alice_secret,
        }
    })
    .await;
}

#[tokio::test]
async fn switch_race_crosses_two_concurrent_switches() {
    // Two patients of one clinician switch at the same moment, a bounded
    // number of times; either may end up with the other's words.
    const ROUNDS: usize = 10;
    assert_leaks_only_with(Fault::SwitchRace, |api| async move {
        let dr = api.clinician(4).await;
        let (alice, bob) = (
            api.patient("Alice", "1980-01-01").await,
            api.patient("Bob", "1981-02-02").await,
        );
        let (alice_secret, bob_secret) = (secret("alice"), secret("bob"));
        let mut observed = String::new();
        for round in 0..ROUNDS {
            let slot = |minute: usize| format!("2027-04-01T{:02}:{:02}:00Z", 8 + round, minute);
            let a = api.book(&alice, &dr, &slot(0), &alice_secret).await;
            let b = api.book(&bob, &dr, &slot(30), &bob_secret).await;
            let (alice_call, bob_call) = (
                api.start_call(&alice, a, "audio").await,
                api.start_call(&bob, b, "audio").await,
            );
            let (x, y) = tokio::join!(
                api.switch(&alice, &alice_call, "video"),
                api.switch(&bob, &bob_call, "video")
            );
            assert_eq!(
                (x.status, y.status),
                (StatusCode::OK, StatusCode::OK),
                "{} {}",
                x.text,
                y.text
            );
            api.end(&alice, &alice_call).await;
            api.end(&bob, &bob_call).await;
            let alice_saw = api.get("/v1/me/recordings?limit=100", &alice).await.text;
            let bob_saw = api.get("/v1/me/recordings?limit=100", &bob).await.text;
            // Report whichever direction crossed, as seen from Alice's side.
            observed.push_str(&alice_saw);
            if bob_saw.contains(&alice_secret) {
                observed.push_str(&bob_secret);
            }
            if observed.contains(&bob_secret) {
                break;
            }
        }
        Seen {
            observed,
            victim_secret: bob_secret,
        }
    })
    .await;
}

#[tokio::test]
async fn mass_assignment_updates_and_echoes_another_patients_profile() {
    assert_leaks_only_with(Fault::MassAssignment, |api| async move {
        let (alice, mallory) = (
            api.patient("Alice", "1980-01-01").await,
            api.patient("Mallory", "1990-05-05").await,
        );
        let reply = api
            .call(
                Method::PATCH,
                "/v1/me",
                Some(&mallory),
                Some(json!({"id": alice.id, "phone": "+1 555 0100"})),
            )
            .await;
        Seen {
            observed: reply.text,
            victim_secret: alice.email.clone(),
        }
    })
    .await;
}

#[tokio::test]
async fn export_demographics_exports_a_namesakes_records() {
    assert_leaks_only_with(Fault::ExportDemographics, |api| async move {
        let dr = api.clinician(2).await;
        // Two different people who share a name and a birthday.
        let (one, other) = (
            api.patient("Sam Lee", "1975-07-07").await,
            api.patient("Sam Lee", "1975-07-07").await,
        );
        let other_secret = secret("other sam");
        api.book(&other, &dr, SLOT_1, &other_secret).await;
        api.book(&one, &dr, SLOT_2, &secret("one sam")).await;
        Seen {
            observed: api.get("/v1/me/export", &one).await.text,
            victim_secret: other_secret,
        }
    })
    .await;
}

#[tokio::test]
async fn document_idor_shows_another_patients_document_under_ones_own_path() {
    assert_leaks_only_with(Fault::DocumentIdor, |api| async move {
        let (alice, mallory) = (
            api.patient("Alice", "1980-01-01").await,
            api.patient("Mallory", "1990-05-05").await,
        );
        let alice_secret = secret("alice");
        let path = api.share_document(&alice, &alice_secret).await;
        // Alice's document id under Mallory's own patient id.
        let document = path.rsplit('/').next().unwrap();
        let borrowed = format!("/v1/patients/{}/documents/{document}", mallory.id);
        // Under Alice's patient id the parent check holds either way.
        let parent = api.get(&path, &mallory).await;
        assert_eq!(parent.status, StatusCode::NOT_FOUND, "{}", parent.text);
        Seen {
            observed: api.get(&borrowed, &mallory).await.text,
            victim_secret: alice_secret,
        }
    })
    .await;
}

#[test]
fn every_fault_in_the_catalog_has_a_test_here() {
    let leaks = include_str!("faults.rs");
    let writes = include_str!("tampering.rs");
    for fault in Fault::ALL {
        let variant = format!("{fault:?}");
        assert!(
            leaks.contains(&format!("assert_leaks_only_with(Fault::{variant},"))
                || writes.contains(&format!("assert_changes_only_with(Fault::{variant},")),
            "no test for {fault}"
        );
    }
}
