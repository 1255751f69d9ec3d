//! A test API with nested resources, the shape of many real backends:
//! integer patient ids, 26-character ULID-like encounter ids under
//! `/api/v2/patients/{patient_id}/encounters/{encounter_id}`, camelCase
//! fields in a `{data}` envelope, and an OAuth2 token endpoint with a form
//! body that takes the password grant and the refresh grant (a refresh
//! token is good once). Every handler checks that the caller is the path's
//! patient.
//!
//! Faults: `nested_read` loads an encounter by its id alone (the parent
//! check passes for the caller's own patient id, the encounter is
//! anyone's); `nested_write` updates one the same way.

// Handlers refuse with a ready response, as axum handlers do.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Json, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

#[derive(Default, Clone, Copy)]
pub struct Faults {
    pub nested_read: bool,
    pub nested_write: bool,
}

pub struct NestedApi {
    faults: Faults,
    store: Mutex<Store>,
}

#[derive(Default)]
struct Store {
    /// `patients[id - 1]` = (e-mail, password, full name).
    patients: Vec<(String, String, String)>,
    tokens: HashMap<String, u64>,
    /// Refresh token → patient id; each is used once.
    refresh_tokens: HashMap<String, u64>,
    /// Encounter id → (patient id, reason).
    encounters: HashMap<String, (u64, String)>,
    minted: u64,
}

impl Store {
    /// A fresh opaque id of `len` characters from the ULID alphabet.
    fn mint(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
        self.minted += 1;
        let mut x = self.minted.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ALPHABET[(x % 32) as usize] as char
            })
            .collect()
    }
}

type Api = State<Arc<NestedApi>>;

fn error(status: StatusCode, detail: &str) -> Response {
    (status, Json(json!({ "detail": detail }))).into_response()
}

impl NestedApi {
    pub fn new(faults: Faults) -> Arc<NestedApi> {
        Arc::new(NestedApi {
            faults,
            store: Mutex::default(),
        })
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The caller, when its bearer token is one and it is `patient_id`.
    fn caller(&self, headers: &HeaderMap, patient_id: u64) -> Result<(), Response> {
        let token = (headers.get(header::AUTHORIZATION))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let caller = token.and_then(|t| self.store().tokens.get(t).copied());
        match caller {
            None => Err(error(StatusCode::UNAUTHORIZED, "Not authenticated")),
            Some(id) if id != patient_id => Err(error(StatusCode::FORBIDDEN, "Not your record")),
            Some(_) => Ok(()),
        }
    }
}

pub fn router(api: Arc<NestedApi>) -> Router {
    Router::new()
        .route("/api/v2/register", post(register))
        .route("/api/v2/token", post(token))
        .route("/api/v2/patients/{patient_id}/encounters", post(create))
        .route(
            "/api/v2/patients/{patient_id}/encounters/{encounter_id}",
            get(read).patch(update),
        )
        .with_state(api)
}

async fn register(State(api): Api, Json(body): Json<Value>) -> Response {
    let field = |k: &str| body[k].as_str().map(str::to_string);
    let (Some(email), Some(password), Some(name)) =
        (field("email"), field("password"), field("fullName"))
    else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "email, password and fullName are required",
        );
    };
    let mut store = api.store();
    store.patients.push((email.clone(), password, name.clone()));
    let id = store.patients.len() as u64;
    let patient = json!({ "id": id, "email": email, "fullName": name });
    (StatusCode::CREATED, Json(patient)).into_response()
}

async fn token(State(api): Api, Form(form): Form<HashMap<String, String>>) -> Response {
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let mut store = api.store();
    let found = match get("grant_type") {
        "password" => (store.patients.iter().position(|(email, password, _)| {
            email.eq_ignore_ascii_case(get("username")) && password == get("password")
        }))
        .map(|i| i as u64 + 1),
        "refresh_token" => store.refresh_tokens.remove(get("refresh_token")),
        _ => return error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    };
    let Some(id) = found else {
        return error(StatusCode::UNAUTHORIZED, "Incorrect credentials");
    };
    let token = store.mint(32);
    store.tokens.insert(token.clone(), id);
    let refresh = store.mint(40);
    store.refresh_tokens.insert(refresh.clone(), id);
    let session =
        json!({ "access_token": token, "token_type": "bearer", "refresh_token": refresh });
    Json(session).into_response()
}

async fn create(
    State(api): Api,
    Path(patient_id): Path<u64>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Response, Response> {
    api.caller(&headers, patient_id)?;
    let reason = body["reason"].as_str().unwrap_or_default().to_string();
    let mut store = api.store();
    let id = store.mint(26);
    store
        .encounters
        .insert(id.clone(), (patient_id, reason.clone()));
    let data = json!({ "id": id, "patientId": patient_id, "reason": reason });
    Ok((StatusCode::CREATED, Json(json!({ "data": data }))).into_response())
}

/// The encounter `encounter_id` of `patient_id`; with `loose`, of anyone.
fn find(store: &Store, patient_id: u64, encounter_id: &str, loose: bool) -> Option<(u64, String)> {
    let (owner, reason) = store.encounters.get(encounter_id)?.clone();
    (loose || owner == patient_id).then_some((owner, reason))
}

async fn read(
    State(api): Api,
    Path((patient_id, encounter_id)): Path<(u64, String)>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    api.caller(&headers, patient_id)?;
    let store = api.store();
    let (owner, reason) = find(&store, patient_id, &encounter_id, api.faults.nested_read)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "Encounter not found"))?;
    let data = json!({ "id": encounter_id, "patientId": owner, "reason": reason });
    Ok(Json(json!({ "data": data })).into_response())
}

async fn update(
    State(api): Api,
    Path((patient_id, encounter_id)): Path<(u64, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Response, Response> {
    api.caller(&headers, patient_id)?;
    let mut store = api.store();
    find(&store, patient_id, &encounter_id, api.faults.nested_write)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "Encounter not found"))?;
    let reason = body["reason"].as_str().unwrap_or_default().to_string();
    if let Some(encounter) = store.encounters.get_mut(&encounter_id) {
        encounter.1 = reason;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
