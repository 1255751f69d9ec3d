//! A test API of the shape many Node services have (`fixtures/openapi/
//! hal-bookings.json`): HAL+JSON answers (`_embedded`, `_links`), camelCase
//! fields, cookie sessions whose sign-in answers an `X-CSRF-Token` header
//! that every write must send back (403 without it), and `ETag`s on
//! bookings that an amendment must send as `If-Match` (428 without it, 412
//! when stale). Notes are named by their HAL link alone (no id field).
//! Each user reads and amends only its own bookings and notes.

// Handlers refuse with a ready response, as axum handlers do.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Json, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

const HAL: &str = "application/hal+json";
const CLINICIANS: [(&str, &str); 2] = [
    ("0d7f8f0e-5b1a-4c55-9a51-0c9b1c0f3e01", "Dr Ada Okafor"),
    ("7a1c2e34-2f6d-4e8b-b0c3-5d2f9e8a4b02", "Dr Tom Reyes"),
];

#[derive(Default)]
pub struct HalApi {
    store: Mutex<Store>,
}

#[derive(Default)]
struct Store {
    /// E-mail → (user id, password, full name).
    users: HashMap<String, (String, String, String)>,
    /// Session id → (user id, CSRF token).
    sessions: HashMap<String, (String, String)>,
    /// Booking id → (owner, clinician id, reason, version).
    bookings: HashMap<String, (String, String, String, u64)>,
    /// Note id → (owner, text).
    notes: HashMap<String, (String, String)>,
    /// Writes refused for a missing or wrong CSRF token, or no `If-Match`.
    refused: usize,
}

type Api = State<Arc<HalApi>>;

fn fail(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "message": message }))).into_response()
}

fn hal(status: StatusCode, body: Value, etag: Option<String>) -> Response {
    let mut response = (status, [(header::CONTENT_TYPE, HAL)], body.to_string()).into_response();
    if let Some(etag) = etag {
        response
            .headers_mut()
            .insert(header::ETAG, etag.parse().unwrap());
    }
    response
}

fn fresh() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl HalApi {
    pub fn new() -> Arc<HalApi> {
        Arc::default()
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many accounts there are, and how many passwords among them.
    pub fn accounts_and_passwords(&self) -> (usize, usize) {
        let store = self.store();
        let passwords: BTreeSet<&String> = store.users.values().map(|u| &u.1).collect();
        (store.users.len(), passwords.len())
    }

    /// Writes refused for a missing or wrong CSRF token, or no `If-Match`.
    pub fn refused(&self) -> usize {
        self.store().refused
    }

    /// The caller's session id and user id, from its cookie.
    fn session(&self, headers: &HeaderMap) -> Result<(String, String), Response> {
        let cookies = (headers.get_all(header::COOKIE).iter())
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().strip_prefix("sid="));
        let store = self.store();
        let found = cookies
            .filter_map(|sid| Some((sid.to_string(), store.sessions.get(sid)?.0.clone())))
            .next();
        found.ok_or_else(|| fail(StatusCode::UNAUTHORIZED, "Sign in first"))
    }

    /// The caller's user id, for a write: its session's CSRF token sent.
    fn writer(&self, headers: &HeaderMap) -> Result<(String, String), Response> {
        let (sid, user) = self.session(headers)?;
        let sent = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
        let mut store = self.store();
        if sent != Some(store.sessions[&sid].1.as_str()) {
            store.refused += 1;
            return Err(fail(StatusCode::FORBIDDEN, "Missing or wrong CSRF token"));
        }
        Ok((sid, user))
    }
}

pub fn router(api: Arc<HalApi>) -> Router {
    Router::new()
        .route("/users", post(sign_up))
        .route("/auth/session", post(sign_in).delete(sign_out))
        .route("/clinicians", get(clinicians))
        .route("/bookings", post(book))
        .route("/bookings/{booking_id}", get(read).patch(amend))
        .route("/notes", post(write_note))
        .route("/notes/{note_id}", get(read_note))
        .with_state(api)
}

fn links(href: String) -> Value {
    json!({ "self": { "href": href } })
}

fn user_out(id: &str, email: &str, name: &str) -> Value {
    json!({ "id": id, "email": email, "fullName": name, "_links": links(format!("/users/{id}")) })
}

async fn sign_up(State(api): Api, Json(body): Json<Value>) -> Response {
    let field = |k: &str| body[k].as_str().map(str::to_string);
    let (Some(email), Some(password), Some(name)) =
        (field("email"), field("password"), field("fullName"))
    else {
        return fail(StatusCode::BAD_REQUEST, "email, password and fullName");
    };
    let mut store = api.store();
    if store.users.contains_key(&email) {
        return fail(StatusCode::CONFLICT, "E-mail taken");
    }
    let id = fresh();
    store
        .users
        .insert(email.clone(), (id.clone(), password, name.clone()));
    hal(StatusCode::CREATED, user_out(&id, &email, &name), None)
}

async fn sign_in(State(api): Api, Json(body): Json<Value>) -> Response {
    let email = body["email"].as_str().unwrap_or_default();
    let mut store = api.store();
    let user = store.users.get(email).cloned();
    let Some((id, _, name)) = user.filter(|u| Some(u.1.as_str()) == body["password"].as_str())
    else {
        return fail(StatusCode::UNAUTHORIZED, "Wrong e-mail or password");
    };
    let (sid, csrf) = (fresh(), fresh());
    store
        .sessions
        .insert(sid.clone(), (id.clone(), csrf.clone()));
    let mut response = hal(StatusCode::OK, user_out(&id, email, &name), None);
    let cookie = format!("sid={sid}; Path=/; HttpOnly");
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie.parse().unwrap());
    response
        .headers_mut()
        .insert("x-csrf-token", csrf.parse().unwrap());
    response
}

async fn sign_out(State(api): Api, headers: HeaderMap) -> Result<Response, Response> {
    let (sid, _) = api.writer(&headers)?;
    api.store().sessions.remove(&sid);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn clinicians() -> Response {
    let items: Vec<Value> = (CLINICIANS.iter())
        .map(|(id, name)| json!({ "id": id, "name": name, "_links": links(format!("/clinicians/{id}")) }))
        .collect();
    let page =
        json!({ "_embedded": { "clinicians": items }, "_links": links("/clinicians".into()) });
    hal(StatusCode::OK, page, None)
}

/// A booking as answered, with its `ETag`.
fn booking_out(id: &str, booking: &(String, String, String, u64)) -> (Value, Option<String>) {
    let (_, clinician, reason, version) = booking;
    let body = json!({ "id": id, "clinicianId": clinician, "reason": reason, "_links": links(format!("/bookings/{id}")) });
    (body, Some(format!("\"{id}-v{version}\"")))
}

async fn book(
    State(api): Api,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Response, Response> {
    let (_, user) = api.writer(&headers)?;
    let clinician = body["clinicianId"]
        .as_str()
        .filter(|c| CLINICIANS.iter().any(|k| k.0 == *c));
    let (Some(clinician), Some(reason)) = (clinician, body["reason"].as_str()) else {
        return Err(fail(StatusCode::BAD_REQUEST, "clinicianId and reason"));
    };
    let id = fresh();
    let booking = (user, clinician.to_string(), reason.to_string(), 1);
    let (body, etag) = booking_out(&id, &booking);
    api.store().bookings.insert(id, booking);
    Ok(hal(StatusCode::CREATED, body, etag))
}

async fn read(
    State(api): Api,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let (_, user) = api.session(&headers)?;
    let store = api.store();
    let booking = store.bookings.get(&id).filter(|b| b.0 == user);
    let booking = booking.ok_or_else(|| fail(StatusCode::NOT_FOUND, "No such booking"))?;
    let (body, etag) = booking_out(&id, booking);
    Ok(hal(StatusCode::OK, body, etag))
}

async fn amend(
    State(api): Api,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, Response> {
    let (_, user) = api.writer(&headers)?;
    let if_match = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut store = api.store();
    let Some(booking) = store.bookings.get(&id).filter(|b| b.0 == user).cloned() else {
        return Err(fail(StatusCode::NOT_FOUND, "No such booking"));
    };
    let Some(if_match) = if_match else {
        store.refused += 1;
        return Err(fail(
            StatusCode::PRECONDITION_REQUIRED,
            "If-Match is required",
        ));
    };
    if Some(if_match) != booking_out(&id, &booking).1 {
        // A probe sends one booking's ETag for another: no suite's fault.
        return Err(fail(
            StatusCode::PRECONDITION_FAILED,
            "The booking changed since it was read",
        ));
    }
    let reason = body["reason"].as_str().unwrap_or_default().to_string();
    let changed = (booking.0, booking.1, reason, booking.3 + 1);
    let (body, etag) = booking_out(&id, &changed);
    store.bookings.insert(id, changed);
    Ok(hal(StatusCode::OK, body, etag))
}

fn note_out(id: &str, text: &str) -> Value {
    json!({ "text": text, "_links": links(format!("/notes/{id}")) })
}

async fn write_note(
    State(api): Api,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Response, Response> {
    let (_, user) = api.writer(&headers)?;
    let text = body["text"].as_str().unwrap_or_default().to_string();
    let id = fresh();
    let note = note_out(&id, &text);
    api.store().notes.insert(id, (user, text));
    Ok(hal(StatusCode::CREATED, note, None))
}

async fn read_note(
    State(api): Api,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let (_, user) = api.session(&headers)?;
    let store = api.store();
    let note = store.notes.get(&id).filter(|n| n.0 == user);
    let (_, text) = note.ok_or_else(|| fail(StatusCode::NOT_FOUND, "No such note"))?;
    Ok(hal(StatusCode::OK, note_out(&id, text), None))
}
