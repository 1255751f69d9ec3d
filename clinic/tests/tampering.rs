//! Every write fault, shown by a fixed sequence of requests: with the fault
//! on, one patient's request changes another patient's data (what the
//! victim reads of its own afterwards differs from before, or its login
//! stops working); with it off, the very same requests change nothing of
//! the victim's.

mod support;

use axum::http::{Method, StatusCode};
use clinic::Fault;
use serde_json::json;
use support::{Api, secret};

/// What the victim saw of its own data before and after the attacker's
/// request.
struct Witnessed {
    before: String,
    after: String,
}

/// Runs `scenario` against a clinic with `fault` on and one with it off.
async fn assert_changes_only_with<F, Fut>(fault: Fault, scenario: F)
where
    F: Fn(Api) -> Fut,
    Fut: Future<Output = Witnessed>,
{
    let faulty = scenario(Api::new(&[fault])).await;
    assert_ne!(faulty.before, faulty.after, "{fault} on: nothing changed");
    let clean = scenario(Api::new(&[])).await;
    assert_eq!(
        clean.before, clean.after,
        "{fault} off: the victim's data changed"
    );
}

/// Alice, whose data is at stake, and Mallory, who writes to it.
async fn victim_and_stranger(api: &Api) -> (support::User, support::User) {
    let alice = api.patient("Alice", "1980-01-01").await;
    (alice, api.patient("Mallory", "1990-05-05").await)
}

const SLOT_1: &str = "2027-03-01T09:00:00Z";
const SLOT_2: &str = "2027-03-01T09:30:00Z";

#[tokio::test]
async fn appointment_write_idor_cancels_and_moves_another_patients_booking() {
    assert_changes_only_with(Fault::AppointmentWriteIdor, |api| async move {
        let dr = api.clinician(1).await;
        let (alice, mallory) = victim_and_stranger(&api).await;
        let a = api.book(&alice, &dr, SLOT_1, &secret("alice")).await;
        let path = format!("/v1/appointments/{a}");
        let before = api.get(&path, &alice).await.text;
        let moved = json!({"slot": SLOT_2});
        let reply = api
            .call(Method::PATCH, &path, Some(&mallory), Some(moved))
            .await;
        // Either way the attacker is told the booking does not exist.
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
        let reply = api.call(Method::DELETE, &path, Some(&mallory), None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
        Witnessed {
            before,
            after: api.get(&path, &alice).await.text,
        }
    })
    .await;
}

#[tokio::test]
async fn end_by_stranger_hangs_up_another_patients_call() {
    assert_changes_only_with(Fault::EndByStranger, |api| async move {
        let dr = api.clinician(1).await;
        let (alice, mallory) = victim_and_stranger(&api).await;
        let a = api.book(&alice, &dr, SLOT_1, &secret("alice")).await;
        let call = api.start_call(&alice, a, "audio").await;
        let path = format!("/v1/consultations/{call}");
        let before = api.get(&path, &alice).await.text;
        let reply = api.end(&mallory, &call).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
        Witnessed {
            before,
            after: api.get(&path, &alice).await.text,
        }
    })
    .await;
}

#[tokio::test]
async fn profile_update_idor_changes_another_patients_phone_with_a_204() {
    assert_changes_only_with(Fault::ProfileUpdateIdor, |api| async move {
        let (alice, mallory) = victim_and_stranger(&api).await;
        let before = api.get("/v1/me", &alice).await.text;
        let path = format!("/v1/patients/{}", alice.id);
        let phone = json!({"phone": "+44 7700 900666"});
        let reply = api
            .call(Method::PATCH, &path, Some(&mallory), Some(phone))
            .await;
        assert!(
            [StatusCode::NO_CONTENT, StatusCode::NOT_FOUND].contains(&reply.status),
            "{}",
            reply.text
        );
        // The patient's own change goes through, with no body.
        let own = format!("/v1/patients/{}", mallory.id);
        let reply = api
            .call(
                Method::PATCH,
                &own,
                Some(&mallory),
                Some(json!({"phone": "+44 7700 900111"})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
        assert_eq!(reply.text, "");
        Witnessed {
            before,
            after: api.get("/v1/me", &alice).await.text,
        }
    })
    .await;
}

#[tokio::test]
async fn password_change_idor_locks_another_patient_out() {
    assert_changes_only_with(Fault::PasswordChangeIdor, |api| async move {
        let (alice, mallory) = victim_and_stranger(&api).await;
        let login = |email: String| {
            let body = json!({"email": email, "password": "correct horse"});
            let api = &api;
            async move {
                let reply = api
                    .call(Method::POST, "/v1/auth/login", None, Some(body))
                    .await;
                reply.status.to_string()
            }
        };
        let before = login(alice.email.clone()).await;
        let change = json!({"patient_id": alice.id, "current_password": "correct horse",
                            "new_password": "mallory was here"});
        api.post("/v1/me/password", &mallory, change).await;
        // A patient's own change works, and the old password stops working.
        let own = json!({"patient_id": mallory.id, "current_password": "correct horse",
                         "new_password": "correct horse battery"});
        let reply = api.post("/v1/me/password", &mallory, own).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
        assert_eq!(login(mallory.email.clone()).await, "401 Unauthorized");
        Witnessed {
            before,
            after: login(alice.email.clone()).await,
        }
    })
    .await;
}

#[tokio::test]
async fn document_write_idor_edits_another_patients_document_under_ones_own_path() {
    assert_changes_only_with(Fault::DocumentWriteIdor, |api| async move {
        let (alice, mallory) = victim_and_stranger(&api).await;
        let path = api.share_document(&alice, &secret("alice")).await;
        let before = api.get(&path, &alice).await.text;
        let document = path.rsplit('/').next().unwrap();
        let borrowed = format!("/v1/patients/{}/documents/{document}", mallory.id);
        let change = Some(json!({"text": "mallory was here"}));
        let reply = api
            .call(Method::PATCH, &borrowed, Some(&mallory), change)
            .await;
        assert!(
            [StatusCode::NO_CONTENT, StatusCode::NOT_FOUND].contains(&reply.status),
            "{}",
            reply.text
        );
        Witnessed {
            before,
            after: api.get(&path, &alice).await.text,
        }
    })
    .await;
}

#[tokio::test]
async fn recording_delete_idor_deletes_another_patients_recording() {
    assert_changes_only_with(Fault::RecordingDeleteIdor, |api| async move {
        let dr = api.clinician(1).await;
        let (alice, mallory) = victim_and_stranger(&api).await;
        let a = api.book(&alice, &dr, SLOT_1, &secret("alice")).await;
        let call = api.start_call(&alice, a, "audio").await;
        let switched = api.switch(&alice, &call, "video").await;
        let recording = switched.json()["recording_id"].as_i64().unwrap();
        let path = format!("/v1/recordings/{recording}");
        let before = api.get(&path, &alice).await.text;
        let reply = api.call(Method::DELETE, &path, Some(&mallory), None).await;
        assert!(
            [StatusCode::NO_CONTENT, StatusCode::NOT_FOUND].contains(&reply.status),
            "{}",
            reply.text
        );
        Witnessed {
            before,
            after: api.get(&path, &alice).await.text,
        }
    })
    .await;
}
