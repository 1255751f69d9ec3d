//! Values read from a public answer are nobody's when every instance reads
//! the same ones. Patients read a provider directory, take its first
//! provider's id and open the provider's public page with it: no mark says
//! the id is shared, and the run is clean (without the rule the probe of
//! that page sent with no credentials was an `access` finding). The same
//! kind of list showing every patient's bookings (the bug) is still a
//! leak, though every patient reads the same first entry from it: that
//! entry's id is the patient's who booked it.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use support::tempdir;

/// The providers every directory lists, in this order.
const PROVIDERS: &[(&str, &str)] = &[
    ("prov-7d1f0c9e-2b44-4e55-9a0c-5b1d2e3f4a01", "Dr Ada Quinn"),
    ("prov-7d1f0c9e-2b44-4e55-9a0c-5b1d2e3f4a02", "Dr Ben Ortiz"),
];

#[derive(Default)]
struct Clinic {
    /// `GET /bookings` lists everyone's bookings, not the caller's.
    bug: bool,
    store: Mutex<Store>,
}

#[derive(Default)]
struct Store {
    /// Token → patient.
    tokens: HashMap<String, usize>,
    patients: usize,
    /// (id, patient, provider).
    bookings: Vec<(String, usize, String)>,
}

type Shared = Arc<Clinic>;

impl Clinic {
    fn caller(&self, headers: &HeaderMap) -> Option<usize> {
        let token = headers.get("authorization")?.to_str().ok()?;
        let token = token.strip_prefix("Bearer ")?;
        self.store.lock().unwrap().tokens.get(token).copied()
    }
}

fn booking(id: &str, provider: &str) -> Value {
    json!({"id": id, "provider_id": provider, "slot": "2027-03-01T09:00:00Z"})
}

fn api(clinic: Clinic) -> Router {
    async fn sign_up(State(c): State<Shared>) -> (StatusCode, Json<Value>) {
        let mut store = c.store.lock().unwrap();
        store.patients += 1;
        let (patient, token) = (store.patients, uuid::Uuid::new_v4().to_string());
        store.tokens.insert(token.clone(), patient);
        let id = format!("patient-{patient}-{}", uuid::Uuid::new_v4());
        (StatusCode::CREATED, Json(json!({"id": id, "token": token})))
    }
    async fn directory() -> Json<Value> {
        let items: Vec<Value> = (PROVIDERS.iter())
            .map(|(id, name)| json!({"id": id, "name": name}))
            .collect();
        Json(json!({"items": items}))
    }
    /// A provider's public page: anyone may read it.
    async fn provider(UrlPath(id): UrlPath<String>) -> Response {
        match PROVIDERS.iter().find(|(p, _)| *p == id) {
            Some((id, name)) => Json(json!({"id": id, "name": name, "open": true})).into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        }
    }
    async fn book(State(c): State<Shared>, headers: HeaderMap, Json(b): Json<Value>) -> Response {
        let Some(patient) = c.caller(&headers) else {
            return StatusCode::UNAUTHORIZED.into_response();
        };
        let provider = b["provider_id"].as_str().unwrap_or_default().to_string();
        let id = format!("booking-{}", uuid::Uuid::new_v4());
        let answer = booking(&id, &provider);
        c.store
            .lock()
            .unwrap()
            .bookings
            .push((id, patient, provider));
        (StatusCode::CREATED, Json(answer)).into_response()
    }
    async fn read(
        State(c): State<Shared>,
        headers: HeaderMap,
        UrlPath(id): UrlPath<String>,
    ) -> Response {
        let Some(patient) = c.caller(&headers) else {
            return StatusCode::UNAUTHORIZED.into_response();
        };
        let store = c.store.lock().unwrap();
        match (store.bookings.iter()).find(|(b, owner, _)| *b == id && *owner == patient) {
            Some((id, _, provider)) => Json(booking(id, provider)).into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        }
    }
    async fn bookings(State(c): State<Shared>, headers: HeaderMap) -> Response {
        let Some(patient) = c.caller(&headers) else {
            return StatusCode::UNAUTHORIZED.into_response();
        };
        let store = c.store.lock().unwrap();
        let items: Vec<Value> = (store.bookings.iter())
            .filter(|(_, owner, _)| c.bug || *owner == patient)
            .map(|(id, _, provider)| booking(id, provider))
            .collect();
        Json(json!({"items": items})).into_response()
    }
    Router::new()
        .route("/patients", post(sign_up))
        .route("/providers", get(directory))
        .route("/providers/{id}", get(provider))
        .route("/bookings", get(bookings).post(book))
        .route("/bookings/{id}", get(read))
        .with_state(Arc::new(clinic))
}

/// No capture is marked `shared`: the directory's first provider is
/// everyone's by what the run sees, and so is the list's first booking
/// when the bug shows everyone the same list.
const SUITE: &str = r#"
[actors.patient]
count = 4
population = true
auth = { bearer = "{{token}}" }

[[steps]]
name = "sign up"
actor = "patient"
request = "POST /patients"
body = { email = "{{canary}}@patients.test" }
expect = { status = 201 }
capture = { patient_id = "$.id", token = { json = "$.token", secret = true } }

[[steps]]
name = "read the directory"
actor = "patient"
request = "GET /providers"
expect = { status = 200 }
capture = { provider_id = "$.items[0].id" }

[[steps]]
name = "open the provider's page"
actor = "patient"
request = "GET /providers/{{provider_id}}"
expect = { status = 200 }

[[steps]]
name = "book"
actor = "patient"
request = "POST /bookings"
body = { provider_id = "{{provider_id}}" }
expect = { status = 201 }
capture = { booking_id = "$.id" }

[[steps]]
name = "read own booking"
actor = "patient"
request = "GET /bookings/{{booking_id}}"
expect = { status = 200 }

[[steps]]
name = "list own bookings"
actor = "patient"
request = "GET /bookings"
expect = { status = 200 }
capture = { latest_booking = "$.items[0].id" }
"#;

fn run(clinic: Clinic, seed: &str) -> (Option<i32>, Value) {
    let dir = tempdir("public-directory");
    let file = dir.join("directory.toml");
    std::fs::write(&file, SUITE).unwrap();
    let url = support::serve(move || api(clinic));
    let args = ["--seed", seed, "--target", &url, file.to_str().unwrap()];
    support::run_report(&dir, &args)
}

/// (kind, step) of every bucket.
fn buckets(report: &Value) -> Vec<(String, String)> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (report["buckets"].as_array().unwrap().iter())
        .map(|b| (text(&b["first"]["kind"]), text(&b["first"]["step"])))
        .collect()
}

#[test]
fn an_id_every_patient_reads_from_the_directory_is_nobody_s() {
    for seed in ["1", "2", "3"] {
        let (code, report) = run(Clinic::default(), seed);
        assert_eq!(code, Some(0), "seed {seed}: {:?}", buckets(&report));
        // The probes went out for what is owned (a booking), not for the
        // provider's page.
        let probes: u64 = (report["scenarios"].as_array().unwrap().iter())
            .map(|s| s["probes"].as_u64().unwrap())
            .sum();
        assert!(probes > 0, "seed {seed}: no probe sent");
    }
}

#[test]
fn a_list_that_shows_everyone_one_patient_s_booking_is_still_a_leak() {
    let buggy = Clinic {
        bug: true,
        ..Clinic::default()
    };
    let (code, report) = run(buggy, "1");
    assert_eq!(code, Some(1), "{:?}", buckets(&report));
    let found = buckets(&report);
    assert!(
        found.contains(&("leak".to_string(), "list own bookings".to_string())),
        "{found:?}"
    );
}
