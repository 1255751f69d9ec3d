//! Every in-memory clinic starts from the same seeded image, and from
//! nothing else: what one clinic stored is never in the next.

mod support;

use axum::http::{Method, StatusCode};
use support::Api;

#[tokio::test]
async fn each_in_memory_clinic_starts_seeded_and_empty_of_patients() {
    let first = Api::new(&[]);
    let ada = first.patient("Ada Brown", "1980-02-03").await;
    let clinician = first.clinician(1).await;
    first
        .book(&ada, &clinician, "2031-01-01T09:00:00Z", "a first booking")
        .await;
    let listed = first.get("/v1/appointments", &ada).await;
    assert_eq!(listed.json().as_array().map(Vec::len), Some(1));

    let second = Api::new(&[]);
    // The seeded clinicians are there; the first clinic's patient is not.
    let clinician = second.clinician(1).await;
    let seen = second.get("/v1/clinician/appointments", &clinician).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.text);
    assert_eq!(seen.json().as_array().map(Vec::len), Some(0));
    let login = serde_json::json!({"email": ada.email, "password": "correct horse"});
    let refused = (second.call(Method::POST, "/v1/auth/login", None, Some(login))).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
}
